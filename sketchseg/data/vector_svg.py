"""SVG documents as vector sketches, parsed by ``svgelements`` (transforms, viewBox, units and shapes resolved there).

- Drawable elements: ``path``, ``polyline``, ``polygon``, ``line``, ``rect``, ``circle``, ``ellipse``, in document
  order; elements inside ``<defs>`` (unless used), text and images are not strokes. Elements with ``display: none``
  or ``visibility: hidden`` are skipped.
- Every connected subpath is one stroke (an ``M`` inside a path starts a new stroke); a subpath that only moves
  (``M x y`` alone) draws nothing and is skipped; a zero-length one (``M x y L x y``) is a dot.
- Coordinates are those of the root viewport after every transform (``transform``, ``viewBox`` mapped onto
  ``width``/``height``). The canvas is that viewport when the root gives ``width``/``height`` or a ``viewBox``,
  else none (the drawing's bounding box is fitted).
- Straight segments keep their end points; curves and arcs are sampled every raster pixel of the model's canvas
  (the drawing's longest side / 512), at least 2 and at most 2048 points per segment.
"""

from __future__ import annotations

import io
import math

import numpy as np
import svgelements as se

from sketchseg.data.strokes import RASTER
from sketchseg.data.vector import MAX_COORDINATE, VectorSketch, check_magnitude
from sketchseg.errors import InputError

MAX_POINTS_PER_SEGMENT = 2048


def _visible(element: se.SVGElement) -> bool:
    values = getattr(element, "values", {})
    return values.get("display") != "none" and values.get("visibility") not in ("hidden", "collapse")


def _subpaths(document: se.SVG) -> list[list[se.PathSegment]]:
    """The drawing segments of every connected subpath of every visible shape, in document order."""
    out = []
    for element in document.elements():
        if not isinstance(element, se.Shape) or not _visible(element):
            continue
        for sub in se.Path(element).as_subpaths():
            segments = [s for s in sub if not isinstance(s, se.Move) and s.start is not None and s.end is not None]
            if segments:
                out.append(segments)
    return out


def _sample(segments: list[se.PathSegment], step: float, budget: list[int] | None = None) -> np.ndarray:
    """``[n, 2]`` points along one subpath: line ends, curves every ``step`` units. ``budget``: ``[points left]``,
    decremented before each segment is sampled; below 0 the sampling stops (the caller refuses the document)."""
    points = [np.array([[segments[0].start.x, segments[0].start.y]])]
    for seg in segments:
        line = isinstance(seg, (se.Line, se.Close))
        n = 1 if line else int(min(max(math.ceil(seg.length() / step), 2), MAX_POINTS_PER_SEGMENT))
        if budget is not None:
            budget[0] -= n
            if budget[0] < 0:
                break
        if line:
            points.append(np.array([[seg.end.x, seg.end.y]]))
        else:
            points.append(np.asarray(seg.npoint(np.linspace(0.0, 1.0, n + 1)[1:]), dtype=np.float64))
    return np.concatenate(points)  # [n, 2]


def read_svg(
    text: str | bytes, source: str = "<svg>", max_points: int | None = None, too_large: type[InputError] = InputError
) -> VectorSketch:
    """Parse an SVG document into a :class:`VectorSketch` (module doc); InputError naming ``source`` on failure.
    ``max_points``: ``too_large`` as soon as sampling passes that many points (a 2 MB document of long curves
    would sample 59 M points, 4 GB, before any later check)."""
    try:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\\ud800") is no text an XML parser can read
        raise InputError(f"{source}: not valid Unicode text ({exc.reason} at character {exc.start})") from None
    try:
        document = se.SVG.parse(io.BytesIO(data))
        if not isinstance(document, se.SVG):
            raise ValueError("the root element is not <svg>")
        subpaths = _subpaths(document)
    except Exception as exc:  # the parser raises many kinds (XML syntax, attributes, a non-SVG root)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{source}: not a readable SVG document ({reason})") from None
    if not subpaths:
        raise InputError(
            f"{source}: SVG without drawable elements (path, polyline, polygon, line, rect, circle, ellipse)"
        )
    ends = np.array([[p.x, p.y] for segs in subpaths for s in segs for p in (s.start, s.end)], dtype=np.float64)
    if not np.all(np.isfinite(ends)):
        raise InputError(f"{source}: SVG has NaN or infinite coordinates")
    check_magnitude(ends, "SVG points", source)
    extent = float(np.max(ends.max(axis=0) - ends.min(axis=0)))
    step = max(extent, 1e-9) / RASTER
    budget = None if max_points is None else [max_points]
    try:
        strokes = []
        for segs in subpaths:
            strokes.append(_sample(segs, step, budget))
            if budget is not None and budget[0] < 0:
                raise too_large(f"{source}: SVG samples more than {max_points} points (curves are sampled every "
                                "raster pixel of the 512 canvas); simplify the drawing")  # fmt: skip
    except (OverflowError, ValueError):  # a curve whose length overflows (control points far beyond its ends)
        raise InputError(f"{source}: SVG has curves whose length overflows; scale the drawing down") from None
    if not all(np.all(np.isfinite(s)) for s in strokes):
        raise InputError(f"{source}: SVG has curves with NaN or infinite points")
    check_magnitude(np.concatenate(strokes), "SVG curve points", source)
    declared = document.values.get("width") is not None or document.values.get("height") is not None
    canvas = None
    if (declared or document.viewbox is not None) and document.width > 0 and document.height > 0:
        canvas = (float(document.width), float(document.height))
        if not all(math.isfinite(v) and v <= MAX_COORDINATE for v in canvas):
            size = f"{canvas[0]:g}x{canvas[1]:g}"
            raise InputError(f"{source}: SVG canvas {size} is over the limit of {MAX_COORDINATE:g}")
    return VectorSketch(strokes=tuple(strokes), canvas=canvas, source=source, format="svg")
