"""`sketchseg stage NAME`: run one stage of the DVC pipeline (:mod:`sketchseg.pipeline`) from params.yaml and
``-S key=value`` overrides, then record its time in data/timings/NAME.json."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sketchseg.config import load_config
from sketchseg.pipeline import STAGES, clear_leftovers, stage_outputs, write_timing

HELP = f"run one stage of the DVC pipeline ({', '.join(STAGES)}) from params.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument(
        "-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter (as train -S)"
    )


def run(args: argparse.Namespace) -> int:
    from sketchseg.processes import die_with_parent, exit_on_sigterm

    exit_on_sigterm()
    die_with_parent()  # `dvc repro` killed: this stage ends too, and the rerun finds no one writing its outputs
    cfg = load_config(args.params, args.set)
    clear_leftovers(stage_outputs(cfg, args.stage))
    started, t0 = time.time(), time.perf_counter()
    details = STAGES[args.stage].run(cfg, args.params, list(args.set))
    write_timing(args.stage, started, time.perf_counter() - t0, details)
    return 0
