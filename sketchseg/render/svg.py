"""The strokes of a vector sketch as an SVG document, each stroke coloured by its stroke label.

The document uses the input's own coordinates: its ``viewBox`` is the region fitted onto the model's canvas
(:class:`sketchseg.data.vector_raster.Fit`), its ``width``/``height`` that region's size on the 512x512 raster, and
strokes are 3 raster pixels wide (the benchmark's cross dilation). Stroke ``i`` is the ``i``-th ``<polyline>`` (a
``<circle>`` for a dot) with ``data-stroke``, ``data-label``, ``data-index`` and ``data-confidence`` attributes and a
``<title>``; strokes without a category are black (``data-label=""``). A result of random weights (``seg.untrained``)
says so in red in the top-left corner and in the document's title. The paper is the root's white background (no shape),
so reading the document back (:func:`sketchseg.data.vector.from_svg`, which maps the viewBox onto the width and height)
and rasterising it gives the same stroke pixels (dots, drawn as circles, excepted).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import numpy as np

from sketchseg.errors import InputError
from sketchseg.render.colours import UNLABELLED_COLOUR, UNTRAINED_TEXT, WARNING_COLOUR, colour, hex_colour

STROKE_PIXELS = 3.0  # drawn width of a stroke in raster pixels (the 3x3 cross dilation)


def _num(v: float) -> str:
    return format(float(v), ".9g")


def strokes_svg(seg) -> str:
    """SVG text of a vector-input result's strokes coloured by label (module doc); InputError for raster input."""
    if seg.vector is None or seg.stroke_labels is None:
        raise InputError(f"{seg.source}: no strokes to draw as SVG (the input was an image, not a vector sketch)")
    fit = seg.vector.fit
    x0, y0, w, h = fit.region
    width = STROKE_PIXELS / fit.scale
    untrained = seg.untrained
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_num(x0)} {_num(y0)} {_num(w)} {_num(h)}" '
        f'width="{_num(w * fit.scale)}" height="{_num(h * fit.scale)}" style="background-color: #ffffff">',
        f"<title>{escape(seg.source)}: strokes coloured by label{' (' + UNTRAINED_TEXT + ')' if untrained else ''}"
        "</title>",
    ]
    if untrained:  # 14 raster pixels high, in the top-left corner of the drawing's region
        size = 14.0 / fit.scale
        lines.append(f'<text x="{_num(x0 + size / 2)}" y="{_num(y0 + size * 1.2)}" font-size="{_num(size)}" '
                     f'font-family="sans-serif" fill="{hex_colour(WARNING_COLOUR)}">{escape(UNTRAINED_TEXT)}</text>')
    lines.append(f'<g fill="none" stroke-width="{_num(width)}" stroke-linecap="round" stroke-linejoin="round">')
    for i, (points, label) in enumerate(zip(seg.vector.vector.strokes, seg.stroke_labels, strict=True)):
        rgb = hex_colour(colour(label.index) if label.index >= 0 else UNLABELLED_COLOUR)
        name = label.label or ""
        attrs = (
            f'data-stroke="{i}" data-label={quoteattr(name)} data-index="{label.index}" '
            f'data-confidence="{label.confidence:.4f}"'
        )
        title = f"<title>stroke {i}: {escape(name or 'no category')} ({label.confidence:.0%})</title>"
        if np.all(points == points[0]):  # a dot
            cx, cy = points[0]
            lines.append(
                f'<circle {attrs} cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(width / 2)}" fill="{rgb}">{title}</circle>'
            )
        else:
            coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
            lines.append(f'<polyline {attrs} points="{coords}" stroke="{rgb}">{title}</polyline>')
    lines += ["</g>", "</svg>", ""]
    return "\n".join(lines)
