"""Caption parsing throughput (SPEC §5): captions per second of ``parse_categories``, one core, parser built first.

The shards stage parses every caption of the dataset, so this rate bounds it (FS-COCO: 10,000 captions). The
figure once lived in a test as ``1000 captions < 2 s``; it is measured here instead.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/captions.py [--captions 1000 --repeats 3]``.
Prints JSON: captions/s per backend (the offline tagger always; NLTK's where its data is installed), the median
of the repeats, and the configuration.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

from sketchseg.data.captions import make_parser, parse_categories
from sketchseg.errors import DataError

TEMPLATES = (
    "a man is riding a horse on the beach near {i} trees and a small house",
    "two giraffes standing next to a palm tree under a cloudy sky",
    "a kite flying over the grass while a woman watches from a bench",
    "an alarm clock next to {i} teddy bears on a table",
)


def rate(parser, captions: list[str], repeats: int) -> float:
    """Median captions per second over ``repeats`` passes."""
    parse_categories(captions[0], parser=parser)  # warm caches outside the timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for caption in captions:
            parse_categories(caption, parser=parser)
        times.append(time.perf_counter() - start)
    return len(captions) / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    captions = [TEMPLATES[i % len(TEMPLATES)].format(i=i) for i in range(args.captions)]
    result: dict = {"captions": args.captions, "repeats": args.repeats, "python": platform.python_version()}
    for backend in ("offline", "nltk"):
        try:
            built = make_parser(backend)
        except DataError as exc:  # NLTK's tagger data not installed here
            result[backend] = {"skipped": str(exc)}
            continue
        result[backend] = {"backend": built.backend, "captions_per_s": round(rate(built, captions, args.repeats), 1)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
