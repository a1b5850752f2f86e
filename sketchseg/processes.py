"""Process lifetime: a pipeline stage, the torchrun it starts and torchrun's workers end with the process that started
them, even when that one is killed with ``kill -9`` (which no handler can see), so that an interrupted ``dvc repro``
leaves no orphan writing the outputs the next ``dvc repro`` writes too."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)``, so that cleanup runs (``finally`` blocks, atexit handlers such as the
    one stopping Prefect's temporary server) instead of the process vanishing."""

    def handler(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
