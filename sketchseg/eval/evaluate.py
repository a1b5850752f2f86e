"""Running a model through the evaluation protocol (SPEC §7).

Each annotated sketch is rasterised stroke by stroke from its vector file at 512x512; the model sees that raster
resized to its input size; the candidate vocabulary is the sketch's ground-truth category set; every pixel takes the
argmax category of the bicubically upsampled cosine maps; only stroke pixels are scored
(:mod:`sketchseg.eval.metrics`). The same pass feeds the threshold sweep (:mod:`sketchseg.eval.calibration`)
with the min-max normalised maps.

Baselines use the same code on the same foundation weights: ``clip`` = plain patch features (no v-v, no prompts),
``clip_surgery`` = v-v attention at inference only (no fine-tuning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sketchseg.data.records import SketchRecord
from sketchseg.data.strokes import CANVAS, RASTER, StrokeRaster, split_strokes
from sketchseg.data.vector import VectorSketch
from sketchseg.data.vector_raster import rasterise_vector
from sketchseg.errors import DataError
from sketchseg.eval.calibration import ThresholdSweep, threshold_grid
from sketchseg.eval.metrics import SegmentationEvaluator
from sketchseg.eval.plots import OverlayItem, overlay_item
from sketchseg.model.image import model_input
from sketchseg.model.network import SketchSegModel
from sketchseg.model.similarity import minmax_normalise, upsample_maps
from sketchseg.model.stroke_labels import stroke_label_map

if TYPE_CHECKING:
    from sketchseg.data.friss import RealSet


@dataclass
class EvalSample:
    """One annotated sketch ready for scoring. ``image``: uint8 [512, 512] raster (black on white);
    ``stroke_labels``: per-stroke indices into ``vocabulary`` (the sketch's GT categories, first-appearance order)."""

    id: str
    image: np.ndarray
    raster: StrokeRaster
    stroke_labels: list[int]
    vocabulary: list[str]


def make_eval_sample(sketch_id: str, vector: np.ndarray, labels: Sequence[str], source: str = "") -> EvalSample:
    """Rasterise a vector sketch with its per-stroke label names."""
    strokes = split_strokes(vector, source=source or sketch_id)
    if len(strokes) != len(labels):
        raise DataError(f"{source or sketch_id}: {len(strokes)} strokes but {len(labels)} labels")
    vector_sketch = VectorSketch(tuple(strokes), canvas=(CANVAS, CANVAS), source=source or sketch_id, format="fscoco")
    raster = rasterise_vector(vector_sketch, size=RASTER, clip_to_canvas=True).raster  # the benchmark's raster
    vocabulary = list(dict.fromkeys(labels))
    index = {name: i for i, name in enumerate(vocabulary)}
    return EvalSample(
        id=sketch_id,
        image=raster.image(),
        raster=raster,
        stroke_labels=[index[name] for name in labels],
        vocabulary=vocabulary,
    )


def samples_from_records(records: Iterable[SketchRecord], limit: int = 0) -> list[EvalSample]:
    """EvalSamples of annotated records (val/test), at most ``limit`` (0 = all)."""
    out = []
    for record in records:
        if not record.annotated:
            raise DataError(f"sketch {record.id} ({record.split}) has no stroke labels; evaluate val or test only")
        out.append(make_eval_sample(record.id, record.vector, list(record.labels), str(record.image_path)))
        if limit and len(out) >= limit:
            break
    return out


def samples_from_shards(shards: str | Path, split: str, limit: int = 0) -> list[EvalSample]:
    """EvalSamples read from a split's webdataset shards (index order), at most ``limit`` (0 = all)."""
    from sketchseg.data.shards import make_dataset

    out = []
    for sample in make_dataset(shards, split, shuffle=False, seed=0):
        if sample.get("vector") is None or sample.get("labels") is None:
            raise DataError(f"{shards}: split {split} has no stroke labels (sample {sample['id']})")
        out.append(make_eval_sample(sample["id"], sample["vector"], list(sample["labels"]), f"{shards}:{sample['id']}"))
        if limit and len(out) >= limit:
            break
    return out


def samples_from_set(real: RealSet, split: str, limit: int = 0) -> list[EvalSample]:
    """EvalSamples of one split of a real set read by :func:`sketchseg.data.friss.read_set` (FrISS, CBSC), placed
    on the canvas as the pipeline's source stage places them, at most ``limit`` (0 = all)."""
    scenes = real.scenes.get(split, [])
    if limit:
        scenes = scenes[:limit]
    return [make_eval_sample(s.id, real.vector(s), s.labels, str(s.path)) for s in scenes]


@torch.no_grad()
def predict(
    model: SketchSegModel, samples: Sequence[EvalSample], batch_size: int = 32
) -> Iterator[tuple[EvalSample, torch.Tensor]]:
    """Yield (sample, similarity maps [C, 512, 512]) with C = the sample's vocabulary size."""
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        x = model_input([s.image for s in chunk], model.image_size).to(device)
        feats = model.encode_sketch(x, need_scene=False)
        for i, sample in enumerate(chunk):
            text = model.encode_categories(sample.vocabulary)  # [C, D], cached
            one = feats.sample(i)
            grid = model.grid_similarity(one, text)  # [1, C, gh, gw]
            size = sample.image.shape
            yield sample, upsample_maps(grid, (size[0], size[1]), model.cfg.upsample)[0].float().cpu()


def label_map(sim: torch.Tensor) -> np.ndarray:
    """Category of every pixel, the argmax of similarity maps [C, H, W] (first maximum on ties): int64 [H, W].
    numpy's argmax over the first axis: torch's ``argmax(dim=0)`` took 0.1-0.3 s per 512x512 sketch on 2 cores,
    most of an evaluation (same result)."""
    return sim.numpy().argmax(axis=0).astype(np.int64, copy=False)


@dataclass
class EvalResult:
    """Summary (fractions in [0, 1]), per-sketch rows, the threshold curve and a few items for overlay plots;
    ``evaluator`` keeps every sketch's metrics (paired intervals, :mod:`sketchseg.eval.bootstrap`)."""

    summary: dict[str, Any]
    per_sketch: list[dict[str, Any]]
    curve: dict[str, Any] | None
    overlays: list[OverlayItem] = field(default_factory=list)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # summary of each non-empty group of sketches
    evaluator: SegmentationEvaluator | None = None


def evaluate_floor(
    name: str,
    samples: Sequence[EvalSample],
    *,
    seen: set[str] | None = None,
    frequencies: dict[str, dict[str, int]] | None = None,
) -> EvalResult:
    """Score the floor ``name`` (``chance`` or ``majority``, :mod:`sketchseg.eval.floors`) on ``samples`` as a model
    is scored: no model runs."""
    from sketchseg.eval.floors import floor_sketch

    evaluator = SegmentationEvaluator(seen_categories=seen, frequencies=frequencies)
    for sample in samples:
        m = floor_sketch(name, sample.raster, sample.stroke_labels, sample.vocabulary)
        evaluator.add_metrics(sample.id, m, sample.vocabulary)
    if len(evaluator) == 0:
        raise DataError("no sketch to evaluate: the evaluation split is empty")
    return EvalResult(summary=evaluator.summary(), per_sketch=evaluator.per_sketch(), curve=None, evaluator=evaluator)


def evaluate_model(
    model: SketchSegModel,
    samples: Sequence[EvalSample],
    *,
    seen: set[str] | None = None,
    frequencies: dict[str, dict[str, int]] | None = None,
    sweep: bool = True,
    tau_grid: np.ndarray | None = None,
    overlays: int = 0,
    groups: Mapping[str, Callable[[EvalSample], bool]] | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> EvalResult:
    """Score ``model`` on ``samples`` by the benchmark protocol; optionally sweep τ and keep overlay items.
    ``groups`` (name -> which sketches belong) adds the summary of each group of sketches, from the same pass."""
    from sketchseg.progress import progress as progress_bar

    evaluator = SegmentationEvaluator(seen_categories=seen, frequencies=frequencies)
    members = {name: SegmentationEvaluator(seen_categories=seen, frequencies=frequencies) for name in groups or {}}
    sweeper = ThresholdSweep(tau_grid if tau_grid is not None else threshold_grid()) if sweep else None
    kept: list[OverlayItem] = []
    stream = predict(model, samples, batch_size)
    by_strokes = model.cfg.labels == "stroke"
    for sample, sim in progress_bar(stream, total=len(samples), desc="evaluate", unit="sketch", enabled=progress,
                                    leave=False):
        pred = stroke_label_map(sim.numpy(), sample.raster) if by_strokes else label_map(sim)  # [512, 512]
        evaluator.add(sample.id, pred, sample.raster, sample.stroke_labels, sample.vocabulary)
        for name, member in members.items():
            if groups[name](sample):
                member.add(sample.id, pred, sample.raster, sample.stroke_labels, sample.vocabulary)
        if sweeper is not None:
            norm = minmax_normalise(sim[None])[0].numpy()  # [C, 512, 512]
            sweeper.add(sample.id, norm, sample.raster, sample.stroke_labels)
        if len(kept) < overlays:
            kept.append(overlay_item(sample.id, pred, sample.raster, sample.stroke_labels, sample.vocabulary))
    if len(evaluator) == 0:
        raise DataError("no sketch to evaluate: the evaluation split is empty")
    curve = sweeper.curve().to_dict() if sweeper is not None else None
    summaries = {name: member.summary() for name, member in members.items() if len(member)}
    return EvalResult(summary=evaluator.summary(), per_sketch=evaluator.per_sketch(), curve=curve, overlays=kept,
                      groups=summaries, evaluator=evaluator)  # fmt: skip
