"""The Prefect flow ``train-flow``: caption statistics -> training (torchrun, N processes) -> checkpoint selection
(optimal vs last) -> threshold calibration -> evaluation -> MLflow run -> registration of the optimal checkpoint.

Every task calls the library (:mod:`sketchseg.data.caption_stats`, :mod:`sketchseg.train.launch`, :mod:`sketchseg.eval`,
:mod:`sketchseg.tracking`); the flow only wires them. Runs in-process without a server (ephemeral Prefect, as the DVC
stage ``train`` does) or as the served deployment ``train-flow/default`` (``python -m flows serve``).

Outputs, in the run's own folder (``run_dir``; by default ``outputs/runs/<UTC time>-<flow run name>``, named in the
log): ``train/`` (the training folder, its models calibrated) and ``eval/`` (the report of
:func:`sketchseg.eval.report.run_report` plus ``caption_stats.json``, ``train_history.json`` and ``tau_steps.json``);
an MLflow run, a version of the model ``sketchseg`` (alias ``champion`` when its test mIoU beats the current
champion's on the same test sketches, see :mod:`sketchseg.tracking.registry`) and a Markdown artifact
``train-summary`` on the flow run. ``train.out`` and ``eval.out`` (the pipeline's DVC outputs by default) are
written only with ``publish``: once everything else succeeded, each is replaced by a copy of the run's folder in one
rename (:func:`publish_folder`), so a cancelled or failed run leaves them as they were.
"""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from sketchseg.config import Config, load_config, resolve_foundation
from sketchseg.data.caption_stats import shard_category_statistics
from sketchseg.errors import ConfigError
from sketchseg.eval.report import compared_metrics, read_per_sketch
from sketchseg.eval.selection import read_history
from sketchseg.eval.selection import select_checkpoint as choose_checkpoint
from sketchseg.eval.tables import write_plot_tables
from sketchseg.io_utils import atomic_dir, write_json
from sketchseg.tracking import registry
from sketchseg.tracking.runs import DEFAULT_EXPERIMENT, log_training_run
from sketchseg.tracking.store import tracking_uri as resolve_tracking_uri

SUMMARY_KEY = "train-summary"
RUNS_DIR = Path("outputs/runs")  # the run folders of flow runs without run_dir


def new_run_dir(base: Path = RUNS_DIR) -> Path:
    """A new, empty folder ``base/<UTC date-time>-<flow run name>`` for this flow run (created here)."""
    from prefect.runtime import flow_run

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]+', '-', flow_run.name or 'run')}"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise ConfigError(f"{base}: no free run folder named {name}[-N]; give run_dir")


def _inside(a: Path, b: Path) -> bool:
    """Whether folder ``a`` is ``b`` or lies inside it (paths resolved)."""
    return a.resolve().is_relative_to(b.resolve())


def check_run_dir(run: Path, train_out: Path, eval_out: Path) -> None:
    """Refuse a run folder that overlaps ``train.out`` or ``eval.out``: the run writes them only by publishing."""
    for name, out in (("train.out", train_out), ("eval.out", eval_out)):
        if _inside(run, out) or _inside(out, run):
            raise ConfigError(
                f"run_dir {run}: overlaps {name} ({out}), which a run writes only by publishing; pick a run folder "
                "outside it (default: outputs/runs/NAME) and set publish=true to copy the results there"
            )
    if _inside(train_out, eval_out) or _inside(eval_out, train_out):
        raise ConfigError(
            f"train.out {train_out} and eval.out {eval_out}: one lies inside the other, so publishing one would "
            "replace the other; set them to separate folders (params.yaml: data/train and data/eval)"
        )


def publish_folder(src: Path, dst: Path) -> Path:
    """Replace ``dst`` by a copy of ``src``: the copy is made beside ``dst`` and renamed into place, so ``dst`` holds
    either all of the old or all of the new files, whenever the process is stopped."""
    with atomic_dir(dst) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
    return dst


@task(name="caption-statistics", cache_policy=NO_CACHE)
def caption_statistics(shards: str, eval_out: str) -> dict[str, Any]:
    """Statistics of the parsed categories of the training split -> ``eval.out/caption_stats.json``."""
    logger = get_run_logger()
    stats = shard_category_statistics(shards, "train")
    write_json(Path(eval_out) / "caption_stats.json", stats)
    top = ", ".join(f"{k} {v}" for k, v in list(stats["sketches_per_category"].items())[:10])
    logger.info(
        "train split: %d sketches, %d without categories, %d distinct categories (%.2f per sketch); most frequent: %s",
        stats["sketches"],
        stats["without_categories"],
        stats["distinct_categories"],
        stats["mean_categories_per_sketch"],
        top,
    )
    return stats


@task(name="train", cache_policy=NO_CACHE)  # no retries: a failed training needs a look, not a blind rerun
def train(
    params: str,
    overrides: list[str],
    nproc: int | None,
    foundation: Path | None,
    resume: bool,
    out: str,
    work: str | None = None,
) -> dict[str, Any]:
    """The two-level training into ``out`` (in this process for one process, torchrun for more)."""
    from sketchseg.train.launch import launch

    return launch(
        Path(params), overrides, nproc=nproc, foundation=foundation, out=Path(out), resume=resume,
        work=Path(work) if work else None,
    )  # fmt: skip


@task(name="select-checkpoint", cache_policy=NO_CACHE)
def select_checkpoint(train_out: str, eval_out: str) -> dict[str, Any]:
    """Optimal (best validation mIoU) vs last epoch from ``history.json``; also writes the plot tables
    ``train_history.json`` and ``tau_steps.json`` into the run's evaluation folder."""
    logger = get_run_logger()
    selection = choose_checkpoint(read_history(train_out))
    write_plot_tables(train_out, eval_out)
    best, last = selection["optimal"], selection["last"]
    logger.info(
        "optimal: epoch %s (val mIoU %.4f); last: epoch %s (val mIoU %.4f)%s",
        best["epoch"],
        best["val_miou"],
        last["epoch"],
        last["val_miou"],
        " (the same epoch)" if selection["same"] else "",
    )
    selection["checkpoint"] = str(Path(train_out) / "models" / f"{selection['chosen']}.pt")
    return selection


@task(name="calibrate-threshold", cache_policy=NO_CACHE)
def calibrate(cfg: Config, train_out: str, shards: str) -> dict[str, Any]:
    """τ swept on validation with the optimal checkpoint and stored in both exported models of the run's own training
    folder."""
    from sketchseg.eval.report import calibrate as calibrate_tau

    # the run's own folder: its models become the calibrated ones; a line every 10 s in a log
    result = calibrate_tau(cfg, train_dir=train_out, shards=shards, out=train_out, progress=True)
    get_run_logger().info("calibrated τ = %.2f (val Acc@P %.4f)", result["tau"], result["val_acc_p"])
    return result


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(
    cfg: Config, train_out: str, eval_out: str, foundation: Path | None, calibration: dict[str, Any]
) -> dict[str, Any]:
    """Baselines and both checkpoints on val and test; writes the report into the run's evaluation folder and returns
    it (the content of ``report.json``)."""
    from sketchseg.eval.report import format_table, run_report

    prepared = Path(cfg.data.prepared)
    report = run_report(
        cfg,
        train_dir=train_out,
        out=eval_out,
        shards=cfg.data.shards,
        foundation=foundation,
        prepared=prepared if prepared.is_dir() else None,
        calibration=calibration,
        progress=True,
    )
    get_run_logger().info("evaluation:\n%s", format_table(report["figures"]))
    return report


@task(name="publish", cache_policy=NO_CACHE)
def publish_outputs(train_out: str, eval_out: str, train_dest: str, eval_dest: str) -> None:
    """Copy the run's training and evaluation folders onto ``train.out`` and ``eval.out`` (:func:`publish_folder`)."""
    for src, dst in ((train_out, train_dest), (eval_out, eval_dest)):
        publish_folder(Path(src), Path(dst))
    get_run_logger().info("published: %s -> %s, %s -> %s", train_out, train_dest, eval_out, eval_dest)


@task(name="log-mlflow-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=3)
def log_run(cfg: Config, train_out: str, eval_out: str, experiment: str, tags: dict[str, str], uri: str | None) -> str:
    """One MLflow run with the config, per-epoch and per-step metrics, plots and evaluation tables."""
    run_id = log_training_run(
        cfg.to_dict(), train_dir=train_out, eval_dir=eval_out, experiment=experiment, tags=tags, uri=uri
    )
    get_run_logger().info("MLflow run %s logged to %s (experiment %s)", run_id, resolve_tracking_uri(uri), experiment)
    return run_id


@task(name="register-model", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=3)
def register_version(
    checkpoint: str,
    run_id: str,
    test_miou: float | None,
    test_set: dict[str, Any] | None,
    test_per_sketch: list[float] | None,
    uri: str | None,
) -> registry.Registration:
    """Register the chosen checkpoint as a version of ``sketchseg``, with what its test mIoU was measured on and its
    per-sketch test mIoU; ``champion`` moves if it is better on the same test beyond the bootstrap interval."""
    reg = registry.register_checkpoint(
        checkpoint, run_id=run_id, test_miou=test_miou, test_set=test_set, test_per_sketch=test_per_sketch, uri=uri
    )
    alias = f"@{registry.CHAMPION}"
    holder = f"it is now {alias}" if reg.champion else f"{alias} stays with version {reg.previous_champion}"
    miou = "no test mIoU" if reg.test_miou is None else f"test mIoU {100 * reg.test_miou:.2f}"
    get_run_logger().info("model %s version %s (%s): %s (%s)", reg.name, reg.version, miou, holder, reg.reason)
    return reg


def summary_markdown(
    figures: dict[str, Any],
    selection: dict[str, Any],
    run_id: str,
    registration: registry.Registration | None,
    run_dir: str | None = None,
    published: tuple[str, str] | None = None,
) -> str:
    """The run's Markdown summary: the table of the evaluation ``figures`` (report.json), τ, the chosen checkpoint, the
    run folder and where it was published (``published``: train.out, eval.out), the MLflow run and the model
    version."""
    from sketchseg.eval.report import format_table

    best, last = selection["optimal"], selection["last"]
    lines = [
        "# sketchseg train-flow",
        "",
        format_table(figures),
        "",
        f"- τ (calibrated on validation): {figures['tau']:.2f}",
        f"- checkpoint: {selection['chosen']} = epoch {best['epoch']} (val mIoU {100 * best['val_miou']:.2f}); "
        f"last = epoch {last['epoch']} (val mIoU {100 * last['val_miou']:.2f})",
        f"- file: `{selection['checkpoint']}`",
    ]
    if run_dir is not None:
        lines.append(f"- run folder: `{run_dir}`")
    if published is not None:
        lines.append(f"- published to: `{published[0]}`, `{published[1]}`")
    lines.append(f"- MLflow run: `{run_id}`")
    if registration is None:
        lines.append("- model registry: not registered (register=false)")
    else:
        holder = (
            f"`@{registry.CHAMPION}` moved to it"
            if registration.champion
            else f"`@{registry.CHAMPION}` stays with version {registration.previous_champion} "
            f"(test mIoU {registration.previous_miou})"
        ) + (f": {registration.reason}" if registration.reason else "")
        lines.append(
            f"- registered: `{registration.name}` version {registration.version} "
            f"(test mIoU {registration.test_miou}); {holder}"
        )
    return "\n".join(lines) + "\n"


@flow(name="train-flow")
def train_flow(
    params: str = "params.yaml",
    overrides: list[str] | None = None,
    nproc: int | None = None,
    foundation: str | None = None,
    register: bool = True,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    resume: bool = False,
    run_dir: str | None = None,
    publish: bool = False,
    work: str | None = None,
) -> dict[str, Any]:
    """Train, calibrate, evaluate, log and register one model, in the run's own folder.

    ``params``/``overrides`` (``section.key=value``) resolve the configuration like ``sketchseg train -S``;
    ``nproc``: training processes (None: ``train.nproc``; 0: one per GPU, 1 on CPU); ``foundation``: foundation
    folder (None: ``foundation.out`` when it holds a model, else ``model.backbone``); ``register``: register
    the optimal checkpoint; ``experiment``/``tracking_uri``: MLflow experiment and store (None:
    ``MLFLOW_TRACKING_URI`` or ``./mlflow.db``); ``run_dir``: the run folder (its ``train/`` and ``eval/``; None: a
    new ``outputs/runs/<UTC time>-<flow run name>``); ``resume``: continue the interrupted training of ``run_dir``;
    ``publish``: when everything succeeded, replace ``train.out`` and ``eval.out`` by copies of the run's folders;
    ``work``: train in this folder, continuing from its last checkpoint, and copy it into the run folder when done
    (the DVC stage's resumable state, :func:`sketchseg.train.launch.launch`)."""
    import torch

    overrides = list(overrides or [])
    cfg = load_config(params, overrides)
    if resume and not run_dir:
        raise ConfigError(
            "resume=true continues the training of an earlier run: give run_dir, that run's folder (its log names it: "
            "'run folder: outputs/runs/NAME')"
        )
    torch.set_num_threads(cfg.train.threads)  # calibration and evaluation run in this process
    shards = cfg.data.shards
    run = Path(run_dir) if run_dir else new_run_dir()
    check_run_dir(run, Path(cfg.train.out), Path(cfg.eval.out))
    train_out, eval_out = str(run / "train"), str(run / "eval")
    found = resolve_foundation(cfg, foundation)
    get_run_logger().info(
        "run folder: %s (%s)",
        run.resolve(),
        f"published to {cfg.train.out} and {cfg.eval.out} when done" if publish
        else f"{cfg.train.out} and {cfg.eval.out} are left as they are; publish=true copies the results there",
    )  # fmt: skip

    caption_statistics(shards, eval_out)
    summary = train(params, overrides, nproc, found, resume, train_out, work)
    selection = select_checkpoint(train_out, eval_out)
    calibration = calibrate(cfg, train_out, shards)
    report = evaluate(cfg, train_out, eval_out, found, calibration)
    figures = report["figures"]
    tags = {
        "sketchseg.params": str(Path(params).resolve()),
        "sketchseg.overrides": " ".join(overrides),
        "sketchseg.checkpoint": selection["chosen"],
        "sketchseg.world_size": str(summary.get("world_size", "")),
        "sketchseg.run_dir": str(run.resolve()),
        # where the training's files stay: train.out when published, else the run folder
        "sketchseg.train_dir": str(Path(cfg.train.out if publish else train_out).resolve()),
    }
    run_id = log_run(cfg, train_out, eval_out, experiment, tags, tracking_uri)
    test_miou = figures["test"]["optimal"].get("miou")
    test_set = report["evaluated_on"]["test"]
    per_sketch = read_per_sketch(eval_out, "test", "optimal")
    registration = (
        register_version(selection["checkpoint"], run_id, test_miou, test_set, per_sketch, tracking_uri)
        if register
        else None
    )
    published = None
    if publish:
        publish_outputs(train_out, eval_out, cfg.train.out, cfg.eval.out)
        published = (cfg.train.out, cfg.eval.out)
        selection["checkpoint"] = str(Path(cfg.train.out) / "models" / f"{selection['chosen']}.pt")
    create_markdown_artifact(
        markdown=summary_markdown(figures, selection, run_id, registration, str(run.resolve()), published),
        key=SUMMARY_KEY,
        description="metrics, τ, checkpoint, MLflow run and model version of this training",
    )
    return {
        "metrics": compared_metrics(figures),
        "tau": figures["tau"],
        "checkpoint": selection,
        "run_dir": str(run.resolve()),
        "published": list(published) if published else None,
        "run_id": run_id,
        "model_version": registration.version if registration else None,
        "champion": registration.champion if registration else None,
        "champion_reason": registration.reason if registration else None,
    }
