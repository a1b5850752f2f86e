"""Per-process entry point launched by torchrun: `torchrun --nproc-per-node N -m sketchseg.train.worker ...`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from sketchseg.errors import SketchsegError


def main(argv: list[str] | None = None) -> int:
    from sketchseg.config import load_config
    from sketchseg.train.cli import add_arguments
    from sketchseg.train.trainer import train

    parser = argparse.ArgumentParser(prog="sketchseg.train.worker")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("sketchseg").setLevel(logging.INFO)
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
