"""Per-stroke labels of a vector sketch: the majority category of each stroke's pixels, as Acc@S counts it (SPEC §7,
§10).

Each stroke votes over its full pixel set (pixels it shares with other strokes included); "no category" (pixels a
recipe's threshold left unlabelled, or off-ink pixels) is a candidate too. Ties go to the lowest category index, and
"no category" loses every tie (it comes after all categories), as in :func:`sketchseg.eval.metrics.evaluate_sketch`.
``confidence`` is the share of the stroke's pixels that voted for the winner. With ``model.labels: stroke`` a stroke
is labelled as a whole instead (:func:`stroke_argmax`: the argmax of the maps averaged over its pixels), and its
``confidence`` is the share of its pixels whose own argmax agrees (:func:`stroke_labels`). A stroke without any pixel
in the raster (e.g. entirely outside a clipped canvas) gets ``label=None``, ``index=NO_PIXELS`` (-1),
``confidence=0``; a stroke whose majority is "no category" gets ``label=None``, ``index=NO_CATEGORY`` (-2) and that
majority's share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sketchseg.data.strokes import StrokeRaster
from sketchseg.errors import InputError

NO_PIXELS = -1  # the stroke has no pixel in the raster (the value of segmenter.BACKGROUND)
NO_CATEGORY = -2  # most of the stroke's pixels have no category (the value of segmenter.UNLABELLED)


@dataclass(frozen=True)
class StrokeLabel:
    """One stroke's label: ``label`` (a category name, or None), ``index`` into the categories (or ``NO_PIXELS`` /
    ``NO_CATEGORY``), ``confidence`` (share of its pixels voting for it) and ``pixels`` (its pixel count)."""

    label: str | None
    index: int
    confidence: float
    pixels: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vote_stroke_labels(labels: np.ndarray, raster: StrokeRaster, categories: Sequence[str]) -> list[StrokeLabel]:
    """One :class:`StrokeLabel` per stroke of ``raster``, in stroke order, from a pixel label map ``labels``
    (``int [size, size]``: category index, negative = no category)."""
    if labels.shape != (raster.size, raster.size):
        raise InputError(f"label map of shape {labels.shape} does not match the {raster.size}x{raster.size} strokes")
    n_cat = len(categories)
    sizes = np.array([p.size for p in raster.pixels], dtype=np.int64)  # [S]
    owner = np.repeat(np.arange(len(sizes)), sizes)  # [P] stroke of each listed pixel
    pixels = np.concatenate(raster.pixels) if sizes.sum() else np.zeros(0, dtype=np.int64)  # [P]
    voted = labels.reshape(-1)[pixels].astype(np.int64)  # [P] only the strokes' pixels are read
    voted[voted < 0] = n_cat  # "no category" = n_cat, after every category
    key = owner * (n_cat + 1) + voted
    counts = np.bincount(key, minlength=len(sizes) * (n_cat + 1)).reshape(len(sizes), n_cat + 1)  # [S, C+1]
    winner = counts.argmax(axis=1)  # first maximum: the lowest index
    out = []
    for i, (k, n) in enumerate(zip(winner.tolist(), sizes.tolist(), strict=True)):
        if n == 0:
            out.append(StrokeLabel(label=None, index=NO_PIXELS, confidence=0.0, pixels=0))
        elif k == n_cat:
            out.append(StrokeLabel(label=None, index=NO_CATEGORY, confidence=float(counts[i, k] / n), pixels=n))
        else:
            out.append(StrokeLabel(label=categories[k], index=k, confidence=float(counts[i, k] / n), pixels=n))
    return out


def stroke_argmax(sim: np.ndarray, raster: StrokeRaster) -> np.ndarray:
    """Each stroke's category: the argmax of the similarity maps ``sim`` [C, size, size] averaged over the stroke's
    pixels (first maximum on ties); ``NO_PIXELS`` for a stroke without pixels: int64 [S]."""
    c = sim.shape[0]
    sizes = np.array([p.size for p in raster.pixels], dtype=np.int64)  # [S]
    out = np.full(len(sizes), NO_PIXELS, dtype=np.int64)
    if not sizes.sum():
        return out
    pixels = np.concatenate(raster.pixels)  # [P]
    values = sim.reshape(c, -1)[:, pixels].astype(np.float64)  # [C, P]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # [S]
    has = sizes > 0
    sums = np.add.reduceat(values, starts[has], axis=1)  # [C, S'] (reduceat needs non-empty segments)
    out[has] = (sums / sizes[has]).argmax(axis=0)
    return out


def stroke_label_map(sim: np.ndarray, raster: StrokeRaster) -> np.ndarray:
    """Labels by strokes (``model.labels: stroke``): every pixel of a stroke takes the stroke's category
    (:func:`stroke_argmax`), a pixel shared by strokes the last-drawn one's; pixels of no stroke their own argmax:
    int64 [size, size]."""
    labels = sim.argmax(axis=0).astype(np.int64)  # [H, W]
    owner = raster.owner_map().reshape(-1)  # [H * W]
    strokes = stroke_argmax(sim, raster)  # [S]
    flat = labels.reshape(-1)
    on = owner >= 0
    flat[on] = strokes[owner[on]]
    return labels


def stroke_labels(
    strokes: np.ndarray, pixel_labels: np.ndarray, raster: StrokeRaster, categories: Sequence[str]
) -> list[StrokeLabel]:
    """:class:`StrokeLabel` of strokes labelled as wholes (``strokes``: [S] category indices, :func:`stroke_argmax`):
    ``confidence`` is the share of the stroke's pixels whose own label in ``pixel_labels`` ([size, size], each pixel's
    argmax) agrees."""
    out = []
    for k, pixels in zip(strokes.tolist(), raster.pixels, strict=True):
        if pixels.size == 0:
            out.append(StrokeLabel(label=None, index=NO_PIXELS, confidence=0.0, pixels=0))
            continue
        agree = float(np.mean(pixel_labels.reshape(-1)[pixels] == k))
        out.append(StrokeLabel(label=categories[k], index=int(k), confidence=agree, pixels=int(pixels.size)))
    return out
