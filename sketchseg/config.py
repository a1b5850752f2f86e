"""The one typed configuration of a sketchseg run, loaded from ``params.yaml``.

Sections: ``data`` (dataset source and preparation), ``foundation`` (the CLIP the method starts from), ``model``
(the encoder, :class:`sketchseg.model.config.ModelConfig`), ``train``, ``eval``. Unknown keys and values of the
wrong type (in params.yaml or in ``-S key=value`` overrides) are errors that name the parameter, so a typo never goes
unnoticed. Relative paths are relative to the working directory (the repository for DVC).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sketchseg.errors import CheckpointError, ConfigError
from sketchseg.model.config import BackboneConfig, ModelConfig


@dataclass
class SynthConfig:
    """Size of the synthetic dataset (SPEC §6.2)."""

    participants: int = 30
    per_participant: int = 60
    objects_per_category: int = 300
    test_participants: int = 5
    val_per_participant: int = 5
    seed: int = 0
    people_variants: bool = False  # mix in the object variants people draw (sketchseg.data.synth.shapes)


SOURCES = ("synthetic", "fscoco", "friss")


@dataclass
class DataConfig:
    """Where the data comes from and where its prepared forms go.

    ``source``: ``synthetic`` (the generator's data, stage ``synth``), ``fscoco`` (an FSCOCO-Seg release at
    ``fscoco_root``) or ``friss`` (real stroke-3 scene sketches laid out as FrISS or CBSC, :mod:`sketchseg.data.friss`:
    train and val from ``friss_root``, test from ``real_test_root``, classes renamed by ``class_map`` and restricted
    to ``vocabulary``; FrISS's own test split is held out, never read)."""

    source: str = "synthetic"  # synthetic | fscoco | friss
    fscoco_root: str = "data/fscoco"  # the unpacked FSCOCO-Seg release, used when source = fscoco
    friss_root: str = "data/friss"  # FrISS / CBSC folder (train/, val/ or validation/, test/), source = friss
    real_test_root: str = "data/cbsc"  # source = friss: the folder whose test/ split is the test set (CBSC's)
    class_map: str | None = None  # JSON name -> name (flat or under one key), e.g. the shipped map to the 24 words
    vocabulary: str | list[str] | None = None  # None: every class | "synthetic" (the 24 words) | a list | a file
    prepared: str = "data/prepared"
    shards: str = "data/shards"
    on_error: str = "skip"  # raise | skip: what a broken sketch does (see README, bad data)
    max_categories: int = 3
    samples_per_shard: int = 500
    min_shards: int = 2
    synth: SynthConfig = field(default_factory=SynthConfig)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"data.source={self.source!r}: choose {', '.join(SOURCES[:-1])} or {SOURCES[-1]}")
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"data.on_error={self.on_error!r}: choose raise or skip")


RENDER_STYLES = ("sketch", "clipart")


def check_threads(threads: int, key: str) -> None:
    """Raise a ConfigError naming ``key`` unless ``threads`` is a CPU thread count (>= 1). There is no "all cores"
    value: float results depend on the thread count, so a run is reproducible only with a fixed one."""
    if threads < 1:
        raise ConfigError(
            f"{key}={threads}: set the number of CPU threads (>= 1, e.g. 2); results are bit-identical only for the "
            "same count, so it is never taken from the machine"
        )


def check_render(render: str, key: str = "render") -> None:
    """Raise a ConfigError naming ``key`` unless ``render`` is one of :data:`RENDER_STYLES`."""
    if render not in RENDER_STYLES:
        raise ConfigError(f"{key}={render!r}: choose {' or '.join(RENDER_STYLES)}")


@dataclass
class FoundationConfig:
    """The CLIP the method fine-tunes: open_clip pretrained weights, or a small CLIP trained here (offline)."""

    mode: str = "train"  # train | pretrained
    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # for pretrained: name + tag or file
    out: str = "data/foundation"
    steps: int = 2600  # optimiser steps of the offline training: the same steps give the same weights on any machine
    # optional wall-clock cap (minutes; null or 0 = none): the steps that fit, and so every result, then depend on
    # the machine's speed and load
    minutes: float | None = None
    batch_size: int = 32  # global (image, text) pairs per step, beside the mosaics
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 25
    center_patch_filters: bool = True  # zero-mean patch filters: without, the tiny CLIP collapses (measured)
    objects_fraction: float = 0.75  # share of isolated-object sketches among the global pairs of a step
    object_variants: int = 1  # renderings of every object, each shrunk and placed at random
    object_min_scale: float = 0.5  # objects are shrunk by a random factor in [this, 1] of the canvas
    mosaics: int = 4000  # four-object mosaics rendered once for the region loss (0: no region loss)
    mosaics_per_step: int = 12
    mosaic_min_scale: float = 0.6  # objects fill [this, 1] of their mosaic cell
    # how placed objects and mosaics are drawn: sketch (the benchmark's thin lines) | clipart (thick outlines,
    # closed shapes filled: another visual domain, like the photos real CLIP learned from; sketchseg.foundation.data)
    render: str = "sketch"
    region_weight: float = 1.0  # weight of the region-name loss beside the global loss
    threads: int = 2  # CPU threads (torch): a fixed count, since results are bit-identical only for the same count
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("train", "pretrained"):
            raise ConfigError(f"foundation.mode={self.mode!r}: choose train or pretrained")
        check_threads(self.threads, "foundation.threads")
        if self.steps < 1:
            raise ConfigError(f"foundation.steps={self.steps}: must be >= 1")
        if self.minutes is not None and self.minutes < 0:
            raise ConfigError(f"foundation.minutes={self.minutes}: must be >= 0, or null for no wall-clock cap")
        check_render(self.render, "foundation.render")
        if not 0.0 <= self.objects_fraction <= 1.0:
            raise ConfigError(f"foundation.objects_fraction={self.objects_fraction}: must lie in [0, 1]")
        for name in ("object_min_scale", "mosaic_min_scale"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"foundation.{name}={getattr(self, name)}: must lie in (0, 1]")
        for name in ("mosaics", "mosaics_per_step", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"foundation.{name}={getattr(self, name)}: must be >= 0")
        if self.object_variants < 1:
            raise ConfigError(f"foundation.object_variants={self.object_variants}: must be >= 1")


DISTANCES: tuple[str, ...] = ("euclidean", "cosine")


def check_distance(name: str) -> str:
    """Return ``name`` if it is a known loss distance, else raise ConfigError listing the choices."""
    if name not in DISTANCES:
        raise ConfigError(f"unknown loss distance {name!r}; choose one of {', '.join(DISTANCES)}")
    return name


@dataclass
class LossConfig:
    """The training loss (SPEC §4, :mod:`sketchseg.train.losses`), ``train.loss`` in params.yaml: L = the global
    level's triplet loss (``global_loss``) + the category level's (``category_loss``), with ``margin`` and
    ``distance``. ``global_loss: false`` and ``category_loss: false`` are the paper's ablations "w/o global loss" and
    "w/o category level"; ``layers`` the multi-layer one (the exit blocks whose category tokens the loss reads)."""

    margin: float = 0.3
    distance: str = "euclidean"  # euclidean (between L2-normalised embeddings) | cosine
    global_loss: bool = True
    category_loss: bool = True
    layers: list[int] | None = None  # blocks of the category loss; None = every cross-attention block
    # beyond the paper: weight of the caption patch loss (inked patches name their sketch's caption categories;
    # sketchseg.train.losses.patch_caption_loss); 0 = off
    patch_weight: float = 0.0
    patch_temperature: float = 0.05

    def __post_init__(self) -> None:
        check_distance(self.distance)
        if not math.isfinite(self.margin) or self.margin < 0:
            raise ConfigError(f"train.loss.margin={self.margin}: must be a finite number >= 0; the paper uses 0.3")
        if not math.isfinite(self.patch_weight) or self.patch_weight < 0 or self.patch_temperature <= 0:
            raise ConfigError(
                f"train.loss.patch_weight={self.patch_weight} must be >= 0 and train.loss.patch_temperature="
                f"{self.patch_temperature} > 0"
            )
        if not (self.global_loss or self.category_loss or self.patch_weight > 0):
            raise ConfigError(
                "train.loss: global_loss and category_loss are false and patch_weight is 0: nothing to train; enable "
                "at least one"
            )


@dataclass
class TrainConfig:
    """The two-level training (SPEC §4, §8)."""

    out: str = "data/train"
    epochs: int = 3
    batch_size: int = 16  # per process
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 20
    grad_accum: int = 1
    grad_clip: float = 1.0
    nproc: int = 0  # processes for torchrun; 0 = one per GPU, 1 on CPU
    num_workers: int = 0
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | fp32 | bf16
    max_steps_per_epoch: int = 0  # 0 = the whole training split
    val_max_sketches: int = 0  # 0 = the whole validation split
    flip: bool = True
    # finetune full: keep the patch filters zero-mean (null: when the foundation's are; sketchseg.model.finetune)
    center_patch_filters: bool | None = None
    threads: int = 2  # CPU threads (torch) of training and evaluation: fixed, as foundation.threads
    seed: int = 0
    # start from this checkpoint's model (a sketchseg checkpoint or the authors' sketch_seg_best_miou.pth) instead of
    # a new model on the foundation: its architecture and weights, the run's other model parameters (trainer.py)
    init_checkpoint: str | None = None
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"train.precision={self.precision!r}: choose auto, fp32 or bf16")
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train.epochs, train.batch_size and train.grad_accum must be >= 1")
        check_threads(self.threads, "train.threads")


@dataclass
class EvalConfig:
    """Evaluation protocol (SPEC §7)."""

    out: str = "data/eval"
    tau_min: float = 0.30
    tau_max: float = 0.95
    tau_step: float = 0.01
    baselines: list[str] = field(default_factory=lambda: ["clip", "clip_surgery"])
    overlays: int = 6
    max_sketches: int = 0  # 0 = every sketch of the split
    grounding: bool = True  # the category-token diagnostic on val (sketchseg.eval.grounding)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    foundation: FoundationConfig = field(default_factory=FoundationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FOUNDATION_MARKER = "open_clip_config.json"  # the file that makes a folder a foundation model (open_clip local-dir)


def resolve_foundation(cfg: Config, foundation: str | Path | None) -> Path | None:
    """The foundation folder: ``foundation`` when given, else ``foundation.out`` when it holds a foundation model
    (the DVC stage ``foundation`` wrote it), else None (the configured ``model.backbone``)."""
    if foundation:
        return Path(foundation)
    default = Path(cfg.foundation.out)
    return default if (default / FOUNDATION_MARKER).is_file() else None


def model_config_for(cfg: Config, foundation: str | Path | None) -> ModelConfig:
    """The run's ModelConfig, with the backbone taken from a foundation folder when one is given."""
    model_cfg = cfg.model
    if foundation is not None:
        folder = Path(foundation)
        if not (folder / FOUNDATION_MARKER).is_file():
            raise CheckpointError(f"{folder}: not a foundation model folder; run `sketchseg foundation` first")
        model_cfg = dataclasses.replace(model_cfg, backbone=BackboneConfig(name=f"local-dir:{folder}"))
    return model_cfg


def flatten(data: dict[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": leaf}; lists and other non-mapping values are leaves."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the field type ``hint`` (bool, int, float, str, lists/tuples of them, ``X | None``).
    Integers are accepted for floats, and so are numeric strings: YAML 1.1 reads ``1e-4`` (no dot) as a string."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _coerce(value, options[0], where) if len(options) == 1 else value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        items = [_coerce(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    expected = {bool: "true or false", int: "an integer", str: "a string"}
    if hint in expected:
        if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{where}: expected {expected[hint]}, got {value!r}")
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, recursing into dataclass-typed fields."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_from_dict(data: dict[str, Any] | None) -> Config:
    return _build(Config, data or {}, "params")


def set_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply ``a.b.c=value`` to a nested mapping (for `-S key=value` style overrides)."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {key} is not a section")
    node[keys[-1]] = value


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read params.yaml (and ``key=value`` overrides, values parsed as YAML) into a :class:`Config`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: parameters file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.epochs=3")
        key, value = item.split("=", 1)
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            hint = f"{key}='\"...\"'"
            raise ConfigError(f"override {item!r}: the value is not valid YAML; quote strings, e.g. {hint}") from None
        set_override(data, key.strip(), parsed)
    return config_from_dict(data)
