"""Reading a user's sketch image robustly and turning it into model input.

Handling of unusual inputs (copied into the README):
- not an image / truncated or corrupt file: rejected (InputError).
- transparent background (RGBA, LA, palette with transparency): composited over white paper.
- colour images: converted to luminance. 16-bit and float images: rescaled to 8 bits.
- white strokes on a dark background (the median pixel is dark): inverted, and a note is recorded.
- no stroke pixels at all (e.g. an all-white image): rejected (InputError), there is nothing to segment.
- any size (e.g. 4000x3000): accepted. The model sees the sketch padded to a square with white paper and resized
  to its input size; labels and maps are produced at the original resolution.
A stroke pixel is a pixel darker than ``STROKE_LEVEL`` (after inversion, if any).

Vector sketches (``.npy``, ``.json``, ``.svg``: :mod:`sketchseg.data.vector`) are rasterised as the benchmark
rasterises (:mod:`sketchseg.data.vector_raster`) onto a 512x512 canvas; the Sketch keeps the strokes and their pixel
sets (``Sketch.vector``) so that every stroke can be labelled. :func:`load_input` reads either kind of file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from sketchseg.data.strokes import RASTER
from sketchseg.data.vector import VectorSketch, read_vector, vector_kind
from sketchseg.data.vector_raster import RasterisedVector, rasterise_vector
from sketchseg.errors import InputError

STROKE_LEVEL = 128  # gray values below this are strokes
MAX_PIXELS = 64_000_000


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


def _to_gray(img: Image.Image) -> np.ndarray:
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
            gray = _to_gray(img)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{source}: not an image file (PIL cannot identify it; PNG or JPEG expected)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"{source}: unreadable or truncated image ({' '.join(str(exc).split())})") from None
    return sketch_from_array(gray, source=source)


def load_sketch(path: str | Path) -> Sketch:
    """Read an image file as a sketch; raises InputError with the file and the reason on any problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return sketch_from_bytes(path.read_bytes(), source=str(path))


def sketch_from_vector(vector: VectorSketch, size: int = RASTER) -> Sketch:
    """Rasterise a :class:`VectorSketch` onto the ``size`` x ``size`` canvas as the benchmark does."""
    rasterised = rasterise_vector(vector, size=size)
    mask = rasterised.raster.union_mask()  # [size, size]
    if not mask.any():
        raise InputError(f"{vector.source}: no stroke pixel inside the canvas; nothing to segment")
    gray = np.where(mask, 0, 255).astype(np.uint8)
    notes = list(vector.notes) + list(rasterised.notes)
    return Sketch(gray=gray, strokes=mask, source=vector.source, notes=notes, vector=rasterised)


def load_input(path: str | Path) -> Sketch:
    """Read a sketch file: a vector sketch (``.npy``, ``.json``, ``.svg``, or recognised by content, see
    :mod:`sketchseg.data.vector`) or an image; InputError with the file and the reason on any problem."""
    if Path(path).is_file() and vector_kind(path) is not None:
        return sketch_from_vector(read_vector(path))
    return load_sketch(path)


def to_model_input(sketch: Sketch, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Pad to a white square and resize to the model input.

    Returns (intensity [1, S, S] float in [0, 1], (side, top, left)) where ``side`` is the padded square's side and
    (top, left) the sketch's offset in it, to map model-resolution outputs back to the sketch.
    """
    h, w = sketch.size
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.full((side, side), 255, dtype=np.uint8)
    square[top : top + h, left : left + w] = sketch.gray
    resized = Image.fromarray(square).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    arr = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)
    return arr.unsqueeze(0), (side, top, left)  # [1, S, S]
