"""The package sources pip is configured with, as uv options, one per line (used by `make setup`).

uv ignores pip's configuration, so `make setup` hands it the wheel folders and indexes that `pip config list` names
(``find-links``, ``index-url``, ``extra-index-url``, from pip's configuration files or ``PIP_*`` variables), so that
a machine's local copies of large wheels (torch's CUDA builds) are used instead of being downloaded. A local
``find-links`` folder that does not exist is left out (uv refuses one). Nothing configured prints nothing (uv then
uses PyPI). Standard library only: it runs before anything is installed.

Usage: python tools/pip_sources.py [PYTHON]   (the interpreter whose pip to ask; default: this one)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

KEYS = ("find-links", "index-url", "extra-index-url")


def uv_options(config_list: str, exists: Callable[[str], bool] = os.path.exists) -> list[str]:
    """``--key=value`` uv options from the output of ``pip config list`` (``scope.key='v1 v2'`` lines), in order,
    without duplicates."""
    options: list[str] = []
    for line in config_list.splitlines():
        name, sep, value = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        if not sep or key not in KEYS:
            continue
        for item in value.strip().strip("'\"").split():
            if key == "find-links" and "://" not in item and not exists(item):
                continue
            option = f"--{key}={item}"
            if option not in options:
                options.append(option)
    return options


def main() -> None:
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    listing = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False)
    print("\n".join(uv_options(listing.stdout)))


if __name__ == "__main__":
    main()
