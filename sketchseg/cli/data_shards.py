"""`sketchseg data shards`: write webdataset shards of an FSCOCO-Seg dataset (:mod:`sketchseg.data.shards`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchseg.data.shards import build_shards

HELP = "write webdataset shards (train/val/test) from an FSCOCO-Seg layout dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, required=True, metavar="DATA_ROOT", help="dataset root (FSCOCO-Seg layout, docs/data.md)"
    )
    parser.add_argument(
        "--splits",
        type=Path,
        default=None,
        metavar="SPLITS_JSON",
        help="splits JSON (from `sketchseg data prepare`): keep only the ids it lists per split; sketches it "
        "does not list may be unreadable (they are skipped), listed ones must read",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="OUTDIR", help="output directory (replaced as a whole)"
    )
    parser.add_argument(
        "--samples-per-shard", type=int, default=1000, metavar="N", help="target samples per shard (default 1000)"
    )
    parser.add_argument(
        "--min-shards",
        type=int,
        default=2,
        metavar="N",
        help="at least this many shards per split, i.e. the most DataLoader workers a split can feed (default 2)",
    )
    parser.add_argument(
        "--max-categories",
        type=int,
        default=3,
        metavar="N",
        help="categories kept per caption (0 = no limit; default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample order across shards (default 0)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    summary = build_shards(args.root, out, splits=args.splits, samples_per_shard=args.samples_per_shard,
                           min_shards=args.min_shards, max_categories=args.max_categories, seed=args.seed)  # fmt: skip
    for line in summary:
        print(line)
    print(f"shards written to {out}")
    return 0
