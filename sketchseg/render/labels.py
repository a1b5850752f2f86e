"""The label PNG: a result's label map as an 8-bit palette PNG, and back. The one codec of ``sketchseg segment``'s
``<stem>_labels.png``, the server's ``labels_png`` and the MLflow pyfunc model's ``labels_png``.

A pixel's value is its label's index into the result's ``categories`` plus one: 0 = background (``BACKGROUND``,
-1 in :class:`~sketchseg.model.segmenter.Segmentation`'s ``labels``: no stroke there), ``k`` = ``categories[k - 1]``,
255 = a stroke pixel without a category (``UNLABELLED``, -2: ``--recipe authors`` left it below its threshold).
Values 1 to 254 name categories, so a map can hold at most :data:`MAX_LABELLED_CATEGORIES` (the server takes fewer
per request: :data:`sketchseg.serve.vocabulary.MAX_CATEGORIES`). The palette draws the values (white paper, category
``k`` in :func:`~sketchseg.render.colours.colour` ``(k - 1)``, black for no category), so the file is also a
picture; readers use the values (:func:`decode_labels`).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sketchseg.errors import InputError
from sketchseg.io_utils import png_base64
from sketchseg.model.stroke_labels import NO_CATEGORY, NO_PIXELS
from sketchseg.render.colours import PAPER_COLOUR, UNLABELLED_COLOUR, colour

BACKGROUND = NO_PIXELS  # -1: Segmentation.labels on pixels of no stroke (segmenter.BACKGROUND)
UNLABELLED = NO_CATEGORY  # -2: Segmentation.labels on stroke pixels without a category (segmenter.UNLABELLED)
BACKGROUND_VALUE = 0
UNLABELLED_VALUE = 255
MAX_LABELLED_CATEGORIES = UNLABELLED_VALUE - 1  # values 1..254
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


def label_values(labels: np.ndarray) -> np.ndarray:
    """``int [H, W]`` label map -> ``uint8 [H, W]`` PNG values: 0 background, ``k + 1`` category ``k``, 255
    unlabelled. InputError for a label no value holds (a category index over 253, or another negative)."""
    labels = np.asarray(labels)
    if labels.size and (labels.max() >= MAX_LABELLED_CATEGORIES or labels.min() < UNLABELLED):
        raise InputError(
            f"label map holds values {int(labels.min())}..{int(labels.max())}: the 8-bit label PNG holds category "
            f"indices 0..{MAX_LABELLED_CATEGORIES - 1} (at most {MAX_LABELLED_CATEGORIES} categories), "
            f"{BACKGROUND} and {UNLABELLED}; segment with fewer categories"
        )
    return np.where(labels == UNLABELLED, UNLABELLED_VALUE, labels.astype(np.int16) + 1).astype(np.uint8)


def label_map(values: np.ndarray) -> np.ndarray:
    """``uint8 [H, W]`` PNG values -> ``int16 [H, W]`` label map: ``BACKGROUND`` on 0, ``UNLABELLED`` on 255,
    ``k - 1`` (an index into the categories) on ``k``; the inverse of :func:`label_values`."""
    values = np.asarray(values).astype(np.int16)
    return np.where(values == UNLABELLED_VALUE, UNLABELLED, values - 1).astype(np.int16)


def label_png(labels) -> Image.Image:
    """A label map (``int [H, W]``, or a result with ``labels`` and ``categories``) -> the palette image whose values
    are :func:`label_values`."""
    categories = getattr(labels, "categories", None)
    if categories is not None and len(categories) > MAX_LABELLED_CATEGORIES:
        raise InputError(
            f"{len(categories)} categories: the 8-bit label PNG holds at most {MAX_LABELLED_CATEGORIES}; segment with "
            "fewer categories"
        )
    values = label_values(getattr(labels, "labels", labels))  # [H, W]
    img = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
    palette = list(PAPER_COLOUR)
    for k in range(MAX_LABELLED_CATEGORIES):
        palette.extend(colour(k))
    palette.extend(UNLABELLED_COLOUR)  # 255
    img.putpalette(palette)
    return img


def encode_labels(labels, compress_level: int = 1) -> str:
    """A label map (or a result, as :func:`label_png`) -> base64 of its label PNG file: the ``labels_png`` of the
    server's answer and of the pyfunc model's output (fast compression: label maps compress well anyway)."""
    return png_base64(label_png(labels), compress_level)


def decode_labels(data: str | bytes | os.PathLike[str]) -> np.ndarray:
    """A label PNG -> ``int16 [H, W]`` label map as in :class:`~sketchseg.model.segmenter.Segmentation`: an index
    into the categories on labelled stroke pixels, ``BACKGROUND`` (-1) elsewhere, ``UNLABELLED`` (-2) on stroke
    pixels without a category. ``data``: a base64 string (``labels_png``; a ``data:`` URL prefix is accepted), the
    file's bytes, or a file's ``Path`` (``<stem>_labels.png``)."""
    where = "label PNG"
    if isinstance(data, os.PathLike):
        where = os.fspath(data)
        try:
            data = Path(data).read_bytes()
        except OSError as exc:
            raise InputError(f"{where}: cannot read the label PNG ({exc.strerror})") from None
    elif isinstance(data, str):
        try:
            data = base64.b64decode("".join(_DATA_URL.sub("", data.strip(), count=1).split()), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(
                f"{where}: not valid base64 (labels_png is a base64 PNG file; give a file's path as a pathlib.Path)"
            ) from None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("P", "L"):
                raise InputError(f"{where}: an image of mode {img.mode}, not a label PNG (8-bit palette or grey)")
            values = np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{where}: not a readable PNG file ({exc})") from None
    return label_map(values)
