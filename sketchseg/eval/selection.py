"""Checkpoint selection: the paper's optimal epoch (best validation mIoU) against the last one, from a training
folder's ``history.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sketchseg.errors import CheckpointError

RECORD_KEYS = ("epoch", "step", "val_miou", "val_acc_p", "train_loss", "tau")


def read_history(train_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of ``train_dir/history.json``."""
    path = Path(train_dir) / "history.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; run the training first (sketchseg train)")
    history = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(history, list) or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise CheckpointError(f"{path}: expected a list of per-epoch records with an 'epoch' field")
    return history


def select_checkpoint(history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The paper's optimal (best validation mIoU, earliest on ties) vs last epoch.

    Returns {"optimal": record, "last": record, "chosen": "optimal", "same": bool}, records holding
    epoch, step, val_miou, val_acc_p, train_loss and tau."""
    if not history:
        raise CheckpointError("empty training history: no epoch finished, nothing to select")

    def score(r: dict[str, Any]) -> float:
        v = r.get("val_miou")
        return -math.inf if v is None else float(v)

    best = max(history, key=score)  # max keeps the first of equal scores
    last = history[-1]
    return {
        "optimal": {k: best.get(k) for k in RECORD_KEYS},
        "last": {k: last.get(k) for k in RECORD_KEYS},
        "chosen": "optimal",
        "same": best.get("epoch") == last.get("epoch"),
    }
