"""Throughput of the synthetic generator on one core, writing files included.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/synth.py [--participants 10 --per-participant 40 ...]``.
Prints JSON: scene sketches/s and isolated objects/s (drawing + rendering + writing, one process), the end-to-end
rate of ``generate`` (split, metadata, atomic rename included) and the configuration.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from sketchseg.data.synth.writer import _make_dirs, _run_job, generate, participant_names, plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--per-participant", type=int, default=40)
    parser.add_argument("--objects-per-category", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = {
        "participants": args.participants,
        "per_participant": args.per_participant,
        "objects_per_category": args.objects_per_category,
        "seed": args.seed,
        "workers": 1,
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        root = Path(tmp) / "jobs"
        jobs, _ = plan(args.participants, args.per_participant, args.seed, args.objects_per_category,
                       test_participants=min(5, args.participants - 1),
                       val_per_participant=min(5, args.per_participant - 1), root=str(root))
        _make_dirs(root, participant_names(args.participants))  # every participant: harmless for a benchmark
        timings = {}
        for kind in ("scene", "object"):
            todo = [j for j in jobs if j.kind == kind]
            start = time.perf_counter()
            for job in todo:
                _run_job(job)
            timings[kind] = (len(todo), time.perf_counter() - start)
        start = time.perf_counter()
        meta = generate(Path(tmp) / "full", args.participants, args.per_participant, args.seed,
                        args.objects_per_category, test_participants=min(5, args.participants - 1),
                        val_per_participant=min(5, args.per_participant - 1), progress=False)
        total = time.perf_counter() - start
    n_all = sum(meta["sizes"].values())
    result = {
        "sketches_per_s": round(timings["scene"][0] / timings["scene"][1], 1),
        "objects_per_s": round(timings["object"][0] / timings["object"][1], 1),
        "generate_items_per_s": round(n_all / total, 1),
        "generate_seconds": round(total, 2),
        "sketches": timings["scene"][0],
        "objects": timings["object"][0],
        "config": config,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
