"""Selection of trainable parameters (SPEC §3.3, Fig. 6a).

| mode    | trainable                                                                          |
|---------|------------------------------------------------------------------------------------|
| ln+vpt  | every LayerNorm of the visual tower, visual prompts, cross-attention projections, θ |
| vpt     | visual prompts, cross-attention projections, θ                                     |
| ln      | every LayerNorm of the visual tower, cross-attention projections, θ                 |
| full    | the whole visual tower, visual prompts, cross-attention projections, θ              |

The text tower (and the logit scale) stays frozen in every mode.

When the patch-embedding filters train (``full``) and the foundation was trained with zero-mean filters (sketchseg's own
small CLIP, ``foundation.center_patch_filters``), they must stay zero-mean: a filter that drifts off zero mean answers
the white paper of every patch, and the similarity maps collapse (measured on the default foundation: test mIoU 51.6 ->
19.6 after 10 epochs of full fine-tuning at lr 3e-4 without re-centring, 51.7 with it). :func:`keep_filters_centred`
decides, the training loops re-centre after every optimiser step.
"""

from __future__ import annotations

import torch
from torch import nn

from sketchseg.errors import ConfigError
from sketchseg.model.config import FINETUNE_MODES


def configure_trainable(model: nn.Module, mode: str) -> None:
    """Set ``requires_grad`` on ``model`` (a SketchSegModel) according to ``mode``."""
    if mode not in FINETUNE_MODES:
        raise ConfigError(f"finetune={mode!r}: choose one of {', '.join(FINETUNE_MODES)}")
    for p in model.parameters():
        p.requires_grad_(False)
    visual = model.encoder.visual
    if mode == "full":
        for p in visual.parameters():
            p.requires_grad_(True)
    if mode in ("ln+vpt", "ln"):
        for module in visual.modules():
            if isinstance(module, nn.LayerNorm):
                for p in module.parameters():
                    p.requires_grad_(True)
    if mode in ("ln+vpt", "vpt", "full") and model.encoder.prompts is not None:
        for p in model.encoder.prompts.parameters():
            p.requires_grad_(True)
    for p in model.encoder.cross_q.parameters():
        p.requires_grad_(True)
    model.threshold.theta.requires_grad_(True)


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter of everything that will be trained."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def center_patch_filters(clip: nn.Module) -> None:
    """Give every patch-embedding filter zero mean over its pixels (per input channel)."""
    weight = clip.visual.conv1.weight  # [W, 3, p, p]
    weight -= weight.mean(dim=(2, 3), keepdim=True)


def keep_filters_centred(model: nn.Module, setting: bool | None = None) -> bool:
    """Whether to re-centre the patch-embedding filters after every optimiser step: never when they are frozen;
    ``setting`` when given; else (``None``) when they are zero-mean now, as a foundation trained here leaves them."""
    weight = model.clip.visual.conv1.weight  # [W, 3, p, p]
    if not weight.requires_grad:
        return False
    if setting is not None:
        return setting
    return bool(weight.detach().mean(dim=(2, 3)).abs().max() < 1e-6)
