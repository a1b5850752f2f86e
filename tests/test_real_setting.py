"""The real-sketch parameter set (experiments/real.yaml) run for real, as `make real` runs it: the embedded pipeline
first (tiny sizes), then `dvc exp run -n real` with the set's flags on the FrISS and CBSC fixtures. The experiment
reuses the embedded foundation (its stages do not rerun), trains on FrISS train, selects on FrISS val and reports
CBSC test beside the floors, with the intervals against clip_surgery. Only sizes are overridden."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_dvc import fresh_clone, sh

REAL = REPO / "experiments" / "real.yaml"
SIZE = {"train.epochs": 1, "train.batch_size": 4, "train.max_steps_per_epoch": 2, "train.val_max_sketches": 6,
        "eval.max_sketches": 6, "eval.overlays": 1}  # fmt: skip
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_real_experiment_reuses_the_foundation_and_reports_people_sketches(
    tmp_path: Path, friss_dir: Path, cbsc_dir: Path
) -> None:
    repo = fresh_clone(tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["foundation"].update(steps=4, batch_size=8, warmup_steps=2, mosaics=16)
    params["foundation"]["backbone"]["name"] = "sketchseg-test"
    params["train"].update(epochs=1, batch_size=4, max_steps_per_epoch=2, val_max_sketches=4, threads=1)
    params["eval"].update(max_sketches=4, overlays=1, grounding=False)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PREFECT_HOME": str(tmp_path / "prefect")}
    git = ("git", "-c", "user.email=t@t", "-c", "user.name=t")
    sh(*git, "commit", "-qam", "tiny", cwd=repo, env=env)
    sh("dvc", "repro", cwd=repo, env=env)
    foundation = (repo / "data/foundation/open_clip_model.safetensors").read_bytes()
    sh(*git, "add", "-A", cwd=repo, env=env)
    sh(*git, "commit", "-qm", "embedded run", cwd=repo, env=env)

    changes = [f"data.friss_root={friss_dir}", f"data.real_test_root={cbsc_dir}"]
    changes += [f"{k}={v}" for k, v in SIZE.items()]
    command = [sys.executable, "experiments/overrides.py", str(REAL), *changes, "--params", str(repo / "params.yaml")]
    made = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    done = sh("dvc", "exp", "run", "-n", "real", *shlex.split(made.stdout), cwd=repo, env=env)
    log = done.stdout
    for stage in ("source", "prepare", "shards", "train"):
        assert f"Running stage '{stage}'" in log, stage
    for stage in ("synth", "foundation"):  # the embedded foundation, reused as it is
        assert f"Running stage '{stage}'" not in log, stage
    assert (repo / "data/foundation/open_clip_model.safetensors").read_bytes() == foundation

    report = json.loads((repo / "data/source/friss.json").read_text())
    assert report["class_map"] == "people_to_synthetic" and len(report["vocabulary"]) == 24
    kept = {split: r["kept"] for split, r in report["splits"].items()}
    assert kept == {"train": 251, "val": 100, "test": 160}  # FrISS train and val, CBSC test, the 24 words
    assert "vocabulary deleted" in log and "dropped" in log  # what each rule removed, in the stage's output
    captions = sorted((repo / "data/source/train/text").glob("*/*.txt"))
    assert len(captions) == 251 and captions[0].read_text().startswith("a sketch of ")

    metrics = json.loads((repo / "data/eval/metrics.json").read_text())
    assert set(metrics["test"]) >= {"chance", "majority", "clip", "clip_surgery", "optimal", "last"}
    assert "miou_vs_clip_surgery" in metrics["test"]["optimal"]
    figures = json.loads((repo / "data/eval/report.json").read_text())
    assert figures["evaluated_on"]["test"]["split_sketches"] == 160
    table = (repo / "data/eval/table.md").read_text()
    assert "| majority oracle (floor) |" in table and "difference to clip_surgery" in table
    resolved = yaml.safe_load((repo / "params.yaml").read_text())  # as `dvc exp run -S` left it
    assert (resolved["data"]["source"], resolved["data"]["vocabulary"]) == ("friss", "synthetic")
