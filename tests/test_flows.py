"""The Prefect train-flow: its glue, the DVC stage running it in-process (ephemeral Prefect) and publishing into the
stage's outputs, and the served deployment on a real Prefect server logging to a real MLflow tracking server, whose
runs (one cancelled during training, one completed) work in their own run folders and leave train.out and eval.out
byte for byte as they were (issue 21, case 1)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from flows.train_flow import check_run_dir, publish_folder, summary_markdown
from sketchseg.config import config_from_dict, resolve_foundation
from sketchseg.errors import ConfigError
from sketchseg.eval.report import compared_metrics
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.segmenter import Segmenter
from sketchseg.tracking.registry import Registration
from sketchseg.tracking.store import client_for
from tests.servers import BIN, background, base_env, mlflow_server, prefect_server, wait_http


def tiny_params(tmp_path: Path, data: dict, epochs: int = 2) -> Path:
    """A params file for a seconds-long run on the tiny dataset, every output inside ``tmp_path``."""
    params = {
        "data": {"shards": str(data["shards"]), "prepared": str(data["prepared"])},
        "foundation": {"out": str(tmp_path / "no-foundation")},
        "model": {"backbone": {"name": "sketchseg-test", "seed": 3}},
        "train": {"out": str(tmp_path / "train"), "epochs": epochs, "batch_size": 4, "lr": 0.01, "warmup_steps": 1,
                  "val_max_sketches": 4, "threads": 1, "max_steps_per_epoch": 2},
        "eval": {"out": str(tmp_path / "eval"), "max_sketches": 4, "overlays": 2, "tau_step": 0.05},
    }  # fmt: skip
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def check_outputs(folder: Path, data: dict) -> dict:
    """The flow's files in ``folder/train`` and ``folder/eval`` (train.out and eval.out of :func:`tiny_params`, or a
    run folder) agree with the training outputs; returns metrics.json and what they were computed from."""
    train, ev = folder / "train", folder / "eval"
    assert (train / "calibration.json").is_file() and "calibrated_tau" in torch_meta(train / "models" / "optimal.pt")
    for name in ("metrics.json", "report.json", "table.md", "threshold_curves.png", "caption_stats.json"):
        assert (ev / name).is_file(), name
    history = json.loads((train / "history.json").read_text())
    assert json.loads((ev / "train_history.json").read_text()) == [
        {"epoch": r["epoch"], "train_loss": r["train_loss"], "val_miou": r["val_miou"], "tau": r["tau"]}
        for r in history
    ]
    steps = [json.loads(line) for line in (train / "steps.jsonl").read_text().splitlines()]
    assert json.loads((ev / "tau_steps.json").read_text()) == [{"step": s["step"], "tau": s["tau"]} for s in steps]
    stats = json.loads((ev / "caption_stats.json").read_text())
    assert stats["sketches"] == json.loads((data["shards"] / "train.json").read_text())["num_samples"]
    metrics = json.loads((ev / "metrics.json").read_text())
    report = json.loads((ev / "report.json").read_text())
    figures = report["figures"]
    models = {"clip", "clip_surgery", "optimal", "last"}
    # metrics.json: τ and the figures compared across experiments, taken from the report; the rest stays there
    assert set(metrics) == {"tau", "val", "test"} and metrics["tau"] == figures["tau"]
    assert metrics == compared_metrics(figures)
    for split in ("val", "test"):
        assert set(metrics[split]) == models | {"chance", "majority"}  # the models and the floors
        for name in models:
            assert {k: metrics[split][name][k] for k in ("miou", "acc_p", "acc_s")} == {
                k: figures[split][name][k] for k in ("miou", "acc_p", "acc_s")
            }
            assert {"mean_acc", "fwiou"} <= set(figures[split][name])
    assert set(figures["grounding"]) == {"clip_surgery", "optimal", "last"}
    assert 0.0 <= metrics["test"]["optimal"]["miou"] <= 1.0
    return {"metrics": metrics, "history": history, "steps": steps, "evaluated_on": report["evaluated_on"]}


def torch_meta(path: Path) -> dict:
    from tests.conftest import read_checkpoint

    return read_checkpoint(path)["meta"]


def digests(*folders: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folders``."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in sorted(f.rglob("*")) if p.is_file()
    }


def earlier_outputs(tmp_path: Path) -> dict[str, str]:
    """What an earlier pipeline run left in train.out and eval.out of :func:`tiny_params` (a model, its checkpoints,
    the calibration, the metrics); returns their SHA-256."""
    train, ev = tmp_path / "train", tmp_path / "eval"
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=5)))
    save_checkpoint(model, train / "models" / "optimal.pt", meta={"calibrated_tau": 0.73})
    save_checkpoint(model, train / "models" / "last.pt", meta={"calibrated_tau": 0.73})
    (train / "checkpoints").mkdir()
    (train / "checkpoints" / "last.pt").write_bytes(b"an earlier training's resume state")
    (train / "calibration.json").write_text('{"tau": 0.73}\n')
    ev.mkdir()
    (ev / "metrics.json").write_text('{"tau": 0.73}\n')
    return digests(train, ev)


def check_tracking(uri: str, outputs: dict) -> str:
    """One finished MLflow run with the per-step τ, and version 1 of `sketchseg` holding `champion`; returns the
    run id."""
    client = client_for(uri)
    experiment = client.get_experiment_by_name("sketchseg")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    taus = client.get_metric_history(run.info.run_id, "step/tau")
    assert sorted(m.step for m in taus) == [s["step"] for s in outputs["steps"]]
    assert len(client.get_metric_history(run.info.run_id, "epoch/val_miou")) == len(outputs["history"])
    champion = client.get_model_version_by_alias("sketchseg", "champion")
    assert str(champion.version) == "1" and champion.run_id == run.info.run_id
    assert float(champion.tags["test_miou"]) == outputs["metrics"]["test"]["optimal"]["miou"]
    test_set = outputs["evaluated_on"]["test"]  # what the report measured the figure on travels with the version
    assert champion.tags["test_fingerprint"] == test_set["fingerprint"] and len(test_set["fingerprint"]) == 64
    assert (champion.tags["test_sketches"], champion.tags["test_max_sketches"]) == ("4", "4")
    assert run.data.tags["sketchseg.evaluated_on.test.fingerprint"] == test_set["fingerprint"]
    return run.info.run_id


METRICS = {
    "tau": 0.62,
    "tau_val_acc_p": 0.55,
    "val": {"optimal": {"miou": 0.3, "acc_p": 0.5, "acc_s": 0.6}},
    "test": {"optimal": {"miou": 0.25, "acc_p": 0.45, "acc_s": 0.5}},
}
SELECTION = {
    "optimal": {"epoch": 2, "val_miou": 0.3},
    "last": {"epoch": 3, "val_miou": 0.28},
    "chosen": "optimal",
    "checkpoint": "data/train/models/optimal.pt",
}


def test_summary_names_table_tau_checkpoint_run_and_version() -> None:
    reason = "not comparable: this version's test mIoU was measured on 10 of 300 test sketches (...)"
    reg = Registration("sketchseg", "4", 0.25, False, "2", 0.31, "models:/sketchseg/4", reason)
    text = summary_markdown(METRICS, SELECTION, "abc123", reg)
    assert "| optimal | 30.00 | 50.00 | 60.00 | 25.00 | 45.00 | 50.00 |" in text
    assert "τ (calibrated on validation): 0.62" in text
    assert "optimal = epoch 2 (val mIoU 30.00); last = epoch 3 (val mIoU 28.00)" in text
    assert "`data/train/models/optimal.pt`" in text and "MLflow run: `abc123`" in text
    assert "run folder" not in text and "published" not in text
    ran = summary_markdown(METRICS, SELECTION, "abc123", reg, "outputs/runs/x", ("data/train", "data/eval"))
    assert "- run folder: `outputs/runs/x`" in ran and "- published to: `data/train`, `data/eval`" in ran
    stays = "`sketchseg` version 4 (test mIoU 0.25); `@champion` stays with version 2 (test mIoU 0.31)"
    assert f"{stays}: {reason}" in text
    moved = Registration("sketchseg", "5", 0.4, True, "2", 0.31, "models:/sketchseg/5")
    assert "`@champion` moved to it" in summary_markdown(METRICS, SELECTION, "r", moved)
    assert "not registered" in summary_markdown(METRICS, SELECTION, "r", None)


def test_foundation_defaults_to_the_built_foundation_folder(tmp_path: Path) -> None:
    cfg = config_from_dict({"foundation": {"out": str(tmp_path / "found")}})
    assert resolve_foundation(cfg, None) is None  # nothing built: the configured model.backbone
    (tmp_path / "found").mkdir()
    (tmp_path / "found" / "open_clip_config.json").write_text("{}")
    assert resolve_foundation(cfg, None) == tmp_path / "found"
    assert resolve_foundation(cfg, "/elsewhere") == Path("/elsewhere")


def test_flow_rejects_a_missing_params_file_before_any_work(tmp_path: Path) -> None:
    from flows.train_flow import train_flow

    with pytest.raises(ConfigError, match="missing.yaml: parameters file not found"):
        train_flow.fn(params=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 1}\n")
    with pytest.raises(ConfigError, match="override train.nope=1|unknown key"):
        train_flow.fn(params=str(bad), overrides=["train.nope=1"])
    with pytest.raises(ConfigError, match="resume=true continues the training of an earlier run: give run_dir"):
        train_flow.fn(params=str(bad), resume=True)


def test_run_folders_never_overlap_the_published_outputs(tmp_path: Path) -> None:
    train, ev = tmp_path / "data" / "train", tmp_path / "data" / "eval"
    check_run_dir(tmp_path / "outputs" / "runs" / "r", train, ev)
    for run in (tmp_path / "data", train, train / "r", ev / "r"):
        with pytest.raises(ConfigError, match=r"run_dir .*: overlaps (train|eval)\.out .*publish=true"):
            check_run_dir(run, train, ev)
    with pytest.raises(ConfigError, match="one lies inside the other"):
        check_run_dir(tmp_path / "r", train, train / "eval")


def test_publishing_replaces_a_folder_whole_or_not_at_all(tmp_path: Path) -> None:
    src, dst = tmp_path / "run" / "train", tmp_path / "data" / "train"
    (src / "models").mkdir(parents=True)
    (src / "models" / "optimal.pt").write_bytes(b"new")
    (dst / "models").mkdir(parents=True)
    (dst / "models" / "optimal.pt").write_bytes(b"old")
    (dst / "stale.json").write_text("{}")
    broken = src / "models" / "broken.pt"
    broken.symlink_to(tmp_path / "missing")  # the copy fails at this file, after copying the others
    with pytest.raises(OSError):
        publish_folder(src, dst)
    assert sorted(p.name for p in dst.rglob("*")) == ["models", "optimal.pt", "stale.json"]
    assert (dst / "models" / "optimal.pt").read_bytes() == b"old"
    assert [p.name for p in dst.parent.iterdir()] == ["train"]  # no temporary folder left
    broken.unlink()
    publish_folder(src, dst)
    assert sorted(p.name for p in dst.rglob("*")) == ["models", "optimal.pt"]  # the run's folder, nothing else
    assert (dst / "models" / "optimal.pt").read_bytes() == b"new" and (src / "models" / "optimal.pt").is_file()


@pytest.mark.slow
def test_dvc_stage_runs_the_flow_in_process(tiny_data: dict, tmp_path: Path) -> None:
    """`sketchseg stage train` (what dvc.yaml runs) -> train_flow in-process with an ephemeral Prefect."""
    params = tiny_params(tmp_path, tiny_data)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = base_env(PREFECT_HOME=str(tmp_path / "prefect"), MLFLOW_TRACKING_URI=uri)
    env.pop("PREFECT_API_URL", None)
    res = subprocess.run(
        [sys.executable, "-m", "sketchseg", "stage", "train", "--params", str(params)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    assert "Finished in state Completed()" in res.stderr
    assert f"published: data/train-run/train -> {tmp_path / 'train'}, data/train-run/eval -> {tmp_path / 'eval'}" in (
        res.stderr
    )
    outputs = check_outputs(tmp_path, tiny_data)
    assert not (tmp_path / "data" / "work").exists() and not (tmp_path / "data" / "train-run").exists()  # removed
    check_tracking(uri, outputs)


def flow_run_state(api: str, flow_run_id: str) -> str:
    with urllib.request.urlopen(f"{api}/flow_runs/{flow_run_id}", timeout=10) as resp:
        return json.loads(resp.read())["state_type"]


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line names ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition, timeout: float, what: str, log: Path) -> None:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} not within {timeout:.0f} s; serve log:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


@pytest.mark.slow
def test_served_deployment_runs_on_a_prefect_server(tiny_data: dict, tmp_path: Path, fixtures_dir: Path) -> None:
    """prefect server + `python -m flows serve` + `prefect deployment run 'train-flow/default'`, logging to a real
    `mlflow server`. Over an earlier run's train.out and eval.out: a run with two training processes (the README's
    `--param nproc=2`) cancelled during training (`prefect flow-run cancel`), then a completed run. Each works in its
    own run folder (outputs/runs/TIME-NAME in the served folder); train.out and eval.out keep every byte and their
    model loads; the cancelled run's processes are gone."""
    params = tiny_params(tmp_path, tiny_data, epochs=3)
    before = earlier_outputs(tmp_path)
    runs_dir = tmp_path / "outputs" / "runs"
    t0 = time.perf_counter()
    with mlflow_server(tmp_path / "mlflow") as mlflow_url, prefect_server(tmp_path / "prefect") as api:
        up = time.perf_counter() - t0
        env = base_env(
            PREFECT_HOME=str(tmp_path / "prefect"),
            PREFECT_API_URL=api,
            PREFECT_RUNNER_POLL_FREQUENCY="1",
            MLFLOW_TRACKING_URI=mlflow_url,
        )
        serve_cmd = [sys.executable, "-m", "flows", "serve"]
        log = tmp_path / "serve.log"
        with background(serve_cmd, log=log, env=env, cwd=tmp_path) as serve:
            wait_http(f"{api}/deployments/name/train-flow/default", serve, log, timeout=60)
            served = time.perf_counter() - t0
            # 1. cancelled while its two processes train (30 epochs: minutes, were it not cancelled)
            started = subprocess.run(
                [str(BIN / "prefect"), "deployment", "run", "train-flow/default", "--param", f"params={params}",
                 "--param", "nproc=2", "--param", 'overrides=["train.epochs=30"]'],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert started.returncode == 0, started.stdout + started.stderr
            name = re.search(r"Created flow run '([^']+)'", started.stdout).group(1)
            flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)
            # the training folder appears when the two processes have started training (rank 0 creates it)
            wait_until(lambda: any(runs_dir.glob(f"*-{name}/train")), 240, "the start of the training", log)
            (cancelled,) = runs_dir.glob(f"*-{name}")
            assert processes_naming(cancelled.name)  # its training processes: torchrun and two workers
            res = subprocess.run([str(BIN / "prefect"), "flow-run", "cancel", flow_run_id], env=env,
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            assert res.returncode == 0, res.stdout + res.stderr
            wait_until(lambda: flow_run_state(api, flow_run_id) == "CANCELLED", 120, "the cancellation", log)
            wait_until(lambda: not processes_naming(cancelled.name), 60, "the end of its training processes", log)
            assert not (cancelled / "train" / "train_metrics.json").exists()  # stopped during training
            assert f"run folder: {cancelled}" in log.read_text()
            assert digests(tmp_path / "train", tmp_path / "eval") == before
            # 2. completed
            res = subprocess.run(
                [str(BIN / "prefect"), "deployment", "run", "train-flow/default", "--watch", "--watch-interval", "1",
                 "--param", f"params={params}", "--param", 'overrides=["train.epochs=1"]'],
                env=env, capture_output=True, text=True, timeout=240,
            )  # fmt: skip
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:] + log.read_text()[-3000:]
            assert "Flow run finished successfully in 'Completed'" in res.stdout
            ran = time.perf_counter() - t0
            request = urllib.request.Request(
                f"{api}/artifacts/filter",
                data=json.dumps({"artifacts": {"key": {"any_": ["train-summary"]}}}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                artifacts = json.loads(resp.read())
        (completed,) = set(runs_dir.iterdir()) - {cancelled}
        outputs = check_outputs(completed, tiny_data)
        assert [r["epoch"] for r in outputs["history"]] == [1]  # the override reached the flow
        assert digests(tmp_path / "train", tmp_path / "eval") == before  # not published: publish=false
        run_id = check_tracking(mlflow_url, outputs)
        assert client_for(mlflow_url).get_run(run_id).data.tags["sketchseg.run_dir"] == str(completed)
    print(f"servers up {up:.1f} s, deployment served {served:.1f} s, runs done {ran:.1f} s")
    earlier = Segmenter.from_checkpoint(tmp_path / "train" / "models" / "optimal.pt")  # `segment --checkpoint` works
    assert earlier.segment(fixtures_dir / "sketch_1.png", categories=["tree", "house"]).categories == ["tree", "house"]
    (artifact,) = artifacts
    assert artifact["type"] == "markdown"
    assert f"MLflow run: `{run_id}`" in artifact["data"] and f"run folder: `{completed}`" in artifact["data"]
    assert "`sketchseg` version 1" in artifact["data"] and "`@champion` moved to it" in artifact["data"]
