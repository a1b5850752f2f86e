"""The command lines' own texts and errors (issue 22): `sketchseg --help` describes the tool in a complete
sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sketchseg.cli import main
from tests.conftest import REPO
from tests.servers import base_env


def flows(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m flows ARGS` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "flows", *args], cwd=cwd, env=base_env(**env), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def words(text: str) -> str:
    return " ".join(text.split())


def test_top_level_help_describes_the_tool_in_a_complete_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = words(capsys.readouterr().out)
    description = out.split("usage: sketchseg [-h] [-v] COMMAND ... ", 1)[1].split(" positional arguments:")[0]
    assert description.startswith("Open-vocabulary segmentation of freehand scene sketches: segment sketches")
    assert description.endswith(".") and "exposes" not in description, description
    res = flows("--help", cwd=REPO)
    assert res.returncode == 0
    description = words(res.stdout).split("COMMAND ... ", 1)[1].split(" positional arguments:")[0]
    assert description.endswith(".") and description.startswith("Run the Prefect train-flow"), description
