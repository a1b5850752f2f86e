"""The authors' exit block (``model.exit_block: authors``): the one part of their cross-attention module that their
code runs at inference, a text-independent map of a path's token sequence after the last block
(shared/authors_checkpoint.md, "Cross-attention").

Their layer (``ca.encoder.layer2.0``) takes its queries and values from the sketch tokens and its keys from the
category text repeated once per token, so every attention weight is ``1 / L`` whatever the text, and the layer reduces
to (x: the L tokens of one path, one sketch)::

    c = W3 · mean_j(W2 x_j + b2) + b3
    y = N0(x + c)
    z = N1(y + w2 · relu(w1 · y + b1) + b2')

with N their norm (:class:`AuthorsNorm`). Only ``W2, b2`` (value projection), ``W3, b3`` (output projection), the
feed-forward and the two norms matter; their query and key projections and ``text_projection`` have no effect.
The block is needed to reproduce the outputs of their released checkpoint; a model without it (``exit_block: none``)
is the encoder of SPEC §3.2. It holds fixed weights: no fine-tuning mode trains it (sketchseg.model.finetune).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 1024  # their feed-forward width (d_ff of Cross_Attention)


class AuthorsNorm(nn.Module):
    """``a * (x - mean) / (std + eps) + b`` over the last axis; std unbiased (n - 1), eps added to the std.

    Not ``nn.LayerNorm`` (biased variance, eps inside the square root): the difference is visible at 1e-3."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.ones(width))
        self.b = nn.Parameter(torch.zeros(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, keepdim=True)  # unbiased
        return self.a * (x - mean) / (std + self.eps) + self.b


class AuthorsExitBlock(nn.Module):
    """Text-independent token map applied to each path's whole sequence after the last block: [B, L, W] -> [B, L, W].

    Parameter names follow their keys: ``value`` = ``self_attn.linears.2``, ``output`` = ``self_attn.linears.3``,
    ``norm0``/``norm1`` = ``sublayer.0/1.norm``, ``ff_in``/``ff_out`` = ``feed_forward.w_1``/``w_2``.
    Dropout (0.1 in their training) is omitted: the block only runs with fixed weights.
    """

    def __init__(self, width: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.value = nn.Linear(width, width)
        self.output = nn.Linear(width, width)
        self.norm0 = AuthorsNorm(width)
        self.ff_in = nn.Linear(width, hidden)
        self.ff_out = nn.Linear(hidden, width)
        self.norm1 = AuthorsNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # uniform attention: the mean of the values, the same for every token (the mean commutes with the affine map)
        c = self.output(self.value(x.mean(dim=1, keepdim=True)))  # [B, 1, W]
        y = self.norm0(x + c)  # [B, L, W]
        return self.norm1(y + self.ff_out(F.relu(self.ff_in(y))))  # [B, L, W]
