"""Selection of trainable parameters (SPEC §3.3, Fig. 6a).

| mode    | trainable                                                                          |
|---------|------------------------------------------------------------------------------------|
| ln+vpt  | every LayerNorm of the visual tower, visual prompts, cross-attention projections, θ |
| vpt     | visual prompts, cross-attention projections, θ                                     |
| ln      | every LayerNorm of the visual tower, cross-attention projections, θ                 |
| full    | the whole visual tower, visual prompts, cross-attention projections, θ              |

The text tower (and the logit scale) stays frozen in every mode.
"""

from __future__ import annotations

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
