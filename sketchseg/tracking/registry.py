"""The model registry: versions of the pyfunc model ``sketchseg`` (:mod:`sketchseg.tracking.pyfunc`) and the alias
``champion``, which names the best version on the same test.

:func:`register_checkpoint` logs a checkpoint as the pyfunc model of a training run and registers it as a version
with the tags ``checkpoint_sha256``, ``test_miou`` and what that figure was measured on (the report's
``evaluated_on["test"]``, :func:`sketchseg.eval.report.evaluated_on`): ``test_fingerprint`` (sha256 of the evaluated
test sketches: ids, rasterised strokes, labels), ``test_sketches``, ``test_split_sketches``, ``test_max_sketches``.

The alias moves (:func:`champion_decision`) when no version holds it, or when the new version's test mIoU beats the
champion's ON THE SAME TEST by a difference whose paired bootstrap 95 % interval excludes 0
(:func:`sketchseg.eval.bootstrap.paired_mean_interval` of the two versions' per-sketch test mIoU, carried by each
version as the tag ``test_per_sketch_miou``: the values in the order of the fingerprinted sketches, uint16 of
value x 65535, little-endian, base64): a higher figure within the noise of the test set is no improvement. "The same
test": both carry a ``test_fingerprint`` and the two are equal. A figure measured on other sketches
(``eval.max_sketches=10``, another split or dataset) is not comparable, and neither is a champion registered before
versions carried a fingerprint and per-sketch scores: the alias stays where it is. Every version carries the
decision's reason as the tag ``champion_decision``; :class:`Registration` returns it, and the run logs it.
To crown a version by hand: ``MlflowClient().set_registered_model_alias("sketchseg", "champion", VERSION)``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

from sketchseg.errors import CheckpointError
from sketchseg.eval.bootstrap import paired_mean_interval
from sketchseg.io_utils import file_sha256
from sketchseg.tracking.pyfunc import code_paths, input_example, model_code, model_signature, pip_requirements
from sketchseg.tracking.store import client_for, fluent_store, tracking_uri

log = logging.getLogger(__name__)

MODEL_NAME = "sketchseg"
CHAMPION = "champion"
TEST_MIOU_TAG = "test_miou"
CHECKPOINT_SHA_TAG = "checkpoint_sha256"
DECISION_TAG = "champion_decision"
TEST_TAG_PREFIX = "test_"  # + the keys of the report's evaluated_on["test"]
FINGERPRINT_TAG = TEST_TAG_PREFIX + "fingerprint"
PER_SKETCH_TAG = TEST_TAG_PREFIX + "per_sketch_miou"
MAX_TAG_SKETCHES = 3000  # the per-sketch tag of larger test sets would exceed MLflow's tag length: not recorded


def encode_scores(values: Sequence[float]) -> str:
    """Per-sketch scores in [0, 1] as the tag text of ``test_per_sketch_miou`` (module doc)."""
    q = np.rint(np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * 65535).astype("<u2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def decode_scores(text: str) -> np.ndarray | None:
    """The per-sketch scores of a ``test_per_sketch_miou`` tag (float64 [S]), or None when it is unreadable."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if not raw or len(raw) % 2:
        return None
    return np.frombuffer(raw, dtype="<u2").astype(np.float64) / 65535


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
    reason: str = ""  # why the alias moved to this version or stayed (champion_decision)


def measured_on_tags(test_set: Mapping[str, Any]) -> dict[str, str]:
    """What a test figure was measured on (``fingerprint``, ``sketches``, ...) as model-version tags ``test_*``."""
    return {TEST_TAG_PREFIX + key: str(value) for key, value in test_set.items() if value is not None}


def _miou(tags: Mapping[str, str]) -> float | None:
    try:
        return float(tags[TEST_MIOU_TAG])
    except (KeyError, ValueError):
        return None


def _measured_on(tags: Mapping[str, str]) -> str:
    """'300 of 300 test sketches (fingerprint 1a2b3c4d5e6f)' from a version's tags."""
    count, total = tags.get(TEST_TAG_PREFIX + "sketches", "?"), tags.get(TEST_TAG_PREFIX + "split_sketches", "?")
    return f"{count} of {total} test sketches (fingerprint {tags.get(FINGERPRINT_TAG, '?')[:12]})"


def champion_decision(
    candidate: Mapping[str, str], champion: Mapping[str, str] | None, champion_version: str | None
) -> tuple[bool, str]:
    """Whether the alias moves to a version with tags ``candidate`` from the holder ``champion_version`` (tags
    ``champion``; None when no version holds it), and why. See the module docstring for the rule."""
    if champion is None:
        return True, "no version held the alias"
    held = f"version {champion_version}"
    new_miou, old_miou = _miou(candidate), _miou(champion)
    if new_miou is None:
        return False, "not comparable: this version has no test mIoU"
    if not candidate.get(FINGERPRINT_TAG):
        return False, "not comparable: this version does not record what its test mIoU was measured on"
    if not champion.get(FINGERPRINT_TAG):
        return False, (
            f"not comparable: {held} does not record what its test mIoU was measured on (registered before versions "
            "carried a test fingerprint); move the alias by hand if this version should replace it"
        )
    if candidate[FINGERPRINT_TAG] != champion[FINGERPRINT_TAG]:
        return False, (
            f"not comparable: this version's test mIoU was measured on {_measured_on(candidate)}, "
            f"{held}'s on {_measured_on(champion)}"
        )
    same = f"on the same {_measured_on(candidate)}"
    if old_miou is None:
        return True, f"{held} has no test mIoU; this version's is {new_miou:.4f} {same}"
    new_scores, old_scores = (
        decode_scores(candidate.get(PER_SKETCH_TAG, "")),
        decode_scores(champion.get(PER_SKETCH_TAG, "")),
    )
    if new_scores is None or old_scores is None or len(new_scores) != len(old_scores):
        whose = "this version" if new_scores is None else held
        return False, (
            f"not comparable: {whose} does not record its per-sketch test mIoU, so no interval of the difference can "
            "be computed; move the alias by hand if this version should replace it"
        )
    interval = paired_mean_interval(new_scores, old_scores)
    verdict = f"difference {interval.text()} (paired bootstrap 95 %)"
    if interval.low > 0:
        return True, f"test mIoU {new_miou:.4f} beats {held}'s {old_miou:.4f} {same}: {verdict}"
    return False, f"test mIoU {new_miou:.4f} does not beat {held}'s {old_miou:.4f} {same}: {verdict}"


def champion_version(client, name: str = MODEL_NAME, alias: str = CHAMPION):
    """The model version holding ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def promote_if_better(client, name: str, version: str, alias: str = CHAMPION) -> tuple[bool, str | None, str]:
    """Give ``alias`` to ``version`` when :func:`champion_decision` says so (from the versions' tags). Returns (this
    version holds the alias, the holder before the call, the reason)."""
    current = champion_version(client, name, alias)
    if current is not None and str(current.version) == str(version):
        return True, str(current.version), "this version already holds the alias"
    candidate = client.get_model_version(name, version).tags or {}
    moves, reason = champion_decision(
        candidate, None if current is None else (current.tags or {}), None if current is None else str(current.version)
    )
    if moves:
        client.set_registered_model_alias(name, alias, version)
    return moves, None if current is None else str(current.version), reason


def register_checkpoint(
    checkpoint: str | Path,
    *,
    run_id: str,
    test_miou: float | None,
    test_set: Mapping[str, Any] | None = None,
    test_per_sketch: Sequence[float] | None = None,
    name: str = MODEL_NAME,
    alias: str = CHAMPION,
    uri: str | None = None,
    tags: dict[str, str] | None = None,
) -> Registration:
    """Log ``checkpoint`` as the pyfunc model of run ``run_id``, register it as a version of ``name`` (tags
    ``checkpoint_sha256``, ``test_miou``, ``test_*`` from ``test_set``: what the figure was measured on, the report's
    ``evaluated_on["test"]``; ``test_per_sketch_miou`` from ``test_per_sketch``, the per-sketch test mIoU in the
    fingerprint's order) and move ``alias`` to it if it beats the current holder on the same test
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
                python_model=model_code(),  # a code file: no pickled object (and no CloudPickle warning)
                artifacts={"checkpoint": str(checkpoint)},
                signature=model_signature(),
                input_example=input_example(),
                pip_requirements=pip_requirements(),
                code_paths=code_paths(),
                registered_model_name=name,
                await_registration_for=60,
            )
        version = str(info.registered_model_version)
    version_tags = {CHECKPOINT_SHA_TAG: sha, **measured_on_tags(test_set or {}), **(tags or {})}
    if test_miou is not None:
        version_tags[TEST_MIOU_TAG] = repr(float(test_miou))
    if test_per_sketch is not None and 0 < len(test_per_sketch) <= MAX_TAG_SKETCHES:
        version_tags[PER_SKETCH_TAG] = encode_scores(test_per_sketch)
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    champion, previous, reason = promote_if_better(client, name, version, alias)
    client.set_model_version_tag(name, version, DECISION_TAG, reason)
    previous_miou = None if previous in (None, version) else _miou(client.get_model_version(name, previous).tags or {})
    log.debug(  # the flow's task reports it
        "registered %s version %s (test mIoU %s): %s",
        name,
        version,
        test_miou,
        f"it is now @{alias} ({reason})" if champion else f"@{alias} stays with version {previous} ({reason})",
    )
    return Registration(
        name=name,
        version=version,
        test_miou=None if test_miou is None else float(test_miou),
        champion=champion,
        previous_champion=previous if previous != version else None,
        previous_miou=previous_miou,
        model_uri=f"models:/{name}/{version}",
        reason=reason,
    )


def _model_exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True
