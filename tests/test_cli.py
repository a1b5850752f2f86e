"""The command lines' own texts and errors (issue 22): `sketchseg --help` describes the tool in a complete
sentence; unknown options and commands get the closest valid one of the sub-command they were given to, with its
usage (exit code 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sketchseg.cli import main
from tests.conftest import REPO, run_cli
from tests.servers import base_env


def cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`sketchseg ARGV` through sketchseg.cli.main, expected to exit with 2: its stderr lines."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


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


def test_misspelt_option_gets_the_closest_option_of_its_sub_command() -> None:
    res = run_cli("segment", "x.png", "--treshold", "0.7", "--categories", "tree", "-o", "out")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("usage: sketchseg segment ")  # the sub-command's usage, not the top level's
    assert lines[-1] == "sketchseg segment: error: unrecognized argument --treshold; did you mean --threshold?"


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        # a misspelt required option is named, not reported as the missing option
        (["segment", "x.png", "--categries", "a, b", "-o", "out"], "sketchseg segment",
         "unrecognized argument --categries; did you mean --categories?"),
        (["segment", "x.png", "--categories", "a", "-o", "out", "--treshold=0.7"], "sketchseg segment",
         "unrecognized argument --treshold; did you mean --threshold?"),
        (["segment", "x.png", "--categories", "a", "-o", "out", "--zzzz"], "sketchseg segment",
         "unrecognized argument --zzzz; see sketchseg segment --help"),
        (["train", "--param", "p.yaml", "--nprocs", "2"], "sketchseg train",
         "unrecognized argument --nprocs; did you mean --nproc?"),
        (["train", "stray"], "sketchseg train", "unrecognized argument stray; see sketchseg train --help"),
        (["segmnt", "x.png"], "sketchseg", "unknown command segmnt; did you mean segment?"),
        (["data", "synt"], "sketchseg data", "unknown command synt; did you mean synth?"),
        (["checkpoint", "convrt", "a.pth", "b.pt"], "sketchseg checkpoint",
         "unknown command convrt; did you mean convert?"),
        (["--verbse", "segment", "x.png"], "sketchseg", "unrecognized argument --verbse; did you mean --verbose?"),
    ],
)  # fmt: skip
def test_unknown_options_and_commands_get_a_suggestion(
    argv: list[str], usage: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = cli_error(argv, capsys)
    assert lines[0].startswith(f"usage: {usage} "), lines
    assert lines[-1] == f"{usage}: error: {error}"


def test_other_argument_errors_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    lines = cli_error(["segment", "x.png", "--categories", "a", "-o", "out", "--batch-size", "many"], capsys)
    assert lines[-1] == "sketchseg segment: error: argument --batch-size: invalid int value: 'many'"
    lines = cli_error(["segment", "x.png", "--categories", "a"], capsys)
    assert lines[-1] == "sketchseg segment: error: the following arguments are required: -o/--out"
    lines = cli_error(["segment", "x.png", "--thresh", "0.5", "--categories", "a"], capsys)  # abbreviations work
    assert lines[-1] == "sketchseg segment: error: the following arguments are required: -o/--out"


def test_flows_argument_errors_suggest_and_exit_2(tmp_path: Path) -> None:
    res = flows("run", "--nprc", "2", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.splitlines()[0].startswith("usage: python -m flows run ")
    assert res.stderr.splitlines()[-1] == (
        "python -m flows run: error: unrecognized argument --nprc; did you mean --nproc?"
    )
    res = flows("rnu", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.splitlines()[-1] == (
        "python -m flows: error: unknown command rnu; did you mean run?"
    )
