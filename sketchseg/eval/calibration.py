"""Threshold calibration for isolating one category (SPEC §7; paper Sec. 3.4, S4.3, Fig. S14).

Task "single category vs the rest": for a sketch and one of its GT categories ``c``, a stroke pixel is predicted
to belong to ``c`` iff its normalised similarity to ``c`` is strictly above ``τ``. The accuracy of that binary
decision is measured over the sketch's stroke pixels against ``GT == c`` (pixel GT by the last-stroke-wins rule,
as in :mod:`sketchseg.eval.metrics`). The curve is the mean of that accuracy over all (sketch, GT category)
pairs, for every ``τ`` of a grid (default 0.30, 0.31, ..., 0.95); the best ``τ`` is the one with the highest mean
accuracy, ties going to the smallest ``τ``. Accuracies are fractions in [0, 1].

Each pair costs one pass over its stroke pixels whatever the number of thresholds: every pixel's similarity is
assigned to the threshold bin it exceeds (``searchsorted``), the bins are counted separately for positive and
negative pixels, and reversed cumulative sums give, for each ``τ``, the positives above it and the negatives at
or below it. Comparisons are made in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sketchseg.data.strokes import StrokeRaster
from sketchseg.errors import InputError

__all__ = ["ThresholdCurve", "ThresholdSweep", "threshold_grid", "pair_accuracy_curve"]


def threshold_grid(start: float = 0.30, stop: float = 0.95, step: float = 0.01) -> np.ndarray:
    """Thresholds ``start, start + step, ..., stop`` (inclusive) as float64, rounded to 10 decimals. ``[K]``"""
    if step <= 0 or stop < start:
        raise InputError(f"threshold grid needs step > 0 and stop >= start, got {start}..{stop} step {step}")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(n, dtype=np.float64), 10)


def pair_accuracy_curve(sim: np.ndarray, positive: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of ``sim > τ`` against ``positive`` for every ``τ`` of ``thresholds`` (ascending). ``[K]``

    ``sim``: float similarities of the evaluated pixels ``[N]``; ``positive``: bool ``[N]`` (pixel GT is the
    category). Returns ``correct / N`` per threshold as float64.
    """
    sim = np.asarray(sim, dtype=np.float64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if sim.size != positive.size or sim.size == 0:
        raise InputError(f"pair_accuracy_curve: need equally many (> 0) similarities and labels, got {sim.size}, "
                         f"{positive.size}")
    if np.any(np.diff(thresholds) <= 0):
        raise InputError("pair_accuracy_curve: thresholds must be strictly increasing")
    k = thresholds.size
    # bin b = number of thresholds strictly below the value: the value is > τ_j exactly for j < b.
    bins = np.searchsorted(thresholds, sim, side="left")  # [N] in [0, K]
    pos_hist = np.bincount(bins[positive], minlength=k + 1)  # [K + 1]
    neg_hist = np.bincount(bins[~positive], minlength=k + 1)  # [K + 1]
    pos_above = np.cumsum(pos_hist[::-1])[::-1][1:]  # [K]: positives with bin > j, i.e. sim > τ_j
    neg_at_or_below = np.cumsum(neg_hist)[:k]  # [K]: negatives with bin <= j, i.e. sim <= τ_j
    return (pos_above + neg_at_or_below) / sim.size


@dataclass(frozen=True)
class ThresholdCurve:
    """Mean single-category-vs-rest accuracy per threshold, and the best threshold (ties: smallest)."""

    thresholds: tuple[float, ...]
    accuracy: tuple[float, ...]
    best_threshold: float
    best_accuracy: float
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "thresholds": list(self.thresholds),
            "accuracy": list(self.accuracy),
            "best_threshold": self.best_threshold,
            "best_accuracy": self.best_accuracy,
            "n_pairs": self.n_pairs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(
            thresholds=tuple(float(t) for t in data["thresholds"]),
            accuracy=tuple(float(a) for a in data["accuracy"]),
            best_threshold=float(data["best_threshold"]),
            best_accuracy=float(data["best_accuracy"]),
            n_pairs=int(data["n_pairs"]),
        )


@dataclass
class ThresholdSweep:
    """Accumulates (sketch, GT category) pairs and returns the threshold curve (module docstring)."""

    thresholds: np.ndarray = field(default_factory=threshold_grid)
    _rows: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _pairs: list[tuple[str, int]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.thresholds = np.asarray(self.thresholds, dtype=np.float64)
        if self.thresholds.ndim != 1 or self.thresholds.size == 0 or np.any(np.diff(self.thresholds) <= 0):
            raise InputError("ThresholdSweep: thresholds must be a non-empty, strictly increasing 1-D sequence")

    def add(
        self,
        sketch_id: str,
        sims: np.ndarray,
        raster: StrokeRaster | Sequence[np.ndarray],
        stroke_labels: Sequence[int] | np.ndarray,
    ) -> np.ndarray:
        """Add every GT category of one sketch as a pair; returns the pairs' accuracies ``[n_gt_categories, K]``.

        ``sims``: float ``[C, H, W]``, ``sims[c]`` the normalised similarity map (in [0, 1]) of vocabulary
        category ``c``; only the categories present in ``stroke_labels`` are used. ``raster``: the sketch's
        :class:`StrokeRaster` or per-stroke flat pixel indices into ``H * W``. ``stroke_labels``: per-stroke GT
        category indices.
        """
        sims = np.asarray(sims)
        if sims.ndim != 3:
            raise InputError(f"sketch {sketch_id}: similarity maps must be [C, H, W], got shape {sims.shape}")
        n_flat = sims.shape[1] * sims.shape[2]
        pixels = list(raster.pixels) if isinstance(raster, StrokeRaster) else [np.asarray(p) for p in raster]
        if isinstance(raster, StrokeRaster) and raster.size * raster.size != n_flat:
            raise InputError(
                f"sketch {sketch_id}: similarity maps are {sims.shape[1]}x{sims.shape[2]} but the strokes were "
                f"rasterised at {raster.size}x{raster.size}; upsample the maps to the raster size"
            )
        labels = np.asarray(stroke_labels, dtype=np.int64).reshape(-1)
        if labels.size != len(pixels):
            raise InputError(f"sketch {sketch_id}: {labels.size} stroke labels for {len(pixels)} strokes")
        if labels.size and (labels.min() < 0 or labels.max() >= sims.shape[0]):
            raise InputError(
                f"sketch {sketch_id}: stroke labels must index the {sims.shape[0]} similarity maps, "
                f"got range [{labels.min()}, {labels.max()}]"
            )
        owner = np.full(n_flat, -1, dtype=np.int64)  # last-drawn stroke wins
        for i, p in enumerate(pixels):
            p = p.reshape(-1).astype(np.int64)
            if p.size and (p.min() < 0 or p.max() >= n_flat):
                raise InputError(f"sketch {sketch_id}: stroke {i} has pixel indices outside the {n_flat}-pixel map")
            owner[p] = i
        fg = np.flatnonzero(owner >= 0)  # [N]
        if fg.size == 0:
            raise InputError(f"sketch {sketch_id}: no stroke pixels, nothing to calibrate on")
        gt = labels[owner[fg]]  # [N]
        flat = sims.reshape(sims.shape[0], -1)
        rows = []
        for c in np.unique(labels):
            s = flat[c, fg]
            if not np.all(np.isfinite(s)):
                raise InputError(f"sketch {sketch_id}: similarity map of category {c} has NaN or inf on strokes")
            row = pair_accuracy_curve(s, gt == c, self.thresholds)
            self._rows.append(row)
            self._pairs.append((str(sketch_id), int(c)))
            rows.append(row)
        return np.stack(rows)

    @property
    def n_pairs(self) -> int:
        return len(self._rows)

    def pair_accuracies(self) -> np.ndarray:
        """Accuracy of every pair added so far, in order, ``[n_pairs, K]``."""
        return np.stack(self._rows) if self._rows else np.zeros((0, self.thresholds.size))

    def curve(self) -> ThresholdCurve:
        """Mean accuracy over pairs per threshold (exactly rounded sum via ``math.fsum``) and the best τ."""
        if not self._rows:
            raise InputError("threshold sweep: no (sketch, category) pair was added")
        acc = self.pair_accuracies()
        mean = np.array([math.fsum(acc[:, j]) / acc.shape[0] for j in range(acc.shape[1])])  # [K]
        best = int(np.argmax(mean))  # first maximum = smallest threshold
        return ThresholdCurve(
            thresholds=tuple(float(t) for t in self.thresholds),
            accuracy=tuple(float(a) for a in mean),
            best_threshold=float(self.thresholds[best]),
            best_accuracy=float(mean[best]),
            n_pairs=acc.shape[0],
        )
