"""Inference API: label the strokes of sketches from a list of category names or a caption (SPEC §3.4)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sketchseg.errors import InputError
from sketchseg.model.config import ModelConfig
from sketchseg.model.image import Sketch, load_sketch, sketch_from_array, to_model_input
from sketchseg.model.network import SketchSegModel
from sketchseg.model.similarity import minmax_normalise, upsample_maps

BACKGROUND = -1  # label of non-stroke pixels in Segmentation.labels

ImageLike = str | Path | np.ndarray | Image.Image | Sketch


@dataclass
class Segmentation:
    """Result for one sketch.

    ``labels``: int16 [H, W], index into ``categories`` on stroke pixels, ``BACKGROUND`` (-1) elsewhere.
    ``similarity``: float32 [C, H, W] cosine similarity maps at the sketch's resolution.
    ``masks``: bool [C, H, W] isolated strokes of each category (stroke pixels whose min-max normalised similarity
    exceeds ``threshold``), or None without a threshold.
    ``shares``: category -> fraction of stroke pixels labelled with it.
    """

    categories: list[str]
    labels: np.ndarray
    similarity: np.ndarray
    strokes: np.ndarray
    masks: np.ndarray | None = None
    threshold: float | None = None
    shares: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = "<array>"


def normalise_categories(categories: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """Clean a category list: split a comma-separated string, trim, collapse spaces, drop empty entries and
    case-insensitive duplicates (first spelling kept). Returns (categories, notes); raises InputError if empty."""
    if isinstance(categories, str):
        categories = categories.split(",")
    out: list[str] = []
    seen: set[str] = set()
    dropped: list[str] = []
    for raw in categories:
        if not isinstance(raw, str):
            raise InputError(f"category {raw!r} is not a string")
        name = re.sub(r"\s+", " ", raw).strip()
        if not name:
            continue
        key = name.lower()
        if key in seen:
            dropped.append(name)
            continue
        seen.add(key)
        out.append(name)
    if not out:
        raise InputError("empty category list: give at least one category, e.g. --categories \"tree, house\"")
    notes = [f"duplicate categories ignored: {', '.join(dropped)}"] if dropped else []
    return out, notes


def as_sketch(image: ImageLike) -> Sketch:
    """Accept a path, a PIL image, a uint8 [H, W] array or a Sketch."""
    if isinstance(image, Sketch):
        return image
    if isinstance(image, (str, Path)):
        return load_sketch(image)
    if isinstance(image, Image.Image):
        from sketchseg.model.image import _to_gray

        return sketch_from_array(_to_gray(image))
    if isinstance(image, np.ndarray):
        return sketch_from_array(image)
    raise InputError(f"unsupported image type {type(image).__name__}; pass a path, PIL image or uint8 array")


class Segmenter:
    """Segments sketches with a :class:`SketchSegModel`. Category embeddings are cached by the model's text encoder,
    so a repeated vocabulary costs no text-tower call."""

    def __init__(self, model: SketchSegModel, device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> Segmenter:
        from sketchseg.model.checkpoint import load_model

        return cls(load_model(path), **kwargs)

    @classmethod
    def from_config(cls, cfg: ModelConfig, **kwargs) -> Segmenter:
        return cls(SketchSegModel(cfg), **kwargs)

    @property
    def weights(self) -> str:
        return self.model.weights

    def resolve_categories(
        self, categories: str | Sequence[str] | None, caption: str | None
    ) -> tuple[list[str], list[str]]:
        """Categories from an explicit list or parsed from a caption (exactly one of the two)."""
        if (categories is None) == (caption is None):
            raise InputError("give either categories or a caption")
        if caption is not None:
            from sketchseg.data.captions import parse_categories

            parsed = parse_categories(caption)
            if not parsed:
                raise InputError(f"no object nouns found in the caption {caption!r}; pass categories instead")
            return normalise_categories(parsed)
        return normalise_categories(categories)

    def segment(
        self,
        image: ImageLike,
        categories: str | Sequence[str] | None = None,
        caption: str | None = None,
        threshold: float | None = None,
    ) -> Segmentation:
        """Segment one sketch. ``threshold`` in (0, 1) also returns the isolated masks."""
        return next(iter(self.segment_many([image], categories=categories, caption=caption, threshold=threshold)))

    @torch.no_grad()
    def segment_many(
        self,
        images: Iterable[ImageLike],
        categories: str | Sequence[str] | None = None,
        caption: str | None = None,
        threshold: float | None = None,
    ) -> Iterator[Segmentation]:
        """Segment sketches in batches of ``batch_size`` with one shared vocabulary; yields results in order."""
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold {threshold} must lie in [0, 1] (it applies to min-max normalised maps)")
        names, notes = self.resolve_categories(categories, caption)
        text = self.model.encode_categories(names)  # [C, D], cached per category
        batch: list[Sketch] = []
        for image in images:
            batch.append(as_sketch(image))
            if len(batch) == self.batch_size:
                yield from self._run(batch, names, text, threshold, notes)
                batch = []
        if batch:
            yield from self._run(batch, names, text, threshold, notes)

    def _run(
        self, sketches: list[Sketch], names: list[str], text: torch.Tensor, threshold: float | None, notes: list[str]
    ) -> Iterator[Segmentation]:
        size = self.model.image_size
        inputs, boxes = zip(*(to_model_input(s, size) for s in sketches), strict=True)
        x = torch.stack(inputs).to(self.device)  # [B, 1, S, S]
        feats = self.model.encode_sketch(x, need_scene=False)
        grid_maps = self.model.grid_similarity(feats, text)  # [B, C, gh, gw]
        for i, (sketch, (side, top, left)) in enumerate(zip(sketches, boxes, strict=True)):
            h, w = sketch.size
            full = upsample_maps(grid_maps[i : i + 1], (side, side), self.model.cfg.upsample)
            sim = full[0, :, top : top + h, left : left + w]  # [C, H, W]
            labels = torch.full((h, w), BACKGROUND, dtype=torch.int16)
            strokes = torch.from_numpy(sketch.strokes)
            labels[strokes] = sim.argmax(dim=0).to(torch.int16)[strokes]
            masks = None
            if threshold is not None:
                masks = ((minmax_normalise(sim[None])[0] > threshold) & strokes[None]).numpy()
            counts = np.bincount(labels[strokes].numpy().astype(np.int64), minlength=len(names))
            total = max(int(strokes.sum()), 1)
            yield Segmentation(
                categories=list(names),
                labels=labels.numpy(),
                similarity=sim.float().cpu().numpy(),
                strokes=sketch.strokes,
                masks=masks,
                threshold=threshold,
                shares={n: float(c) / total for n, c in zip(names, counts, strict=True)},
                notes=list(notes) + list(sketch.notes),
                source=sketch.source,
            )
