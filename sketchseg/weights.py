"""Which weights a command runs: the one choice shared by `sketchseg segment`, `sketchseg serve` and the MLflow pyfunc
model. A checkpoint file, an open_clip model (random or pretrained backbone), a registered MLflow model
(``models:/sketchseg@champion``), or by default the pipeline's optimal checkpoint when it exists, else the untrained
tiny model, whose outputs say UNTRAINED (:attr:`sketchseg.model.network.SketchSegModel.untrained`)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchseg.errors import InputError

if TYPE_CHECKING:
    from sketchseg.model.segmenter import Segmenter

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path("data/train/models/optimal.pt")  # the pipeline's selected model, relative to the cwd
DEFAULT_MODEL = "sketchseg-tiny"


@dataclass(frozen=True)
class WeightsChoice:
    """At most one of ``checkpoint``, ``model`` and ``registry``; none means ``default_checkpoint`` when that file
    exists, else the untrained ``sketchseg-tiny``. ``pretrained``, ``quick_gelu`` and ``seed`` go with a model (the
    default one included)."""

    checkpoint: Path | None = None
    model: str | None = None
    pretrained: str | None = None
    registry: str | None = None
    seed: int = 0
    quick_gelu: bool | str = "auto"
    default_checkpoint: Path = DEFAULT_CHECKPOINT

    def __post_init__(self) -> None:
        given = [n for n in ("checkpoint", "model", "registry") if getattr(self, n) is not None]
        if len(given) > 1:
            raise InputError(f"give at most one of --checkpoint, --model, --registry (got {', '.join(given)})")
        if self.pretrained is not None and self.model is None:
            raise InputError("--pretrained goes with --model NAME")
        if self.registry is not None and not self.registry.startswith("models:/"):
            raise InputError(f"--registry {self.registry}: expected a model URI such as models:/sketchseg@champion")


def add_weights_arguments(p: argparse.ArgumentParser) -> None:
    """The weights options of `segment` and `serve` (read back by :func:`weights_choice`)."""
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", type=Path, help="a sketchseg checkpoint or the authors' released .pth")
    weights.add_argument("--model", help="an open_clip model name (random weights unless --pretrained)")
    weights.add_argument("--registry", help="a registered model, e.g. models:/sketchseg@champion")
    p.add_argument("--pretrained", help="with --model: an open_clip tag (openai) or a local weights file")
    p.add_argument(
        "--quick-gelu",
        choices=("auto", "true", "false"),
        default="auto",
        help="with --model: QuickGELU activation; auto (default) = on for OpenAI weights (tag or TorchScript file)",
    )
    p.add_argument("--seed", type=int, default=0, help="with --model: seed of the new weights (prompts, projections)")
    p.add_argument(
        "--default-checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help=f"used when no weights option is given and the file exists (default: %(default)s); else the untrained "
        f"{DEFAULT_MODEL}",
    )


def weights_choice(args: argparse.Namespace) -> WeightsChoice:
    """The :class:`WeightsChoice` of the options :func:`add_weights_arguments` added."""
    return WeightsChoice(
        checkpoint=args.checkpoint,
        model=args.model,
        pretrained=args.pretrained,
        registry=args.registry,
        seed=args.seed,
        quick_gelu={"auto": "auto", "true": True, "false": False}[args.quick_gelu],
        default_checkpoint=args.default_checkpoint,
    )


def _registered_segmenter(uri: str, **kwargs: Any) -> Segmenter:
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
    except (MlflowException, AttributeError, ModuleNotFoundError) as exc:  # the latter two: a foreign pickled model
        reason = " ".join(str(exc).split())[:300]
        raise InputError(f"--registry {uri}: cannot load it from {store} ({reason}); a version registered by an "
                         "older sketchseg may need registering again (sketchseg.tracking.registry)") from None
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, SketchsegPyfunc):
        raise InputError(f"--registry {uri}: not a sketchseg model ({type(python_model).__name__})")
    from sketchseg.model.segmenter import Segmenter

    return Segmenter(python_model.segmenter.model, **kwargs)


def load_segmenter(choice: WeightsChoice, **kwargs: Any) -> tuple[Segmenter, str]:
    """The Segmenter ``choice`` names (``kwargs``: the Segmenter's device, batch size, recipe, ...) and a line saying
    where its weights come from (printed, and written into every output)."""
    from sketchseg.model.config import BackboneConfig, ModelConfig
    from sketchseg.model.segmenter import Segmenter

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
    backbone = BackboneConfig(name=name, pretrained=choice.pretrained, force_quick_gelu=choice.quick_gelu,
                              seed=choice.seed)  # fmt: skip
    segmenter = Segmenter.from_config(ModelConfig(backbone=backbone, seed=choice.seed), **kwargs)
    if choice.model is None:
        return segmenter, f"untrained {name} ({choice.default_checkpoint} not found): {segmenter.weights}"
    return segmenter, segmenter.weights
