"""Vector sketches from drawing apps (SPEC §6.1, §10): the :class:`VectorSketch` type, constructors from in-memory
data and file readers.

A :class:`VectorSketch` holds its strokes as absolute ``[n_i, 2]`` float (x, y) point arrays in input order, the
declared canvas ``(width, height)`` when the input gives one, and ``source`` (the file name used in messages).

Formats:
- ``points``: absolute point lists per stroke, e.g. the web page's JSON
  ``{"strokes": [[[x, y], ...], ...], "width": W, "height": H}`` (canvas optional), or a bare JSON list of strokes.
- ``stroke3`` (QuickDraw / sketch-rnn): rows ``[dx, dy, pen]``; the first row is absolute, every later one an
  offset from the previous point (their cumulative sum gives absolute coordinates); ``pen = 1`` marks the last
  point of a stroke, pen values are 0 or 1. Points after the last ``pen = 1`` form a final stroke (a drawing app
  may leave the last stroke open). As ``.npy`` (an ``(n, 3)`` array) or JSON: a list of rows, or an object with
  ``scene_strokes`` (the CBSC files) or ``stroke3`` and an optional canvas ``img_w``/``img_h`` (or
  ``width``/``height``).
- ``fscoco``: the FS-COCO ``.npy``, an ``(n, 3)`` array of absolute ``[x, y, pen]`` on a 256x256 canvas; points
  after the last ``pen = 1`` belong to no stroke (SPEC §6.1) and are ignored with a note.
- ``svg``: ``path``, ``polyline``, ``polygon``, ``line``, ``rect``, ``circle``, ``ellipse`` elements, read by
  :mod:`sketchseg.data.vector_svg`.

How a file is recognised (:func:`vector_kind`, :func:`read_vector`): the extension decides for ``.npy``, ``.json``
and ``.svg`` (a file whose content does not match is an error naming the problem); any other file is recognised by
its first bytes: the NumPy magic ``\\x93NUMPY`` (npy), ``<`` (SVG), ``{`` or ``[`` (JSON), else it is no vector
file (read as an image). Inside JSON the keys decide (``scene_strokes``/``stroke3``: stroke-3, ``strokes``:
points) and a bare list is stroke-3 when its items are rows of numbers, points when they are lists of ``[x, y]``.
An ``(n, 3)`` ``.npy`` is FS-COCO (absolute) when its typical coordinate (median of ``|x|, |y|`` after the first
row) exceeds 4x its typical step between rows (median of the absolute row differences), else stroke-3 (offsets are
about as large as the steps between them); to be explicit, write JSON with ``scene_strokes``/``strokes`` keys.

Malformed input raises :class:`~sketchseg.errors.InputError` with one line naming the source and the problem; so do
coordinates or canvas sizes beyond ``MAX_COORDINATE`` (1e9), whose fitting onto the raster would overflow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sketchseg.data.strokes import CANVAS, split_strokes
from sketchseg.errors import DataError, InputError

MAX_COORDINATE = 1e9  # larger coordinates (and canvas sizes) are refused: fitting them would overflow float64
MAX_FILE_BYTES = 64_000_000  # larger vector files are refused (a scene sketch is a few hundred kB at most)
_ABSOLUTE_RATIO = 4.0  # .npy: absolute when the median coordinate exceeds this many median steps


@dataclass(frozen=True)
class VectorSketch:
    """Strokes as absolute ``[n_i, 2]`` float64 (x, y) arrays in input order; ``canvas``: the declared
    ``(width, height)`` or None; ``format``: the format it was read from; ``notes``: what reading changed."""

    strokes: tuple[np.ndarray, ...]
    canvas: tuple[float, float] | None = None
    source: str = "<strokes>"
    format: str = "points"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "strokes", tuple(np.asarray(s, dtype=np.float64)[:, :2] for s in self.strokes))
        object.__setattr__(self, "notes", tuple(self.notes))

    def __len__(self) -> int:
        return len(self.strokes)

    @property
    def n_points(self) -> int:
        return sum(len(s) for s in self.strokes)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``: the bounding box of all points."""
        pts = np.concatenate(self.strokes)  # [N, 2]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


# ---------------------------------------------------------------------------------------------------------------
# validation helpers


def _numeric(data: Any, what: str, source: str) -> np.ndarray:
    """``data`` as a float64 array, or an InputError for ragged, non-numeric or non-finite values."""
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise InputError(f"{source}: {what}: ragged or non-numeric values") from None
    if arr.dtype.kind not in "iuf":
        if arr.dtype == object:
            raise InputError(f"{source}: {what}: ragged or non-numeric values")
        raise InputError(f"{source}: {what}: non-numeric values (dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{source}: {what}: NaN or infinite coordinates")
    check_magnitude(arr, what, source)
    return arr


def check_magnitude(values: np.ndarray, what: str, source: str) -> None:
    """InputError when a finite coordinate lies beyond ``MAX_COORDINATE``: the extent and scale of such a drawing
    overflow float64 when it is fitted onto the raster."""
    if values.size and float(np.max(np.abs(values))) > MAX_COORDINATE:
        raise InputError(
            f"{source}: {what}: coordinates beyond +-{MAX_COORDINATE:g} (largest {float(np.max(np.abs(values))):g}); "
            "scale the drawing down"
        )


def _canvas(width: Any, height: Any, source: str) -> tuple[float, float] | None:
    """A declared canvas ``(width, height)`` of positive finite numbers, or None when neither is given."""
    if width is None and height is None:
        return None
    if width is None or height is None:
        raise InputError(f"{source}: give both width and height of the canvas, or neither")
    out = []
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputError(f"{source}: canvas {name} {value!r} is not a number")
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"{source}: canvas {name} {value!r} must be a positive finite number")
        if value > MAX_COORDINATE:
            raise InputError(f"{source}: canvas {name} {value:g} is over the limit of {MAX_COORDINATE:g}")
        out.append(float(value))
    return out[0], out[1]


def _is_sequence(data: Any) -> bool:
    return isinstance(data, (Sequence, np.ndarray)) and not isinstance(data, (str, bytes))


# ---------------------------------------------------------------------------------------------------------------
# constructors from in-memory data


def from_points(
    strokes: Sequence[Sequence[Sequence[float]]] | Sequence[np.ndarray],
    width: float | None = None,
    height: float | None = None,
    source: str = "<strokes>",
) -> VectorSketch:
    """Strokes given as absolute ``[[x, y], ...]`` point lists (one list per stroke), optional canvas size."""
    canvas = _canvas(width, height, source)
    if not _is_sequence(strokes):
        raise InputError(f"{source}: strokes must be a list of strokes, each a list of [x, y] points")
    if len(strokes) == 0:
        raise InputError(f"{source}: no strokes; nothing to segment")
    out = []
    for i, stroke in enumerate(strokes):
        if not _is_sequence(stroke):
            raise InputError(f"{source}: stroke {i} is not a list of [x, y] points")
        if len(stroke) == 0:
            raise InputError(f"{source}: stroke {i} is empty (no points)")
        arr = _numeric(stroke, f"stroke {i}", source)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InputError(f"{source}: stroke {i}: points must be [x, y] pairs, got an array of shape {arr.shape}")
        out.append(arr)
    return VectorSketch(strokes=tuple(out), canvas=canvas, source=source, format="points")


def from_stroke3(
    rows: Sequence[Sequence[float]] | np.ndarray,
    width: float | None = None,
    height: float | None = None,
    source: str = "<stroke-3>",
) -> VectorSketch:
    """Stroke-3 rows ``[dx, dy, pen]`` (first row absolute, ``pen = 1`` ends a stroke), optional canvas size."""
    canvas = _canvas(width, height, source)
    if not _is_sequence(rows) or len(rows) == 0:
        raise InputError(f"{source}: no stroke-3 rows; give a list of [dx, dy, pen] rows")
    arr = _numeric(rows, "stroke-3 rows", source)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{source}: stroke-3 rows must be [dx, dy, pen] triples, got an array of shape {arr.shape}")
    bad = np.flatnonzero((arr[:, 2] != 0) & (arr[:, 2] != 1))
    if bad.size:
        raise InputError(f"{source}: stroke-3 pen values must be 0 or 1, got {arr[bad[0], 2]:g} in row {bad[0]}")
    xy = np.cumsum(arr[:, :2], axis=0)  # [n, 2] absolute
    check_magnitude(xy, "stroke-3 points (offsets summed)", source)
    ends = np.flatnonzero(arr[:, 2] == 1)
    if not ends.size or ends[-1] != len(arr) - 1:
        ends = np.append(ends, len(arr) - 1)  # the open last stroke
    starts = np.concatenate([[0], ends[:-1] + 1])
    strokes = tuple(xy[s : e + 1] for s, e in zip(starts, ends, strict=True))
    return VectorSketch(strokes=strokes, canvas=canvas, source=source, format="stroke3")


def from_fscoco(vector: np.ndarray, source: str = "<fscoco>") -> VectorSketch:
    """An FS-COCO ``(n, 3)`` absolute ``[x, y, pen]`` array on the 256x256 canvas (SPEC §6.1)."""
    try:
        strokes = split_strokes(np.asarray(vector), source=source)
    except DataError as exc:
        raise InputError(str(exc)) from None
    if not strokes:
        raise InputError(f"{source}: no strokes (no row has pen = 1, which ends a stroke in the FS-COCO layout)")
    used = sum(len(s) for s in strokes)
    notes = []
    if used < len(vector):
        notes.append(f"{len(vector) - used} point(s) after the last pen-up belong to no stroke (FS-COCO): ignored")
    return VectorSketch(strokes=tuple(strokes), canvas=(float(CANVAS), float(CANVAS)), source=source, format="fscoco",
                        notes=notes)


def from_svg(
    text: str | bytes, source: str = "<svg>", max_points: int | None = None, too_large: type[InputError] = InputError
) -> VectorSketch:
    """An SVG document's drawable elements, one stroke per connected subpath (:mod:`sketchseg.data.vector_svg`);
    ``too_large`` as soon as sampling its curves passes ``max_points`` points."""
    from sketchseg.data.vector_svg import read_svg

    return read_svg(text, source, max_points, too_large)


def from_json(data: Any, source: str = "<json>") -> VectorSketch:
    """A decoded JSON value: an object with ``strokes`` (points), ``scene_strokes`` or ``stroke3`` (stroke-3), or a
    bare list of stroke-3 rows or of point lists."""
    if isinstance(data, dict):
        if "scene_strokes" in data or "stroke3" in data:
            key = "scene_strokes" if "scene_strokes" in data else "stroke3"
            width, height = (data.get("img_w"), data.get("img_h")) if "img_w" in data or "img_h" in data else (
                data.get("width"), data.get("height"))
            return from_stroke3(data[key], width, height, source=source)
        if "strokes" in data:
            return from_points(data["strokes"], data.get("width"), data.get("height"), source=source)
        raise InputError(
            f"{source}: JSON object has none of the keys 'strokes' (point lists), 'scene_strokes' or 'stroke3' "
            "(stroke-3 rows)"
        )
    if isinstance(data, list):
        if not data:
            raise InputError(f"{source}: no strokes; nothing to segment")
        first = data[0]
        if isinstance(first, list) and first and all(isinstance(v, (int, float)) for v in first):
            return from_stroke3(data, source=source)
        return from_points(data, source=source)
    raise InputError(f"{source}: JSON must be an object or a list of strokes, got {type(data).__name__}")


def from_npy(arr: np.ndarray, source: str = "<npy>") -> VectorSketch:
    """An ``(n, 3)`` array: FS-COCO absolute rows or stroke-3 offsets, told apart by their numbers (module doc)."""
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{source}: expected an (n, 3) array of [x, y, pen] rows, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{source}: no strokes (the array has no rows)")
    values = _numeric(arr, "vector sketch", source)
    return from_fscoco(values, source) if _looks_absolute(values) else from_stroke3(values, source=source)


def _looks_absolute(arr: np.ndarray) -> bool:
    """True when the rows look like absolute coordinates rather than stroke-3 offsets (module doc)."""
    if len(arr) < 2:
        return True
    typical = float(np.median(np.abs(arr[1:, :2])))
    step = float(np.median(np.abs(np.diff(arr[:, :2], axis=0))))
    return typical > _ABSOLUTE_RATIO * step


# ---------------------------------------------------------------------------------------------------------------
# files


def _sniff(head: bytes) -> str | None:
    """``npy``, ``svg`` or ``json`` from a file's first bytes, None when they name no vector format."""
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        return "svg"
    if text.startswith((b"{", b"[")):
        return "json"
    return None


def vector_kind(path: str | Path) -> str | None:
    """``npy``, ``json`` or ``svg`` when ``path`` is a vector sketch file (by extension, else content), else None."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VECTOR_SUFFIXES:
        return suffix[1:]
    try:
        with path.open("rb") as fh:
            return _sniff(fh.read(64))
    except OSError:
        return None


def read_vector(path: str | Path) -> VectorSketch:
    """Read a vector sketch file (``.npy``, ``.json``, ``.svg``, or recognised by content); InputError on any
    problem, naming the file."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = vector_kind(path)
    if kind is None:
        raise InputError(f"{path}: not a vector sketch (expected .npy, .json or .svg content)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: vector file larger than {MAX_FILE_BYTES} bytes")
    return FILE_READERS[kind](path, source)


def _read_npy(path: Path, source: str) -> VectorSketch:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{path}: not a readable numeric .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: unreadable or truncated .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path}: expected one array, got an .npz archive")
    return from_npy(arr, source)


def _read_svg(path: Path, source: str) -> VectorSketch:
    return from_svg(path.read_bytes(), source)


def _read_json(path: Path, source: str) -> VectorSketch:
    try:
        decoded = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text, so not JSON") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: bad JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    return from_json(decoded, source)


# the vector file formats: suffix (and :func:`vector_kind`'s name) -> reader; every other file is read as an image
FILE_READERS = {"npy": _read_npy, "json": _read_json, "svg": _read_svg}
VECTOR_SUFFIXES = tuple(f".{kind}" for kind in FILE_READERS)


# the constructors are also reachable from the type: VectorSketch.from_points(...), VectorSketch.read(path), ...
VectorSketch.from_points = staticmethod(from_points)  # type: ignore[attr-defined]
VectorSketch.from_stroke3 = staticmethod(from_stroke3)  # type: ignore[attr-defined]
VectorSketch.from_fscoco = staticmethod(from_fscoco)  # type: ignore[attr-defined]
VectorSketch.from_svg = staticmethod(from_svg)  # type: ignore[attr-defined]
VectorSketch.from_json = staticmethod(from_json)  # type: ignore[attr-defined]
VectorSketch.read = staticmethod(read_vector)  # type: ignore[attr-defined]
