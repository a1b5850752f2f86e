"""`sketchseg evaluate`: baselines and both checkpoints on val and test, τ calibration, metrics and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate clip, clip_surgery and the trained checkpoints (optimal, last) on val and test"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    p.add_argument("--train-dir", type=Path, default=None, help="training output folder (default: train.out)")
    p.add_argument("--foundation", type=Path, default=None, help="foundation CLIP folder for the baselines")
    p.add_argument("--shards", type=Path, default=None, help="shards folder (default: data.shards)")
    p.add_argument("--prepared", type=Path, default=None, help="prepare-stage folder (default: data.prepared)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: eval.out)")


def run(args: argparse.Namespace) -> int:
    from sketchseg.config import load_config
    from sketchseg.eval.report import format_table, run_report

    cfg = load_config(args.params, args.set)
    report = run_report(
        cfg,
        train_dir=args.train_dir or cfg.train.out,
        out=args.out or cfg.eval.out,
        shards=args.shards or cfg.data.shards,
        foundation=args.foundation,
        prepared=args.prepared or cfg.data.prepared,
    )
    print(format_table(report["figures"]))
    return 0
