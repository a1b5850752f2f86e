"""The floors every score is read against: chance and the majority oracle, scored like a model (same sketches, same
candidate vocabulary: each sketch's ground-truth categories, same pixels and strokes).

- ``chance``: every stroke pixel labelled uniformly at random among the sketch's ``K`` categories. Its metrics are
  those of the expected confusion matrix (each GT pixel counts ``1/K`` towards every category), what a random
  labelling's scores converge to: Acc@P and Acc@S are exactly ``1/K`` per sketch, the IoU of category ``c`` with
  ``n_c`` of the sketch's ``N`` pixels is ``(n_c / K) / (n_c + N / K - n_c / K)``. A sketch of one category scores
  100 % whatever the model does: sets where a third of the sketches hold one category have a high floor.
- ``majority``: every pixel takes the sketch's most frequent ground-truth category (by pixels, ties to the first
  category of the sketch's vocabulary). An oracle: it reads the labels, which no model sees.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sketchseg.data.strokes import StrokeRaster
from sketchseg.eval.metrics import SketchMetrics, category_iou, evaluate_sketch

FLOORS = ("chance", "majority")


def _pixel_truth(raster: StrokeRaster, stroke_labels: Sequence[int]) -> np.ndarray:
    """GT category of every stroke pixel (the last-drawn stroke wins, as the evaluator rules): int64 [N]."""
    owner = raster.owner_map().reshape(-1)  # [H * W], -1 on background
    fg = owner[owner >= 0]
    return np.asarray(stroke_labels, dtype=np.int64)[fg]


def chance_sketch(raster: StrokeRaster, stroke_labels: Sequence[int], n_categories: int) -> SketchMetrics:
    """The expected metrics of uniformly random labels among ``n_categories`` (module doc)."""
    labels = np.asarray(stroke_labels, dtype=np.int64)
    k = n_categories
    gt = np.bincount(_pixel_truth(raster, labels), minlength=k).astype(np.float64)  # [K]
    confusion = np.zeros((k, k + 1))
    confusion[:, :k] = gt[:, None] / k  # [K, K + 1]: each GT pixel spread evenly
    iou = category_iou(confusion)
    counted = np.array([p.size > 0 for p in raster.pixels], dtype=bool)
    return SketchMetrics(
        acc_p=1.0 / k,
        acc_s=1.0 / k,
        miou=float(np.mean(list(iou.values()))),
        iou=iou,
        confusion=confusion,
        stroke_pred=np.full(len(labels), -1, dtype=np.int64),
        stroke_labels=labels,
        stroke_counted=counted,
        n_pixels=int(gt.sum()),
        stroke_hits=float(counted.sum()) / k,
    )


def majority_label_map(raster: StrokeRaster, stroke_labels: Sequence[int], n_categories: int) -> np.ndarray:
    """The majority oracle's prediction: the sketch's most frequent GT category (by pixels, first on ties) on every
    pixel: int64 [H, W]."""
    counts = np.bincount(_pixel_truth(raster, stroke_labels), minlength=n_categories)  # [K]
    return np.full((raster.size, raster.size), int(np.argmax(counts)), dtype=np.int64)


def floor_sketch(
    name: str, raster: StrokeRaster, stroke_labels: Sequence[int], vocabulary: Sequence[str]
) -> SketchMetrics:
    """The metrics of floor ``name`` (``chance`` or ``majority``) on one sketch."""
    if name == "chance":
        return chance_sketch(raster, stroke_labels, len(vocabulary))
    if name == "majority":
        pred = majority_label_map(raster, stroke_labels, len(vocabulary))
        return evaluate_sketch(pred, raster, stroke_labels, list(vocabulary))
    raise ValueError(f"unknown floor {name!r}; choose {' or '.join(FLOORS)}")
