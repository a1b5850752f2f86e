"""Result figures: threshold curves (Fig. S14), per-category accuracy vs frequency (Fig. S11), segmentation
overlays with error maps (Fig. S9).

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch) and written
atomically as PNG; every function returns the path it wrote. Colours and display thickening come from
:mod:`sketchseg.render`, the project's one home for drawing results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sketchseg.data.strokes import StrokeRaster
from sketchseg.errors import InputError
from sketchseg.eval.calibration import ThresholdCurve
from sketchseg.eval.metrics import evaluate_sketch, write_metrics_json
from sketchseg.io_utils import atomic_file
from sketchseg.render import figure_palette
from sketchseg.render import thicken as thicken_strokes

__all__ = [
    "OverlayItem",
    "overlay_item",
    "plot_threshold_curves",
    "plot_category_accuracy",
    "plot_segmentation_overlays",
    "write_metrics_json",
]

_CORRECT = np.array([0.20, 0.65, 0.25])  # green
_WRONG = np.array([0.85, 0.12, 0.10])  # red
_WHITE = np.ones(3)


def _save(fig: Figure, path: str | os.PathLike[str], dpi: int) -> str:
    FigureCanvasAgg(fig)
    with atomic_file(path, mode="wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
    return os.fspath(path)


def plot_threshold_curves(
    path: str | os.PathLike[str],
    curves: Mapping[str, ThresholdCurve | Mapping[str, Any]],
    chosen: float | None = None,
    title: str = "Single category vs rest: Acc@P as a function of the threshold",
) -> str:
    """Plot one Acc@P-vs-τ curve per named set (e.g. ``{"val": ..., "test": ...}``), each set's best τ marked
    by a dot and ``chosen`` (the calibrated τ stored with the model) by a dashed vertical line."""
    if not curves:
        raise InputError("plot_threshold_curves: no curve given")
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.add_subplot()
    colors = {"val": "tab:purple", "test": "tab:green"}
    for i, (name, curve) in enumerate(curves.items()):
        c = curve if isinstance(curve, ThresholdCurve) else ThresholdCurve.from_dict(dict(curve))
        color = colors.get(name, f"C{i}")
        acc = 100.0 * np.asarray(c.accuracy)
        label = f"{name} ({c.n_pairs} pairs): best τ={c.best_threshold:.2f}, {100.0 * c.best_accuracy:.2f}%"
        ax.plot(c.thresholds, acc, color=color, lw=2, label=label)
        ax.plot([c.best_threshold], [100.0 * c.best_accuracy], "o", color=color, ms=7)
    if chosen is not None:
        ax.axvline(chosen, color="black", ls="--", lw=1.2, label=f"chosen τ = {chosen:.2f}")
    ax.set_xlabel("threshold τ")
    ax.set_ylabel("Acc@P (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return _save(fig, path, dpi=120)


def plot_category_accuracy(
    path: str | os.PathLike[str],
    per_category: Mapping[str, float | None | Mapping[str, Any]],
    frequencies: Mapping[str, Mapping[str, int]],
    min_frequency: int = 0,
    title: str = "Per-category Acc@P and category frequency",
) -> str:
    """Bars of per-category Acc@P sorted by the first frequency table (descending), with one line per frequency
    table on a secondary axis (Fig. S11: train in green, test in red).

    ``per_category``: name -> accuracy in [0, 1], or the ``per_category`` table of
    :meth:`SegmentationEvaluator.summary` (its ``acc_p`` is used). Categories without accuracy (only predicted)
    or whose first-table frequency is below ``min_frequency`` are left out.
    """
    if not frequencies:
        raise InputError("plot_category_accuracy: give at least one frequency table (name -> count)")
    acc: dict[str, float] = {}
    for name, value in per_category.items():
        v = value.get("acc_p") if isinstance(value, Mapping) else value
        if v is not None:
            acc[name] = float(v)
    first = next(iter(frequencies.values()))
    cats = [c for c in acc if first.get(c, 0) >= min_frequency]
    if not cats:
        raise InputError(f"plot_category_accuracy: no category with accuracy and frequency >= {min_frequency}")
    cats.sort(key=lambda c: (-first.get(c, 0), c))
    x = np.arange(len(cats))
    width = float(np.clip(0.28 * len(cats) + 2.0, 6.0, 40.0))
    fig = Figure(figsize=(width, 4.8))
    ax = fig.add_subplot()
    ax.bar(x, [100.0 * acc[c] for c in cats], color="tab:blue", alpha=0.8, label="Acc@P")
    ax.set_ylabel("Acc@P (%)", color="tab:blue")
    ax.set_ylim(0, 100)
    ax.set_xticks(x)
    ax.set_xticklabels(cats, rotation=90, fontsize=8 if len(cats) < 60 else 6)
    ax.set_xlim(-0.7, len(cats) - 0.3)
    ax2 = ax.twinx()
    line_colors = ["tab:green", "tab:red", "tab:orange", "tab:purple"]
    for i, (name, table) in enumerate(frequencies.items()):
        ax2.plot(x, [table.get(c, 0) for c in cats], color=line_colors[i % 4], marker="o", ms=3, lw=1.5,
                 label=f"frequency ({name})")
    ax2.set_ylabel("frequency (count)")
    ax2.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=9,
              frameon=False)
    ax.set_title(title, fontsize=11, pad=26)
    return _save(fig, path, dpi=110)


@dataclass(frozen=True)
class OverlayItem:
    """One row of the overlay figure. ``gt`` and ``pred`` are ``int [H, W]`` category indices into
    ``vocabulary`` (``gt`` is -1 off strokes; ``pred`` is shown on stroke pixels only, negative = none)."""

    sketch_id: str
    image: np.ndarray  # [H, W] uint8, strokes dark on white
    gt: np.ndarray  # [H, W] int
    pred: np.ndarray  # [H, W] int
    vocabulary: tuple[str, ...]
    acc_p: float | None = None


def overlay_item(
    sketch_id: str,
    pred: np.ndarray,
    raster: StrokeRaster,
    stroke_labels: Sequence[int] | Sequence[str] | np.ndarray,
    vocabulary: Sequence[str],
) -> OverlayItem:
    """Build an :class:`OverlayItem` from a prediction and the sketch's strokes (GT by the last-stroke rule)."""
    m = evaluate_sketch(pred, raster, stroke_labels, vocabulary)
    gt = raster.label_map(m.stroke_labels)  # [H, W]
    return OverlayItem(str(sketch_id), raster.image(), gt, np.asarray(pred), tuple(vocabulary), m.acc_p)


def plot_segmentation_overlays(
    path: str | os.PathLike[str],
    items: Sequence[OverlayItem],
    thicken: int = 1,
    title: str | None = None,
) -> str:
    """Rows ``[sketch | GT | prediction | errors]`` per sketch, with a legend of the row's categories.

    Categories share one colour across rows (by name, in order of first appearance). The error map shows
    correctly labelled stroke pixels in green and wrong ones in red. ``thicken`` grows strokes by that many
    pixels for display only.
    """
    if not items:
        raise InputError("plot_segmentation_overlays: no sketch given")
    palette = [np.array(c) for c in figure_palette()]
    colour: dict[str, np.ndarray] = {}
    for it in items:
        for idx in np.unique(np.concatenate([it.gt[it.gt >= 0], it.pred[(it.gt >= 0) & (it.pred >= 0)]])):
            name = it.vocabulary[int(idx)]
            if name not in colour:
                colour[name] = palette[len(colour) % len(palette)]
    n = len(items)
    fig = Figure(figsize=(4 * 3.4 + 2.4, n * 3.6))
    axes = fig.subplots(n, 4, squeeze=False)
    for r, it in enumerate(items):
        mask = it.gt >= 0  # [H, W] stroke pixels
        lut = np.stack([colour.get(name, np.zeros(3)) for name in it.vocabulary] + [np.full(3, 0.55)])  # [V+1, 3]
        gt_rgb = np.where(mask[..., None], lut[np.where(mask, it.gt, -1)], _WHITE)
        pred_idx = np.where(it.pred >= 0, it.pred, len(it.vocabulary))  # none -> grey
        pred_rgb = np.where(mask[..., None], lut[pred_idx], _WHITE)
        correct = mask & (it.pred == it.gt)
        err_rgb = np.where(mask[..., None], np.where(correct[..., None], _CORRECT, _WRONG), _WHITE)
        ink = it.image < 128  # [H, W]
        panels = [thicken_strokes(np.repeat(it.image[..., None] / 255.0, 3, axis=2), ink, thicken)]
        for rgb in (gt_rgb, pred_rgb, err_rgb):
            panels.append(thicken_strokes(rgb, mask, thicken))
        acc = f"  Acc@P {100.0 * it.acc_p:.1f}%" if it.acc_p is not None else ""
        heads = [f"{it.sketch_id}", "ground truth", "prediction" + acc, "errors (red = wrong)"]
        for c, (panel, head) in enumerate(zip(panels, heads, strict=True)):
            ax = axes[r, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(head, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        present = sorted({it.vocabulary[int(i)] for i in np.unique(it.gt[mask])}
                         | {it.vocabulary[int(i)] for i in np.unique(it.pred[mask]) if i >= 0})
        handles = [Patch(color=colour[name], label=name + ("" if name in _gt_names(it) else " (pred only)"))
                   for name in present]
        if np.any(it.pred[mask] < 0):
            handles.append(Patch(color=lut[-1], label="no category"))
        axes[r, 3].legend(handles=handles, loc="center left", bbox_to_anchor=(1.03, 0.5), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=12)
    return _save(fig, path, dpi=150)  # ~1 figure pixel per raster pixel: isolated errors stay visible


def _gt_names(item: OverlayItem) -> set[str]:
    return {item.vocabulary[int(i)] for i in np.unique(item.gt[item.gt >= 0])}
