"""Loading the open_clip backbone (SPEC §2): a model name with a pretrained tag, a local weights file, open_clip's
saved-model folder (``local-dir:``), or a small config shipped with sketchseg for tests and the offline default."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sketchseg.errors import CheckpointError, ConfigError
from sketchseg.model.config import BackboneConfig

log = logging.getLogger(__name__)

PACKAGED_CONFIG_DIR = Path(__file__).parent / "configs"


def packaged_model_names() -> list[str]:
    """Names of the open_clip configs shipped with sketchseg (``sketchseg-tiny``, ...)."""
    return sorted(p.stem for p in PACKAGED_CONFIG_DIR.glob("*.json"))


def _register_packaged_configs() -> None:
    import open_clip

    if not set(packaged_model_names()) <= set(open_clip.list_models()):
        open_clip.add_model_config(PACKAGED_CONFIG_DIR)


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns on the root logger when it builds a model without weights; sketchseg states the weights
    it uses in every output instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def quiet_random_init() -> Iterator[None]:
    """Silence open_clip's "Model initialized randomly" warning while a model is built whose weights are loaded
    (or stated) by sketchseg right after."""
    quiet = _DropRandomInitWarning()
    logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)


@dataclass
class Backbone:
    """An open_clip CLIP model with its tokenizer and a human-readable statement of where the weights came from."""

    clip: nn.Module
    tokenizer: object
    weights: str


def describe_weights(cfg: BackboneConfig) -> str:
    """One line saying which weights a backbone config loads (shown in every output)."""
    if cfg.pretrained is None:
        if cfg.name.startswith("local-dir:"):
            return f"open_clip saved model {cfg.name[len('local-dir:'):]}"
        return f"random initialisation of {cfg.name} (seed {cfg.seed}): UNTRAINED, results are meaningless"
    if Path(cfg.pretrained).is_file():
        return f"{cfg.name} with local weights file {cfg.pretrained}"
    return f"{cfg.name} with open_clip pretrained weights '{cfg.pretrained}'"


def load_backbone(cfg: BackboneConfig) -> Backbone:
    """Build the open_clip model described by ``cfg`` (in eval mode, on CPU, fp32)."""
    import open_clip

    _register_packaged_configs()
    name = cfg.name
    is_local_dir = name.startswith("local-dir:")
    if is_local_dir:
        folder = Path(name[len("local-dir:") :])
        if not (folder / "open_clip_config.json").is_file():
            raise CheckpointError(
                f"{folder}: not an open_clip model folder (open_clip_config.json missing); "
                "save one with sketchseg foundation or open_clip's save tools"
            )
    elif name not in open_clip.list_models():
        raise ConfigError(
            f"unknown open_clip model {name!r}; use an open_clip name such as ViT-B-16, one of "
            f"{packaged_model_names()}, or local-dir:/path/to/saved/model"
        )
    pretrained = cfg.pretrained
    if pretrained is not None and not is_local_dir:
        looks_like_path = "/" in pretrained or pretrained.endswith((".bin", ".pt", ".pth", ".safetensors"))
        if looks_like_path and not Path(pretrained).is_file():
            raise CheckpointError(f"{pretrained}: weights file not found; pass an existing file or an open_clip tag")
    fork = torch.random.fork_rng(devices=[]) if pretrained is None else contextlib.nullcontext()
    with fork, quiet_random_init():
        if pretrained is None:
            torch.manual_seed(cfg.seed)
        try:
            clip = open_clip.create_model(
                name,
                pretrained=None if is_local_dir else pretrained,
                force_quick_gelu=cfg.force_quick_gelu,
                device="cpu",
                output_dict=False,
            )
        except RuntimeError as exc:
            raise CheckpointError(f"could not load weights for {name} ({pretrained}): {exc}") from None
        except Exception as exc:  # network failures for tags, corrupt files, ...
            if pretrained is None:
                raise
            raise CheckpointError(
                f"could not load pretrained weights {pretrained!r} for {name}: {type(exc).__name__}: {exc}. "
                "Without network, download the weights elsewhere and pass the local file as pretrained"
            ) from None
    clip.eval()
    tokenizer = open_clip.get_tokenizer(name)
    log.debug("backbone %s loaded", name)
    return Backbone(clip=clip, tokenizer=tokenizer, weights=describe_weights(cfg))
