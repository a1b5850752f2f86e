"""Which weights a server runs: a checkpoint file, an open_clip model (random or pretrained backbone), a registered
MLflow model (``models:/sketchseg@champion``), or by default the pipeline's optimal checkpoint when it exists, else
the untrained tiny model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sketchseg.errors import InputError

if TYPE_CHECKING:
    from sketchseg.model.segmenter import Segmenter

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path("data/train/models/optimal.pt")  # the pipeline's selected model, relative to the cwd
DEFAULT_MODEL = "sketchseg-tiny"


@dataclass(frozen=True)
class WeightsChoice:
    """At most one of ``checkpoint``, ``model`` and ``registry``; none means ``default_checkpoint`` when that file
    exists, else the untrained ``sketchseg-tiny``. ``pretrained`` and ``seed`` go with ``model``."""

    checkpoint: Path | None = None
    model: str | None = None
    pretrained: str | None = None
    registry: str | None = None
    seed: int = 0
    default_checkpoint: Path = DEFAULT_CHECKPOINT

    def __post_init__(self) -> None:
        given = [n for n in ("checkpoint", "model", "registry") if getattr(self, n) is not None]
        if len(given) > 1:
            raise InputError(f"give at most one of --checkpoint, --model, --registry (got {', '.join(given)})")
        if self.pretrained is not None and self.model is None:
            raise InputError("--pretrained goes with --model NAME")
        if self.registry is not None and not self.registry.startswith("models:/"):
            raise InputError(f"--registry {self.registry}: expected a model URI such as models:/sketchseg@champion")


def _registered_segmenter(uri: str, **kwargs) -> Segmenter:
    """The Segmenter of a registered pyfunc model version (its checkpoint artifact), from the tracking store that
    ``MLFLOW_TRACKING_URI`` (or ./mlflow.db) names."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from sketchseg.tracking.pyfunc import SketchsegPyfunc
    from sketchseg.tracking.store import fluent_store, tracking_uri

    store = tracking_uri()
    try:
        with fluent_store(store):
            model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InputError(f"--registry {uri}: cannot load it from {store} ({reason})") from None
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, SketchsegPyfunc):
        raise InputError(f"--registry {uri}: not a sketchseg model ({type(python_model).__name__})")
    from sketchseg.model.segmenter import Segmenter

    return Segmenter(python_model.segmenter.model, **kwargs)


def load_segmenter(choice: WeightsChoice, *, device: str = "cpu", batch_size: int = 16) -> tuple[Segmenter, str]:
    """The Segmenter ``choice`` names and a line saying where its weights come from (printed at start-up and
    returned in every response)."""
    from sketchseg.model.config import BackboneConfig, ModelConfig
    from sketchseg.model.segmenter import Segmenter

    kwargs = {"device": device, "batch_size": batch_size}
    if choice.registry is not None:
        segmenter = _registered_segmenter(choice.registry, **kwargs)
        return segmenter, f"{choice.registry}: {segmenter.weights}"
    checkpoint = choice.checkpoint
    if checkpoint is None and choice.model is None and choice.default_checkpoint.is_file():
        checkpoint = choice.default_checkpoint
    if checkpoint is not None:
        segmenter = Segmenter.from_checkpoint(checkpoint, **kwargs)
        return segmenter, segmenter.weights
    name = choice.model or DEFAULT_MODEL
    backbone = BackboneConfig(name=name, pretrained=choice.pretrained, seed=choice.seed)
    segmenter = Segmenter.from_config(ModelConfig(backbone=backbone, seed=choice.seed), **kwargs)
    if choice.model is None:
        return segmenter, f"untrained {name} ({choice.default_checkpoint} not found): {segmenter.weights}"
    return segmenter, segmenter.weights
