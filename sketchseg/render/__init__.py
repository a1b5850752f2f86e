"""Drawing results: overlays, label PNGs, isolated-stroke PNGs, per-stroke SVGs, legends and the colours they share.

One home for rendering, used by ``sketchseg segment``, the server and the evaluation figures:
- :mod:`sketchseg.render.colours`: category colours (overlays, SVGs) and the figure palette (evaluation plots);
- :mod:`sketchseg.render.legend`: legend entries of a result and drawing them beside an image;
- :mod:`sketchseg.render.labels`: the label PNG (label map <-> 8-bit values), the one codec of every label PNG;
- :mod:`sketchseg.render.raster`: overlay PNG, isolated-stroke PNG, display thickening;
- :mod:`sketchseg.render.svg`: the strokes of a vector sketch as an SVG coloured by their labels.
Nothing here changes a result: every function reads a :class:`~sketchseg.model.segmenter.Segmentation` (or arrays)
and returns an image or a document.
"""

from sketchseg.render.colours import PALETTE, UNLABELLED_COLOUR, colour, figure_palette, hex_colour
from sketchseg.render.labels import decode_labels, encode_labels, label_map, label_png, label_values
from sketchseg.render.legend import LegendEntry, draw_legend, legend_entries
from sketchseg.render.raster import (
    isolated_png,
    overlay_image,
    pixel_colours,
    stroke_pixel_labels,
    thicken,
)
from sketchseg.render.svg import strokes_svg

__all__ = [
    "PALETTE",
    "UNLABELLED_COLOUR",
    "LegendEntry",
    "colour",
    "decode_labels",
    "draw_legend",
    "encode_labels",
    "figure_palette",
    "hex_colour",
    "isolated_png",
    "label_map",
    "label_png",
    "label_values",
    "legend_entries",
    "overlay_image",
    "pixel_colours",
    "stroke_pixel_labels",
    "strokes_svg",
    "thicken",
]
