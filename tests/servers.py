"""Real servers for end-to-end tests, on 127.0.0.1 with a free port, always stopped.

Every server runs in its own process group (``start_new_session``) and is stopped by killing that group (SIGTERM,
then SIGKILL after a grace period) when the ``with`` block ends, also when the test fails. Output goes to a log file
whose tail is shown when a server does not come up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """The test process's environment with telemetry off, one thread, the repository importable and the venv's
    scripts on PATH, plus ``extra``."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        # `mlflow models serve` execs `uvicorn` from PATH: the venv's bin must be on it (as when it is activated)
        "PATH": os.pathsep.join(p for p in (str(BIN), os.environ.get("PATH", "")) if p),
    }
    env.update(extra)
    return env


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except FileNotFoundError:
        return "<no log>"


def stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop ``proc``'s whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # children of the group may outlive the leader (uvicorn/gunicorn workers): kill whatever is left
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> float:
    """Poll ``url`` until it answers 200; returns the seconds waited. Fails with the server's log when the process
    exits or ``timeout`` passes."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before {url} answered:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log_tail(log)}")


@contextlib.contextmanager
def background(
    cmd: Sequence[str], *, log: Path, env: dict[str, str], cwd: Path | None = None, grace: float = 15.0
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` in its own process group for the duration of the block, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            list(cmd), stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc, grace)


@contextlib.contextmanager
def prefect_server(home: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """``prefect server start`` (sqlite in ``home``, no UI, no background services); yields the API URL."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = base_env(PREFECT_HOME=str(home), PREFECT_API_URL=api, PREFECT_SERVER_UI_ENABLED="false")
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services"]
    with background(cmd, log=home / "server.log", env=env, grace=10) as proc:
        wait_http(f"{api}/health", proc, home / "server.log", timeout)
        yield api


@contextlib.contextmanager
def mlflow_server(root: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """``mlflow server --workers 1`` with a sqlite store and artifacts in ``root``; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "mlartifacts"),
    ]  # fmt: skip
    with background(cmd, log=root / "server.log", env=base_env(), grace=10) as proc:
        wait_http(f"{url}/health", proc, root / "server.log", timeout)
        yield url


@contextlib.contextmanager
def model_server(model_uri: str, *, tracking_uri: str, log: Path, timeout: float = 90.0) -> Iterator[str]:
    """``mlflow models serve -m MODEL_URI --env-manager local``; yields its URL (POST /invocations)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with background(cmd, log=log, env=base_env(MLFLOW_TRACKING_URI=tracking_uri), grace=10) as proc:
        wait_http(f"{url}/ping", proc, log, timeout)
        yield url
