"""Learnable threshold with a straight-through mask, and the masked sketch (SPEC §3.6).

τ = 0.4 + 0.5·sigmoid(θ). The mask is hard in the forward pass (``m > τ``) and takes the gradient of the surrogate
``sigmoid((m - τ) / T)`` in the backward pass, so both θ and the similarity maps receive gradient (the authors'
threshold never did).
"""

from __future__ import annotations

import math

import torch
from torch import nn

TAU_MIN = 0.4
TAU_SPAN = 0.5


class LearnableThreshold(nn.Module):
    """Holds θ; ``tau()`` gives τ in (0.4, 0.9)."""

    def __init__(self, init: float = 0.7, temperature: float = 0.05) -> None:
        super().__init__()
        p = (init - TAU_MIN) / TAU_SPAN
        self.theta = nn.Parameter(torch.tensor(math.log(p / (1 - p))))
        self.temperature = temperature

    def tau(self) -> torch.Tensor:
        return TAU_MIN + TAU_SPAN * torch.sigmoid(self.theta)

    def set_tau(self, value: float) -> None:
        """Set τ (e.g. after calibration on validation)."""
        if not TAU_MIN < value < TAU_MIN + TAU_SPAN:
            raise ValueError(f"threshold {value} outside ({TAU_MIN}, {TAU_MIN + TAU_SPAN})")
        p = (value - TAU_MIN) / TAU_SPAN
        with torch.no_grad():
            self.theta.fill_(math.log(p / (1 - p)))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Normalised maps [..., H, W] in [0, 1] -> straight-through mask of the same shape (values 0/1)."""
        return straight_through_mask(maps, self.tau(), self.temperature)


def straight_through_mask(maps: torch.Tensor, tau: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hard ``maps > tau`` forward, gradient of ``sigmoid((maps - tau) / temperature)`` backward."""
    soft = torch.sigmoid((maps - tau) / temperature)
    hard = (maps > tau).to(maps.dtype)
    return hard + (soft - soft.detach())  # exactly 0/1 forward, surrogate gradient backward


def mask_sketch(ink: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Keep the strokes where ``weights`` says so; everything else becomes background.

    ink: [N, 1, H, W] in [0, 1] (1 = stroke); weights: [N, 1, H, W] (0/1 mask, or similarities for the
    "w/o thresholding" ablation). Returns the masked sketch as intensities [N, 1, H, W], 1 = white paper.
    """
    return 1.0 - ink * weights
