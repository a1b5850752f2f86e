"""Segmentation metrics of the scene-sketch benchmark (SPEC §7; paper Sec. 4.2, S2, S2.2, Tables S5/S6, Eq. 5).

Protocol (as the authors evaluate):

* every stroke is rasterised alone from the vector file at 512x512 (:func:`sketchseg.data.strokes.rasterise`);
* only stroke pixels count, background pixels are ignored whatever the prediction says there;
* the candidate vocabulary of a sketch is its ground-truth category set; predictions are indices into
  that vocabulary (a vocabulary may hold extra names: a category predicted but absent from the ground truth).

Conventions used by every function of this module:

* **Ground truth of a pixel shared by several strokes: the stroke drawn LAST wins** (it lies on top), the rule
  of :meth:`StrokeRaster.owner_map`. Acc@P, the IoUs and the confusion matrix use this pixel ground truth.
* **Acc@S** uses each stroke's FULL pixel set, shared pixels included: the stroke's predicted label is the most
  frequent predicted value over all its pixels. Ties go to the smallest category index. A pixel predicted with a
  negative value (or any value outside the vocabulary below 0) means "no category"; it takes part in the vote as
  one extra value that loses every tie against a real category. A stroke with no pixel at all (it fell outside
  the canvas) has no label and is left out of Acc@S.
* **IoU per sketch** is computed over the categories present in GT ∪ prediction on stroke pixels (a category
  with GT pixels, or predicted on at least one stroke pixel). A category only in the prediction has IoU 0 and
  counts in the mean. A category of the vocabulary that is neither in the GT pixels nor predicted is skipped.
  Pixels predicted as "no category" are false negatives of their GT category and create no category.
* All metrics are **fractions in [0, 1]** (multiply by 100 for the paper's tables). Undefined values (e.g. a
  correlation over fewer than two categories) are ``None`` so that summaries stay JSON-serialisable.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from sketchseg.data.strokes import StrokeRaster
from sketchseg.data.vocabulary import normalise_name
from sketchseg.errors import InputError
from sketchseg.io_utils import write_json

__all__ = [
    "SketchMetrics",
    "SegmentationEvaluator",
    "evaluate_sketch",
    "pearson",
    "frequency_correlation",
    "write_metrics_json",
]


@dataclass(frozen=True)
class SketchMetrics:
    """Metrics of one sketch. Category indices refer to the sketch's vocabulary (``V`` names).

    ``confusion[g, p]`` counts stroke pixels of GT category ``g`` predicted as ``p``; column ``V`` holds the
    pixels predicted as "no category" (an expected count, float, for :func:`sketchseg.eval.floors.chance_sketch`).
    ``iou`` maps each category of GT ∪ prediction to its IoU. ``stroke_pred[i]`` is stroke ``i``'s voted label
    (``-1``: no category or a stroke without pixels), ``stroke_counted[i]`` whether the stroke has pixels and
    therefore counts in Acc@S, ``stroke_hits`` how many counted strokes got their GT label (expected for chance).
    """

    acc_p: float
    acc_s: float
    miou: float
    iou: dict[int, float]
    confusion: np.ndarray  # [V, V + 1] int64 (float64 for expected counts)
    stroke_pred: np.ndarray  # [n_strokes] int64
    stroke_labels: np.ndarray  # [n_strokes] int64
    stroke_counted: np.ndarray  # [n_strokes] bool
    n_pixels: int
    stroke_hits: float = 0.0


def _stroke_pixels(raster: StrokeRaster | Sequence[np.ndarray], n_flat: int) -> list[np.ndarray]:
    """Per-stroke flat pixel index arrays, validated against a map of ``n_flat`` pixels."""
    if isinstance(raster, StrokeRaster):
        if raster.size * raster.size != n_flat:
            raise InputError(
                f"prediction has {n_flat} pixels but the strokes were rasterised at {raster.size}x{raster.size}; "
                f"resize the predicted label map to {raster.size}x{raster.size} (nearest) before evaluating"
            )
        pixels = list(raster.pixels)
    else:
        pixels = [np.asarray(p) for p in raster]
    out = []
    for i, p in enumerate(pixels):
        p = p.reshape(-1)
        if p.size and not np.issubdtype(p.dtype, np.integer):
            raise InputError(f"stroke {i}: pixel indices must be integers, got dtype {p.dtype}")
        p = p.astype(np.int64)
        if p.size and (p.min() < 0 or p.max() >= n_flat):
            raise InputError(f"stroke {i}: flat pixel index out of range [0, {n_flat}) of the prediction map")
        out.append(p)
    return out


def _labels_as_indices(
    stroke_labels: Sequence[int] | Sequence[str] | np.ndarray, vocabulary: Sequence[str]
) -> np.ndarray:
    """Per-stroke GT category indices into ``vocabulary`` (names are looked up, integers range-checked)."""
    labels = list(stroke_labels) if not isinstance(stroke_labels, np.ndarray) else stroke_labels.tolist()
    index = {name: i for i, name in enumerate(vocabulary)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, lab in enumerate(labels):
        if isinstance(lab, str):
            if lab not in index:
                raise InputError(f"stroke {i}: GT category {lab!r} is not in the vocabulary {list(vocabulary)}")
            out[i] = index[lab]
        elif isinstance(lab, (int, np.integer)) and not isinstance(lab, bool):
            if not 0 <= lab < len(vocabulary):
                raise InputError(
                    f"stroke {i}: GT category index {lab} outside the vocabulary of {len(vocabulary)} names"
                )
            out[i] = lab
        else:
            raise InputError(f"stroke {i}: GT label must be a category name or index, got {lab!r}")
    return out


def evaluate_sketch(
    pred: np.ndarray,
    raster: StrokeRaster | Sequence[np.ndarray],
    stroke_labels: Sequence[int] | Sequence[str] | np.ndarray,
    vocabulary: Sequence[str] | int,
) -> SketchMetrics:
    """Acc@P, Acc@S, per-category IoU and mIoU of one sketch (conventions in the module docstring).

    ``pred``: ``int [H, W]`` predicted category index into ``vocabulary`` for every pixel (values on background
    pixels are ignored; negative values mean "no category"). ``raster``: the sketch's :class:`StrokeRaster` or its
    per-stroke flat pixel indices into ``pred.ravel()``. ``stroke_labels``: per-stroke GT category (index or
    name). ``vocabulary``: the category names, or just their number.
    """
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise InputError(f"predicted label map must be 2-D [H, W], got shape {pred.shape}")
    if not np.issubdtype(pred.dtype, np.integer):
        raise InputError(f"predicted label map must hold integer category indices, got dtype {pred.dtype}")
    names = [str(i) for i in range(vocabulary)] if isinstance(vocabulary, int) else list(vocabulary)
    if len(set(names)) != len(names):
        raise InputError(f"vocabulary has duplicate names: {names}")
    n_cat = len(names)
    flat_pred = pred.reshape(-1).astype(np.int64)  # [H*W]
    pixels = _stroke_pixels(raster, flat_pred.size)
    labels = _labels_as_indices(stroke_labels, names)  # [n_strokes]
    if len(labels) != len(pixels):
        raise InputError(f"{len(labels)} stroke labels for {len(pixels)} strokes; give one GT label per stroke")
    if flat_pred.size and flat_pred.max() >= n_cat:
        raise InputError(
            f"prediction holds category index {int(flat_pred.max())} but the vocabulary has {n_cat} names; "
            "predict indices into the sketch's vocabulary (negative = no category)"
        )
    none = n_cat  # the "no category" value, one past the last category
    voted = np.where(flat_pred < 0, none, flat_pred)  # [H*W] in [0, V]

    # Pixel ground truth: the last-drawn stroke owns a shared pixel.
    owner = np.full(flat_pred.size, -1, dtype=np.int64)
    for i, p in enumerate(pixels):
        owner[p] = i
    fg = np.flatnonzero(owner >= 0)
    if fg.size == 0:
        raise InputError("sketch has no stroke pixels: nothing to evaluate (check its vector file)")
    gt_pix = labels[owner[fg]]  # [N]
    pr_pix = voted[fg]  # [N]
    confusion = np.bincount(gt_pix * (n_cat + 1) + pr_pix, minlength=n_cat * (n_cat + 1)).reshape(n_cat, n_cat + 1)
    acc_p = float(np.trace(confusion[:, :n_cat]) / fg.size)

    # Acc@S: vote over each stroke's full pixel set.
    stroke_pred = np.full(len(pixels), -1, dtype=np.int64)
    counted = np.zeros(len(pixels), dtype=bool)
    for i, p in enumerate(pixels):
        if p.size == 0:
            continue
        counted[i] = True
        winner = int(np.argmax(np.bincount(voted[p], minlength=n_cat + 1)))  # first maximum = smallest index
        stroke_pred[i] = winner if winner < n_cat else -1
    n_counted = int(counted.sum())
    stroke_hits = float(np.sum(stroke_pred[counted] == labels[counted]))
    acc_s = stroke_hits / n_counted

    iou = category_iou(confusion)
    miou = float(np.mean(list(iou.values())))
    return SketchMetrics(
        acc_p=acc_p,
        acc_s=acc_s,
        miou=miou,
        iou=iou,
        confusion=confusion,
        stroke_pred=stroke_pred,
        stroke_labels=labels,
        stroke_counted=counted,
        n_pixels=int(fg.size),
        stroke_hits=stroke_hits,
    )


def category_iou(confusion: np.ndarray) -> dict[int, float]:
    """IoU of every category with GT or predicted pixels in ``confusion`` [V, V + 1] (last column: no category)."""
    n_cat = confusion.shape[0]
    gt_count = confusion.sum(axis=1)  # [V]
    pr_count = confusion[:, :n_cat].sum(axis=0)  # [V]
    inter = np.diag(confusion[:, :n_cat])
    return {
        c: float(inter[c] / (gt_count[c] + pr_count[c] - inter[c]))
        for c in range(n_cat)
        if gt_count[c] > 0 or pr_count[c] > 0
    }


def pooled_scores(confusion: np.ndarray) -> dict[str, float]:
    """The CAVT authors' protocol on one confusion matrix pooled over a whole set, ``[C, C + 1]`` over category
    names (last column: no category; background is never counted): ``pixel_acc`` (overall pixel accuracy),
    ``mean_acc`` (mean over categories with GT pixels of their pixel accuracy), ``miou_pooled`` (mean IoU over the
    same categories) and ``fwiou`` (IoU weighted by GT pixel share)."""
    n_cat = confusion.shape[0]
    gt = confusion.sum(axis=1)  # [C]
    pred = confusion[:, :n_cat].sum(axis=0)  # [C]
    inter = np.diag(confusion[:, :n_cat])  # [C]
    has = gt > 0
    iou = inter[has] / (gt[has] + pred[has] - inter[has])
    total = gt.sum()
    return {
        "pixel_acc": float(inter.sum() / total),
        "mean_acc": float(np.mean(inter[has] / gt[has])),
        "miou_pooled": float(np.mean(iou)),
        "fwiou": float(np.sum(gt[has] / total * iou)),
    }


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of Eq. 5 of the paper; ``None`` when undefined (fewer than 2 points or no variance)."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise InputError(f"pearson: x and y must be 1-D of equal length, got {xa.shape} and {ya.shape}")
    n = xa.size
    if n < 2:
        return None
    num = n * np.sum(xa * ya) - np.sum(xa) * np.sum(ya)
    den_x = n * np.sum(xa * xa) - np.sum(xa) ** 2
    den_y = n * np.sum(ya * ya) - np.sum(ya) ** 2
    if den_x <= 0 or den_y <= 0:
        return None
    return float(np.clip(num / math.sqrt(den_x * den_y), -1.0, 1.0))


def frequency_correlation(
    per_category_acc: Mapping[str, float], frequency: Mapping[str, int], min_frequency: int = 0
) -> dict[str, Any]:
    """Correlation between per-category accuracy and category frequency (paper Eq. 5, Fig. S11).

    Categories are those of ``per_category_acc`` (the evaluated ones), looked up in ``frequency`` by normal form
    (:func:`~sketchseg.data.vocabulary.normalise_name`: "grapes" counts under "grape"); a category missing from
    ``frequency`` has frequency 0. Only categories with ``frequency >= min_frequency`` are kept (the paper plots those
    occurring more than ten times: ``min_frequency=11``). Returns ``{"r": float | None, "n": int}``.
    """
    counts: Counter[str] = Counter()
    for name, n in frequency.items():
        counts[normalise_name(name)] += n
    freq = {c: counts[normalise_name(c)] for c in per_category_acc}
    cats = sorted(c for c in per_category_acc if freq[c] >= min_frequency)
    r = pearson([per_category_acc[c] for c in cats], [float(freq[c]) for c in cats])
    return {"r": r, "n": len(cats)}


@dataclass
class _Record:
    sketch_id: str
    metrics: SketchMetrics
    names: list[str]


@dataclass
class SegmentationEvaluator:
    """Accumulates per-sketch results and summarises a dataset (all values are fractions in [0, 1]).

    Dataset-level definitions (``summary()``), with ``C[g, p]`` the confusion matrix over category NAMES whose
    counts are stroke pixels pooled over all sketches (GT by the last-stroke-wins rule; a "no category" column
    collects pixels predicted with a negative value):

    * ``acc_p``, ``acc_s``, ``miou``: means over sketches of the per-sketch values (the paper's Acc@P, Acc@S,
      mIoU).
    * ``pixel_acc``: pooled pixel accuracy ``trace(C) / sum(C)``.
    * ``per_category[name]``: ``acc_p = C[c, c] / sum_p C[c, p]`` (pixels of GT category ``c`` correctly
      labelled, pooled), ``iou = C[c, c] / (sum_p C[c, p] + sum_g C[g, c] - C[c, c])`` (pooled IoU), ``pixels``
      (GT pixels), ``correct`` (``C[c, c]``), ``predicted`` (pixels predicted as ``c``), ``sketches``
      (sketches with GT pixels of ``c``), ``seen`` (if a seen set was given). Listed for every category with
      GT or predicted pixels; ``acc_p`` is ``None`` for a category with no GT pixel (only predicted).
    * ``mean_acc`` (MeanAcc, Tables S5/S6): mean of ``per_category[c].acc_p`` over categories with GT pixels.
    * ``fwiou`` (FWIoU): ``sum_c (pixels_c / total pixels) * iou_c`` over categories with GT pixels.
    * ``miou_pooled``: mean of ``per_category[c].iou`` over categories with GT pixels. With ``pixel_acc``,
      ``mean_acc`` and ``fwiou``, the CAVT authors' protocol: one confusion matrix over the whole set
      (:func:`pooled_scores`), unlike the paper's per-sketch means.
    * ``stroke_acc``: strokes whose voted label (as Acc@S votes) is their GT label / strokes, pooled over the set.
    * ``seen`` / ``unseen`` (when ``seen_categories`` is given), restricted to pixels and strokes whose GT
      category is (not) in the set (names compared in normal form): ``acc_p`` (mean over sketches having such
      pixels of the restricted pixel accuracy), ``acc_s`` (same over strokes), ``pixel_acc`` (pooled),
      ``mean_acc`` and ``miou`` (means of the pooled per-category accuracy and IoU over the group's categories;
      the IoU's false positives come from any pixel), ``categories``, ``pixels``, ``sketches``.
    * ``frequency_correlation[set]``: :func:`frequency_correlation` of the per-category ``acc_p`` with each
      named frequency table of ``frequencies`` (e.g. ``{"train": counts, "test": counts}``), keeping
      categories with ``frequency >= min_frequency``.
    """

    seen_categories: set[str] | frozenset[str] | None = None
    frequencies: Mapping[str, Mapping[str, int]] | None = None
    min_frequency: int = 0
    _records: list[_Record] = field(default_factory=list, init=False, repr=False)
    _confusion: Counter = field(default_factory=Counter, init=False, repr=False)  # (gt name, pred name|None)
    _sketches_with: Counter = field(default_factory=Counter, init=False, repr=False)

    def add(
        self,
        sketch_id: str,
        pred: np.ndarray,
        raster: StrokeRaster | Sequence[np.ndarray],
        stroke_labels: Sequence[int] | Sequence[str] | np.ndarray,
        vocabulary: Sequence[str],
    ) -> SketchMetrics:
        """Evaluate one sketch (see :func:`evaluate_sketch`) and accumulate it; returns its metrics."""
        names = list(vocabulary)
        try:
            m = evaluate_sketch(pred, raster, stroke_labels, names)
        except InputError as exc:
            raise InputError(f"sketch {sketch_id}: {exc}") from None
        return self.add_metrics(sketch_id, m, names)

    def add_metrics(self, sketch_id: str, m: SketchMetrics, vocabulary: Sequence[str]) -> SketchMetrics:
        """Accumulate the already computed metrics ``m`` of one sketch (e.g. a floor of
        :mod:`sketchseg.eval.floors`); returns them."""
        names = list(vocabulary)
        self._records.append(_Record(str(sketch_id), m, names))
        n_cat = len(names)
        for g, p in zip(*np.nonzero(m.confusion), strict=True):
            self._confusion[(names[g], names[p] if p < n_cat else None)] += m.confusion[g, p].item()
        for g in np.flatnonzero(m.confusion.sum(axis=1)):
            self._sketches_with[names[g]] += 1
        return m

    def confusion_stack(self, categories: Sequence[str]) -> np.ndarray:
        """Every sketch's confusion matrix over the names ``categories`` (which must hold every name evaluated):
        float64 [S, C, C + 1] in the order added, last column "no category" (for :mod:`sketchseg.eval.bootstrap`)."""
        index = {name: i for i, name in enumerate(categories)}
        n = len(categories)
        out = np.zeros((len(self._records), n, n + 1))
        for k, r in enumerate(self._records):
            cols = [index[name] for name in r.names] + [n]
            out[k][np.ix_(cols[:-1], cols)] = r.metrics.confusion
        return out

    def categories(self) -> list[str]:
        """Every category name of every sketch evaluated, sorted."""
        return sorted({name for r in self._records for name in r.names})

    def __len__(self) -> int:
        return len(self._records)

    def per_sketch(self) -> list[dict[str, Any]]:
        """One JSON-friendly dict per sketch, in the order added: id, acc_p, acc_s, miou, iou by name, sizes."""
        out = []
        for r in self._records:
            m = r.metrics
            out.append(
                {
                    "id": r.sketch_id,
                    "acc_p": m.acc_p,
                    "acc_s": m.acc_s,
                    "miou": m.miou,
                    "iou": {r.names[c]: v for c, v in m.iou.items()},
                    "categories": [r.names[c] for c in np.flatnonzero(m.confusion.sum(axis=1))],
                    "n_pixels": m.n_pixels,
                    "n_strokes": int(m.stroke_counted.sum()),
                }
            )
        return out

    def _category_table(self) -> dict[str, dict[str, Any]]:
        gt: Counter = Counter()
        pr: Counter = Counter()
        hit: Counter = Counter()
        for (g, p), n in self._confusion.items():
            gt[g] += n
            if p is not None:
                pr[p] += n
            if g == p:
                hit[g] += n
        table: dict[str, dict[str, Any]] = {}
        for c in sorted(set(gt) | set(pr)):
            row: dict[str, Any] = {
                "acc_p": hit[c] / gt[c] if gt[c] else None,
                "iou": hit[c] / (gt[c] + pr[c] - hit[c]),
                "pixels": gt[c],
                "correct": hit[c],
                "predicted": pr[c],
                "sketches": self._sketches_with[c],
            }
            if self.seen_categories is not None:
                row["seen"] = self._is_seen(c)
            table[c] = row
        return table

    @cached_property
    def _seen_normal(self) -> frozenset[str]:
        return frozenset(normalise_name(c) for c in self.seen_categories or ())

    def _is_seen(self, name: str) -> bool:
        """Whether category ``name`` is in ``seen_categories``, compared in normal form."""
        return normalise_name(name) in self._seen_normal

    def _group(self, table: dict[str, dict[str, Any]], in_group: bool) -> dict[str, Any]:
        cats = [c for c, row in table.items() if row["pixels"] > 0 and self._is_seen(c) == in_group]
        sketch_acc_p: list[float] = []
        sketch_acc_s: list[float] = []
        for r in self._records:
            m = r.metrics
            member = np.array([self._is_seen(name) == in_group for name in r.names], dtype=bool)  # [V]
            rows = m.confusion[member]
            if rows.sum() > 0:
                sketch_acc_p.append(float(np.sum(m.confusion[:, : len(r.names)].diagonal()[member]) / rows.sum()))
            strokes = m.stroke_counted & member[m.stroke_labels]
            if strokes.any():
                sketch_acc_s.append(float(np.mean(m.stroke_pred[strokes] == m.stroke_labels[strokes])))
        pixels = sum(table[c]["pixels"] for c in cats)
        correct = sum(table[c]["correct"] for c in cats)
        return {
            "acc_p": float(np.mean(sketch_acc_p)) if sketch_acc_p else None,
            "acc_s": float(np.mean(sketch_acc_s)) if sketch_acc_s else None,
            "pixel_acc": correct / pixels if pixels else None,
            "mean_acc": float(np.mean([table[c]["acc_p"] for c in cats])) if cats else None,
            "miou": float(np.mean([table[c]["iou"] for c in cats])) if cats else None,
            "categories": len(cats),
            "pixels": int(pixels),
            "sketches": len(sketch_acc_p),
        }

    def summary(self) -> dict[str, Any]:
        """Dataset-level metrics as a JSON-serialisable dict (definitions in the class docstring)."""
        if not self._records:
            raise InputError("no sketch was evaluated: the evaluation set is empty")
        table = self._category_table()
        with_gt = [c for c, row in table.items() if row["pixels"] > 0]
        total = sum(table[c]["pixels"] for c in with_gt)
        correct = sum(n for (g, p), n in self._confusion.items() if g == p)
        n_strokes = int(sum(r.metrics.stroke_counted.sum() for r in self._records))
        out: dict[str, Any] = {
            "units": "fraction",
            "n_sketches": len(self._records),
            "n_strokes": n_strokes,
            "n_pixels": int(total),
            "acc_p": float(np.mean([r.metrics.acc_p for r in self._records])),
            "acc_s": float(np.mean([r.metrics.acc_s for r in self._records])),
            "miou": float(np.mean([r.metrics.miou for r in self._records])),
            "pixel_acc": correct / total,
            "mean_acc": float(np.mean([table[c]["acc_p"] for c in with_gt])),
            "miou_pooled": float(np.mean([table[c]["iou"] for c in with_gt])),
            "fwiou": float(sum(table[c]["pixels"] / total * table[c]["iou"] for c in with_gt)),
            "stroke_acc": float(sum(r.metrics.stroke_hits for r in self._records) / n_strokes),
            "per_category": table,
        }
        if self.seen_categories is not None:
            out["seen"] = self._group(table, True)
            out["unseen"] = self._group(table, False)
        if self.frequencies is not None:
            acc = {c: table[c]["acc_p"] for c in with_gt}
            out["frequency_correlation"] = {
                name: frequency_correlation(acc, freq, self.min_frequency) for name, freq in self.frequencies.items()
            }
        return out


def _jsonable(value: Any) -> Any:
    """Plain Python types for ``json``: numpy scalars/arrays converted, NaN/inf turned into ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics_json(path: str | os.PathLike[str], summary: Mapping[str, Any]) -> str:
    """Write ``summary`` (e.g. :meth:`SegmentationEvaluator.summary`) as indented JSON, atomically; returns path."""
    write_json(path, _jsonable(summary), indent=2, allow_nan=False)
    return os.fspath(path)
