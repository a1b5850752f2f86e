"""Tables derived from a training folder: the checkpoint selection (optimal vs last epoch) and the DVC plot tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sketchseg.errors import CheckpointError
from sketchseg.eval import selection, tables


def test_select_checkpoint_reports_best_epoch_vs_last() -> None:
    history = [
        {"epoch": 1, "step": 5, "train_loss": 2.0, "tau": 0.70, "val_miou": 0.20},
        {"epoch": 2, "step": 10, "train_loss": 1.5, "tau": 0.71, "val_miou": 0.50},
        {"epoch": 3, "step": 15, "train_loss": 1.2, "tau": 0.72, "val_miou": 0.50},
        {"epoch": 4, "step": 20, "train_loss": 1.1, "tau": 0.73, "val_miou": 0.30},
    ]
    sel = selection.select_checkpoint(history)
    assert sel["optimal"]["epoch"] == 2 and sel["optimal"]["step"] == 10  # the first of equal scores
    assert sel["last"]["epoch"] == 4 and sel["last"]["val_miou"] == 0.30
    assert sel["chosen"] == "optimal" and sel["same"] is False
    assert selection.select_checkpoint(history[:2])["same"] is True
    with pytest.raises(CheckpointError, match="no epoch finished"):
        selection.select_checkpoint([])


def write_training_folder(train_dir: Path) -> None:
    train_dir.mkdir(parents=True)
    history = [
        {"epoch": 1, "step": 2, "train_loss": 1.5, "tau": 0.71, "val_miou": 0.2, "val_acc_p": 0.4, "seconds": 3.0},
        {"epoch": 2, "step": 3, "train_loss": 1.25, "tau": 0.72, "val_miou": 0.25, "val_acc_p": 0.5, "seconds": 2.5},
    ]
    (train_dir / "history.json").write_text(json.dumps(history))
    steps = [
        {"step": 1, "epoch": 1, "lr": 0.01, "loss": 1.6, "tau": 0.705},
        {"step": 2, "epoch": 1, "lr": 0.005, "loss": 1.4, "tau": 0.71},
        {"step": 3, "epoch": 2, "lr": 0.001, "loss": 1.25},  # a row without τ is skipped in the τ table
    ]
    (train_dir / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps) + "\n")
    (train_dir / "train_metrics.json").write_text(json.dumps({"epochs": 2}))


def test_plot_tables_from_a_training_folder(tmp_path: Path) -> None:
    write_training_folder(tmp_path / "train")
    paths = tables.write_plot_tables(tmp_path / "train", tmp_path / "eval")
    assert json.loads(paths["train_history"].read_text()) == [
        {"epoch": 1, "train_loss": 1.5, "val_miou": 0.2, "tau": 0.71},
        {"epoch": 2, "train_loss": 1.25, "val_miou": 0.25, "tau": 0.72},
    ]
    assert json.loads(paths["tau_steps"].read_text()) == [{"step": 1, "tau": 0.705}, {"step": 2, "tau": 0.71}]
    (tmp_path / "train" / "steps.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(CheckpointError, match="steps.jsonl:2"):
        tables.read_steps(tmp_path / "train")
    with pytest.raises(CheckpointError, match="history.json: missing"):
        selection.read_history(tmp_path / "nothing")
