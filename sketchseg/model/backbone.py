"""Loading the open_clip backbone (SPEC §2): a model name with a pretrained tag, a local weights file, open_clip's
saved-model folder (``local-dir:``), or a small config shipped with sketchseg for tests and the offline default."""

from __future__ import annotations

import contextlib
import logging
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sketchseg.errors import CheckpointError, ConfigError
from sketchseg.model.config import BackboneConfig

log = logging.getLogger(__name__)

PACKAGED_CONFIG_DIR = Path(__file__).parent / "configs"
# CLIP's image normalisation (OpenAI's, open_clip's default), for a visual tower that does not state its own
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def image_mean_std(visual: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel mean and std a visual tower's images are normalised with."""
    return getattr(visual, "image_mean", None) or OPENAI_MEAN, getattr(visual, "image_std", None) or OPENAI_STD


def normalise_intensity(intensity: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """[B, 1, S, S] intensities in [0, 1] -> [B, 3, S, S] CLIP input; ``mean``, ``std``: [1, 3, 1, 1]."""
    return (intensity.expand(-1, 3, -1, -1) - mean) / std


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


@dataclass(frozen=True)
class Activation:
    """The MLP activation a backbone is built with, and why (part of every weights line and checkpoint)."""

    quick_gelu: bool
    reason: str

    @property
    def name(self) -> str:
        return "QuickGELU" if self.quick_gelu else "GELU"

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def is_torchscript_file(path: str | Path) -> bool:
    """True for a TorchScript archive, the format of OpenAI's own CLIP weight files (``ViT-B-16.pt``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_torchscript_weights(clip: nn.Module, path: str | Path) -> None:
    """Load the CLIP weights of a TorchScript archive (OpenAI's format) into ``clip``; its integer attributes
    (``input_resolution``, ...) and buffers the model computes itself (``attn_mask``) are not weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated; OpenAI's files need it
        archive = torch.jit.load(str(path), map_location="cpu")
    state = archive.state_dict()
    not_weights = {"input_resolution", "context_length", "vocab_size", "attn_mask"}
    missing, unexpected = clip.load_state_dict({k: v for k, v in state.items() if k not in not_weights}, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: TorchScript weights do not fit this architecture (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); choose the model name the weights belong to (e.g. ViT-B-16 for ViT-B-16.pt)"
        )


def _config_quick_gelu(name: str) -> bool:
    """The activation the open_clip config ``name`` (or a ``local-dir:`` folder's config) declares."""
    import open_clip

    if name.startswith("local-dir:"):
        import json

        data = json.loads((Path(name[len("local-dir:") :]) / "open_clip_config.json").read_text(encoding="utf-8"))
        return bool(data.get("model_cfg", data).get("quick_gelu", False))
    return bool((open_clip.get_model_config(name) or {}).get("quick_gelu", False))


def resolve_activation(cfg: BackboneConfig) -> Activation:
    """QuickGELU or GELU for ``cfg`` (``force_quick_gelu``: true/false force it; auto decides, SPEC §2).

    auto: an open_clip tag -> the activation the tag's weights were trained with (``openai``: QuickGELU); OpenAI's
    TorchScript weight files -> QuickGELU; otherwise the model config's own (``*-quickgelu`` names: QuickGELU). For a
    local weights file that is not a TorchScript archive the format does not tell, so a warning says which
    activation is used and how to choose the other.
    """
    import open_clip

    _register_packaged_configs()
    if cfg.force_quick_gelu is True:
        return Activation(True, "forced: force_quick_gelu true")
    if cfg.force_quick_gelu is False:
        return Activation(False, "forced: force_quick_gelu false")
    own = _config_quick_gelu(cfg.name)
    if cfg.name.startswith("local-dir:"):
        return Activation(own, "auto: the saved model's config")
    if cfg.pretrained is None:
        return Activation(own, f"auto: the {cfg.name} config")
    tag = open_clip.get_pretrained_cfg(cfg.name, cfg.pretrained)
    if tag:
        quick = bool(tag.get("quick_gelu", False)) or own
        return Activation(quick, f"auto: the activation the '{cfg.pretrained}' weights were trained with")
    if is_torchscript_file(cfg.pretrained):
        return Activation(True, "auto: OpenAI TorchScript weights file")
    if own:
        return Activation(True, f"auto: the {cfg.name} config")
    log.warning(
        "%s: a local weights file of unknown origin; using %s (the %s config's activation). If these are OpenAI "
        "weights set force_quick_gelu: true (CLI: --quick-gelu true); set false to silence this warning",
        cfg.pretrained,
        "QuickGELU" if own else "GELU",
        cfg.name,
    )
    return Activation(own, "auto: the model config's; the weights file does not say")


def is_random_init(cfg: BackboneConfig) -> bool:
    """Whether ``cfg`` builds a backbone with random weights (no pretrained tag or file, no saved model)."""
    return cfg.pretrained is None and not cfg.name.startswith("local-dir:")


def describe_weights(cfg: BackboneConfig, activation: Activation | None = None) -> str:
    """One line saying which weights a backbone config loads and with which activation (shown in every output)."""
    act = f", {activation.describe()}" if activation is not None else ""
    if is_random_init(cfg):
        return f"random initialisation of {cfg.name} (seed {cfg.seed}{act}): UNTRAINED, results are meaningless"
    if cfg.pretrained is None:
        return f"open_clip saved model {cfg.name[len('local-dir:'):]}{act}"
    if Path(cfg.pretrained).is_file():
        return f"{cfg.name} with local weights file {cfg.pretrained}{act}"
    return f"{cfg.name} with open_clip pretrained weights '{cfg.pretrained}'{act}"


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
    activation = resolve_activation(cfg)
    # open_clip reads weights with torch.load(weights_only=True), which refuses TorchScript archives (OpenAI's own
    # files): their tensors are read here and loaded into the model built without weights.
    scripted = pretrained is not None and not is_local_dir and is_torchscript_file(pretrained)
    fork = torch.random.fork_rng(devices=[]) if pretrained is None or scripted else contextlib.nullcontext()
    with fork, quiet_random_init(), warnings.catch_warnings():
        # open_clip's "QuickGELU mismatch" warning cannot apply: the activation was chosen for the tag above
        warnings.filterwarnings("ignore", message="QuickGELU mismatch")
        if pretrained is None:
            torch.manual_seed(cfg.seed)
        try:
            clip = open_clip.create_model(
                name,
                pretrained=None if is_local_dir or scripted else pretrained,
                force_quick_gelu=activation.quick_gelu,
                device="cpu",
                output_dict=False,
            )
            if scripted:
                load_torchscript_weights(clip, pretrained)
        except CheckpointError:
            raise
        except RuntimeError as exc:
            raise CheckpointError(f"could not load weights for {name} ({pretrained}): {exc}") from None
        except Exception as exc:  # network failures for tags, corrupt files, ...
            if pretrained is None:
                raise
            raise CheckpointError(
                f"could not load pretrained weights {pretrained!r} for {name}: {type(exc).__name__}: {exc}. "
                "Without network: fill the Hugging Face cache open_clip reads on a machine with network and copy it "
                "here, or pass a local weights file as pretrained (make paper: PRETRAINED=FILE); docs/paper-setting.md "
                "says how"
            ) from None
    if activation.quick_gelu != uses_quick_gelu(clip):
        # a local-dir config without quick_gelu and force false cannot switch it off: say so instead of pretending
        activation = Activation(uses_quick_gelu(clip), "the saved model's config")
    clip.eval()
    tokenizer = open_clip.get_tokenizer(name)
    log.debug("backbone %s loaded (%s)", name, activation.describe())
    return Backbone(clip=clip, tokenizer=tokenizer, weights=describe_weights(cfg, activation))


def uses_quick_gelu(clip: nn.Module) -> bool:
    """True when the built model's MLPs use QuickGELU."""
    from open_clip.transformer import QuickGELU

    return any(isinstance(m, QuickGELU) for m in clip.modules())
