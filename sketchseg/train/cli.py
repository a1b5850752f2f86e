"""`sketchseg train`: run the two-level training, in this process or under torchrun with N processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from sketchseg.errors import ConfigError

HELP = "train the sketch encoder (two-level, DDP under torchrun when --nproc > 1)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="parameters file (default params.yaml)")
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    p.add_argument("--foundation", type=Path, default=None, help="foundation CLIP folder (open_clip local-dir)")
    p.add_argument("--shards", type=Path, default=None, help="shards folder (default: data.shards)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: train.out)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--nproc", type=int, default=None, help="processes (default: train.nproc; 0 = GPUs or 1)")


def resolve_nproc(n: int) -> int:
    """0 -> one process per GPU, or 1 without GPU."""
    import torch

    if n < 0:
        raise ConfigError(f"nproc={n}: must be >= 0")
    if n == 0:
        return max(1, torch.cuda.device_count())
    return n


def worker_args(args: argparse.Namespace) -> list[str]:
    out = ["--params", str(args.params)]
    for item in args.set:
        out += ["-S", item]
    for name in ("foundation", "shards", "out"):
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name}", str(value)]
    if args.resume:
        out.append("--resume")
    return out


def run(args: argparse.Namespace) -> int:
    from sketchseg.config import load_config

    cfg = load_config(args.params, args.set)
    nproc = resolve_nproc(cfg.train.nproc if args.nproc is None else args.nproc)
    if nproc == 1 and "WORLD_SIZE" not in os.environ:
        from sketchseg.train.trainer import train

        summary = train(cfg, out=args.out, foundation=args.foundation, resume=args.resume, shards=args.shards)
        print(json.dumps(summary, indent=2))
        return 0
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "sketchseg.train.worker", *worker_args(args),
    ]  # fmt: skip
    return subprocess.call(cmd)
