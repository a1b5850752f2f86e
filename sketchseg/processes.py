"""Process lifetime: a pipeline stage, the torchrun it starts and torchrun's workers end with the process that started
them, even when that one is killed with ``kill -9`` (which no handler can see), so that an interrupted ``dvc repro``
leaves no orphan writing the outputs the next ``dvc repro`` writes too."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """On Linux, have the kernel send ``sig`` to this process when its parent dies (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        libc.prctl(PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):  # no prctl: outputs stay safe (atomic), an orphan only wastes time
        return
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), sig)


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # state, ppid, ...
        except OSError:
            continue
        if int(fields[1]) == pid:
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
