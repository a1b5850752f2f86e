"""Launching the two-level training: in this process, or under torchrun with N processes
(:mod:`sketchseg.train.worker`); the command is :mod:`sketchseg.cli.train`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sketchseg.errors import ConfigError


def resolve_nproc(n: int) -> int:
    """0 -> one process per GPU, or 1 without GPU."""
    import torch

    if n < 0:
        raise ConfigError(f"nproc={n}: must be >= 0")
    if n == 0:
        return max(1, torch.cuda.device_count())
    return n


def worker_args(
    params: Path,
    overrides: list[str],
    foundation: Path | None,
    shards: Path | None,
    out: Path | None,
    resume: bool,
) -> list[str]:
    """Command-line arguments of :mod:`sketchseg.train.worker` for these settings."""
    args = ["--params", str(params)]
    for item in overrides:
        args += ["-S", item]
    for name, value in (("foundation", foundation), ("shards", shards), ("out", out)):
        if value is not None:
            args += [f"--{name}", str(value)]
    if resume:
        args.append("--resume")
    return args


def launch(
    params: Path,
    overrides: list[str] | None = None,
    *,
    nproc: int | None = None,
    foundation: Path | None = None,
    shards: Path | None = None,
    out: Path | None = None,
    resume: bool = False,
    work: Path | None = None,
) -> dict:
    """Run the training: in this process when one process is asked for, else under torchrun with ``nproc``
    processes (``None``: ``train.nproc``; 0: one per GPU, or 1 on CPU). Returns the training summary
    (``train_metrics.json``); raises SketchsegError if the processes fail.

    With ``work``, the training runs in that folder, continuing from its last checkpoint when it holds one, and the
    finished folder is then copied to ``out``: the DVC train stage's resumable state, which outlives ``out`` (DVC
    deletes a stage's outputs before running it)."""
    from sketchseg.config import load_config
    from sketchseg.errors import SketchsegError

    overrides = list(overrides or [])
    cfg = load_config(params, overrides)
    n = resolve_nproc(cfg.train.nproc if nproc is None else nproc)
    out_dir = Path(out or cfg.train.out)
    run_dir = out_dir if work is None else Path(work)
    if work is not None:
        resume = resume or (run_dir / "checkpoints" / "last.pt").is_file()
    from sketchseg.config import resolve_foundation

    foundation = resolve_foundation(cfg, foundation)
    if n == 1 and "WORLD_SIZE" not in os.environ:
        from sketchseg.train.trainer import train

        summary = train(cfg, out=run_dir, foundation=foundation, resume=resume, shards=shards)
    else:
        from sketchseg.processes import die_with_parent

        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
            "-m", "sketchseg.train.worker", *worker_args(params, overrides, foundation, shards, run_dir, resume),
        ]  # fmt: skip
        code = subprocess.call(cmd, preexec_fn=die_with_parent)  # torchrun ends its workers when it ends
        if code != 0:
            raise SketchsegError(f"training with {n} processes failed (exit code {code}); see the log above")
        summary = json.loads((run_dir / "train_metrics.json").read_text(encoding="utf-8"))
    if work is not None:
        from sketchseg.io_utils import atomic_dir

        with atomic_dir(out_dir) as tmp:
            shutil.copytree(run_dir, tmp, dirs_exist_ok=True)
    return summary
