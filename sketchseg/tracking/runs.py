"""One training run logged as a finished MLflow run (:func:`log_training_run`).

A training run logs:
- params: the resolved configuration, flattened (``train.lr``, ``model.backbone.name``, ...), and
  ``weights.weights`` / ``weights.activation``: what training started from and its activation (QuickGELU or GELU);
- metrics per epoch (``history.json``, step = epoch): ``epoch/train_loss``, ``epoch/val_miou``, ``epoch/val_acc_p``,
  ``epoch/val_acc_s``, ``epoch/tau``, ``epoch/seconds``;
- metrics per optimiser step (``steps.jsonl``, step = global step): ``step/tau``, ``step/loss``, ``step/lr``;
- the evaluation's figures (``report.json["figures"]``, else ``metrics.json``) as ``val/<model>/<metric>``,
  ``test/<model>/<metric>``, ``grounding/<model>/...`` and ``tau_val_acc_p``, plus ``calibrated_tau``;
- tags: ``sketchseg.train_dir`` (the training folder, unless the caller's ``tags`` name another) and what each
  split's figures were measured on (``report.json["evaluated_on"]``: ``sketchseg.evaluated_on.test.fingerprint``,
  ``...test.sketches``, ``...test.max_sketches``, ...);
- artifacts: ``config/params.resolved.yaml``, ``eval/`` (metrics.json, report.json, table.md and the plot tables),
  ``plots/`` (the PNGs of the evaluation folder), ``train/`` (history.json, train_metrics.json, calibration.json).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from sketchseg.config import flatten
from sketchseg.eval.selection import read_history
from sketchseg.eval.tables import read_steps
from sketchseg.tracking.store import client_for, ensure_experiment

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "sketchseg"
PLOT_SUFFIXES = (".png",)
EVAL_TABLES = (
    "metrics.json",
    "report.json",
    "per_sketch.json",
    "table.md",
    "threshold_curve.json",
    "per_category.json",
    "caption_stats.json",
    "train_history.json",
    "tau_steps.json",
)
TRAIN_FILES = ("history.json", "train_metrics.json", "calibration.json")


def param_value(value: Any) -> str:
    """A parameter's logged text: strings as they are, everything else as JSON (true, null, [1, 2], 0.001)."""
    return value if isinstance(value, str) else json.dumps(value)


def config_params(config: dict[str, Any]) -> dict[str, str]:
    """The flattened resolved configuration as MLflow params."""
    return {k: param_value(v) for k, v in flatten(config).items()}


def metric_rows(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric leaves of the evaluation figures as {"test/optimal/miou": 0.41, "tau": 0.62, ...}."""
    return {
        k: float(v)
        for k, v in flatten(metrics, sep="/").items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def read_evaluation(eval_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, evaluated_on) of an evaluation folder: ``report.json``'s when the report is there, else the figures
    of ``metrics.json`` and nothing about the sketches (both empty when neither file is)."""
    report, metrics = eval_dir / "report.json", eval_dir / "metrics.json"
    if report.is_file():
        data = json.loads(report.read_text(encoding="utf-8"))
        return data.get("figures", {}), data.get("evaluated_on", {})
    if metrics.is_file():
        return json.loads(metrics.read_text(encoding="utf-8")), {}
    return {}, {}


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def weights_params(train_dir: Path) -> dict[str, str]:
    """What the run started from and with which activation (``train_metrics.json``), as MLflow params."""
    path = train_dir / "train_metrics.json"
    summary = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {k: str(summary[k])[:6000] for k in ("weights", "activation") if summary.get(k)}


def log_training_run(
    config: dict[str, Any],
    *,
    train_dir: str | Path,
    eval_dir: str | Path | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    uri: str | None = None,
) -> str:
    """Log one training run (params, per-epoch and per-step metrics, evaluation figures, artifacts; see the module
    docstring) as a finished MLflow run; returns its run id."""
    from mlflow.entities import Metric, Param, RunTag

    train_dir = Path(train_dir)
    history = read_history(train_dir)
    steps = read_steps(train_dir)
    client = client_for(uri)
    experiment_id = ensure_experiment(client, experiment)
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics: list[Metric] = []
        for record in history:
            for key in ("train_loss", "val_miou", "val_acc_p", "val_acc_s", "tau", "seconds"):
                if isinstance(record.get(key), int | float):
                    metrics.append(Metric(f"epoch/{key}", float(record[key]), now, int(record["epoch"])))
        for row in steps:
            for key in ("tau", "loss", "lr"):
                if isinstance(row.get(key), int | float):
                    metrics.append(Metric(f"step/{key}", float(row[key]), now, int(row["step"])))
        eval_path = Path(eval_dir) if eval_dir is not None else None
        figures, evaluated_on = read_evaluation(eval_path) if eval_path is not None else ({}, {})
        for key, value in metric_rows(figures).items():
            metrics.append(Metric("calibrated_tau" if key == "tau" else key, value, now, 0))
        run_tags = {"sketchseg.train_dir": str(train_dir.resolve()), **(tags or {})}  # a caller's tag wins
        run_tags |= {f"sketchseg.evaluated_on.{k}": str(v) for k, v in flatten(evaluated_on).items()}
        params = [Param(k, v) for k, v in config_params(config).items()]
        params += [Param(f"weights.{k}", v) for k, v in weights_params(train_dir).items()]
        for chunk in _batches(params, 100):
            client.log_batch(run_id, params=chunk)
        for chunk in _batches(metrics, 1000):
            client.log_batch(run_id, metrics=chunk)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in run_tags.items()])
        client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), "config/params.resolved.yaml")
        for name in TRAIN_FILES:
            if (train_dir / name).is_file():
                client.log_artifact(run_id, str(train_dir / name), "train")
        if eval_path is not None and eval_path.is_dir():
            for name in EVAL_TABLES:
                if (eval_path / name).is_file():
                    client.log_artifact(run_id, str(eval_path / name), "eval")
            for png in sorted(eval_path.iterdir()):
                if png.suffix in PLOT_SUFFIXES and png.is_file():
                    client.log_artifact(run_id, str(png), "plots")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    log.debug("MLflow run %s logged to %s (experiment %s)", run_id, client.tracking_uri, experiment)
    return run_id
