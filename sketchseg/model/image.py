"""The model's input from sketches: rasters resized (bicubic) to the encoder's input size as intensities in [0, 1],
a user's sketch first padded to a white square (reading a sketch of any kind is :mod:`sketchseg.data.sketch`'s)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from sketchseg.data.sketch import Sketch


def resized_intensity(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W] raster -> float32 [S, S] intensities in [0, 1] at ``size`` (bicubic), as the model is fed."""
    resized = Image.fromarray(gray).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32) / 255.0


def model_input(images: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """uint8 [H, W] rasters -> [B, 1, S, S] intensities in [0, 1]."""
    return torch.from_numpy(np.stack([resized_intensity(img, size) for img in images])).unsqueeze(1)


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
    return torch.from_numpy(resized_intensity(square, size)).unsqueeze(0), (side, top, left)  # [1, S, S]
