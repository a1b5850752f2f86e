"""The plot tables of a training folder (``train_history.json``, ``tau_steps.json``: the DVC plots of the loss,
validation mIoU and τ over training) and the JSON writer the pipeline's tables share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sketchseg.errors import CheckpointError
from sketchseg.eval.selection import read_history
from sketchseg.io_utils import write_json


def read_steps(train_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step records of ``train_dir/steps.jsonl`` (empty when the file is missing)."""
    path = Path(train_dir) / "steps.jsonl"
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{path}:{number}: not a JSON line ({exc})") from None
    return rows


def history_table(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows {epoch, train_loss, val_miou, tau} for the ``train_history.json`` plot."""
    return [{k: r.get(k) for k in ("epoch", "train_loss", "val_miou", "tau")} for r in history]


def tau_table(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows {step, tau} for the ``tau_steps.json`` plot (steps without a τ are skipped)."""
    return [{"step": r["step"], "tau": r["tau"]} for r in steps if r.get("tau") is not None]


def write_plot_tables(train_dir: str | Path, eval_dir: str | Path) -> dict[str, Path]:
    """Write ``train_history.json`` and ``tau_steps.json`` (the DVC plots) from a training folder into
    ``eval_dir``; returns their paths."""
    eval_dir = Path(eval_dir)
    return {
        "train_history": write_json(eval_dir / "train_history.json", history_table(read_history(train_dir))),
        "tau_steps": write_json(eval_dir / "tau_steps.json", tau_table(read_steps(train_dir))),
    }
