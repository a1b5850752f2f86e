"""`sketchseg foundation`: build the foundation CLIP (pretrained open_clip weights, or trained here offline)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "build the foundation CLIP: open_clip pretrained weights, or a small CLIP trained on synthetic sketches"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    p.add_argument("--data", type=Path, default=None, help="synthetic dataset (default: the pipeline's data/synth)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: foundation.out)")


def run(args: argparse.Namespace) -> int:
    from sketchseg.config import load_config
    from sketchseg.foundation import build_foundation
    from sketchseg.pipeline import SYNTH_DIR

    cfg = load_config(args.params, args.set)
    report = build_foundation(cfg, data_root=args.data or SYNTH_DIR, out=args.out or Path(cfg.foundation.out))
    print(json.dumps(report, indent=2))
    return 0
