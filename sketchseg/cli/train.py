"""`sketchseg train`: run the two-level training, in this process or under torchrun with N processes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "train the sketch encoder (two-level, DDP under torchrun when --nproc > 1)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="parameters file (default params.yaml)")
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    p.add_argument("--foundation", type=Path, default=None,
                   help="foundation CLIP folder (open_clip local-dir; default: foundation.out when it holds one, "
                        "else model.backbone)")  # fmt: skip
    p.add_argument("--shards", type=Path, default=None, help="shards folder (default: data.shards)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: train.out)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--init-checkpoint", type=Path, default=None,
                   help="start from this checkpoint (sketchseg .pt or the authors' .pth; train.init_checkpoint)")
    p.add_argument("--nproc", type=int, default=None, help="processes (default: train.nproc; 0 = GPUs or 1)")


def run(args: argparse.Namespace) -> int:
    from sketchseg.train.launch import launch

    overrides = list(args.set)
    if args.init_checkpoint is not None:
        overrides.append(f"train.init_checkpoint={json.dumps(str(args.init_checkpoint))}")  # a YAML string
    summary = launch(
        args.params,
        overrides,
        nproc=args.nproc,
        foundation=args.foundation,
        shards=args.shards,
        out=args.out,
        resume=args.resume,
    )
    print(json.dumps(summary, indent=2))
    return 0
