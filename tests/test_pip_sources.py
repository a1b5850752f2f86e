"""tools/pip_sources.py: pip's configured package sources handed to uv by `make setup`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "pip_sources.py"
spec = importlib.util.spec_from_file_location("pip_sources", TOOL)
pip_sources = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pip_sources)

LISTING = """:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.find-links='/opt/wheels'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/opt/wheels /gone https://example.org/wheels/'
user.index-url="https://mirror.example/simple"
"""


def test_sources_become_uv_options_in_order_once_and_missing_folders_are_dropped() -> None:
    options = pip_sources.uv_options(LISTING, exists=lambda path: path == "/opt/wheels")
    assert options == [
        "--find-links=/opt/wheels",
        "--extra-index-url=file:///opt/pypi/simple",
        "--extra-index-url=file:///opt/pypi-more/simple",
        "--find-links=https://example.org/wheels/",
        "--index-url=https://mirror.example/simple",
    ]


def test_nothing_configured_gives_no_option() -> None:
    assert pip_sources.uv_options("") == []
    assert pip_sources.uv_options("global.timeout='60'\nnot a config line\n") == []


def test_the_command_asks_the_given_interpreters_pip(tmp_path: Path) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nfind-links = {folder} {tmp_path / 'absent'}\n", encoding="utf-8")
    env = {"PIP_CONFIG_FILE": str(config), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, str(TOOL), sys.executable], capture_output=True, text=True, env=env,
                         check=True)  # fmt: skip
    assert f"--find-links={folder}" in res.stdout.splitlines()
    assert "absent" not in res.stdout
