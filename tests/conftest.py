"""Shared test fixtures: the real FS-COCO demo sketches and a runner for the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = Path(__file__).resolve().parent / "fixtures" / "fscoco_demo"  # in the repository (Apache-2.0, README there)
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures"
REQUIRE_EXTERNAL = "SKETCHSEG_REQUIRE_EXTERNAL"  # "1" (.ci/run): a missing external set fails its tests
# How to get the external sets (GPL-3.0, not shipped): the CAVT authors' repository holds both.
WHERE_FROM = {
    "cbsc": "CBSC: folder datasets/data/cbsc of github.com/aleynakutuk6/CAVT",
    "friss": "FrISS: folder datasets/data/friss of github.com/aleynakutuk6/CAVT (train/ and val/)",
}


def read_checkpoint(path: str | Path) -> dict:
    """A sketchseg checkpoint file's payload (config, weights, meta, provenance), as save_checkpoint wrote it."""
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=False)
    assert isinstance(payload, dict) and payload.get("format") == "sketchseg-checkpoint", path
    return payload


def encode_image_file(path: str | Path) -> str:
    """An image file's bytes as base64: the ``image`` of a request or of the pyfunc model's input."""
    import base64

    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def load_champion(uri: str | None = None):
    """``models:/sketchseg@champion`` loaded as a pyfunc model from the store ``uri`` names (default: the
    environment's), as `mlflow models serve` loads it."""
    import mlflow.pyfunc

    from sketchseg.tracking.store import fluent_store, tracking_uri

    with fluent_store(tracking_uri(uri)):
        return mlflow.pyfunc.load_model("models:/sketchseg@champion")


def fixtures_root() -> Path:
    """The folder that holds the external fixture sets (``cbsc/``, ``friss/``): ``$SKETCHSEG_FIXTURES``, else
    ../shared/fixtures beside the repository. A value naming a ``fscoco_demo`` folder (the older usage) means its
    parent."""
    value = os.environ.get("SKETCHSEG_FIXTURES")
    if not value:
        return DEFAULT_FIXTURES
    path = Path(value).expanduser()
    return path.parent if (path / "sketch_1.png").is_file() else path


def fixture_set(name: str, marker: str) -> Path:
    """``fixtures_root() / name``: an external set of real sketches (CBSC, FrISS) that the repository does not ship
    (GPL-3.0). Missing, its tests are skipped with where to get it, or fail when ``SKETCHSEG_REQUIRE_EXTERNAL=1``
    (CI sets it: there a missing set is an error, not a skip)."""
    folder = fixtures_root() / name
    if (folder / marker).exists():
        return folder
    message = (
        f"{name} fixtures not found: expected {folder / marker}. {WHERE_FROM.get(name, name)}; put a copy in "
        f"{DEFAULT_FIXTURES} or set SKETCHSEG_FIXTURES to the folder that holds {name}/ "
        "(e.g. SKETCHSEG_FIXTURES=/path/to/fixtures)"
    )
    if os.environ.get(REQUIRE_EXTERNAL) == "1":
        pytest.fail(f"{message} [{REQUIRE_EXTERNAL}=1: required]", pytrace=False)
    pytest.skip(message)


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
if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several workers on as many cores: one thread each, as in CI
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# The longest files, longest first (measured: the paper rehearsal 8 min, the reproducibility runs 4 min, ...).
LONGEST = ("test_paper_setting.py", "test_reproducible.py", "test_dvc.py", "test_flows.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first, then the other files with slow (end-to-end) tests, then the rest, each group in its
    usual order: with the files spread over workers (`make test`: pytest-xdist, --dist loadfile), the long ones
    start at once, on different workers, and the workers end together."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.path.name in LONGEST:
            return 0, LONGEST.index(item.path.name)
        return (1 if item.path in slow_files else 2), 0

    items.sort(key=rank)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The four FS-COCO demo sketches, shipped in the repository (tests/fixtures/fscoco_demo)."""
    return DEMO


@pytest.fixture(scope="session")
def friss_dir() -> Path:
    """The FrISS vector scene sketches with stroke labels (external: fixtures/friss, train/ and val/)."""
    return fixture_set("friss", "friss_to_qd_mappings.json")


@pytest.fixture(scope="session")
def cbsc_dir() -> Path:
    """The CBSC vector scene sketches with stroke labels (external: fixtures/cbsc, test/, validation/, mappings)."""
    return fixture_set("cbsc", "cbsc_to_qd_mappings.json")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m sketchseg ARGS` in a subprocess, as a user would."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sketchseg", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic dataset, prepared and sharded through the real commands (in this process: no interpreter
    start-ups): {root, prepared, shards}."""
    from sketchseg.cli import main

    base = tmp_path_factory.mktemp("tiny_data")
    root, prepared, shards = base / "synthetic", base / "prepared", base / "shards"
    steps = [
        ["data", "synth", "--out", str(root), "--participants", "8", "--per-participant", "12", "--seed", "0",
         "--objects-per-category", "2"],
        ["data", "prepare", "--root", str(root), "--out", str(prepared)],
        ["data", "shards", "--root", str(root), "--splits", str(prepared / "splits.json"), "--out", str(shards)],
    ]  # fmt: skip
    for args in steps:
        assert main(args) == 0, args
    return {"root": root, "prepared": prepared, "shards": shards}
