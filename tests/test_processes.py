"""A stage ends with the process that started it, also when a shell that forks (dash) stands between them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sketchseg.processes import proc_stat

REPO = Path(__file__).resolve().parents[1]
STAGE = (
    "import sys, time; sys.path.insert(0, {repo!r}); from sketchseg.processes import die_with_parent, exit_on_sigterm; "
    "exit_on_sigterm(); die_with_parent(); open({pidfile!r}, 'w').write(str(__import__('os').getpid())); "
    "time.sleep(120)"
)


def alive(pid: int) -> bool:
    fields = proc_stat(pid)  # state, ppid, ...
    return fields is not None and fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_stage_behind_a_shell_dies_with_the_process_that_ran_the_shell(shell: str, tmp_path: Path) -> None:
    if not shutil.which(shell):
        pytest.skip(f"no {shell}")
    pidfile = tmp_path / "stage.pid"
    stage = f"{sys.executable} -c \"{STAGE.format(repo=str(REPO), pidfile=str(pidfile))}\""
    # the stand-in for `dvc repro`: runs the stage through `SHELL -c CMD`, as DVC does, and waits
    owner = subprocess.Popen([sys.executable, "-c", f"import subprocess; subprocess.run([{shell!r}, '-c', {stage!r}])"],
                             start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not pidfile.is_file() or not pidfile.read_text():
        assert owner.poll() is None and time.monotonic() < deadline, "the stage did not start"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.killpg(owner.pid, signal.SIGKILL)
        pytest.fail(f"the stage behind {shell} -c outlived the killed process that started it")


FORK_CHECK = (
    "import os, signal, sys; sys.path.insert(0, {repo!r}); from sketchseg.processes import exit_on_sigterm; "
    "exit_on_sigterm(); pid = os.fork()\n"
    "if pid == 0: os._exit(0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 1)\n"
    "_, status = os.waitpid(pid, 0); parent = callable(signal.getsignal(signal.SIGTERM))\n"
    "sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 and parent else 3)"
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forked_workers_of_a_stage_get_the_default_sigterm_back() -> None:
    """A pool worker that kept the stage's Python-level handler could miss Pool.terminate()'s SIGTERM (taken just
    before it blocked on the task queue's lock) and hang the stage; the stage itself keeps its handler."""
    done = subprocess.run([sys.executable, "-c", FORK_CHECK.format(repo=str(REPO))], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
