"""Sketches sent as data -> sketch objects: the one decoder of the wire formats that `sketchseg serve` and the MLflow
pyfunc model (`mlflow models serve`) accept.

Exactly one of:
- ``image``: a PNG or JPEG file as base64 (a ``data:image/...;base64,`` prefix is accepted), or its raw bytes;
- ``strokes``: absolute points per stroke, ``[[[x, y], ...], ...]``, with the canvas ``width``/``height`` optional
  (the web page's form);
- ``stroke3``: ``[[dx, dy, pen], ...]`` rows (QuickDraw / sketch-rnn: the first row absolute, then offsets,
  ``pen = 1`` ends a stroke), with ``width``/``height`` optional;
- ``svg``: the text of an SVG document.

:class:`InputLimits` bounds what one request may hold; a request over a limit raises :class:`InputTooLarge` (an
:class:`~sketchseg.errors.InputError`; HTTP 413), any other unusable input :class:`~sketchseg.errors.InputError`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sketchseg.errors import InputError
from sketchseg.model.image import Sketch

INPUT_KINDS = ("image", "strokes", "stroke3", "svg")
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


class InputTooLarge(InputError):
    """A request holds more than :class:`InputLimits` allows (pixels, strokes, points, SVG text)."""


@dataclass(frozen=True)
class InputLimits:
    """What one sketch may hold. ``max_pixels``: width x height of a decoded image; ``max_strokes`` and
    ``max_points``: strokes and points (all strokes together) of vector input; ``max_svg_chars``: SVG text."""

    max_pixels: int = 4096 * 4096
    max_strokes: int = 2_000
    max_points: int = 100_000
    max_svg_chars: int = 2_000_000


def given_kinds(**fields: Any) -> list[str]:
    """The input kinds among ``fields`` (image, strokes, stroke3, svg) that are not None."""
    return [k for k in INPUT_KINDS if fields.get(k) is not None]


def image_bytes(value: str | bytes | bytearray, where: str = "image") -> bytes:
    """A base64 string (optionally a data URL) or raw bytes -> the file's bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a base64 string of a PNG or JPEG file, got {type(value).__name__}")
    text = _DATA_URL.sub("", value.strip(), count=1)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{where}: not valid base64 (send the PNG or JPEG file's bytes base64-encoded)") from None
    if not data:
        raise InputError(f"{where}: empty (base64 of an empty file)")
    return data


def decode_image(value: str | bytes | bytearray, limits: InputLimits = InputLimits(), where: str = "image") -> Sketch:
    """A PNG/JPEG file as base64 or bytes -> :class:`Sketch`. The pixel limit is checked on the file's header,
    before the pixels are decoded."""
    from sketchseg.model.image import sketch_from_bytes

    return sketch_from_bytes(image_bytes(value, where), where, limits.max_pixels, InputTooLarge)


def _check_counts(where: str, strokes: int, points: int, limits: InputLimits) -> None:
    if strokes > limits.max_strokes:
        raise InputTooLarge(f"{where}: {strokes} strokes is over the limit of {limits.max_strokes}")
    if points > limits.max_points:
        raise InputTooLarge(f"{where}: {points} points is over the limit of {limits.max_points}")


def decode_sketch(
    *,
    image: str | bytes | None = None,
    strokes: Sequence[Sequence[Sequence[float]]] | None = None,
    stroke3: Sequence[Sequence[float]] | None = None,
    svg: str | None = None,
    width: float | None = None,
    height: float | None = None,
    limits: InputLimits = InputLimits(),
    where: str = "",
) -> Any:
    """Exactly one of ``image``, ``strokes``, ``stroke3``, ``svg`` -> the sketch object the Segmenter takes (a
    :class:`Sketch` for an image, a :class:`~sketchseg.data.vector.VectorSketch` for strokes, stroke-3 rows and
    SVG). ``where`` prefixes error
    messages (e.g. a DataFrame row)."""
    at = f"{where}: " if where else ""
    kinds = given_kinds(image=image, strokes=strokes, stroke3=stroke3, svg=svg)
    if len(kinds) != 1:
        got = f"got {', '.join(kinds)}" if kinds else "got none"
        raise InputError(f"{at}give exactly one of {', '.join(INPUT_KINDS)} ({got})")
    if (width is not None or height is not None) and kinds[0] in ("image", "svg"):
        raise InputError(f"{at}width and height go with strokes or stroke3, not with {kinds[0]}")
    if image is not None:
        return decode_image(image, limits, f"{at}image")
    from sketchseg.data.vector import from_points, from_stroke3, from_svg

    if strokes is not None:
        if len(strokes) == 0 or any(len(s) == 0 for s in strokes):
            raise InputError(f"{at}strokes: empty (give at least one stroke of at least one [x, y] point)")
        _check_counts(f"{at}strokes", len(strokes), sum(len(s) for s in strokes), limits)
        return from_points(strokes, width=width, height=height, source=f"{at}strokes")
    if stroke3 is not None:
        if len(stroke3) == 0:
            raise InputError(f"{at}stroke3: empty (give at least one [dx, dy, pen] row)")
        _check_counts(f"{at}stroke3", 1, len(stroke3), limits)
        sketch = from_stroke3(stroke3, width=width, height=height, source=f"{at}stroke3")
        _check_counts(f"{at}stroke3", len(sketch), sketch.n_points, limits)
        return sketch
    if not isinstance(svg, str | bytes):
        raise InputError(f"{at}svg: expected the text of an SVG document, got {type(svg).__name__}")
    if len(svg) > limits.max_svg_chars:
        raise InputTooLarge(f"{at}svg: {len(svg)} characters is over the limit of {limits.max_svg_chars}")
    sketch = from_svg(svg, source=f"{at}svg")
    _check_counts(f"{at}svg", len(sketch), sketch.n_points, limits)
    return sketch
