"""`sketchseg data prepare`: validate an FSCOCO-Seg directory and record its split, categories and checks
(:mod:`sketchseg.data.prepare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchseg.data.fscoco import ON_ERROR_CHOICES
from sketchseg.data.prepare import prepare, summary

HELP = "validate an FSCOCO-Seg directory; write splits.json, categories.json and checks.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, required=True, help="FSCOCO-Seg directory (train/, val/, test/, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (replaced atomically)")
    parser.add_argument(
        "--on-error",
        choices=ON_ERROR_CHOICES,
        default="raise",
        help="on a broken sketch: stop with an error (raise, default) or leave it out and count it (skip)",
    )
    parser.add_argument(
        "--max-categories", type=int, default=3, help="caption categories per train sketch used in training (3)"
    )
    parser.add_argument("--no-verify-images", action="store_true", help="do not open every sketch image")


def run(args: argparse.Namespace) -> int:
    checks = prepare(
        args.root,
        args.out,
        on_error=args.on_error,
        max_categories=args.max_categories,
        verify_images=not args.no_verify_images,
    )
    print(summary(checks, args.out))
    return 0
