"""The command lines' own errors (issue 22): `sketchseg --help` describes the tool in a complete sentence; unknown
options and commands get the closest valid one of the sub-command they were given to, with its usage (exit code 2);
every user error of `python -m flows` is one line, ``error: ...``, exit code 2, while a bug keeps its traceback."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sketchseg.cli import main
from sketchseg.errors import ConfigError, DataError
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


def test_flows_misspelt_parameter_is_one_line(tmp_path: Path) -> None:
    """The issue's command: a misspelt key is refused in one line before Prefect starts."""
    res = flows("run", "--params", str(REPO / "params.yaml"), "-S", "train.epoch=3", cwd=tmp_path,
                PREFECT_HOME=str(tmp_path / "prefect"))  # fmt: skip
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.splitlines() == [res.stderr.strip()], res.stderr[-3000:]
    assert res.stderr.startswith("error: params.train: unknown key(s) ['epoch']; known keys: [")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--params", "missing.yaml"], "error: missing.yaml: parameters file not found"),
        (["-S", "train.epochs"], "error: override 'train.epochs': expected key=value, e.g. train.epochs=3"),
        (["--resume"], "error: --resume continues an earlier run's training: give that run's folder with --run-dir"),
        (["--run-dir", "data/train/run"], "error: run_dir data/train/run: overlaps train.out"),
        (["--foundation", "nowhere"], "error: nowhere: not a foundation model folder; run `sketchseg foundation`"),
    ],
)
def test_flows_user_errors_before_the_flow_are_one_line(tmp_path: Path, args: list[str], error: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"out": "data/train"}, "eval": {"out": "data/eval"}}))
    if "--params" not in args:
        args = ["--params", str(params), *args]
    res = flows("run", *args, cwd=tmp_path, PREFECT_HOME=str(tmp_path / "prefect"))
    assert res.returncode == 2, res.stderr[-3000:]
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(error), res.stderr[-3000:]


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


@pytest.mark.slow
def test_flows_user_error_inside_the_flow_has_no_traceback(tmp_path: Path) -> None:
    """A user error raised by a task (no shards written yet): Prefect's run log names it in one line each, without a
    traceback, and the command ends with it (exit code 2)."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "data": {"shards": str(tmp_path / "no-shards"), "prepared": str(tmp_path / "prepared")},
        "foundation": {"out": str(tmp_path / "no-foundation")},
        "train": {"out": str(tmp_path / "train")}, "eval": {"out": str(tmp_path / "eval")},
    }))  # fmt: skip
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    res = flows("run", "--params", str(params), "--run-dir", str(tmp_path / "run"), "--no-register", cwd=tmp_path,
                **env)  # fmt: skip
    assert res.returncode == 2, res.stderr[-4000:]
    assert "Traceback" not in res.stderr and "File \"" not in res.stderr, res.stderr[-4000:]
    assert "Task run failed with exception: DataError(" in res.stderr  # Prefect's log line, one line
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {tmp_path / 'no-shards' / 'train.json'}: no shard index for split 'train'")


def test_flows_bug_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception that is not a user error is not turned into an error line: it propagates with its traceback."""
    import flows.__main__ as flows_main
    import flows.train_flow

    def broken(**kwargs) -> dict:
        raise RuntimeError("a bug")

    monkeypatch.setattr(flows.train_flow, "train_flow", broken)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"out": str(tmp_path / "t")}, "eval": {"out": str(tmp_path / "e")}}))
    with pytest.raises(RuntimeError, match="a bug"):
        flows_main.main(["run", "--params", str(params)])
    monkeypatch.setattr(flows.train_flow, "train_flow", lambda **kwargs: (_ for _ in ()).throw(ConfigError("bad")))
    assert flows_main.main(["run", "--params", str(params)]) == 2


def test_prefect_run_loggers_log_user_errors_without_traceback() -> None:
    """What Prefect logs when a run fails: a user error in one line, any other exception with its traceback."""
    from sketchseg.cli import one_line_user_errors

    one_line_user_errors()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    formatter = logging.Formatter("%(message)s")
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        try:
            for exc in (DataError("no shards here"), KeyError("bug")):
                try:
                    raise exc
                except Exception:
                    logger.exception("Encountered exception during execution: %r", exc)
        finally:
            logger.removeHandler(handler)
    texts = [formatter.format(r) for r in records]
    assert len(texts) == 4
    for user, bug in (texts[:2], texts[2:]):
        assert user == "Encountered exception during execution: DataError('no shards here')"
        assert bug.startswith("Encountered exception during execution: KeyError('bug')\nTraceback")
