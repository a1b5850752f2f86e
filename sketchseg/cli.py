"""The `sketchseg` command line. Every sub-command lives in its own module, which exposes

    HELP: str
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

User-facing failures (:class:`sketchseg.errors.SketchsegError`) print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

DESCRIPTION = (
    "Open-vocabulary segmentation of freehand scene sketches: segment sketches into the categories you name, and "
    "prepare data, train, evaluate and serve the model."
)

# command path -> module implementing it
COMMANDS: dict[tuple[str, ...], str] = {
    ("segment",): "sketchseg.segment_cli",
    ("data", "synth"): "sketchseg.data.synth.cli",
    ("data", "stats"): "sketchseg.data.stats",
    ("data", "prepare"): "sketchseg.data.prepare",
    ("data", "shards"): "sketchseg.data.shards",
    ("train",): "sketchseg.train.cli",
    ("evaluate",): "sketchseg.eval.cli",
    ("foundation",): "sketchseg.foundation.cli",
    ("stage",): "sketchseg.pipeline",
    ("checkpoint", "convert"): "sketchseg.checkpoint_cli",
    ("serve",): "sketchseg.serve.cli",
}

_OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sketchseg", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for path, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):  # command not built yet
                continue
            raise
        subparsers = top
        for depth, word in enumerate(path[:-1]):
            key = " ".join(path[: depth + 1])
            if key not in groups:
                group = subparsers.add_parser(word, help=f"{word} commands")
                groups[key] = group.add_subparsers(dest=f"{word}_command", required=True, metavar="COMMAND")
            subparsers = groups[key]
        sub = subparsers.add_parser(path[-1], help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    parser = build_parser()
    args = parser.parse_args(argv)
    # Third-party libraries (open_clip logs on the root logger) stay at WARNING; sketchseg's own logger at INFO.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("sketchseg").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from sketchseg.errors import SketchsegError

    try:
        return int(args._run(args) or 0)
    except SketchsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
