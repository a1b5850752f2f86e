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
:func:`check_vocabulary` bounds the cleaned category list, whether it was given or parsed from a caption (both
servers); :func:`check_text` refuses text that is not valid Unicode (a lone surrogate such as JSON's ``"\\ud800"``).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sketchseg.data.vector import VectorSketch
from sketchseg.errors import InputError
from sketchseg.model.image import Sketch

INPUT_KINDS = ("image", "strokes", "stroke3", "svg")
# categories per request, given or parsed from a caption: the one limit of both servers (sketchseg serve, the pyfunc
# model); at most render.labels.MAX_LABELLED_CATEGORIES (254) fit the 8-bit label PNG
MAX_CATEGORIES = 32
MAX_CATEGORY_CHARS = 100
MAX_CAPTION_CHARS = 2_000
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class InputTooLarge(InputError):
    """A request holds more than :class:`InputLimits` allows (pixels, strokes, points, SVG text)."""


@dataclass(frozen=True)
class InputLimits:
    """What one sketch may hold. ``max_pixels``: width x height of a decoded image; ``max_strokes`` and
    ``max_points``: strokes and points (all strokes together) of vector input; ``max_svg_chars``: SVG text;
    ``max_path_pixels``: the length of all strokes together in pixels of the 512 x 512 raster they are drawn on
    (rasterising costs memory in proportion: a zigzag of 100,000 points across the canvas would draw 51 M pixels)."""

    max_pixels: int = 4096 * 4096
    max_strokes: int = 2_000
    max_points: int = 100_000
    max_svg_chars: int = 2_000_000
    max_path_pixels: int = 1_000_000


def check_text(value: str, what: str) -> None:
    """InputError when ``value`` is not valid Unicode text: a lone surrogate (JSON's ``"\\ud800"`` escapes can carry
    one) cannot be encoded as UTF-8, so no answer naming it could be sent."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{what}: not valid Unicode text (a lone surrogate {value[exc.start]!r} at character {exc.start})"
        ) from None


def check_vocabulary(names: Sequence[str], where: str = "", caption: bool = False) -> None:
    """InputError when a cleaned category list holds more than ``MAX_CATEGORIES`` names or a name longer than
    ``MAX_CATEGORY_CHARS`` characters (``caption``: the names were parsed from a caption)."""
    at = f"{where}: " if where else ""
    source = "the caption names" if caption else "got"
    if len(names) > MAX_CATEGORIES:
        hint = "shorten the caption or send categories" if caption else "send fewer categories"
        raise InputError(
            f"{at}{source} {len(names)} categories, over the limit of {MAX_CATEGORIES} per request; {hint}"
        )
    for name in names:
        check_text(name, f"{at}category {name[:20]!r}")
        if len(name) > MAX_CATEGORY_CHARS:
            raise InputError(f"{at}category names are limited to {MAX_CATEGORY_CHARS} characters ({name[:20]!r}...)")


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


@dataclass(frozen=True)
class ImageHeader:
    """An image file's bytes and what its header says: ``width`` x ``height`` pixels of ``bands`` channels (0 x 0
    when PIL cannot read the header: decoding then says why)."""

    data: bytes
    width: int
    height: int
    bands: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_image_header(
    value: str | bytes | bytearray, limits: InputLimits = InputLimits(), where: str = "image"
) -> ImageHeader:
    """A PNG/JPEG file as base64 or bytes -> its :class:`ImageHeader`, without decoding the pixels. Over the pixel
    limit: :class:`InputTooLarge`, also for images so large that PIL refuses to open them (a decompression bomb)."""
    from PIL import Image

    data = image_bytes(value, where)
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height, bands = img.width, img.height, len(img.getbands())
            if img.mode == "P" or "transparency" in img.info:
                bands = 4  # decoded as RGBA and composited over white
    except Image.DecompressionBombError as exc:  # over twice PIL's own limit: the file names its size in pixels
        found = _BOMB_PIXELS.search(str(exc))
        size = f"{int(found.group(1))} pixels" if found else "the image"
        raise InputTooLarge(
            f"{where}: {size} is over the limit of {limits.max_pixels} pixels; use a smaller image"
        ) from None
    except Exception:  # noqa: BLE001 - not an image or a broken header: decode_image says which
        return ImageHeader(data=data, width=0, height=0, bands=1)
    if width * height > limits.max_pixels:
        raise InputTooLarge(
            f"{where}: {width}x{height} pixels is over the limit of {limits.max_pixels} pixels; use a smaller image"
        )
    return ImageHeader(data=data, width=width, height=height, bands=bands)


def decode_image(
    value: str | bytes | bytearray | ImageHeader, limits: InputLimits = InputLimits(), where: str = "image"
) -> Sketch:
    """A PNG/JPEG file as base64, bytes or a read :class:`ImageHeader` -> :class:`Sketch`. The pixel limit is
    checked on the file's header, before the pixels are decoded."""
    from sketchseg.model.image import sketch_from_bytes

    header = value if isinstance(value, ImageHeader) else read_image_header(value, limits, where)
    return sketch_from_bytes(header.data, where, limits.max_pixels, InputTooLarge)


def _check_counts(where: str, strokes: int, points: int, limits: InputLimits) -> None:
    if strokes > limits.max_strokes:
        raise InputTooLarge(f"{where}: {strokes} strokes is over the limit of {limits.max_strokes}")
    if points > limits.max_points:
        raise InputTooLarge(f"{where}: {points} points is over the limit of {limits.max_points}")


def path_pixels(sketch: VectorSketch) -> tuple[int, int]:
    """(all strokes, the longest stroke): the pixels the rasteriser steps through (one per pixel of the longer axis
    of every segment, plus one per point) on the raster the sketch is fitted onto, before drawing anything."""
    import numpy as np

    from sketchseg.data.vector_raster import fit_region

    fit, _ = fit_region(sketch)
    total = longest = 0
    for stroke in sketch.strokes:
        pts = np.rint(fit.apply(stroke))  # [n, 2]
        n = int(np.abs(np.diff(pts, axis=0)).max(axis=1).sum()) + len(pts) if len(pts) > 1 else 1
        total += n
        longest = max(longest, n)
    return total, longest


def _check_path(where: str, sketch: VectorSketch, limits: InputLimits) -> VectorSketch:
    total, _ = path_pixels(sketch)
    if total > limits.max_path_pixels:
        raise InputTooLarge(
            f"{where}: the strokes are {total} raster pixels long together, over the limit of "
            f"{limits.max_path_pixels} (on the 512 x 512 raster they are fitted onto); send fewer or shorter strokes"
        )
    return sketch


def decode_sketch(
    *,
    image: str | bytes | ImageHeader | None = None,
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
        sketch = from_points(strokes, width=width, height=height, source=f"{at}strokes")
        return _check_path(f"{at}strokes", sketch, limits)
    if stroke3 is not None:
        if len(stroke3) == 0:
            raise InputError(f"{at}stroke3: empty (give at least one [dx, dy, pen] row)")
        _check_counts(f"{at}stroke3", 1, len(stroke3), limits)
        sketch = from_stroke3(stroke3, width=width, height=height, source=f"{at}stroke3")
        _check_counts(f"{at}stroke3", len(sketch), sketch.n_points, limits)
        return _check_path(f"{at}stroke3", sketch, limits)
    if not isinstance(svg, str | bytes):
        raise InputError(f"{at}svg: expected the text of an SVG document, got {type(svg).__name__}")
    if isinstance(svg, str):
        check_text(svg, f"{at}svg")
    if len(svg) > limits.max_svg_chars:
        raise InputTooLarge(f"{at}svg: {len(svg)} characters is over the limit of {limits.max_svg_chars}")
    sketch = from_svg(svg, source=f"{at}svg", max_points=limits.max_points, too_large=InputTooLarge)
    _check_counts(f"{at}svg", len(sketch), sketch.n_points, limits)
    return _check_path(f"{at}svg", sketch, limits)
