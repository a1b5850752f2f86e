"""Same commit, same numbers; and an interrupted `dvc repro` ends where an uninterrupted one does.

Small runs of the whole pipeline (`dvc repro` in fresh copies of the repository, tests/test_dvc.py): two of them give
bit-identical outputs (foundation, checkpoints, metrics, every file but the timings); a third is killed with
`kill -9` during the foundation and again during training, each time rerun, and ends with the same files, the
training having resumed from its epoch-1 checkpoint."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sketchseg.processes import proc_stat
from tests.test_dvc import BIN, PLACEHOLDERS, fresh_clone, sh

GIT = ("git", "-c", "user.email=t@t", "-c", "user.name=t")


def small_clone(base: Path) -> tuple[Path, dict[str, str]]:
    """A fresh clone with seconds-long parameters (two epochs, so that a training can resume), and its environment."""
    repo = base / "repo"
    repo.mkdir(parents=True)
    fresh_clone(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["synth"]["test_participants"] = 2  # 16 test sketches for the foundation's zero-shot report
    # enough steps that a kill on the log line that starts the foundation's loop, or on the end of epoch 1, lands
    # inside that loop or epoch 2 on a fast machine too (2 steps of epoch 2 once finished before the kill did)
    params["foundation"].update(steps=24, batch_size=8, warmup_steps=2, mosaics=16, threads=1)
    params["foundation"]["backbone"]["name"] = "sketchseg-test"
    params["train"].update(epochs=2, batch_size=4, max_steps_per_epoch=16, val_max_sketches=4, threads=1)
    params["eval"].update(max_sketches=4, overlays=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}", "PREFECT_HOME": str(base / "prefect")}
    sh(*GIT, "commit", "-qam", "small", cwd=repo, env=env)
    return repo, env


def start_repro(repo: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dvc repro` in its own session (so that what it starts can be found), output into ``log``; the copy's own
    sketchseg/ and flows/ run the stages (PYTHONPATH), as in tests/test_dvc.py. DVC runs each stage through
    ``$SHELL -c``: /bin/sh, as where SHELL is unset (CI), is Debian's dash, which forks the stage instead of exec'ing
    it, so a stage's parent is a shell that outlives a killed `dvc repro` (bash would exec)."""
    full = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(repo), "SHELL": "/bin/sh", **env}  # fmt: skip
    with open(log, "w") as fh:
        return subprocess.Popen(["dvc", "repro"], cwd=repo, env=full, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def finish(proc: subprocess.Popen, log: Path) -> str:
    assert proc.wait(timeout=600) == 0, log.read_text()[-6000:]
    return log.read_text()


def digests(repo: Path) -> dict[str, str]:
    """SHA-256 of every output file (data/), but the timings and the train stage's work folder."""
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((repo / "data").rglob("*"))
        if p.is_file() and p.relative_to(repo).parts[1] not in ("timings", "work", *PLACEHOLDERS)
    }


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (Linux /proc)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = proc_stat(int(entry.name))  # state, ppid, pgrp, session, ...
        if fields is not None and int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def kill_when(proc: subprocess.Popen, log: Path, marker: str, timeout: float = 600) -> None:
    """``kill -9`` the `dvc repro` ``proc`` as soon as ``marker`` appears in its output, then wait until every
    process it started has ended too (a stage dies with its `dvc repro`)."""
    deadline = time.monotonic() + timeout
    while marker not in log.read_text():
        assert proc.poll() is None, f"dvc repro ended before {marker!r}:\n{log.read_text()[-6000:]}"
        assert time.monotonic() < deadline, f"no {marker!r} in {timeout} s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 120
    while session_members(proc.pid):
        assert time.monotonic() < deadline, f"processes outlived the killed dvc repro: {session_members(proc.pid)}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two uninterrupted runs at once; returns the first one's output digests after checking the second's equal."""
    runs = []
    for name in ("a", "b"):
        base = tmp_path_factory.mktemp(f"repro_{name}")
        repo, env = small_clone(base)
        runs.append((repo, base / "repro.log", start_repro(repo, env, base / "repro.log")))
    for _repo, log, proc in runs:
        out = finish(proc, log)
        assert "Running stage 'foundation'" in out and "Running stage 'train'" in out
    (a, _, _), (b, _, _) = runs
    first, second = digests(a), digests(b)
    assert {"data/foundation/open_clip_model.safetensors", "data/foundation/foundation.json",
            "data/train/models/optimal.pt", "data/train/checkpoints/last.pt", "data/eval/metrics.json"} <= set(first)
    return {"first": first, "second": second, "repo": a}


@pytest.mark.slow
def test_two_runs_of_the_same_commit_give_identical_outputs(reference: dict) -> None:
    first, second = reference["first"], reference["second"]
    assert first.keys() == second.keys()
    differ = [name for name in first if first[name] != second[name]]
    assert differ == []
    # what depends on the machine is kept apart, in files no stage reads
    timings = reference["repo"] / "data" / "timings"
    stages = ("foundation", "prepare", "shards", "source", "synth", "train")
    assert sorted(p.name for p in timings.iterdir()) == [f"{s}.json" for s in stages]
    assert "seconds" in (timings / "foundation.json").read_text()
    assert not (reference["repo"] / "data" / "work").exists() or not any((reference["repo"] / "data/work").iterdir())


@pytest.mark.slow
def test_kill_9_during_foundation_and_training_then_repro_equals_an_uninterrupted_run(
    reference: dict, tmp_path: Path
) -> None:
    repo, env = small_clone(tmp_path)
    logs = [tmp_path / f"repro-{i}.log" for i in range(3)]
    kill_when(start_repro(repo, env, logs[0]), logs[0], "foundation: training")
    assert not (repo / "data" / "foundation").exists()  # killed mid-stage
    kill_when(start_repro(repo, env, logs[1]), logs[1], "epoch 1: loss")
    (work,) = (repo / "data" / "work").iterdir()  # the resumable state DVC did not delete
    assert (work / "checkpoints" / "epoch-001.pt").is_file() and not (work / "checkpoints" / "epoch-002.pt").exists()
    out = finish(start_repro(repo, env, logs[2]), logs[2])
    assert "Running stage 'foundation'" not in out and "Running stage 'train'" in out
    assert "1 of 2 epochs done, continuing with epoch 2" in out
    assert not work.exists()  # removed once the stage finished
    assert digests(repo) == reference["first"]
