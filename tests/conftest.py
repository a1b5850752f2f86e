"""Shared test fixtures: the real FS-COCO demo sketches and a runner for the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("SKETCHSEG_FIXTURES", REPO.parent / "shared" / "fixtures" / "fscoco_demo"))
DEMO_CATEGORIES = {
    "sketch_1": "giraffe, zebra, grass, cloud",
    "sketch_2": "kite, tree, person",
    "sketch_3": "kite, grass, woman",
    "threshold_example": "bench, tree",
}

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES / "sketch_1.png").is_file():
        pytest.fail(f"FS-COCO demo fixtures not found in {FIXTURES}; set SKETCHSEG_FIXTURES")
    return FIXTURES


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m sketchseg ARGS` in a subprocess, as a user would."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sketchseg", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic dataset, prepared and sharded through the real commands: {root, prepared, shards}."""
    base = tmp_path_factory.mktemp("tiny_data")
    root, prepared, shards = base / "synthetic", base / "prepared", base / "shards"
    steps = [
        ["data", "synth", "--out", str(root), "--participants", "8", "--per-participant", "12", "--seed", "0",
         "--objects-per-category", "2"],
        ["data", "prepare", "--root", str(root), "--out", str(prepared)],
        ["data", "shards", "--root", str(root), "--splits", str(prepared / "splits.json"), "--out", str(shards)],
    ]  # fmt: skip
    for args in steps:
        res = run_cli(*args)
        assert res.returncode == 0, res.stderr
    return {"root": root, "prepared": prepared, "shards": shards}
