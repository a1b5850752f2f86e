"""Per-process entry point launched by torchrun, on one node or several:

    torchrun --nproc-per-node N -m sketchseg.train.worker --params params.yaml
    torchrun --nnodes 2 --node-rank R --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT \
        -m sketchseg.train.worker --params params.yaml
    torchrun --nnodes 2 --node-rank R --nproc-per-node N --master-addr HOST --master-port PORT \
        -m sketchseg.train.worker --params params.yaml

Ranks come from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE): the data is split by global rank, each process
uses GPU LOCAL_RANK, and only global rank 0 logs progress and writes files (README: training at scale).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from sketchseg.errors import SketchsegError


def main(argv: list[str] | None = None) -> int:
    from sketchseg.cli.train import add_arguments
    from sketchseg.config import load_config
    from sketchseg.train.trainer import train

    parser = argparse.ArgumentParser(prog="sketchseg.train.worker")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from sketchseg.processes import die_with_parent

    die_with_parent()  # torchrun killed (kill -9 included): no worker goes on alone
    main_process = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("sketchseg").setLevel(logging.INFO if main_process else logging.WARNING)
    try:
        cfg = load_config(args.params, args.set)
        summary = train(cfg, out=args.out, foundation=args.foundation, resume=args.resume, shards=args.shards)
    except SketchsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
