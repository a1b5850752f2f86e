"""`sketchseg evaluate` only reads the training folder and writes only its output folder (issue 21, case 2): the
issue's `sketchseg evaluate -S eval.max_sketches=5 --out SOMEWHERE` on a checkout where the pipeline ran leaves
data/train (models, calibration) and data/eval byte for byte as they were; the calibrated copies of the models go to
OUT; without --out the output folder is outputs/evaluate, not the pipeline's data/eval; an evaluation that fails
leaves OUT as it was."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sketchseg.cli import main
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.segmenter import Segmenter
from tests.conftest import REPO, read_checkpoint


def digests(*folders: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in sorted(f.rglob("*")) if p.is_file()
    }


@pytest.fixture
def checkout(tiny_data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder as `make pipeline` leaves it, in miniature: params.yaml, data/train with two trained models
    calibrated at τ 0.73, data/eval with the pipeline's report."""
    params = {
        "data": {"shards": str(tiny_data["shards"]), "prepared": str(tiny_data["prepared"])},
        "foundation": {"out": "data/foundation"},
        "model": {"backbone": {"name": "sketchseg-test", "seed": 3}},
        "train": {"threads": 1},
        "eval": {"baselines": [], "overlays": 0, "grounding": False, "tau_step": 0.05},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    models = tmp_path / "data" / "train" / "models"
    for name, seed in (("optimal", 3), ("last", 4)):
        model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=seed)))
        model.threshold.set_tau(0.73)
        save_checkpoint(model, models / f"{name}.pt", meta={"epoch": seed, "calibrated_tau": 0.73})
    (tmp_path / "data" / "train" / "calibration.json").write_text('{"tau": 0.73}\n')
    (tmp_path / "data" / "eval").mkdir(parents=True)
    (tmp_path / "data" / "eval" / "metrics.json").write_text('{"tau": 0.73}\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_evaluate_reads_the_training_folder_and_writes_only_out(checkout: Path) -> None:
    before = digests(checkout / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "sketchseg", "evaluate", "-S", "eval.max_sketches=5", "--out", "somewhere"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert digests(checkout / "data") == before  # models, calibration and the pipeline's report untouched
    out = checkout / "somewhere"
    calibration = json.loads((out / "calibration.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert report["figures"]["tau"] == calibration["tau"] and report["evaluated_on"]["test"]["sketches"] == 5
    for name in ("optimal", "last"):
        copy = read_checkpoint(out / "models" / f"{name}.pt")
        assert copy["meta"]["calibrated_tau"] == calibration["tau"]
        assert copy["meta"]["epoch"] == read_checkpoint(checkout / "data/train/models" / f"{name}.pt")["meta"]["epoch"]
    assert f"calibrated into {Path('somewhere/models/optimal.pt')}" in res.stdout
    # `--threshold auto` on the pipeline's model still takes its own calibrated τ
    assert Segmenter.from_checkpoint(checkout / "data/train/models/optimal.pt").model.threshold.tau().item() == (
        pytest.approx(0.73, abs=1e-6)
    )


def test_evaluate_defaults_to_its_own_folder_and_leaves_out_whole_on_failure(checkout: Path) -> None:
    before = digests(checkout / "data")
    assert main(["evaluate", "-S", "eval.max_sketches=3"]) == 0
    assert digests(checkout / "data") == before  # not data/eval: outputs/evaluate
    out = checkout / "outputs" / "evaluate"
    assert {"report.json", "metrics.json", "table.md", "calibration.json"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("kept")
    evaluated = digests(out)
    assert main(["evaluate", "-S", "eval.max_sketches=3", "--shards", str(checkout / "no-shards")]) == 2
    assert digests(out) == evaluated  # the failed evaluation left the folder as it was
    assert sorted(p.name for p in out.parent.iterdir()) == ["evaluate"]  # no temporary folder left
    assert main(["evaluate", "-S", "eval.max_sketches=3", "--out", "data"]) == 2  # would hold the training folder
    assert main(["evaluate", "-S", "eval.max_sketches=3", "--out", "data/train/eval"]) == 2
    assert digests(checkout / "data") == before
