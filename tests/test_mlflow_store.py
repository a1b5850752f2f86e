"""The repository's MLflow store (./mlflow.db + ./mlartifacts) records artifact locations relative to its folder, so a
copied or moved checkout reads and writes its own artifacts (issue 21, case 5); a store an older sketchseg wrote with
absolute locations becomes relative when opened; a relative store is refused for artifacts from another folder."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from sketchseg.config import config_from_dict
from sketchseg.errors import SketchsegError
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.tracking import registry, runs, store
from tests.conftest import load_champion
from tests.test_training_tables import write_training_folder


def stored_locations(db: Path) -> list[str]:
    """Every artifact location the store's tables hold."""
    with sqlite3.connect(db) as con:
        queries = ("SELECT artifact_location FROM experiments WHERE name != 'Default'", "SELECT artifact_uri FROM runs",
                   "SELECT artifact_location FROM logged_models", "SELECT storage_location FROM model_versions")
        rows = [row for query in queries for row in con.execute(query)]
    return [row[0] for row in rows]


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def log_and_register(folder: Path, uri: str | None = None) -> tuple[str, str]:
    """A training run logged from the training folder ``folder/train`` and its checkpoint registered (the champion);
    returns (run id, model version)."""
    if not (folder / "train").is_dir():
        write_training_folder(folder / "train")
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=1)))
    checkpoint = save_checkpoint(model, folder / "train" / "models" / "optimal.pt")
    run_id = runs.log_training_run(config_from_dict({}).to_dict(), train_dir=folder / "train", uri=uri)
    reg = registry.register_checkpoint(checkpoint, run_id=run_id, test_miou=0.3, uri=uri)
    return run_id, reg.version


@pytest.mark.slow  # registers models: seconds each
def test_a_copied_checkout_reads_and_writes_its_own_artifacts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original, copy = tmp_path / "checkout", tmp_path / "copy"
    original.mkdir()
    monkeypatch.chdir(original)
    first_run, _ = log_and_register(original)
    locations = stored_locations(original / "mlflow.db")
    assert locations[0] == "mlartifacts/sketchseg" and all(loc.startswith("mlartifacts/sketchseg/") for loc in
                                                           locations[1:]), locations  # fmt: skip
    assert (original / "mlartifacts" / "sketchseg" / first_run / "artifacts" / "train" / "history.json").is_file()

    shutil.copytree(original, copy)
    away = original.rename(tmp_path / "original-elsewhere")  # the copy must need nothing from there
    before = files(away)
    monkeypatch.chdir(copy)
    assert load_champion().metadata.run_id == first_run  # the registered model, from the copy's files
    client = store.client_for()
    local = Path(client.download_artifacts(first_run, "train/history.json", str(tmp_path / "download")))
    assert local.read_text() == (copy / "train" / "history.json").read_text()
    second_run, version = log_and_register(copy)
    assert version == "2"
    assert (copy / "mlartifacts" / "sketchseg" / second_run / "artifacts" / "train" / "history.json").is_file()
    assert files(away) == before and not original.exists()  # nothing written to the original or its old place


@pytest.mark.slow  # registers models: seconds each
def test_an_older_absolute_store_becomes_relative_when_opened_in_its_folder(tmp_path: Path, monkeypatch) -> None:
    """A store as sketchseg wrote it before (absolute file:// locations under its mlartifacts/), moved with its
    artifacts: opened in its new folder, every location names the new folder's files."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    old, moved = tmp_path / "old", tmp_path / "moved"
    old.mkdir()
    uri = f"sqlite:///{old / 'mlflow.db'}"  # opened from another folder: absolute locations, as before
    run_id, _ = log_and_register(old, uri)
    assert all(loc.startswith((f"file://{old}/mlartifacts/", f"{old}/mlartifacts/"))
               for loc in stored_locations(old / "mlflow.db")), stored_locations(old / "mlflow.db")  # fmt: skip
    shutil.move(old, moved)
    monkeypatch.chdir(moved)
    client = store.client_for()
    assert all(loc.startswith("mlartifacts/sketchseg") for loc in stored_locations(moved / "mlflow.db"))
    assert load_champion().metadata.run_id == run_id
    local = Path(client.download_artifacts(run_id, "train/history.json", str(tmp_path / "download")))
    assert local.is_file()
    new_run = runs.log_training_run({}, train_dir=moved / "train")
    assert (moved / "mlartifacts" / "sketchseg" / new_run / "artifacts" / "train" / "history.json").is_file()
    assert not old.exists()


def test_a_relative_store_is_refused_for_artifacts_from_another_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    client = store.client_for()
    store.ensure_experiment(client, "sketchseg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{repo / 'mlflow.db'}"
    write_training_folder(tmp_path / "train")
    assert store.client_for(uri).get_experiment_by_name("sketchseg") is not None  # reading what it records is fine
    with pytest.raises(SketchsegError, match=rf"mlflow.db: this MLflow store records its artifact locations relative "
                                             rf"to its folder {repo}.*run it from {repo} \(cd {repo}\)"):  # fmt: skip
        runs.log_training_run({}, train_dir=tmp_path / "train", uri=uri)
    assert not (elsewhere / "mlartifacts").exists()
