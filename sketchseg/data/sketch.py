"""A sketch of any kind as the model reads it: the :class:`Sketch` type, and reading one from a file (the CLI), from a
request's data (the server, the MLflow pyfunc model) or from an object in memory (:func:`as_sketch`).

Images (PNG, JPEG, ...):
- not an image / truncated or corrupt file: rejected (InputError).
- transparent background (RGBA, LA, palette with transparency): composited over white paper.
- colour images: converted to luminance. 16-bit and float images: rescaled to 8 bits.
- white strokes on a dark background (the median pixel is dark): inverted, and a note is recorded.
- no stroke pixels at all (e.g. an all-white image): rejected (InputError), there is nothing to segment.
- any size (e.g. 4000x3000): accepted; the model sees the sketch padded to a square
  (:func:`sketchseg.model.image.to_model_input`), labels and maps are produced at the original resolution.
A stroke pixel is a pixel darker than ``STROKE_LEVEL`` (after inversion, if any).

Vector sketches (files ``.npy``, ``.json``, ``.svg``: :mod:`sketchseg.data.vector`) are rasterised as the benchmark
rasterises (:mod:`sketchseg.data.vector_raster`) onto a 512x512 canvas; the Sketch keeps the strokes and their pixel
sets (``Sketch.vector``) so that every stroke can be labelled.

Sketches sent as data: exactly one of the :data:`INPUT_KINDS` (the one list of them: the server's request fields,
the pyfunc model's columns and every message naming them come from it; a new format is one entry and its parser):
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
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sketchseg.data.strokes import RASTER
from sketchseg.data.vector import VectorSketch, from_points, from_stroke3, from_svg, read_vector, vector_kind
from sketchseg.data.vector_raster import RasterisedVector, fit_region, rasterise_vector
from sketchseg.errors import InputError

STROKE_LEVEL = 128  # gray values below this are strokes
MAX_PIXELS = 64_000_000
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@dataclass
class Sketch:
    """A sketch as black-on-white grayscale. ``gray``: uint8 [H, W]; ``strokes``: bool [H, W]; ``vector``: the
    strokes it was rasterised from with their pixel sets (vector input), None for an image."""

    gray: np.ndarray
    strokes: np.ndarray
    source: str = "<array>"
    notes: list[str] = field(default_factory=list)
    vector: RasterisedVector | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.gray.shape[0], self.gray.shape[1]


# ---------------------------------------------------------------------------------------------------------------
# images and vector sketches -> Sketch


def to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL image -> uint8 [H, W] luminance, transparency composited over white."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        return np.clip(np.rint(arr / hi * 255.0), 0, 255).astype(np.uint8)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def sketch_from_array(gray: np.ndarray, source: str = "<array>") -> Sketch:
    """Build a :class:`Sketch` from a uint8 [H, W] array (any polarity)."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise InputError(f"{source}: expected a uint8 [H, W] grayscale array, got {gray.dtype} {gray.shape}")
    notes: list[str] = []
    if np.median(gray) < STROKE_LEVEL:
        gray = 255 - gray
        notes.append("light strokes on a dark background: inverted")
    strokes = gray < STROKE_LEVEL
    if not strokes.any():
        raise InputError(f"{source}: no strokes found (every pixel is light); nothing to segment")
    return Sketch(gray=np.ascontiguousarray(gray), strokes=strokes, source=source, notes=notes)


def sketch_from_bytes(
    data: bytes, source: str, max_pixels: int = MAX_PIXELS, too_large: type[InputError] = InputError
) -> Sketch:
    """An image file's bytes (PNG, JPEG, ...) -> :class:`Sketch`; raises InputError naming ``source`` and the reason.
    The pixel limit is checked on the file's header, before the pixels are decoded (``too_large`` is raised)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise too_large(
                    f"{source}: {img.width}x{img.height} pixels is over the limit of {max_pixels} pixels; "
                    "use a smaller image"
                )
            img.load()
            gray = to_gray(img)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{source}: not an image file (PIL cannot identify it; PNG or JPEG expected)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"{source}: unreadable or truncated image ({' '.join(str(exc).split())})") from None
    return sketch_from_array(gray, source=source)


def sketch_from_vector(vector: VectorSketch, size: int = RASTER) -> Sketch:
    """Rasterise a :class:`VectorSketch` onto the ``size`` x ``size`` canvas as the benchmark does."""
    rasterised = rasterise_vector(vector, size=size)
    mask = rasterised.raster.union_mask()  # [size, size]
    if not mask.any():
        raise InputError(f"{vector.source}: no stroke pixel inside the canvas; nothing to segment")
    gray = np.where(mask, 0, 255).astype(np.uint8)
    notes = list(vector.notes) + list(rasterised.notes)
    return Sketch(gray=gray, strokes=mask, source=vector.source, notes=notes, vector=rasterised)


def read_sketch(path: str | Path) -> Sketch:
    """Read a sketch file: a vector sketch (``.npy``, ``.json``, ``.svg``, or recognised by content, see
    :mod:`sketchseg.data.vector`) or an image; InputError with the file and the reason on any problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if vector_kind(path) is not None:
        return sketch_from_vector(read_vector(path))
    return sketch_from_bytes(path.read_bytes(), source=str(path))


SketchLike = str | Path | np.ndarray | Image.Image | Sketch | VectorSketch  # a path: image, .npy, .json or .svg


def as_sketch(image: SketchLike) -> Sketch:
    """Accept a path (image or vector sketch file), a PIL image, a uint8 [H, W] array, a VectorSketch or a Sketch."""
    if isinstance(image, Sketch):
        return image
    if isinstance(image, VectorSketch):
        return sketch_from_vector(image)
    if isinstance(image, (str, Path)):
        return read_sketch(image)
    if isinstance(image, Image.Image):
        return sketch_from_array(to_gray(image))
    if isinstance(image, np.ndarray):
        return sketch_from_array(image)
    raise InputError(f"unsupported image type {type(image).__name__}; pass a path, PIL image or uint8 array")


# ---------------------------------------------------------------------------------------------------------------
# sketches sent as data


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


def _parse_image(value: Any, width: float | None, height: float | None, limits: InputLimits, where: str) -> Sketch:
    return decode_image(value, limits, where)


def _parse_strokes(value: Any, width: float | None, height: float | None, limits: InputLimits, where: str) -> Any:
    if len(value) == 0 or any(len(s) == 0 for s in value):
        raise InputError(f"{where}: empty (give at least one stroke of at least one [x, y] point)")
    _check_counts(where, len(value), sum(len(s) for s in value), limits)
    return _check_path(where, from_points(value, width=width, height=height, source=where), limits)


def _parse_stroke3(value: Any, width: float | None, height: float | None, limits: InputLimits, where: str) -> Any:
    if len(value) == 0:
        raise InputError(f"{where}: empty (give at least one [dx, dy, pen] row)")
    _check_counts(where, 1, len(value), limits)
    sketch = from_stroke3(value, width=width, height=height, source=where)
    _check_counts(where, len(sketch), sketch.n_points, limits)
    return _check_path(where, sketch, limits)


def _parse_svg(value: Any, width: float | None, height: float | None, limits: InputLimits, where: str) -> Any:
    if not isinstance(value, str | bytes):
        raise InputError(f"{where}: expected the text of an SVG document, got {type(value).__name__}")
    if isinstance(value, str):
        check_text(value, where)
    if len(value) > limits.max_svg_chars:
        raise InputTooLarge(f"{where}: {len(value)} characters is over the limit of {limits.max_svg_chars}")
    sketch = from_svg(value, source=where, max_points=limits.max_points, too_large=InputTooLarge)
    _check_counts(where, len(sketch), sketch.n_points, limits)
    return _check_path(where, sketch, limits)


@dataclass(frozen=True)
class InputKind:
    """One way to send a sketch as data: its field (request) and column (pyfunc) ``name``, what it holds
    (``description``, also the OpenAPI field's), its JSON value's ``wire_type`` (str for text: an MLflow string
    column), whether the canvas ``width``/``height`` go with it, and its parser ``(value, width, height, limits,
    where) -> Sketch | VectorSketch`` (raising InputError / InputTooLarge naming ``where``)."""

    name: str
    description: str
    wire_type: Any
    canvas: bool
    parse: Callable[[Any, float | None, float | None, InputLimits, str], Sketch | VectorSketch]


INPUT_KINDS: dict[str, InputKind] = {kind.name: kind for kind in (
    InputKind("image", "A PNG or JPEG file, base64-encoded (a data:image/...;base64, prefix is accepted).", str, False,
              _parse_image),
    InputKind("strokes", "Strokes in drawing order, each a list of absolute [x, y] points (y down), as a canvas gives "
              "them. A one-point stroke is a dot.", list[list[tuple[float, float]]], True, _parse_strokes),
    InputKind("stroke3", "Stroke-3 rows [dx, dy, pen] (QuickDraw / sketch-rnn): the first point absolute, then "
              "offsets; pen = 1 ends a stroke.", list[tuple[float, float, float]], True, _parse_stroke3),
    InputKind("svg", "An SVG document; its path, polyline and line elements are strokes.", str, False, _parse_svg),
)}  # fmt: skip


def kinds_text(kinds: Sequence[str] = tuple(INPUT_KINDS), last: str = "or") -> str:
    """'image, strokes, stroke3 or svg'."""
    return f"{', '.join(kinds[:-1])} {last} {kinds[-1]}" if len(kinds) > 1 else "".join(kinds)


def canvas_kinds() -> list[str]:
    """The input kinds that ``width`` and ``height`` go with."""
    return [k.name for k in INPUT_KINDS.values() if k.canvas]


def given_kinds(**fields: Any) -> list[str]:
    """The input kinds among ``fields`` that are not None."""
    return [k for k in INPUT_KINDS if fields.get(k) is not None]


def decode_sketch(
    *,
    width: float | None = None,
    height: float | None = None,
    limits: InputLimits = InputLimits(),
    where: str = "",
    **fields: Any,
) -> Sketch | VectorSketch:
    """Exactly one input kind given in ``fields`` (``image=...``, ``strokes=...``, ...; None counts as not given) ->
    the sketch object the Segmenter takes (a :class:`Sketch` for an image, a :class:`VectorSketch` for the vector
    kinds). ``where`` prefixes error messages (e.g. a DataFrame row)."""
    at = f"{where}: " if where else ""
    unknown = sorted(set(fields) - set(INPUT_KINDS))
    if unknown:
        raise TypeError(f"decode_sketch: unknown input kind(s) {unknown}; known: {kinds_text(last='and')}")
    kinds = given_kinds(**fields)
    if len(kinds) != 1:
        got = f"got {', '.join(kinds)}" if kinds else "got none"
        raise InputError(f"{at}give exactly one of {', '.join(INPUT_KINDS)} ({got})")
    kind = INPUT_KINDS[kinds[0]]
    if (width is not None or height is not None) and not kind.canvas:
        raise InputError(f"{at}width and height go with {kinds_text(canvas_kinds())}, not with {kind.name}")
    return kind.parse(fields[kind.name], width, height, limits, f"{at}{kind.name}")
