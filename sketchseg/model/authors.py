"""The authors' released checkpoint ``sketch_seg_best_miou.pth`` (shared/authors_checkpoint.md) as a SketchSegModel.

Their file is a plain state dict of 407 tensors (ViT-B/16, keys prefixed ``module.`` by DataParallel; a copy saved
without it is accepted too). It is recognised by its keys and converted into an ordinary :class:`SketchSegModel`
(open_clip ViT-B-16 with QuickGELU, ``exit_block: authors``), which saves and reloads as a sketchseg checkpoint:

- backbone: every open_clip tensor under the same name, except that blocks 7-12 hold CLIP Surgery's packed
  ``attn.qkv`` / ``attn.proj``, the same numbers as open_clip's ``attn.in_proj_weight`` / ``in_proj_bias`` /
  ``out_proj.weight`` / ``out_proj.bias`` (q, k, v stacked in that order);
- prompts: ``visual.prompt_embeddings`` [1, 3, 768] -> ``encoder.prompts.tokens`` [3, 768] (their prompts sit
  before the patches, ours after: attention is permutation-equivariant, the order does not matter);
- exit block: the value and output projections, the feed-forward and the two norms of
  ``visual.transformer.ca.encoder.layer2.0`` -> ``encoder.exit_block`` (:mod:`sketchseg.model.exit_block`).

Dropped, and said so in one log line: the text tower's copy of their cross-attention (``transformer.ca.*``), the
layers of the visual copy that never run (``ca.encoder.layers.0``, ``ca.encoder.layer1.0``), the query and key
projections and ``ca.text_projection`` (no effect on the output: their keys are one text vector repeated), and the
spare ``visual.attn.*`` of their fork.

Our cross-attention projections (``encoder.cross_q``, text embedding -> category-token query, SPEC §3.5) have no
counterpart in their file: their query projection maps image tokens, not text. A converted model keeps the freshly
initialised projections of ``model.seed`` 0, so it is a complete model that trains like any other
(``train.init_checkpoint``); segmentation never uses them (they act only on the category level), and their threshold
τ is not in the file either (the learnable τ starts at ``threshold_init``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from sketchseg.errors import CheckpointError
from sketchseg.model.config import BackboneConfig, ModelConfig

log = logging.getLogger(__name__)

PREFIX = "module."  # nn.DataParallel's
NAME = "sketch_seg_best_miou.pth"
NUM_TENSORS = 407
VV_BLOCKS = range(6, 12)  # 0-based blocks with CLIP Surgery's packed attention (1-based 7-12)
PACKED = {"in_proj_weight": "qkv.weight", "in_proj_bias": "qkv.bias", "out_proj.weight": "proj.weight",
          "out_proj.bias": "proj.bias"}  # fmt: skip
PROMPTS = "visual.prompt_embeddings"
EXIT_LAYER = "visual.transformer.ca.encoder.layer2.0."
EXIT_PARTS = {"value": "self_attn.linears.2", "output": "self_attn.linears.3", "ff_in": "feed_forward.w_1",
              "ff_out": "feed_forward.w_2"}  # fmt: skip  # ours -> theirs, each .weight and .bias
EXIT_NORMS = {"norm0": "sublayer.0.norm", "norm1": "sublayer.1.norm"}  # ours -> theirs, each .a and .b
# Tensors of their file that nothing on their inference path reads, by group (first matching prefix wins).
DROPPED = {
    "transformer.ca.": "the text tower's cross-attention copy",
    "visual.transformer.ca.": "visual cross-attention layers.0, layer1.0, query/key projections, text_projection",
    "visual.attn.": "the fork's spare attention module",
}
SIGNATURE = (PROMPTS, EXIT_LAYER + "self_attn.linears.2.weight", "visual.transformer.resblocks.11.attn.qkv.weight")


def authors_model_config() -> ModelConfig:
    """The configuration of a converted model: ViT-B-16, QuickGELU, 3 prompts, v-v in blocks 7-12, their exit block."""
    backbone = BackboneConfig(name="ViT-B-16", pretrained=None, force_quick_gelu=True)
    return ModelConfig(backbone=backbone, num_prompts=3, vv=True, vv_layers=6, exit_block="authors")


def strip_prefix(state: Mapping[str, object]) -> dict[str, object]:
    """Keys without DataParallel's ``module.`` prefix (when every key carries it, as in their file)."""
    if state and all(isinstance(k, str) and k.startswith(PREFIX) for k in state):
        return {k[len(PREFIX) :]: v for k, v in state.items()}
    return dict(state)


def looks_like_authors(obj: object) -> bool:
    """True for a mapping whose keys (``module.`` stripped or not) include one of their layout's distinctive keys."""
    if not isinstance(obj, Mapping):
        return False
    keys = strip_prefix(obj).keys()
    return any(k in keys for k in SIGNATURE) or any(isinstance(k, str) and k.startswith(EXIT_LAYER) for k in keys)


def their_clip_key(name: str) -> str:
    """open_clip key of the CLIP model -> the same tensor's key in their file."""
    parts = name.split(".")
    if name.startswith("visual.transformer.resblocks.") and int(parts[3]) in VV_BLOCKS and parts[4] == "attn":
        rest = ".".join(parts[5:])
        if rest in PACKED:
            return ".".join(parts[:5] + [PACKED[rest]])
    return name


def key_map(model: torch.nn.Module) -> dict[str, str]:
    """Our state-dict key -> their key, for every tensor taken from their file."""
    mapping = {f"clip.{k}": their_clip_key(k) for k in model.clip.state_dict()}
    mapping["encoder.prompts.tokens"] = PROMPTS
    for ours, theirs in EXIT_PARTS.items():
        for leaf in ("weight", "bias"):
            mapping[f"encoder.exit_block.{ours}.{leaf}"] = f"{EXIT_LAYER}{theirs}.{leaf}"
    for ours, theirs in EXIT_NORMS.items():
        for leaf in ("a", "b"):
            mapping[f"encoder.exit_block.{ours}.{leaf}"] = f"{EXIT_LAYER}{theirs}.{leaf}"
    return mapping


def _listed(keys: list[str], limit: int = 4) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def convert_state_dict(state: Mapping[str, object], source: str = "state dict") -> torch.nn.Module:
    """Their state dict (with or without ``module.``) -> a SketchSegModel holding its weights (eval mode).

    Raises CheckpointError, in one line, for a missing tensor, a tensor of another shape or an unknown key.
    """
    from sketchseg.model.network import SketchSegModel

    state = strip_prefix(state)
    bad_values = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad_values:
        raise CheckpointError(f"{source}: entries that are not tensors ({_listed(bad_values)}); expected a state dict")
    model = SketchSegModel(authors_model_config())
    mapping = key_map(model)
    missing = [theirs for theirs in mapping.values() if theirs not in state]
    if missing:
        raise CheckpointError(
            f"{source}: the authors' checkpoint layout ({NAME}, ViT-B/16) lacks {len(missing)} of its tensors: "
            f"{_listed(missing)}; the file is incomplete or another model"
        )
    used = set(mapping.values())
    dropped: dict[str, int] = {}
    unknown = []
    for key in state:
        if key in used:
            continue
        group = next((p for p in DROPPED if key.startswith(p)), None)
        if group is None:
            unknown.append(key)
        else:
            dropped[group] = dropped.get(group, 0) + 1
    if unknown:
        raise CheckpointError(
            f"{source}: tensors the authors' checkpoint layout ({NAME}) does not have: {_listed(unknown)}; "
            "another variant of their model (deep prompts?) cannot be converted"
        )
    target = model.state_dict()
    with torch.no_grad():
        for ours, theirs in mapping.items():
            src = state[theirs]
            dst = target[ours]
            expected = (1, *dst.shape) if theirs == PROMPTS else tuple(dst.shape)
            if tuple(src.shape) != expected:
                raise CheckpointError(
                    f"{source}: {theirs} has shape {list(src.shape)}, the authors' ViT-B/16 layout has "
                    f"{list(expected)}; the file is another model"
                )
            dst.copy_(src.reshape(dst.shape))  # in place: state_dict() tensors share the parameters' storage
    groups = "; ".join(f"{prefix}* {n} ({DROPPED[prefix]})" for prefix, n in dropped.items())
    log.info(
        "%s: the authors' checkpoint: %d tensors converted, %d not on their inference path dropped: %s",
        source,
        len(mapping),
        sum(dropped.values()),
        groups or "none",
    )
    return model.eval()


def load_authors_checkpoint(state: Mapping[str, object], path: str | Path) -> torch.nn.Module:
    """Convert the authors' state dict read from ``path``; its weights line names the file and its sha256."""
    from sketchseg.io_utils import file_sha256

    path = Path(path)
    model = convert_state_dict(state, source=str(path))
    sha = file_sha256(path)
    model.origin = f"the authors' checkpoint {path} (sha256 {sha}; ViT-B-16, QuickGELU, their exit block)"
    model.weights = f"{model.origin}; cross-attention projections: new, seed {model.cfg.seed}"
    model.checkpoint_meta = {"converted_from": "authors", "authors_checkpoint": str(path), "authors_sha256": sha}
    return model
