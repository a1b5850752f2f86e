"""Inference API: label the strokes of sketches from a list of category names or a caption (SPEC §3.4)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchseg.data.sketch import Sketch, SketchLike, as_sketch
from sketchseg.data.vector_raster import RasterisedVector
from sketchseg.errors import InputError
from sketchseg.model.config import ModelConfig
from sketchseg.model.image import to_model_input
from sketchseg.model.network import SketchSegModel
from sketchseg.model.recipe import InferenceRecipe, get_recipe
from sketchseg.model.similarity import upsample_maps
from sketchseg.model.stroke_labels import StrokeLabel, stroke_argmax, stroke_labels, vote_stroke_labels

BACKGROUND = -1  # label of non-stroke pixels in Segmentation.labels
UNLABELLED = -2  # label of stroke pixels the recipe's threshold left without a category (recipe authors)

ImageLike = SketchLike  # a path (image, .npy, .json or .svg), an array, a PIL image, a VectorSketch or a Sketch


@dataclass
class Segmentation:
    """Result for one sketch.

    ``labels``: int16 [H, W], index into ``categories`` on stroke pixels, ``BACKGROUND`` (-1) elsewhere; with a
    recipe that unlabels below its threshold (``authors``), ``UNLABELLED`` (-2) on stroke pixels whose every map value
    fell below it (never with the default recipe).
    ``similarity``: float32 [C, H, W] the recipe's maps at the sketch's resolution: cosine similarity (``sketchseg``),
    or per-category min-max normalised (``authors``).
    ``masks``: bool [C, H, W] isolated strokes of each category (stroke pixels whose min-max normalised similarity
    exceeds ``threshold``; at or above it for ``authors``), or None without a threshold.
    ``shares``: category -> fraction of stroke pixels labelled with it; ``unlabelled``: the fraction left unlabelled.
    ``stroke_labels`` (vector input, None for an image): one :class:`StrokeLabel` per input stroke in input order,
    the majority category of its pixels, or with ``model.labels: stroke`` the argmax of its mean map, which all its
    pixels then take (:mod:`sketchseg.model.stroke_labels`); ``vector``: the strokes and their pixel sets on the
    512x512 raster the labels refer to.
    ``work_size``: ``(h, w)`` of ``similarity`` when the maps were computed at a working resolution below the sketch's
    (a Segmenter with ``work_pixels``, a large sketch; every stroke pixel then took its working pixel's label and
    mask), None when they are at the sketch's resolution.
    ``untrained``: the model's weights are a random initialisation (its renderings say UNTRAINED).
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
    unlabelled: float = 0.0
    recipe: str = "sketchseg"
    stroke_labels: list[StrokeLabel] | None = None
    vector: RasterisedVector | None = None
    work_size: tuple[int, int] | None = None
    untrained: bool = False


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


@dataclass
class SegmentRequest:
    """One sketch with its own vocabulary (exactly one of ``categories`` and ``caption``) and optional threshold,
    for :meth:`Segmenter.segment_batch`."""

    image: ImageLike
    categories: str | Sequence[str] | None = None
    caption: str | None = None
    threshold: float | None = None
    model_input: tuple[torch.Tensor, tuple[int, int, int]] | None = None  # Segmenter.model_input(image), if computed


@dataclass
class _Vocabulary:
    """A cleaned category list with its embeddings [C, D] and the notes its cleaning produced."""

    names: list[str]
    text: torch.Tensor
    notes: list[str]


@dataclass
class EncodedSketch:
    """A sketch after the encoder (:meth:`Segmenter.encode_batch`): its maps on the patch grid [1, C, gh, gw], the
    padding box of its model input, its vocabulary and threshold; :meth:`Segmenter.finish` makes the Segmentation."""

    sketch: Sketch
    box: tuple[int, int, int]
    grid_maps: torch.Tensor
    vocab: _Vocabulary
    threshold: float | None


def check_threshold(threshold: float | None) -> None:
    """Raise InputError unless ``threshold`` is None or lies in [0, 1]."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold {threshold} must lie in [0, 1] (it applies to min-max normalised maps)")


def with_stroke_labels(seg: Segmentation, sketch: Sketch) -> Segmentation:
    """Attach per-stroke labels when ``sketch`` came from vector strokes: the majority of each stroke's pixels,
    unless they were labelled by strokes already (``model.labels: stroke``)."""
    if sketch.vector is not None:
        seg.vector = sketch.vector
        if seg.stroke_labels is None:
            seg.stroke_labels = vote_stroke_labels(seg.labels, sketch.vector.raster, seg.categories)
    return seg


class Segmenter:
    """Segments sketches with a :class:`SketchSegModel`. Category embeddings are cached by the model's text encoder,
    so a repeated vocabulary costs no text-tower call. Sketches are encoded in batches of ``batch_size``; each
    sketch of a batch may carry its own vocabulary (:meth:`segment_batch`). ``recipe`` (``sketchseg`` | ``authors``
    | an :class:`~sketchseg.model.recipe.InferenceRecipe`) decides templates, maps, upsampling and the threshold's
    effect; its default threshold applies when a call gives none.

    ``work_pixels`` bounds the memory of large sketches: when the sketch padded to a square holds more pixels, the
    maps are computed at a working resolution of at most that many pixels over the sketch (the values the
    upsampling would give at the working pixels' centres) instead of at the sketch's resolution, and every stroke
    pixel takes the label (and isolated mask) of its working pixel: [C, H, W] maps would need 4 C bytes per pixel
    (2 GB for 32 categories at 4096 x 4096). None (default): always at the sketch's resolution."""

    def __init__(
        self,
        model: SketchSegModel,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        recipe: str | InferenceRecipe = "sketchseg",
        work_pixels: int | None = None,
    ) -> None:
        if work_pixels is not None and work_pixels < 1:
            raise InputError(f"work_pixels {work_pixels}: must be >= 1 (or None)")
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.recipe = get_recipe(recipe)
        self.work_pixels = work_pixels

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

    def _vocabulary(self, categories: str | Sequence[str] | None, caption: str | None) -> _Vocabulary:
        names, notes = self.resolve_categories(categories, caption)
        return _Vocabulary(names=names, text=self.recipe.text(self.model, names), notes=notes)  # text: [C, D]

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
        check_threshold(threshold)
        vocab = self._vocabulary(categories, caption)
        batch: list[Sketch] = []
        for image in images:
            batch.append(as_sketch(image))
            if len(batch) == self.batch_size:
                yield from self._run(batch, [vocab] * len(batch), [threshold] * len(batch))
                batch = []
        if batch:
            yield from self._run(batch, [vocab] * len(batch), [threshold] * len(batch))

    def model_input(self, image: ImageLike) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """What the encoder gets for ``image`` ([1, S, S] and the padding box, :func:`to_model_input`): computed
        beforehand and passed in :attr:`SegmentRequest.model_input`, it keeps the resizing of a large sketch out of
        :meth:`segment_batch` (a server's model thread)."""
        return to_model_input(as_sketch(image), self.model.image_size)

    @torch.no_grad()
    def segment_batch(self, requests: Sequence[SegmentRequest]) -> list[Segmentation]:
        """Segment sketches that each carry their own vocabulary and threshold, encoding them together in batches
        of ``batch_size`` (what a server does with concurrent requests). Every request is validated first."""
        return [self.finish(encoded) for encoded in self.encode_batch(requests)]

    @torch.no_grad()
    def encode_batch(self, requests: Sequence[SegmentRequest]) -> list[EncodedSketch]:
        """The first half of :meth:`segment_batch`: validate, embed the vocabularies, run the encoder over the
        sketches in batches of ``batch_size`` and compute each sketch's maps on the patch grid; :meth:`finish` turns
        each into its Segmentation (a server finishes them outside its model thread)."""
        for request in requests:
            check_threshold(request.threshold)
        vocabs = [self._vocabulary(r.categories, r.caption) for r in requests]
        sketches = [as_sketch(r.image) for r in requests]
        prepared = [r.model_input for r in requests]
        out: list[EncodedSketch] = []
        for start in range(0, len(requests), self.batch_size):
            stop = start + self.batch_size
            thresholds = [r.threshold for r in requests[start:stop]]
            out.extend(self._encode(sketches[start:stop], vocabs[start:stop], thresholds, prepared[start:stop]))
        return out

    @torch.no_grad()
    def finish(self, encoded: EncodedSketch) -> Segmentation:
        """The second half of :meth:`segment_batch` for one sketch: maps at the sketch's resolution (or the working
        one), labels, masks, shares, stroke labels."""
        e = encoded
        return with_stroke_labels(self._finish(e.sketch, e.box, e.grid_maps, e.vocab, e.threshold), e.sketch)

    def _run(
        self, sketches: list[Sketch], vocabs: list[_Vocabulary], thresholds: list[float | None]
    ) -> Iterator[Segmentation]:
        for encoded in self._encode(sketches, vocabs, thresholds):
            yield self.finish(encoded)

    def _encode(
        self,
        sketches: list[Sketch],
        vocabs: list[_Vocabulary],
        thresholds: list[float | None],
        prepared: Sequence[tuple[torch.Tensor, tuple[int, int, int]] | None] | None = None,
    ) -> list[EncodedSketch]:
        size = self.model.image_size
        prepared = prepared or [None] * len(sketches)
        pairs = (p if p is not None else to_model_input(s, size) for s, p in zip(sketches, prepared, strict=True))
        inputs, boxes = zip(*pairs, strict=True)
        x = torch.stack(inputs).to(self.device)  # [B, 1, S, S]
        feats = self.model.encode_sketch(x, need_scene=False)  # patches [B, K, D]
        out = []
        for i, (sketch, box, vocab, threshold) in enumerate(zip(sketches, boxes, vocabs, thresholds, strict=True)):
            one = feats.sample(i)
            grid_maps = self.recipe.grid_maps(self.model, one, vocab.text)  # [1, C, gh, gw]
            out.append(EncodedSketch(sketch=sketch, box=box, grid_maps=grid_maps, vocab=vocab, threshold=threshold))
        return out

    def _finish(
        self,
        sketch: Sketch,
        box: tuple[int, int, int],
        grid_maps: torch.Tensor,
        vocab: _Vocabulary,
        threshold: float | None,
    ) -> Segmentation:
        """Maps on the patch grid [1, C, gh, gw] -> the sketch's Segmentation at its own resolution."""
        side, top, left = box
        h, w = sketch.size
        threshold = self.recipe.threshold if threshold is None else threshold
        if self.work_pixels is not None and side * side > self.work_pixels:
            return self._finish_at_work_size(sketch, box, grid_maps, vocab, threshold)
        full = upsample_maps(grid_maps.float(), (side, side), self.recipe.upsample_mode(self.model))
        sim = full[0, :, top : top + h, left : left + w].cpu()  # [C, H, W], upsampled on the model's device
        # per-pixel work on stroke pixels only (a few % of the sketch), through flat indices: boolean-mask
        # indexing of [C, H, W] tensors costs ~30x more on CPU
        ink = torch.from_numpy(np.flatnonzero(sketch.strokes))  # [N]
        on_ink = sim.reshape(len(vocab.names), h * w)[:, ink]  # [C, N]
        ink_labels = on_ink.argmax(dim=0).to(torch.int16)  # [N]
        strokes = None
        if self.by_strokes(sketch):  # model.labels: stroke: a stroke's pixels take the argmax of its mean map
            raster = sketch.vector.raster
            strokes = stroke_argmax(sim.numpy(), raster)  # [S]
            pixel_labels = np.full(h * w, BACKGROUND, dtype=np.int64)
            pixel_labels[ink.numpy()] = ink_labels.numpy()  # each pixel's own argmax: the labels' confidence
            owner = raster.owner_map().reshape(-1)[ink.numpy()]  # [N] the stroke on top at each ink pixel
            ink_labels = torch.from_numpy(strokes[owner]).to(torch.int16)
        labels = torch.full((h * w,), BACKGROUND, dtype=torch.int16)
        labels[ink] = ink_labels
        masks = None
        if threshold is not None:
            masks = self.recipe.isolate(sim, threshold).reshape(len(vocab.names), h * w)  # [C, H*W]
            if self.recipe.unlabel_below_threshold:  # every value below the threshold: no category
                ink_labels[~masks[:, ink].any(dim=0)] = UNLABELLED
                labels[ink] = ink_labels
            keep = torch.zeros(h * w, dtype=torch.bool)
            keep[ink] = True
            masks = (masks & keep).reshape(len(vocab.names), h, w).numpy()
        seg = self._result(sketch, vocab, threshold, labels.reshape(h, w).numpy(), ink_labels.numpy(), sim, masks)
        if strokes is not None:
            seg.stroke_labels = stroke_labels(strokes, pixel_labels.reshape(h, w), sketch.vector.raster, vocab.names)
        return seg

    def by_strokes(self, sketch: Sketch) -> bool:
        """Whether ``sketch`` is labelled by strokes: vector input, ``model.labels: stroke``, sketchseg's recipe."""
        return sketch.vector is not None and self.model.cfg.labels == "stroke" and self.recipe.name == "sketchseg"

    def _result(
        self,
        sketch: Sketch,
        vocab: _Vocabulary,
        threshold: float | None,
        labels: np.ndarray,
        ink_labels: np.ndarray,
        sim: torch.Tensor,
        masks: np.ndarray | None,
        work_size: tuple[int, int] | None = None,
    ) -> Segmentation:
        """The Segmentation of ``labels`` [H, W] whose stroke pixels hold ``ink_labels`` (shares, notes)."""
        labelled = ink_labels[ink_labels >= 0]
        counts = np.bincount(labelled.astype(np.int64), minlength=len(vocab.names))
        total = max(len(ink_labels), 1)
        unlabelled = (len(ink_labels) - len(labelled)) / total
        notes = []
        if unlabelled:
            notes.append(f"{unlabelled:.1%} of stroke pixels unlabelled: every map below the threshold {threshold}")
        return Segmentation(
            categories=list(vocab.names),
            labels=labels,
            similarity=sim.cpu().numpy(),
            strokes=sketch.strokes,
            masks=masks,
            threshold=threshold,
            shares={n: float(c) / total for n, c in zip(vocab.names, counts, strict=True)},
            notes=list(vocab.notes) + list(sketch.notes) + notes,
            source=sketch.source,
            unlabelled=unlabelled,
            recipe=self.recipe.name,
            work_size=work_size,
            untrained=self.model.untrained,
        )

    def work_size(self, h: int, w: int) -> tuple[int, int]:
        """The working resolution ``(h', w')`` of an ``h`` x ``w`` sketch: its own when it holds at most
        ``work_pixels`` pixels, else scaled down (aspect kept) to at most ``work_pixels``."""
        if self.work_pixels is None or h * w <= self.work_pixels:
            return h, w
        f = (self.work_pixels / (h * w)) ** 0.5
        return max(1, min(h, int(h * f))), max(1, min(w, int(w * f)))

    def _finish_at_work_size(
        self,
        sketch: Sketch,
        box: tuple[int, int, int],
        grid_maps: torch.Tensor,
        vocab: _Vocabulary,
        threshold: float | None,
    ) -> Segmentation:
        """:meth:`_finish` through a working resolution (``work_pixels``): the maps are sampled at the centres of
        the working pixels, where :func:`upsample_maps` to the padded square would put them (``grid_sample`` with
        the same interpolation, border clamping and ``align_corners=False``); each sketch pixel then takes the
        values of the working pixel it lies in. Memory: 4 C bytes per working pixel, 2 bytes per sketch pixel
        (labels), C bytes per sketch pixel with a threshold (masks)."""
        side, top, left = box
        h, w = sketch.size
        wh, ww = self.work_size(h, w)
        c = len(vocab.names)
        # centres of the working pixels in the padded square's pixel coordinates -> grid_sample's [-1, 1]
        ys = (torch.arange(wh, dtype=torch.float64) + 0.5) * (h / wh) + top
        xs = (torch.arange(ww, dtype=torch.float64) + 0.5) * (w / ww) + left
        gy, gx = torch.meshgrid(2 * ys / side - 1, 2 * xs / side - 1, indexing="ij")  # [wh, ww] each
        grid = torch.stack([gx, gy], dim=-1).to(torch.float32)[None]  # [1, wh, ww, 2] as (x, y)
        mode = self.recipe.upsample_mode(self.model)
        grid = grid.to(grid_maps.device)
        sim = F.grid_sample(grid_maps.float(), grid, mode=mode, padding_mode="border", align_corners=False)[0].cpu()
        # [C, wh, ww]; each stroke pixel's working pixel: floor((y + 0.5) * wh / h), exactly in integers
        rows = (2 * np.arange(h, dtype=np.int64) + 1) * wh // (2 * h)  # [H]
        cols = (2 * np.arange(w, dtype=np.int64) + 1) * ww // (2 * w)  # [W]
        ink = np.flatnonzero(sketch.strokes)  # [N]
        ys = ink // w
        cell = rows[ys] * ww + cols[ink - ys * w]  # [N] flat working pixel of each stroke pixel
        del ys
        cell_labels = sim.max(dim=0).indices.to(torch.int16).reshape(-1)  # [wh * ww] (argmax; 5x faster on dim 0)
        masks = None
        if threshold is not None:
            cell_masks = self.recipe.isolate(sim, threshold).reshape(c, -1)  # [C, wh * ww]
            if self.recipe.unlabel_below_threshold:
                cell_labels[~cell_masks.any(dim=0)] = UNLABELLED
            cell_masks = cell_masks.numpy()
            masks = np.zeros((c, h * w), dtype=bool)
            for k in range(c):
                masks[k, ink] = cell_masks[k, cell]
            masks = masks.reshape(c, h, w)
        ink_labels = cell_labels.numpy()[cell]  # [N]
        labels = np.full(h * w, BACKGROUND, dtype=np.int16)
        labels[ink] = ink_labels
        labels = labels.reshape(h, w)
        return self._result(sketch, vocab, threshold, labels, ink_labels, sim, masks, work_size=(wh, ww))
