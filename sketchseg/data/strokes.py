"""Vector strokes: splitting an FS-COCO vector sketch into strokes and rasterising them (SPEC §6.1, §7).

A vector sketch is an ``(n, 3)`` float array of absolute ``[x, y, pen]`` rows on a 256x256 canvas.
A stroke ends at a row whose pen flag is 1; rows after the last such flag belong to no stroke.

The benchmark rasterises every stroke alone at 512x512: coordinates x2, rounded, 1-pixel line
segments between consecutive points, then a 3x3 cross dilation. The sketch is the union of
strokes, black (0) on white (255).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sketchseg.errors import DataError

CANVAS = 256  # size of the vector canvas of FS-COCO
RASTER = 512  # size at which the benchmark rasterises strokes

# 3x3 cross: the pixel and its 4-neighbours.
_CROSS = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.int64)


def split_strokes(vector: np.ndarray, source: str = "<array>") -> list[np.ndarray]:
    """Split an ``(n, 3)`` ``[x, y, pen]`` array into a list of ``(n_i, 2)`` point arrays.

    ``source`` names the file in error messages.
    """
    vector = np.asarray(vector)
    if vector.ndim != 2 or vector.shape[1] != 3:
        raise DataError(f"{source}: vector sketch must be an (n, 3) [x, y, pen] array, got shape {vector.shape}")
    if not np.issubdtype(vector.dtype, np.number):
        raise DataError(f"{source}: vector sketch must be numeric, got dtype {vector.dtype}")
    if not np.all(np.isfinite(vector)):
        raise DataError(f"{source}: vector sketch contains NaN or infinite coordinates")
    ends = np.flatnonzero(vector[:, 2] == 1)
    strokes: list[np.ndarray] = []
    start = 0
    for end in ends:
        strokes.append(vector[start : end + 1, :2].astype(np.float64))
        start = end + 1
    return strokes


def _line_pixels(points: np.ndarray) -> np.ndarray:
    """Integer pixels ``[m, 2]`` (x, y) of 1-pixel segments joining consecutive integer points."""
    if len(points) == 1:
        return points.copy()
    p0, p1 = points[:-1], points[1:]
    steps = np.max(np.abs(p1 - p0), axis=1)  # [n-1]
    counts = steps + 1
    seg = np.repeat(np.arange(len(p0)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    denom = np.maximum(steps, 1)[seg]
    t = offsets / denom
    xy = p0[seg] + (p1[seg] - p0[seg]) * t[:, None]
    return np.rint(xy).astype(np.int64)


@dataclass(frozen=True)
class StrokeRaster:
    """Per-stroke pixel sets of a rasterised sketch.

    ``pixels[i]`` holds the flat indices (``y * size + x``) of stroke ``i``'s pixels, sorted and unique.
    """

    size: int
    pixels: tuple[np.ndarray, ...]

    def union_mask(self) -> np.ndarray:
        """Boolean ``[size, size]`` mask of all stroke pixels."""
        mask = np.zeros(self.size * self.size, dtype=bool)
        for p in self.pixels:
            mask[p] = True
        return mask.reshape(self.size, self.size)

    def image(self) -> np.ndarray:
        """``uint8 [size, size]`` raster: strokes black (0) on white (255)."""
        return np.where(self.union_mask(), 0, 255).astype(np.uint8)

    def owner_map(self) -> np.ndarray:
        """``int32 [size, size]``: index of the stroke owning each pixel, -1 for background.

        Where strokes overlap, the stroke drawn LAST wins (it lies on top), a deterministic rule.
        """
        owner = np.full(self.size * self.size, -1, dtype=np.int32)
        for i, p in enumerate(self.pixels):
            owner[p] = i
        return owner.reshape(self.size, self.size)

    def label_map(self, stroke_labels: list[int] | np.ndarray, background: int = -1) -> np.ndarray:
        """``int32 [size, size]`` label of each pixel from per-stroke integer labels (last stroke wins)."""
        labels = np.asarray(stroke_labels, dtype=np.int32)
        if len(labels) != len(self.pixels):
            raise DataError(f"{len(labels)} stroke labels for {len(self.pixels)} strokes")
        owner = self.owner_map()
        out = np.full(owner.shape, background, dtype=np.int32)
        fg = owner >= 0
        out[fg] = labels[owner[fg]]
        return out


def rasterise(strokes: list[np.ndarray], size: int = RASTER, canvas: int = CANVAS) -> StrokeRaster:
    """Rasterise each stroke alone at ``size`` x ``size`` (coordinates scaled by ``size / canvas``)."""
    scale = size / canvas
    pixels = []
    for stroke in strokes:
        pts = np.rint(np.asarray(stroke, dtype=np.float64)[:, :2] * scale).astype(np.int64)
        line = _line_pixels(pts)  # [m, 2]
        grown = (line[:, None, :] + _CROSS[None, :, :]).reshape(-1, 2)
        inside = (grown[:, 0] >= 0) & (grown[:, 0] < size) & (grown[:, 1] >= 0) & (grown[:, 1] < size)
        grown = grown[inside]
        pixels.append(np.unique(grown[:, 1] * size + grown[:, 0]).astype(np.int64))
    return StrokeRaster(size=size, pixels=tuple(pixels))
