"""The `sketchseg` command line. Every sub-command lives in its own module of this package, named after the
command's words (`sketchseg data shards`: :mod:`sketchseg.cli.data_shards`), which exposes

    HELP: str
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

and calls the library for the work.

User-facing failures (:class:`sketchseg.errors.SketchsegError`) print one line and exit with 2; so do unknown
options and commands (:class:`CommandParser`: the closest valid one is suggested, with the sub-command's usage).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

DESCRIPTION = (
    "Open-vocabulary segmentation of freehand scene sketches: segment sketches into the categories you name, and "
    "prepare data, train, evaluate and serve the model."
)

# the commands, in the order --help lists them; each one's module is command_module(path)
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("segment",), ("data", "synth"), ("data", "stats"), ("data", "prepare"), ("data", "shards"), ("train",),
    ("evaluate",), ("foundation",), ("stage",), ("checkpoint", "convert"), ("serve",),
)  # fmt: skip


def command_module(path: tuple[str, ...]) -> str:
    """The module of the command ``path``: ``("data", "shards")`` -> ``sketchseg.cli.data_shards``."""
    return f"{__name__}.{'_'.join(path)}"

_OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
}
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


class _Probe(Exception):
    """Raised instead of exiting while a parser only looks for the arguments it does not know."""


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose unknown options and commands are errors naming the closest valid option or command
    of the sub-command they were given to (difflib), printed with that sub-command's usage (exit code 2).

    An unknown option is reported before a missing required one (a misspelt ``--categries`` is the unknown option,
    not a missing ``--categories``); ``parse_known_args`` therefore leaves no argument unknown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._commands: argparse._SubParsersAction | None = None
        self._argv: list[str] | None = None  # what a parser without sub-commands is parsing, for error()
        self._probing = False

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction:
        self._commands = super().add_subparsers(**kwargs)
        return self._commands

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        args = sys.argv[1:] if args is None else list(args)
        if self._probing:
            return super().parse_known_args(args, namespace)
        if self._commands is not None:
            self._check_command(args)
        else:
            self._argv = args
        try:
            namespace, extras = super().parse_known_args(args, namespace)
        finally:
            self._argv = None
        if extras:
            self.error(self._unrecognized(extras))
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        if self._probing:
            raise _Probe(message)
        if self._argv is not None:  # e.g. a required option missing: a misspelling of it is the better answer
            extras = self._unknown(self._argv)
            if extras:
                message = self._unrecognized(extras)
        super().error(message)

    def _unknown(self, args: list[str]) -> list[str]:
        """The arguments of ``args`` this parser does not know, as it parses them with every argument optional
        (empty when that parse fails on something else)."""
        actions = [(a, a.required) for a in self._actions]
        groups = [(g, g.required) for g in self._mutually_exclusive_groups]
        self._probing = True
        try:
            for a, _ in actions:
                a.required = False
            for g, _ in groups:
                g.required = False
            return super().parse_known_args(args, argparse.Namespace())[1]
        except _Probe:
            return []
        finally:
            self._probing = False
            for a, required in actions:
                a.required = required
            for g, required in groups:
                g.required = required

    def _unrecognized(self, extras: list[str]) -> str:
        """The error line for arguments this parser does not know: the first option-like one with the closest
        valid option, else the first one."""
        options = [a for a in extras if a[:1] in self.prefix_chars and len(a) > 1 and not _NEGATIVE_NUMBER.match(a)]
        if not options:
            return f"unrecognized argument {extras[0]}; see {self.prog} --help"
        name = options[0].split("=", 1)[0]
        known = [s for a in self._actions for s in a.option_strings]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"see {self.prog} --help"
        return f"unrecognized argument {name}; {hint}"

    def _check_command(self, args: list[str]) -> None:
        """Exit naming the closest valid one when an option before the command word of ``args`` is unknown, or the
        command word names none of this parser's commands."""
        assert self._commands is not None
        known = [s for a in self._actions for s in a.option_strings]
        takes_value = {s for a in self._actions if a.nargs != 0 for s in a.option_strings}
        word, rest = None, iter(args)
        for arg in rest:
            if arg == "--":
                word = next(rest, None)
                break
            if arg[:1] in self.prefix_chars and len(arg) > 1:
                name = arg.split("=", 1)[0]
                if name.startswith("--") and not any(k.startswith(name) for k in known):  # before the command
                    self.error(self._unrecognized([arg]))
                if arg in takes_value:
                    next(rest, None)
                continue
            word = arg
            break
        choices = list(self._commands.choices)
        if word is None or word in choices:
            return
        close = difflib.get_close_matches(word, choices, n=1)
        hint = f"did you mean {close[0]}?" if close else f"choose from {', '.join(choices)}"
        self.error(f"unknown command {word}; {hint}")


class OneLineUserErrors(logging.Filter):
    """Takes the traceback off a log record of a :class:`~sketchseg.errors.SketchsegError` (a user error: its one
    line says all); records of any other exception keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from sketchseg.errors import SketchsegError

        if record.exc_info and isinstance(record.exc_info[1], SketchsegError):
            record.exc_info = None
            record.exc_text = None
        return True


RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")  # where Prefect logs the exception of a failed run


def one_line_user_errors(loggers: Sequence[str] = RUN_LOGGERS) -> None:
    """Make ``loggers`` (by default Prefect's flow and task run loggers, which log every exception that ends a run
    with its traceback) log user errors in one line."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineUserErrors) for f in logger.filters):
            logger.addFilter(OneLineUserErrors())


def build_parser() -> CommandParser:
    parser = CommandParser(prog="sketchseg", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for path in COMMANDS:
        module = importlib.import_module(command_module(path))
        subparsers = top
        for depth, word in enumerate(path[:-1]):
            key = " ".join(path[: depth + 1])
            if key not in groups:
                group = subparsers.add_parser(word, help=f"{word} commands", description=f"{word} commands")
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
    one_line_user_errors()  # `sketchseg stage train` runs the Prefect flow in this process
    return exit_code(args._run, args)


def exit_code(command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command: its exit code, or a user error in one line ('error: ...', 2) and an interrupt as 130."""
    from sketchseg.errors import SketchsegError

    try:
        return int(command(args) or 0)
    except SketchsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
