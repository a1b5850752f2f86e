"""A parameter set of experiments/ (a YAML mapping of dotted keys, e.g. ``train.lr: 1.0e-6``) as ``-S KEY=VALUE``
flags, checked against params.yaml and the typed config first (an unknown key or a wrong value is an error naming
it). ``make paper`` runs ``dvc exp run -n paper $(python experiments/overrides.py experiments/paper.yaml ...)``.

    python experiments/overrides.py experiments/paper.yaml [KEY=VALUE ...] [--params params.yaml]

Each KEY=VALUE (value read as YAML) replaces or adds one entry; an empty VALUE keeps the file's, so that the
Makefile can pass ``foundation.backbone.pretrained=$(PRETRAINED)`` whether or not PRETRAINED is set. Prints the
flags shell-quoted on one line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from sketchseg.config import load_config
from sketchseg.errors import ConfigError


def read_set(path: str | Path) -> dict[str, Any]:
    """The file's ``{dotted key: value}`` mapping (nested sections are not accepted: one line = one flag)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc})") from None
    if not isinstance(data, dict) or any(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected a mapping of dotted keys to values, e.g. 'train.lr: 1.0e-6'")
    return {str(k): v for k, v in data.items()}


def with_changes(values: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """``values`` with each ``KEY=VALUE`` of ``changes`` applied (VALUE as YAML; empty: unchanged)."""
    values = dict(values)
    for item in changes:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"{item!r}: expected KEY=VALUE, e.g. data.fscoco_root=/data/fscoco-seg")
        if raw.strip():
            values[key.strip()] = yaml.safe_load(raw)
    return values


def as_yaml(value: Any) -> str:
    """One value as YAML that DVC (YAML 1.2) and sketchseg (PyYAML, YAML 1.1) read back the same: lists as JSON
    (``["a sketch of {}"]``), scalars as PyYAML writes them (``1.0e-06``, not ``1e-06``, which YAML 1.1 reads as a
    string)."""
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return yaml.safe_dump(value, width=1 << 16).removesuffix("\n").removesuffix("\n...")


def flags(values: dict[str, Any]) -> list[str]:
    """``["-S", "KEY=VALUE", ...]`` in the file's order."""
    return [part for key, value in values.items() for part in ("-S", f"{key}={as_yaml(value)}")]


def checked_flags(path: str | Path, changes: list[str] | None = None, params: str | Path = "params.yaml") -> list[str]:
    """The flags of the set ``path`` with ``changes``, after the config they give has been built from ``params``."""
    out = flags(with_changes(read_set(path), list(changes or [])))
    load_config(params, out[1::2])  # raises ConfigError on an unknown key or a value of the wrong type
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=Path, help="the parameter set, e.g. experiments/paper.yaml")
    p.add_argument("changes", nargs="*", metavar="KEY=VALUE", help="replace or add an entry (empty VALUE: keep)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="checked against (default params.yaml)")
    args = p.parse_args(argv)
    try:
        print(shlex.join(checked_flags(args.file, args.changes, args.params)))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
