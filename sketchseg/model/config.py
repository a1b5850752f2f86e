"""Typed configuration of the sketch encoder (SPEC §2-§3). Loaded from the `model:` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sketchseg.errors import ConfigError

FINETUNE_MODES = ("ln+vpt", "vpt", "ln", "full")
THRESHOLD_MODES = ("learned", "none")
REDUNDANCY_MODES = ("none", "empty", "mean")
EXIT_BLOCKS = ("none", "authors")
LABEL_MODES = ("pixel", "stroke")
PAPER_CROSS_BLOCKS = (7, 10, 12)  # 1-based blocks of the 12-layer ViT-B/16 (SPEC §3.5)


@dataclass
class BackboneConfig:
    """Which open_clip model to build and where its weights come from.

    ``name``: an open_clip model name (``ViT-B-16``), a config shipped with sketchseg (``sketchseg-tiny``) or
    ``local-dir:/path`` (open_clip's saved-model folder). ``pretrained``: an open_clip tag (``openai``), a local
    weights file, or ``None`` for a random initialisation (seeded by ``seed``).
    ``force_quick_gelu``: ``"auto"`` (QuickGELU where the weights were trained with it: the ``openai`` tag and any
    tag whose open_clip config says so, OpenAI's TorchScript weight files, ``*-quickgelu`` names; the model
    config's own activation otherwise), or ``True``/``False`` to force it (SPEC §2).
    """

    name: str = "sketchseg-tiny"
    pretrained: str | None = None
    force_quick_gelu: bool | str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        value = self.force_quick_gelu
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if value is not True and value is not False and value != "auto":
            raise ConfigError(
                f"force_quick_gelu={self.force_quick_gelu!r}: choose auto (QuickGELU for OpenAI weights), true or false"
            )
        self.force_quick_gelu = value


@dataclass
class ModelConfig:
    """The encoder's switches. ``None`` sizes are derived from the backbone's depth (documented per field)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_prompts: int = 3  # S learnable visual prompts (§3.1)
    prompt_dropout: float = 0.1
    vv: bool = True  # dual path with v-v attention (§3.2); False = plain CLIP patch features
    vv_layers: int | None = None  # last blocks with the v-v path; None = half the depth (6 of 12)
    cross_attention: bool = True  # text-conditioned query of the category token (§3.5)
    cross_attention_blocks: tuple[int, ...] | None = None  # 1-based; None = (7, 10, 12) scaled to the depth
    cross_attention_dropout: float = 0.0  # dropout on the category token's cross-attention output (Table S8)
    finetune: str = "ln+vpt"  # ln+vpt | vpt | ln | full (§3.3)
    templates: tuple[str, ...] = ("a sketch of {}",)  # several are averaged after L2 normalisation
    threshold: str = "learned"  # learned | none (§3.6)
    threshold_init: float = 0.7
    threshold_temperature: float = 0.05  # T of the straight-through sigmoid surrogate
    upsample: str = "bicubic"
    redundancy_removal: str = "none"  # none | empty | mean: CLIP Surgery's feature removal at inference
    # inference: patch embeddings on an n-times finer grid from n x n copies of the sketch shifted by fractions of a
    # patch (sketchseg.model.shifts; 1 = off)
    patch_shifts: int = 1
    # inference on strokes (vector input): pixel = each pixel its argmax category; stroke = every pixel of a stroke
    # takes the stroke's category, the argmax of the similarity maps averaged over its pixels
    labels: str = "pixel"
    # none | authors: the text-independent block the authors' code runs after the last block on both paths
    # (sketchseg.model.exit_block; set by the conversion of their released checkpoint)
    exit_block: str = "none"
    seed: int = 0  # initialisation of the parts sketchseg adds to the backbone: prompts, cross-attention projections

    def __post_init__(self) -> None:
        if isinstance(self.backbone, dict):
            self.backbone = BackboneConfig(**self.backbone)
        if isinstance(self.templates, str):
            self.templates = (self.templates,)
        self.templates = tuple(self.templates)
        if self.cross_attention_blocks is not None:
            self.cross_attention_blocks = tuple(int(b) for b in self.cross_attention_blocks)
        if self.finetune not in FINETUNE_MODES:
            raise ConfigError(f"model.finetune={self.finetune!r}: choose one of {', '.join(FINETUNE_MODES)}")
        if self.threshold not in THRESHOLD_MODES:
            raise ConfigError(f"model.threshold={self.threshold!r}: choose one of {', '.join(THRESHOLD_MODES)}")
        if self.redundancy_removal not in REDUNDANCY_MODES:
            raise ConfigError(
                f"model.redundancy_removal={self.redundancy_removal!r}: choose one of {', '.join(REDUNDANCY_MODES)}"
            )
        if self.exit_block not in EXIT_BLOCKS:
            raise ConfigError(f"model.exit_block={self.exit_block!r}: choose one of {', '.join(EXIT_BLOCKS)}")
        if self.patch_shifts < 1:
            raise ConfigError(f"model.patch_shifts={self.patch_shifts}: must be >= 1 (1 = off)")
        if self.labels not in LABEL_MODES:
            raise ConfigError(f"model.labels={self.labels!r}: choose one of {', '.join(LABEL_MODES)}")
        if self.upsample not in ("bicubic", "bilinear"):
            raise ConfigError(f"model.upsample={self.upsample!r}: choose bicubic or bilinear")
        if not 0.4 < self.threshold_init < 0.9:
            raise ConfigError(f"model.threshold_init={self.threshold_init}: must lie in (0.4, 0.9), the range of τ")
        if self.num_prompts < 0:
            raise ConfigError(f"model.num_prompts={self.num_prompts}: must be >= 0")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ConfigError(f"model.templates={self.templates!r}: every template needs a '{{}}' placeholder")

    def resolved_vv_layers(self, depth: int) -> int:
        """Number of final blocks carrying the v-v path for a backbone of ``depth`` blocks."""
        n = depth // 2 if self.vv_layers is None else self.vv_layers
        if not 0 <= n <= depth:
            raise ConfigError(f"model.vv_layers={n}: must lie in [0, {depth}] for a {depth}-block backbone")
        return n if self.vv else 0

    def resolved_cross_blocks(self, depth: int) -> tuple[int, ...]:
        """1-based blocks whose category token is returned (and text-conditioned when cross_attention)."""
        if self.cross_attention_blocks is None:
            blocks = sorted({max(1, int(b * depth / 12 + 0.5)) for b in PAPER_CROSS_BLOCKS})
        else:
            blocks = sorted(set(self.cross_attention_blocks))
        bad = [b for b in blocks if not 1 <= b <= depth]
        if bad or not blocks:
            raise ConfigError(
                f"model.cross_attention_blocks={blocks}: blocks are 1-based and must lie in [1, {depth}] for this "
                f"{depth}-block backbone (or leave it null to scale the paper's 7, 10, 12)"
            )
        return tuple(blocks)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Build from a params.yaml section, rejecting unknown keys with a helpful message."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model: unknown key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**data)
