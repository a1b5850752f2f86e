"""A training's resumable state: what ``checkpoints/last.pt`` (and ``epoch-XXX.pt``) hold, and whether a run may
continue from it.

A state file holds the trainable parameters, the optimiser, the scheduler, the RNG states, the :class:`Progress`
(epochs and steps done, the history, the best validation mIoU, the untrained model's), the run's config and the
foundation's digest. The same state gives the same bytes, resumed or not (:func:`canonical`), and a resumed run
repeats the uninterrupted one exactly: a run may change only where it writes, its threads and loader workers and how
many epochs it runs (:data:`RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import json
import logging
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchseg.config import Config, flatten
from sketchseg.errors import CheckpointError
from sketchseg.io_utils import atomic_file, save_torch
from sketchseg.train import distributed as dist_utils

log = logging.getLogger(__name__)

# What a resumed run may change: where it writes, the threads and loader workers it uses, and how many epochs it runs.
RESUMABLE_CHANGES = frozenset({"train.out", "train.threads", "train.num_workers", "train.epochs"})


@dataclass
class Progress:
    """How far a training got: ``epoch`` epochs and ``step`` optimiser steps done, one ``history`` record per epoch,
    the ``best`` validation mIoU so far (-1 before any) and the untrained model's (``initial_val``)."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -1.0
    initial_val: float | None = None


def rng_state() -> dict[str, Any]:
    """The states of every random generator a training draws from (torch, CUDA, NumPy, Python)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def canonical(obj: Any) -> Any:
    """``obj`` with its containers rebuilt and every string interned. Pickle writes one copy of an object and refers
    back to it, so a checkpoint's bytes depend on which equal strings happen to be the same object; the strings a
    resumed run read back from its checkpoint (optimiser keys, history) are not the ones an uninterrupted run has."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        return {canonical(k): canonical(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(canonical(v) for v in obj)
    return obj


def state_dict(
    params: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
    cfg: Config,
    foundation_sha: str | None,
) -> dict[str, Any]:
    """The state a training continues from after ``progress.epoch`` epochs."""
    return {
        "trainable": {n: p.detach().cpu() for n, p in params.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "epoch": progress.epoch - 1,  # the last epoch done, 0-based
        "step": progress.step,
        "history": progress.history,
        "best": progress.best,
        "initial_val_miou": progress.initial_val,
        "config": cfg.to_dict(),
        "foundation_sha1": foundation_sha,
    }


def save_state(state: dict[str, Any], *paths: Path) -> None:
    """Write ``state`` to each of ``paths`` atomically, the same bytes for the same state (:func:`canonical`)."""
    for path in paths:
        save_torch(canonical(state), path)


def read_resume_state(path: Path) -> dict[str, Any] | None:
    """The checkpoint ``path`` a resumed run continues from (None when there is none), read by global rank 0 and sent
    to every other rank: on several nodes only rank 0's disk holds it."""
    state = None
    if dist_utils.is_main_process() and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
    return dist_utils.broadcast_object(state)


def load_state(
    state: dict[str, Any],
    params: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rank: int,
    where: Path,
) -> Progress:
    """Put ``state`` (read from ``where``) back into the parameters, optimiser, scheduler and generators; returns its
    progress."""
    missing = set(params) - set(state["trainable"])
    if missing:
        raise CheckpointError(f"{where}: does not hold parameters {sorted(missing)[:3]}...; config changed?")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state["trainable"][name])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"][rank] if isinstance(state["rng"], list) else state["rng"])
    return Progress(epoch=state["epoch"] + 1, step=state["step"], history=state["history"], best=state["best"],
                    initial_val=state.get("initial_val_miou") if state["history"] else None)  # fmt: skip


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Parameters of the ``model`` and ``train`` sections whose value differs: {"train.lr": (saved, current)}."""
    old, new = ({k: tree.get(k, {}) for k in ("model", "train")} for tree in (saved, current))
    old, new = ({k: list(v) if isinstance(v, tuple) else v for k, v in flatten(t).items()} for t in (old, new))
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}


def check_resumable(state: dict[str, Any], cfg: Config, foundation_sha: str | None, where: Path) -> None:
    """Raise when the checkpoint ``state`` was written by a run this one cannot continue (config or foundation)."""
    fix = f"restore them, or train afresh: drop --resume or pick another train.out than {where.parent.parent}"
    if "config" not in state:
        log.warning("%s: written before configs were stored in checkpoints; its parameters are not checked", where)
    else:
        changes = config_changes(state["config"], cfg.to_dict())
        fatal = {k: v for k, v in changes.items() if k not in RESUMABLE_CHANGES}
        if fatal:
            listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in fatal.items())
            raise CheckpointError(f"{where}: cannot resume, parameters changed since the checkpoint ({listed}); {fix}")
        if "train.epochs" in changes:
            old, new = changes["train.epochs"]
            log.warning("train.epochs changed %s -> %s: the learning-rate schedule is rescaled from here on", old, new)
    saved_sha = state.get("foundation_sha1", foundation_sha)
    if saved_sha != foundation_sha:
        raise CheckpointError(f"{where}: cannot resume, the foundation model differs from the checkpoint's; {fix}")


def keep_steps_until(steps_log: Path, step: int) -> None:
    """Drop the rows after optimiser step ``step`` from ``steps.jsonl``: those of an epoch that was logged but not
    checkpointed before an interruption, which the resumed run logs again."""
    if not steps_log.is_file():
        return
    rows = [line for line in steps_log.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line)["step"] <= step]
    if len(kept) < len(rows):
        with atomic_file(steps_log) as fh:
            fh.write("".join(line + "\n" for line in kept))
