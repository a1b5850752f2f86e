"""Similarity maps (Eq. 3): cosine between category embeddings and patch embeddings, upsampled to the sketch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sketchseg.model.shifts import average_shifted


def similarity_maps(
    patches: torch.Tensor,
    text: torch.Tensor,
    grid: tuple[int, int],
    normalise_text: bool = True,
    shifts: int = 1,
    mode: str = "bicubic",
) -> torch.Tensor:
    """Cosine similarity of every patch with every category.

    patches: [B, K, D]; text: [C, D] (one vocabulary for the batch) or [B, C, D] (per sample).
    Returns [B, C, rows, cols] with K = rows * cols. ``normalise_text=False`` takes the text vectors as they are
    (e.g. embeddings minus the empty prompt's, which the authors do not renormalise); patches are always L2-normalised.
    With ``shifts`` n > 1 the patches are those of n x n shifted copies of each sketch (K = n * n * rows * cols,
    :mod:`sketchseg.model.shifts`) and the maps are averaged on a finer grid: [B, C, n rows, n cols].
    """
    p = F.normalize(patches, dim=-1)
    t = F.normalize(text, dim=-1) if normalise_text else text
    if t.dim() == 2:
        sim = torch.einsum("bkd,cd->bck", p, t)  # [B, C, K]
    else:
        sim = torch.einsum("bkd,bcd->bck", p, t)  # [B, C, K]
    if shifts > 1:
        copies = sim.reshape(sim.shape[0], sim.shape[1], shifts * shifts, grid[0], grid[1])
        return average_shifted(copies, shifts, mode)  # [B, C, n rows, n cols]
    return sim.reshape(sim.shape[0], sim.shape[1], grid[0], grid[1])


def upsample_maps(maps: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """[B, C, rows, cols] -> [B, C, H, W] (bicubic by default, as the paper; the authors' code used bilinear)."""
    return F.interpolate(maps, size=size, mode=mode, align_corners=False)


def minmax_normalise(maps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Min-max normalise each map over its spatial dimensions to [0, 1]: [B, C, h, w] -> [B, C, h, w]."""
    flat = maps.flatten(2)
    lo = flat.min(dim=-1, keepdim=True).values
    hi = flat.max(dim=-1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(eps)).view_as(maps)
