"""The MLflow tracking store: its URI, a client on it, experiments, and where a sqlite store keeps its artifacts.

Tracking store: ``MLFLOW_TRACKING_URI`` when set, otherwise a sqlite file ``mlflow.db`` with an artifacts folder
``mlartifacts/`` in the working directory (both git-ignored). For a sqlite store the artifacts go to
``mlartifacts/`` beside the database file; a tracking server chooses its own artifact store. The model registry
lives in the same store unless ``MLFLOW_REGISTRY_URI`` says otherwise.

A sqlite store in the working directory (the repository's ``mlflow.db``) records its artifact locations relative to
its folder (``mlartifacts/sketchseg/...``, which MLflow resolves from the working directory), so a copied or moved
checkout reads and writes its own ``mlartifacts/``. Absolute locations an older sketchseg recorded under some
``.../mlartifacts/`` are made relative the first time such a store is opened (:func:`relocatable_store`). A store
elsewhere keeps absolute locations. Logging to or loading from a store with relative locations is refused from
another working directory, where they would name other files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sketchseg.errors import SketchsegError

log = logging.getLogger(__name__)

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# The columns of MLflow's sqlite schema that hold an artifact location (table, column, condition on the row).
LOCATION_COLUMNS = (
    ("experiments", "artifact_location", None),
    ("runs", "artifact_uri", None),
    ("logged_models", "artifact_location", None),
    ("model_versions", "storage_location", None),
    ("model_versions", "source", None),
    ("trace_tags", "value", "key = 'mlflow.artifactLocation'"),
)


def tracking_uri(uri: str | None = None, workdir: str | Path = ".") -> str:
    """The tracking URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///WORKDIR/mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(workdir) / DB_FILE).resolve()}"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative ones from the working directory); None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def _in_workdir(db: Path) -> bool:
    return db.resolve().parent == Path.cwd().resolve()


def artifact_root(uri: str, experiment: str) -> str | None:
    """Where a new experiment of a sqlite store keeps its artifacts: ``mlartifacts/EXPERIMENT`` beside the database
    file, relative when the database lies in the working directory (its folder is where MLflow resolves relative
    locations from), else an absolute file URI; None for other stores (a tracking server decides)."""
    db = sqlite_file(uri)
    if db is None:
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    if _in_workdir(db):
        return f"{ARTIFACTS_DIR}/{folder}"
    return (db.resolve().parent / ARTIFACTS_DIR / folder).as_uri()


def _is_relative(location: str | None) -> bool:
    """Whether ``location`` is a relative local path (no URI scheme, not absolute)."""
    return bool(location) and not location.startswith("/") and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", location)


def _tables(con: sqlite3.Connection) -> dict[str, set[str]]:
    names = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {name: {row[1] for row in con.execute(f"PRAGMA table_info({name})")} for name in names}


def _old_roots(locations: list[str], folder: Path) -> list[str]:
    """The absolute ``P/mlartifacts/`` prefixes (as file URIs and as paths) of experiments' artifact locations
    ``P/mlartifacts/NAME`` that are this store's own (P is ``folder``, the database's) or that ``folder`` holds a copy
    of (``folder/mlartifacts/NAME`` exists: the store was copied or moved with its artifacts)."""
    roots: set[str] = set()
    for location in locations:
        path = location[len("file://") :] if location.startswith("file://") else location
        match = re.fullmatch(rf"(/.*?)/{ARTIFACTS_DIR}/([^/]+)/?", path)
        if match and (Path(match.group(1)) == folder or (folder / ARTIFACTS_DIR / match.group(2)).is_dir()):
            root = f"{match.group(1)}/{ARTIFACTS_DIR}/"
            roots.update({root, "file://" + root})
    return sorted(roots, key=len, reverse=True)


def relocatable_store(uri: str, *, strict: bool = False) -> None:
    """Prepare a sqlite store for use from the working directory: when its database lies there, rewrite the absolute
    artifact locations under an ``.../mlartifacts/`` folder that its experiments recorded (an older sketchseg's, or
    those of the folder it was copied from, :func:`_old_roots`) as locations relative to it. When it lies elsewhere
    and records relative locations, ``strict`` (artifacts are about to be read or written) raises SketchsegError:
    they would resolve from this working directory. Other stores: nothing to do."""
    db = sqlite_file(uri)
    if db is None or not db.is_file():
        return
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
        tables = _tables(con)
        if "artifact_location" not in tables.get("experiments", set()):
            return  # not (yet) an MLflow store
        locations = [row[0] for row in con.execute("SELECT artifact_location FROM experiments") if row[0]]
        if not _in_workdir(db):
            if strict and any(_is_relative(location) for location in locations):
                folder = db.resolve().parent
                raise SketchsegError(
                    f"{db}: this MLflow store records its artifact locations relative to its folder {folder}, and "
                    f"this command runs in {Path.cwd()}, where they would name other files; run it from {folder} "
                    f"(cd {folder})"
                )
            return
        roots = _old_roots(locations, db.resolve().parent)
        if not roots:
            return
        changed = 0
        with con:  # one transaction
            for table, column, condition in LOCATION_COLUMNS:
                if column not in tables.get(table, set()):
                    continue
                for root in roots:
                    where = f"substr({column}, 1, ?) = ?" + (f" AND {condition}" if condition else "")
                    cursor = con.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE {where}",
                        (f"{ARTIFACTS_DIR}/", len(root) + 1, len(root), root),
                    )
                    changed += cursor.rowcount
    if changed:
        log.info("%s: %d artifact locations made relative to its folder (%s/...)", db, changed, ARTIFACTS_DIR)


def client_for(uri: str | None = None):
    """An ``MlflowClient`` on :func:`tracking_uri` (registry on the same store unless MLFLOW_REGISTRY_URI is set), the
    store prepared by :func:`relocatable_store`."""
    from mlflow import MlflowClient

    resolved = tracking_uri(uri)
    relocatable_store(resolved)
    return MlflowClient(tracking_uri=resolved)


def _set_artifact_location(uri: str, experiment_id: str, location: str) -> None:
    """Record ``location`` as is (MLflow makes a relative one absolute when it creates an experiment)."""
    db = sqlite_file(uri)
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as con, con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (location, int(experiment_id))
        )


def ensure_experiment(client, name: str) -> str:
    """The id of experiment ``name``, created (with :func:`artifact_root` for sqlite stores) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise SketchsegError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) or pick another name"
            )
        relocatable_store(client.tracking_uri, strict=True)  # its runs' artifacts are written next
        return experiment.experiment_id
    relocatable_store(client.tracking_uri, strict=True)  # its runs' artifacts are written next
    location = artifact_root(client.tracking_uri, name)
    experiment_id = client.create_experiment(name, artifact_location=location)
    if location is not None and _is_relative(location):
        _set_artifact_location(client.tracking_uri, experiment_id, location)
    return experiment_id


@contextlib.contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (``log_model``, ``load_model``) at ``uri`` for the duration of the block (the
    model registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise); the store prepared by
    :func:`relocatable_store`."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    relocatable_store(uri, strict=True)  # models are logged or loaded: their artifacts
    with _use_tracking_uri(uri):
        yield
