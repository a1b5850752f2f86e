"""Process lifetime: a pipeline stage, the torchrun it starts and torchrun's workers end with the process that started
them, even when that one is killed with ``kill -9`` (which no handler can see), so that an interrupted ``dvc repro``
leaves no orphan writing the outputs the next ``dvc repro`` writes too."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1


SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish"})


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...); None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def die_with_parent(sig: int = signal.SIGTERM, poll_s: float = 0.2) -> None:
    """On Linux, have ``sig`` sent to this process when the process that started it dies (a no-op elsewhere).

    The kernel's parent-death signal covers the parent. When the parent is a shell that did not ``exec`` this
    process (``dash -c CMD`` forks, so a `dvc repro` run with ``SHELL=/bin/sh`` is our grandparent), the shell
    outlives its killed parent: a daemon thread then watches the shell and sends ``sig`` once it is orphaned."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):  # no prctl: outputs stay safe (atomic), an orphan only wastes time
        return
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), sig)
        return
    fields = proc_stat(parent)
    if _name(parent) not in SHELLS or fields is None:
        return
    owner = int(fields[1])  # the shell's parent: what started the shell, e.g. dvc

    def watch() -> None:
        while True:
            now = proc_stat(parent)
            if now is None or int(now[1]) != owner:  # the shell is gone, or orphaned: its parent died
                os.kill(os.getpid(), sig)
                return
            time.sleep(poll_s)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = proc_stat(int(entry.name))  # state, ppid, ...
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def exit_on_sigterm() -> None:
    """On SIGTERM, pass it on to this process's children (the Prefect server it started, torchrun, which ends its
    workers) and exit at once with 143. A Python-level exit (SystemExit) was measured to hang: interpreter shutdown
    waits on threads of the libraries the stage runs. Outputs stay safe: they are written atomically, and the next
    run removes the temporary leftovers."""

    def handler(signum: int, frame: object) -> None:
        for child in children(os.getpid()):
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGTERM)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    # A forked child (a multiprocessing pool's worker) gets the default action back: Pool.terminate() SIGTERMs its
    # workers, and one that got the signal just before blocking on the task queue's lock never ran this handler
    # (the signal was taken, the semaphore wait not interrupted): the stage hung in Pool.__exit__ (measured, 1 run in
    # about 20 of a 2-worker pool).
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
