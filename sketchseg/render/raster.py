"""Raster renderings of a result: the overlay (strokes coloured by category, legend), isolated-stroke PNGs, and
thickening strokes for display (the label PNG: :mod:`sketchseg.render.labels`).

For vector input the overlay colours whole strokes by their stroke label (where strokes overlap, the stroke drawn
last is on top); for an image it colours every stroke pixel by its own label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from sketchseg.model.stroke_labels import NO_CATEGORY
from sketchseg.render.colours import INK_COLOUR, UNLABELLED_COLOUR, UNTRAINED_TEXT, colour
from sketchseg.render.legend import draw_legend, legend_entries


def isolated_png(mask: np.ndarray) -> Image.Image:
    """``bool [H, W]`` isolated strokes of one category -> black on white grayscale PNG (built in uint8: the
    image's size in bytes, not eight times it)."""
    return Image.fromarray(np.where(mask, np.uint8(0), np.uint8(255)))


def stroke_pixel_labels(seg) -> np.ndarray:
    """``int32 [H, W]``: each stroke pixel labelled with its stroke's label (last stroke on top), -1 elsewhere.
    Needs a result of vector input (``seg.vector``, ``seg.stroke_labels``)."""
    return seg.vector.raster.label_map([s.index for s in seg.stroke_labels], background=-1)


def pixel_colours(seg) -> np.ndarray:
    """``uint8 [H, W, 3]``: white paper, strokes coloured by category (by stroke label for vector input)."""
    labels = stroke_pixel_labels(seg) if seg.stroke_labels is not None else seg.labels
    h, w = seg.labels.shape
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    canvas[seg.strokes] = INK_COLOUR
    for k in range(len(seg.categories)):
        canvas[labels == k] = colour(k)
    canvas[labels == NO_CATEGORY] = UNLABELLED_COLOUR
    return canvas


def overlay_image(seg, font_size: int = 14) -> Image.Image:
    """Strokes coloured by label on white, faint original underneath, legend on the right; above the legend, in red,
    "UNTRAINED ..." when the weights are a random initialisation (``seg.untrained``)."""
    warning = UNTRAINED_TEXT if seg.untrained else None
    return draw_legend(Image.fromarray(pixel_colours(seg)), legend_entries(seg), font_size, warning)


def _shift(a: np.ndarray, dy: int, dx: int, fill: Any) -> np.ndarray:
    """``a`` moved by ``(dy, dx)`` pixels, uncovered border filled with ``fill`` (no wrap-around)."""
    out = np.empty_like(a)
    out[...] = fill
    h, w = a.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[max(-dy, 0) : h - max(dy, 0),
                                                                      max(-dx, 0) : w - max(dx, 0)]
    return out


def thicken(rgb: np.ndarray, mask: np.ndarray, radius: int, paper: Any = 1.0) -> np.ndarray:
    """Grow coloured stroke pixels (``mask``) of ``rgb [H, W, 3]`` over neighbouring background pixels by ``radius``
    4-neighbour steps (display only; ``paper``: the value shifted in at the border)."""
    for _ in range(radius):
        grown_rgb, grown = rgb.copy(), mask.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            src_mask = _shift(mask, dy, dx, False)
            take = src_mask & ~grown
            grown_rgb[take] = _shift(rgb, dy, dx, paper)[take]
            grown |= take
        rgb, mask = grown_rgb, grown
    return rgb
