"""`sketchseg data stats`: counts, categories per sketch, category frequencies and a contact sheet of an FSCOCO-Seg
directory (:mod:`sketchseg.data.stats`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sketchseg.data.stats import compute_stats, contact_sheet, format_stats
from sketchseg.errors import InputError

HELP = "print split sizes, categories per sketch and category frequencies; write a contact sheet of sketches"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, required=True, help="FSCOCO-Seg directory (train/, val/, test/ ...)")
    parser.add_argument("--out", type=Path, default=None, help="contact sheet PNG of sample val/test sketches")
    parser.add_argument("--n", type=int, default=16, help="number of sketches on the contact sheet")
    parser.add_argument("--seed", type=int, default=0, help="which sketches are sampled for the sheet")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise InputError(f"--n must be at least 1, got {args.n}")
    stats, records = compute_stats(args.root)
    if args.out is not None:
        shown = contact_sheet(records.get("val", []) + records.get("test", []), args.out, args.n, args.seed)
        stats["contact_sheet"] = {"path": str(args.out), "ids": shown}
    if args.json:
        print(json.dumps(stats, indent=1))
    else:
        print(format_stats(stats))
        if args.out is not None:
            print(f"contact sheet: {args.out} ({len(stats['contact_sheet']['ids'])} sketches)")
    return 0
