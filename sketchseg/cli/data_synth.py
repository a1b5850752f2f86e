"""`sketchseg data synth`: write a synthetic scene-sketch dataset in the FSCOCO-Seg layout."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sketchseg.data.synth.shapes import CATEGORY_NAMES, DEFAULT_UNSEEN
from sketchseg.data.synth.writer import generate

HELP = "generate synthetic freehand scene sketches in the FSCOCO-Seg layout (plus isolated objects)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output directory (replaced atomically)")
    parser.add_argument("--participants", type=int, default=100, help="number of participants (drawing styles)")
    parser.add_argument("--per-participant", type=int, default=100, help="scene sketches per participant")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed and sizes = same bytes)")
    parser.add_argument("--objects-per-category", type=int, default=200,
                        help="isolated single-object sketches per category (objects/ part)")
    parser.add_argument("--test-participants", type=int, default=5,
                        help="participants whose sketches all go to test")
    parser.add_argument("--val-per-participant", type=int, default=5,
                        help="random sketches of every other participant that go to validation")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (output does not depend on it)")
    parser.add_argument("--unseen", default=",".join(DEFAULT_UNSEEN),
                        help=f"comma-separated categories kept out of train (choose among {', '.join(CATEGORY_NAMES)};"
                        " empty for none)")
    parser.add_argument("--people-variants", action="store_true",
                        help="also draw the object variants people use (ponds, rounded mountains, tall buildings,"
                        " canoes, big flowers ...), mixed with the classic ones; recorded in synth.json")


def run(args: argparse.Namespace) -> int:
    unseen = [c.strip() for c in args.unseen.split(",") if c.strip()]
    start = time.perf_counter()
    meta = generate(
        args.out,
        participants=args.participants,
        per_participant=args.per_participant,
        seed=args.seed,
        objects_per_category=args.objects_per_category,
        test_participants=args.test_participants,
        val_per_participant=args.val_per_participant,
        workers=args.workers,
        unseen=unseen,
        people_variants=args.people_variants,
    )
    summary = {
        "out": str(args.out),
        "sizes": meta["sizes"],
        "unseen_categories": meta["unseen_categories"],
        "people_variants": bool(meta.get("people_variants", False)),
        "seconds": round(time.perf_counter() - start, 2),
    }
    print(json.dumps(summary))
    return 0
