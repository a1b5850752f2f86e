"""Fitting a vector sketch onto the model's square canvas and rasterising it as the benchmark does (SPEC §6.1).

The drawing's region is mapped onto the ``size`` x ``size`` raster (512, the benchmark's) with its aspect ratio kept:
scale = size / the region's longest side, the region centred (a whole-pixel offset on the shorter side), so
``pixel = (point - origin) * scale + offset``. The region is:
- the declared canvas ``(0, 0, width, height)`` when the input gives one and every point lies inside it (FS-COCO's
  256x256 canvas thus maps onto 512x512 with scale 2 and no offset: exactly the benchmark's raster);
- the union of the declared canvas and the points' bounding box when some points lie outside the canvas (real CBSC
  files have them): nothing is cut off and a note says so; ``clip_to_canvas=True`` (the evaluation protocol) keeps
  the canvas instead and drops the pixels that fall outside the raster, as the benchmark does;
- without a declared canvas, the points' bounding box grown by ``MARGIN`` (4%) of its longest side on every side
  (a drawing of one point: a unit square around it).
Each stroke is then rasterised alone by :func:`sketchseg.data.strokes.rasterise` (coordinates rounded, 1-pixel
segments between consecutive points, 3x3 cross dilation); a stroke of one point or of zero length is a dot (its
pixel and the 4 neighbours). A point exactly on the region's far edge lands one pixel outside the raster and only
its dilation's inner neighbour remains, as in the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sketchseg.data.strokes import RASTER, StrokeRaster, rasterise
from sketchseg.data.vector import VectorSketch

MARGIN = 0.04  # white paper around a drawing without a canvas, as a share of its longest side


@dataclass(frozen=True)
class Fit:
    """Drawing coordinates -> raster pixels: ``pixel = (point - origin) * scale + offset``.

    ``region``: ``(x0, y0, width, height)`` of the fitted region in drawing units (what an SVG viewBox shows);
    ``offset``: ``(x, y)`` whole pixels of the region's top-left corner in the ``size`` x ``size`` raster."""

    region: tuple[float, float, float, float]
    scale: float
    offset: tuple[int, int]
    size: int

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``[n, 2]`` drawing points -> ``[n, 2]`` float raster coordinates."""
        x0, y0 = self.region[0], self.region[1]
        return (np.asarray(points, dtype=np.float64) - (x0, y0)) * self.scale + self.offset


@dataclass(frozen=True)
class RasterisedVector:
    """A vector sketch, how it was fitted and its per-stroke pixel sets (``raster.pixels[i]``: stroke ``i``)."""

    vector: VectorSketch
    fit: Fit
    raster: StrokeRaster
    notes: tuple[str, ...] = field(default_factory=tuple)


def fit_region(vector: VectorSketch, size: int = RASTER, clip_to_canvas: bool = False) -> tuple[Fit, list[str]]:
    """The :class:`Fit` of ``vector`` onto a ``size`` x ``size`` raster (rules in the module doc) and its notes."""
    notes: list[str] = []
    if vector.canvas is not None and clip_to_canvas:
        region = (0.0, 0.0, *vector.canvas)
    elif vector.canvas is not None:
        w, h = vector.canvas
        x0, y0, x1, y1 = vector.bounds()
        if not (x0 < 0 or y0 < 0 or x1 > w or y1 > h):
            region = (0.0, 0.0, w, h)
        else:
            region = (min(x0, 0.0), min(y0, 0.0), max(x1, w) - min(x0, 0.0), max(y1, h) - min(y0, 0.0))
            notes.append(
                f"points outside the declared {w:g}x{h:g} canvas (x {x0:g}..{x1:g}, y {y0:g}..{y1:g}): "
                "fitted the canvas and the points together"
            )
    else:
        x0, y0, x1, y1 = vector.bounds()
        longest = max(x1 - x0, y1 - y0)
        pad = MARGIN * longest if longest > 0 else 0.5
        region = (x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad)
    scale = size / max(region[2], region[3])
    drawn_w, drawn_h = round(region[2] * scale), round(region[3] * scale)
    offset = ((size - drawn_w) // 2, (size - drawn_h) // 2)
    return Fit(region=region, scale=scale, offset=offset, size=size), notes


def rasterise_vector(vector: VectorSketch, size: int = RASTER, clip_to_canvas: bool = False) -> RasterisedVector:
    """Fit ``vector`` onto the ``size`` x ``size`` canvas and rasterise every stroke alone (module doc)."""
    fit, notes = fit_region(vector, size, clip_to_canvas)
    raster = rasterise([fit.apply(s) for s in vector.strokes], size=size, canvas=size)
    empty = [i for i, p in enumerate(raster.pixels) if p.size == 0]
    if empty:
        notes.append(f"{len(empty)} stroke(s) with no pixel inside the canvas: {empty[:10]}")
    return RasterisedVector(vector=vector, fit=fit, raster=raster, notes=tuple(notes))
