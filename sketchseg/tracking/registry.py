"""The model registry: versions of the pyfunc model ``sketchseg`` (:mod:`sketchseg.tracking.pyfunc`) and the alias
``champion``.

:func:`register_checkpoint` logs a checkpoint as the pyfunc model of a training run and registers it as a version
with the tags ``checkpoint_sha256`` and ``test_miou``. The alias ``champion`` moves to a new version only when its
test mIoU (model-version tag ``test_miou``) is strictly higher than the current champion's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc

from sketchseg.errors import CheckpointError
from sketchseg.io_utils import file_sha256
from sketchseg.tracking.pyfunc import SketchsegPyfunc, code_paths, input_example, model_signature, pip_requirements
from sketchseg.tracking.store import client_for, fluent_store, tracking_uri

log = logging.getLogger(__name__)

MODEL_NAME = "sketchseg"
CHAMPION = "champion"
TEST_MIOU_TAG = "test_miou"
CHECKPOINT_SHA_TAG = "checkpoint_sha256"


@dataclass
class Registration:
    """The outcome of :func:`register_checkpoint`."""

    name: str
    version: str
    test_miou: float | None
    champion: bool  # this version holds the alias after the call
    previous_champion: str | None  # version that held the alias before, if any
    previous_miou: float | None
    model_uri: str


def _version_miou(client, version) -> float | None:
    """A version's test mIoU: its ``test_miou`` tag, else its run's ``test/optimal/miou`` metric."""
    tag = (version.tags or {}).get(TEST_MIOU_TAG)
    if tag not in (None, ""):
        try:
            return float(tag)
        except ValueError:
            return None
    if version.run_id:
        try:
            value = client.get_run(version.run_id).data.metrics.get("test/optimal/miou")
        except Exception:  # the run may be gone (deleted), the version stays usable
            return None
        return None if value is None else float(value)
    return None


def champion_version(client, name: str = MODEL_NAME, alias: str = CHAMPION):
    """The model version holding ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def promote_if_better(
    client, name: str, version: str, test_miou: float | None, alias: str = CHAMPION
) -> tuple[bool, str | None, float | None]:
    """Give ``alias`` to ``version`` when no version holds it, or when ``test_miou`` is strictly higher than the
    holder's. Returns (this version holds the alias, previous holder's version, previous holder's mIoU)."""
    current = champion_version(client, name, alias)
    if current is None:
        client.set_registered_model_alias(name, alias, version)
        return True, None, None
    if str(current.version) == str(version):
        return True, str(current.version), test_miou
    previous = _version_miou(client, current)
    better = test_miou is not None and (previous is None or test_miou > previous)
    if better:
        client.set_registered_model_alias(name, alias, version)
    return better, str(current.version), previous


def register_checkpoint(
    checkpoint: str | Path,
    *,
    run_id: str,
    test_miou: float | None,
    name: str = MODEL_NAME,
    alias: str = CHAMPION,
    uri: str | None = None,
    tags: dict[str, str] | None = None,
) -> Registration:
    """Log ``checkpoint`` as the pyfunc model of run ``run_id``, register it as a version of ``name`` (tags
    ``test_miou`` and ``checkpoint_sha256``) and move ``alias`` to it if it beats the current holder
    (:func:`promote_if_better`). Calling it again for the same run and checkpoint (a retry) reuses the version."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: checkpoint not found; run the training first (sketchseg train)")
    resolved = tracking_uri(uri)
    client = client_for(resolved)
    sha = file_sha256(checkpoint)
    existing = (
        [
            v
            for v in client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
            if (v.tags or {}).get(CHECKPOINT_SHA_TAG) == sha
        ]
        if _model_exists(client, name)
        else []
    )
    if existing:
        version = str(existing[0].version)
        log.info("model %s version %s already holds this checkpoint (run %s)", name, version, run_id)
    else:
        with fluent_store(resolved), mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=SketchsegPyfunc(),
                artifacts={"checkpoint": str(checkpoint)},
                signature=model_signature(),
                input_example=input_example(),
                pip_requirements=pip_requirements(),
                code_paths=code_paths(),
                registered_model_name=name,
                await_registration_for=60,
            )
        version = str(info.registered_model_version)
    version_tags = {CHECKPOINT_SHA_TAG: sha, **(tags or {})}
    if test_miou is not None:
        version_tags[TEST_MIOU_TAG] = repr(float(test_miou))
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    champion, previous, previous_miou = promote_if_better(client, name, version, test_miou, alias)
    log.info(
        "registered %s version %s (test mIoU %s)%s",
        name,
        version,
        test_miou,
        f"; it is now @{alias}" if champion else f"; @{alias} stays with version {previous} (mIoU {previous_miou})",
    )
    return Registration(
        name=name,
        version=version,
        test_miou=None if test_miou is None else float(test_miou),
        champion=champion,
        previous_champion=previous if previous != version else None,
        previous_miou=previous_miou if previous != version else None,
        model_uri=f"models:/{name}/{version}",
    )


def _model_exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True


def load_champion(name: str = MODEL_NAME, alias: str = CHAMPION, uri: str | None = None):
    """Load ``models:/NAME@ALIAS`` as a pyfunc model."""
    with fluent_store(tracking_uri(uri)):
        return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
