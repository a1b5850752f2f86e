"""Finer similarity maps at inference (``model.patch_shifts``): the sketch is encoded ``n x n`` times, moved by
fractions of a patch, and the similarity maps of the copies, moved back, are averaged on a grid ``n`` times finer
than the patches (a 7 x 7 grid gives 14 x 14 maps with ``n = 2``): every part of the drawing is seen near a patch
centre by some copy.

Copy ``(a, b)`` moves the drawing ``a * patch / n`` input pixels down and ``b * patch / n`` right (copy ``(0, 0)`` is
the sketch itself; measured on FrISS, centred offsets did no better). Paper shifted in from an edge is white; cells
a copy's shift brought in from outside do not count in its average. ``patch`` must be a multiple of ``n``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sketchseg.errors import ConfigError


def shift_offsets(patch: int, n: int) -> list[int]:
    """Input-pixel offsets of the ``n`` copies along one axis, ascending (16, 2 -> [0, 8])."""
    if n < 1 or patch % n:
        raise ConfigError(
            f"model.patch_shifts={n}: the {patch}-pixel patches must split into {n} whole-pixel offsets; use 1, 2, 4 "
            f"or another divisor of {patch}"
        )
    return [k * (patch // n) for k in range(n)]


def shift(intensity: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The sketches moved by ``dy`` rows and ``dx`` columns, white paper (1.0) shifted in: [B, 1, H, W]."""
    out = torch.ones_like(intensity)
    h, w = intensity.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = intensity[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def shifted_copies(intensity: torch.Tensor, patch: int, n: int) -> torch.Tensor:
    """``n x n`` shifted copies of every sketch, copy-major: [n * n * B, 1, H, W] (copy ``a * n + b`` moved by
    offsets ``a`` (rows) and ``b`` (columns) of :func:`shift_offsets`)."""
    offsets = shift_offsets(patch, n)
    return torch.cat([shift(intensity, dy, dx) for dy in offsets for dx in offsets])


def sample_major(patches: torch.Tensor, n: int) -> torch.Tensor:
    """Patch embeddings of the copies of :func:`shifted_copies`, [n * n * B, K, D] (copy-major), as each sketch's
    copies one after the other: [B, n * n * K, D] (what :class:`~sketchseg.model.encoder.SketchFeatures` holds with
    ``shifts = n``, so that one sketch's features are one row)."""
    copies, k, d = n * n, patches.shape[1], patches.shape[2]
    return patches.view(copies, -1, k, d).transpose(0, 1).reshape(-1, copies * k, d)


def average_shifted(maps: torch.Tensor, n: int, mode: str = "bicubic") -> torch.Tensor:
    """The maps of the ``n x n`` copies, [B, C, n * n, rows, cols], as one map on a grid ``n`` times finer,
    [B, C, n rows, n cols]: each copy's map upsampled (``mode``, ``align_corners=False``) to that grid, whose cells are
    ``patch / n`` pixels so that copy ``k``'s offset is ``k`` cells, moved back by its offset and averaged over the
    copies that cover the cell (a copy does not cover the cells its shift brought in)."""
    b, c, copies, rows, cols = maps.shape
    h, w = rows * n, cols * n
    up = F.interpolate(maps.reshape(b, c * copies, rows, cols), size=(h, w), mode=mode,
                       align_corners=False).view(b, c, copies, h, w)  # fmt: skip
    total = torch.zeros(b, c, h, w, dtype=maps.dtype, device=maps.device)
    count = torch.zeros(h, w, dtype=maps.dtype, device=maps.device)
    for index in range(copies):
        dy, dx = index // n, index % n  # the drawing moved by (dy, dx) cells: its point (y, x) is at (y + dy, x + dx)
        total[:, :, : h - dy, : w - dx] += up[:, :, index, dy:, dx:]
        count[: h - dy, : w - dx] += 1
    return total / count
