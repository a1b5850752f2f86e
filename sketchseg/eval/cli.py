"""`sketchseg evaluate`: baselines and both checkpoints on val and test, τ calibration, metrics and plots."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HELP = "evaluate clip, clip_surgery and the trained checkpoints (optimal, last) on val and test"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    trained = p.add_mutually_exclusive_group()
    trained.add_argument("--train-dir", type=Path, default=None, help="training output folder (default: train.out)")
    trained.add_argument("--checkpoint", type=Path, default=None,
                         help="evaluate this checkpoint (sketchseg .pt or the authors' .pth) as both optimal and last "
                              "instead of a training's; written as a sketchseg checkpoint to OUT/checkpoint/models/, "
                              "where its τ is calibrated")  # fmt: skip
    p.add_argument("--foundation", type=Path, default=None, help="foundation CLIP folder for the baselines")
    p.add_argument("--shards", type=Path, default=None, help="shards folder (default: data.shards)")
    p.add_argument("--prepared", type=Path, default=None, help="prepare-stage folder (default: data.prepared)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: eval.out)")


def stage_checkpoint(checkpoint: Path, folder: Path) -> Path:
    """A training-like folder whose ``models/optimal.pt`` and ``models/last.pt`` are ``checkpoint`` (converted when
    it is the authors' file), for :func:`~sketchseg.eval.report.run_report`; returns ``folder``."""
    from sketchseg.model.checkpoint import load_model, save_checkpoint

    model = load_model(checkpoint)
    optimal = save_checkpoint(model, folder / "models" / "optimal.pt", meta=getattr(model, "checkpoint_meta", {}))
    shutil.copyfile(optimal, folder / "models" / "last.pt")
    return folder


def run(args: argparse.Namespace) -> int:
    from sketchseg.config import load_config
    from sketchseg.eval.report import format_table, run_report

    cfg = load_config(args.params, args.set)
    out = args.out or cfg.eval.out
    train_dir = args.train_dir or cfg.train.out
    if args.checkpoint is not None:
        train_dir = stage_checkpoint(args.checkpoint, Path(out) / "checkpoint")
    report = run_report(
        cfg,
        train_dir=train_dir,
        out=out,
        shards=args.shards or cfg.data.shards,
        foundation=args.foundation,
        prepared=args.prepared or cfg.data.prepared,
    )
    print(format_table(report["figures"]))
    return 0
