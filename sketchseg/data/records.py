"""The in-memory form of one sketch of the FSCOCO-Seg layout (SPEC §6.1), shared by reader, shards and training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SketchRecord:
    """One sketch with its caption and, for annotated splits, its vector strokes and per-stroke labels.

    ``vector`` is the raw ``(n, 3)`` ``[x, y, pen]`` array of the ``vector_sketches/<id>.npy`` file and
    ``labels`` the per-stroke category names of ``classes/<id>.json`` (both ``None`` for ``train``).
    """

    id: str
    split: str
    caption: str
    image_path: Path
    participant: str | None = None
    vector: np.ndarray | None = None
    labels: tuple[str, ...] | None = None

    @property
    def annotated(self) -> bool:
        return self.vector is not None and self.labels is not None
