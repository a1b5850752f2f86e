"""The MLflow tracking store: its URI, a client on it, experiments.

Tracking store: ``MLFLOW_TRACKING_URI`` when set, otherwise a sqlite file ``mlflow.db`` with an artifacts folder
``mlartifacts/`` in the working directory (both git-ignored). For a sqlite store the artifacts go to
``mlartifacts/`` beside the database file; a tracking server chooses its own artifact store. The model registry
lives in the same store unless ``MLFLOW_REGISTRY_URI`` says otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from sketchseg.errors import SketchsegError

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"


def tracking_uri(uri: str | None = None, workdir: str | Path = ".") -> str:
    """The tracking URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///WORKDIR/mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(workdir) / DB_FILE).resolve()}"


def artifact_root(uri: str, experiment: str) -> str | None:
    """Where a new experiment of a sqlite store keeps its artifacts (``mlartifacts/EXPERIMENT`` beside the database
    file); None for other stores (a tracking server decides)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :])
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    return (db.parent / ARTIFACTS_DIR / folder).resolve().as_uri()


def client_for(uri: str | None = None):
    """An ``MlflowClient`` on :func:`tracking_uri` (registry on the same store unless MLFLOW_REGISTRY_URI is set)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(uri))


def ensure_experiment(client, name: str) -> str:
    """The id of experiment ``name``, created (with :func:`artifact_root` for sqlite stores) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise SketchsegError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) or pick another name"
            )
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root(client.tracking_uri, name))


@contextlib.contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (``log_model``, ``load_model``) at ``uri`` for the duration of the block (the
    model registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield
