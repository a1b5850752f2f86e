"""The evaluation stage (SPEC §7, paper Tables 1/S9, Figs. S9/S11/S14): baselines and both checkpoints on val and
test, threshold calibration on val, JSON for `dvc metrics` and PNG/JSON plots for `dvc plots`.

Models, all through the same evaluator and the same foundation weights:
- ``clip``: plain CLIP patch features (no v-v attention, no prompts, no fine-tuning);
- ``clip_surgery``: v-v attention at inference only (no fine-tuning);
- ``optimal``: our checkpoint with the best validation mIoU; ``last``: our last checkpoint.
With ``eval.grounding`` the category-token diagnostic (:mod:`sketchseg.eval.grounding`) runs on validation for
``clip_surgery`` (its class token, no cross-attention) and both checkpoints: ``report.json["figures"]["grounding"]``.
τ is calibrated on validation with the optimal checkpoint (single category vs rest, Fig. S14) and stored in
calibrated copies ``models/optimal.pt`` and ``models/last.pt`` (their ``tau`` and ``meta.calibrated_tau``) in the folder
the caller names (:func:`calibrate`; :func:`run_report`: its ``out``); the training folder is only read.

Outputs in ``out``:
- ``metrics.json`` (DVC metrics): what a person compares across experiments, the calibrated ``tau`` and
  ``{val,test}.<model>.{miou,acc_p,acc_s}`` (:func:`compared_metrics`), so that `dvc metrics show` and
  `dvc exp show` read at a glance;
- ``report.json``: ``figures`` (τ and its val Acc@P, each model's mIoU, Acc@P, Acc@S, MeanAcc, FWIoU on val and
  test, the optimal checkpoint's seen/unseen test figures, the grounding diagnostic), ``evaluated_on`` (what each
  split's figures were measured on, :func:`evaluated_on`: figures compare only where its fingerprint is the same)
  and ``details`` (every summary, incl. per-category tables, and the threshold curves);
- ``table.md`` (the printed table, :func:`format_table`), ``threshold_curve.json`` + ``threshold_curves.png``,
  ``per_category.json`` + ``per_category.png``, ``overlays_test.png``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchseg.config import Config
from sketchseg.data.shards import read_index
from sketchseg.data.vocabulary import normalise_name
from sketchseg.errors import CheckpointError
from sketchseg.eval.bootstrap import Interval, paired_mean_interval, paired_pooled_interval
from sketchseg.eval.calibration import threshold_grid
from sketchseg.eval.evaluate import EvalResult, EvalSample, evaluate_floor, evaluate_model, samples_from_shards
from sketchseg.eval.floors import FLOORS
from sketchseg.eval.grounding import KINDS, category_grounding
from sketchseg.eval.metrics import pooled_scores, write_metrics_json
from sketchseg.eval.plots import plot_category_accuracy, plot_segmentation_overlays, plot_threshold_curves
from sketchseg.io_utils import atomic_file, write_json
from sketchseg.model.checkpoint import load_model, save_checkpoint
from sketchseg.model.config import BackboneConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.provenance import provenance

log = logging.getLogger(__name__)

# report.json's figures per model and split: the paper's per-sketch means, then the CAVT authors' pooled protocol
PER_SKETCH = ("miou", "acc_p", "acc_s")
POOLED = ("pixel_acc", "mean_acc", "miou_pooled", "fwiou", "stroke_acc")
HEADLINE = (*PER_SKETCH, *POOLED)
COMPARED = (*PER_SKETCH, "miou_pooled")  # metrics.json's figures per model and split
POOLED_HEADERS = ("pixel acc", "MeanAcc", "mIoU", "FWIoU", "stroke acc")
REFERENCE = "clip_surgery"  # every model's difference is measured against it, with a paired bootstrap interval
INTERVALS = ("miou", "acc_p", "acc_s", "miou_pooled")  # the figures whose differences get an interval
GROUP_FIGURES = (("miou", "mIoU"), ("acc_p", "Acc@P"), ("mean_acc", "MeanAcc"))  # seen / unseen test categories


def baseline_model(name: str, foundation: str | Path | None, cfg: Config) -> SketchSegModel:
    """``clip`` or ``clip_surgery`` on the foundation weights (or on the configured backbone)."""
    if foundation is not None:
        backbone = BackboneConfig(name=f"local-dir:{foundation}")
    else:
        backbone = cfg.model.backbone
    base = dataclasses.replace(cfg.model, backbone=backbone, num_prompts=0, cross_attention=False, finetune="vpt")
    if name == "clip":
        return SketchSegModel(dataclasses.replace(base, vv=False)).eval()
    if name == "clip_surgery":
        return SketchSegModel(dataclasses.replace(base, vv=True)).eval()
    raise ValueError(f"unknown baseline {name!r}; choose clip or clip_surgery")


def _load_categories(prepared: Path | None) -> tuple[dict[str, set[str]], dict[str, dict[str, int]]]:
    """Seen categories per split and frequency tables from the prepare stage's categories.json (if present)."""
    if prepared is None or not (prepared / "categories.json").is_file():
        return {}, {}
    data = json.loads((prepared / "categories.json").read_text(encoding="utf-8"))
    seen = {split: set(names) for split, names in data.get("seen", {}).items()}
    # train counts are keyed by normal form, per-category tables by the labels' own names ("grapes" -> "grape")
    train = {k: int(v) for k, v in data.get("train_frequency", {}).items()}
    labels = sorted({c for table in data.get("frequency", {}).values() for c in table})
    freq = {"train": {c: train.get(normalise_name(c), 0) for c in labels}}
    return seen, freq


def sample_fingerprint(samples: Sequence[EvalSample]) -> str:
    """sha256 of what scoring reads from the evaluated sketches, in order: each sketch's id, raster size, and every
    stroke's rasterised pixels and category label."""
    digest = hashlib.sha256()
    for sample in samples:
        labels = [sample.vocabulary[k] for k in sample.stroke_labels]
        pixels = [np.asarray(p, dtype="<i8") for p in sample.raster.pixels]
        header = {"id": sample.id, "size": sample.raster.size, "labels": labels, "pixels": [len(p) for p in pixels]}
        digest.update(json.dumps(header, sort_keys=True).encode("utf-8") + b"\n")
        for p in pixels:
            digest.update(p.tobytes())
    return digest.hexdigest()


def evaluated_on(samples: Sequence[EvalSample], *, split_sketches: int | None, max_sketches: int) -> dict[str, Any]:
    """What a split's figures were measured on: ``fingerprint`` (:func:`sample_fingerprint`), ``sketches`` (how many
    were evaluated), ``split_sketches`` (how many the split holds) and ``max_sketches`` (``eval.max_sketches``, 0 =
    all). Two figures are measured on the same test exactly when their fingerprints are equal."""
    return {
        "fingerprint": sample_fingerprint(samples),
        "sketches": len(samples),
        "split_sketches": split_sketches,
        "max_sketches": max_sketches,
    }


def _headline(summary: dict[str, Any]) -> dict[str, float]:
    return {k: summary[k] for k in HEADLINE if summary.get(k) is not None}


def calibrate(
    cfg: Config, *, train_dir: str | Path, shards: str | Path, out: str | Path, progress: bool = True
) -> dict[str, Any]:
    """Sweep τ on validation with the optimal checkpoint of ``train_dir`` (single category vs rest, Fig. S14) and
    write both exported models with the best τ stored to ``out/models/`` and the result to ``out/calibration.json``
    (``train_dir`` itself only when ``out`` is it); returns {"tau", "val_acc_p", "curve"}."""
    train_dir, out = Path(train_dir), Path(out)
    ec = cfg.eval
    grid = threshold_grid(ec.tau_min, ec.tau_max, ec.tau_step)
    optimal = _load_trained(train_dir, "optimal")
    samples = samples_from_shards(shards, "val", ec.max_sketches)
    curve = evaluate_model(optimal, samples, sweep=True, tau_grid=grid, progress=progress).curve
    tau = float(curve["best_threshold"])
    for name in ("optimal", "last"):
        model = optimal if name == "optimal" else _load_trained(train_dir, name)
        model.threshold.set_tau(min(max(tau, 0.4001), 0.8999))  # the learnable τ's range is (0.4, 0.9)
        meta = dict(getattr(model, "checkpoint_meta", {}))
        meta["calibrated_tau"] = tau
        meta["calibration_val_accuracy"] = curve["best_accuracy"]
        save_checkpoint(model, out / "models" / f"{name}.pt", meta=meta)
    result = {"tau": tau, "val_acc_p": curve["best_accuracy"], "curve": curve}
    write_json(out / "calibration.json", result)
    return result


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models hold bit-equal parameters and buffers under the same names."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _load_trained(train_dir: Path, name: str) -> SketchSegModel:
    path = train_dir / "models" / f"{name}.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; run the training first (sketchseg train)")
    return load_model(path)


def run_report(
    cfg: Config,
    *,
    train_dir: str | Path,
    out: str | Path,
    shards: str | Path,
    foundation: str | Path | None = None,
    prepared: str | Path | None = None,
    baselines: list[str] | None = None,
    calibration: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate everything and write the stage's outputs into ``out``; returns the content of report.json. The
    checkpoints of ``train_dir`` are evaluated as they are when ``calibration`` (the result of :func:`calibrate`) is
    given; without it τ is calibrated first and the calibrated copies (``out/models/``, ``out/calibration.json``) are
    evaluated, ``train_dir`` is only read."""
    train_dir, out, shards = Path(train_dir), Path(out), Path(shards)
    if calibration is None:
        calibration = calibrate(cfg, train_dir=train_dir, shards=shards, out=out, progress=progress)
        train_dir = out
    ec = cfg.eval
    out.mkdir(parents=True, exist_ok=True)
    grid = threshold_grid(ec.tau_min, ec.tau_max, ec.tau_step)
    splits = {s: samples_from_shards(shards, s, ec.max_sketches) for s in ("val", "test")}
    seen, freq = _load_categories(Path(prepared) if prepared else None)

    models: dict[str, SketchSegModel] = {}
    for name in baselines if baselines is not None else ec.baselines:
        models[name] = baseline_model(name, foundation, cfg)
    for name in ("optimal", "last"):
        models[name] = _load_trained(train_dir, name)

    # when training's best epoch is its last, both checkpoints hold the same weights: evaluated once
    same = same_weights(models["optimal"], models["last"])
    results: dict[str, dict[str, EvalResult]] = {"val": {}, "test": {}}
    with torch.no_grad():
        for name, model in models.items():
            for split, samples in splits.items():
                if name == "last" and same:
                    results[split][name] = dataclasses.replace(results[split]["optimal"], curve=None, overlays=[])
                    continue
                log.info("evaluating %s on %s (%d sketches)", name, split, len(samples))
                results[split][name] = evaluate_model(
                    model,
                    samples,
                    seen=seen.get(split),
                    frequencies=freq or None,
                    sweep=name == "optimal",
                    tau_grid=grid,
                    overlays=ec.overlays if (split == "test" and name == "optimal") else 0,
                    progress=progress,
                )

    floors = {split: {name: evaluate_floor(name, samples, seen=seen.get(split)) for name in FLOORS}
              for split, samples in splits.items()}  # fmt: skip
    curves = {split: results[split]["optimal"].curve for split in ("val", "test")}
    tau = float(calibration["tau"])
    figures: dict[str, Any] = {"tau": tau, "tau_val_acc_p": float(calibration["val_acc_p"])}
    for split in ("val", "test"):
        figures[split] = {name: _headline(r.summary) for name, r in {**floors[split], **results[split]}.items()}
        if REFERENCE in results[split]:
            figures[split][f"vs_{REFERENCE}"] = compare_to(results[split], REFERENCE, seed=cfg.train.seed)
    if ec.grounding:
        figures["grounding"] = {}
        for name in ("clip_surgery", "optimal", "last"):
            if name == "last" and same:
                figures["grounding"][name] = figures["grounding"]["optimal"]
            elif name in models:
                log.info("category-token grounding of %s on val", name)
                figures["grounding"][name] = category_grounding(models[name], splits["val"], progress=progress)
    test_opt = results["test"]["optimal"].summary
    for group in ("seen", "unseen"):
        if isinstance(test_opt.get(group), dict):
            figures["test"][f"optimal_{group}"] = {
                k: v for k, v in test_opt[group].items() if k in dict(GROUP_FIGURES) and v is not None
            }
    write_metrics_json(out / "metrics.json", compared_metrics(figures))
    report = {
        "figures": figures,
        "provenance": provenance(),
        "evaluated_on": {
            split: evaluated_on(
                samples, split_sketches=read_index(shards, split).get("num_samples"), max_sketches=ec.max_sketches
            )
            for split, samples in splits.items()
        },
        "details": {
            split: {name: {"summary": r.summary, "curve": r.curve} for name, r in res.items()}
            for split, res in results.items()
        },
    }
    write_metrics_json(out / "report.json", report)
    write_metrics_json(out / "per_sketch.json", per_sketch_table({s: {**floors[s], **results[s]} for s in splits}))
    rows = [
        {"tau": t, "val": v, "test": te}
        for t, v, te in zip(
            curves["val"]["thresholds"], curves["val"]["accuracy"], curves["test"]["accuracy"], strict=True
        )
    ]
    write_json(out / "threshold_curve.json", rows)
    per_cat = test_opt.get("per_category", {})
    cat_rows = [
        {
            "category": c,
            "acc_p": v.get("acc_p"),
            "pixels": v.get("pixels"),
            "train_frequency": freq.get("train", {}).get(c, 0),
        }
        for c, v in sorted(per_cat.items())
        if v.get("acc_p") is not None
    ]
    write_json(out / "per_category.json", cat_rows)
    plot_threshold_curves(out / "threshold_curves.png", curves, chosen=tau)
    if cat_rows:
        tables = {"train": freq["train"]} if freq else {"test pixels": {r["category"]: r["pixels"] for r in cat_rows}}
        plot_category_accuracy(out / "per_category.png", per_cat, tables)
    overlays = results["test"]["optimal"].overlays
    if overlays:
        plot_segmentation_overlays(out / "overlays_test.png", overlays, title="test sketches: optimal checkpoint")
    table = format_table(figures)
    with atomic_file(out / "table.md") as fh:
        fh.write(table + "\n")
    return report


def evaluate_sets(
    models: dict[str, SketchSegModel],
    sets: dict[str, Sequence[EvalSample]],
    *,
    seen: dict[str, set[str]] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """The floors and ``models`` on each named set of annotated sketches, every model but clip_surgery with its
    paired interval against it: ``{set: {model: figures, "vs_clip_surgery": {...}}}``, as report.json's figures per
    split (:func:`format_table` with ``splits`` = the set names)."""
    figures: dict[str, Any] = {}
    for set_name, samples in sets.items():
        seen_here = (seen or {}).get(set_name)
        results = {name: evaluate_model(model, samples, seen=seen_here, sweep=False, progress=progress)
                   for name, model in models.items()}  # fmt: skip
        floors = {name: evaluate_floor(name, samples, seen=seen_here) for name in FLOORS}
        figures[set_name] = {name: _headline(r.summary) for name, r in {**floors, **results}.items()}
        if REFERENCE in results:
            figures[set_name][f"vs_{REFERENCE}"] = compare_to(results, REFERENCE, seed=seed)
    return figures


def compare(result: EvalResult, reference: EvalResult, seed: int = 0) -> dict[str, Interval]:
    """Paired bootstrap intervals (:mod:`sketchseg.eval.bootstrap`) of ``result`` minus ``reference`` on the same
    sketches, for each figure of :data:`INTERVALS`."""
    ids = [row["id"] for row in result.per_sketch]
    if ids != [row["id"] for row in reference.per_sketch]:
        raise ValueError("paired intervals need both models scored on the same sketches in the same order")
    out = {
        key: paired_mean_interval(
            np.array([row[key] for row in result.per_sketch]), np.array([row[key] for row in reference.per_sketch]),
            seed=seed,
        )
        for key in INTERVALS if key != "miou_pooled"
    }  # fmt: skip
    if result.evaluator is not None and reference.evaluator is not None:
        names = sorted(set(result.evaluator.categories()) | set(reference.evaluator.categories()))
        out["miou_pooled"] = paired_pooled_interval(
            result.evaluator.confusion_stack(names), reference.evaluator.confusion_stack(names),
            lambda c: pooled_scores(c)["miou_pooled"], seed=seed,
        )  # fmt: skip
    return out


def compare_to(results: dict[str, EvalResult], reference: str, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Every model of ``results`` but ``reference`` against it: ``{model: {figure: Interval.to_dict()}}``."""
    return {
        name: {key: interval.to_dict() for key, interval in compare(result, results[reference], seed).items()}
        for name, result in results.items()
        if name != reference
    }


def per_sketch_table(results: dict[str, dict[str, EvalResult]]) -> dict[str, Any]:
    """``per_sketch.json``: per split the sketch ids and, per model (floors included), each sketch's mIoU, Acc@P
    and Acc@S in that order: what any other comparison between two models can be computed from."""
    table: dict[str, Any] = {}
    for split, models in results.items():
        first = next(iter(models.values()))
        table[split] = {
            "ids": [row["id"] for row in first.per_sketch],
            "models": {
                name: {key: [row[key] for row in r.per_sketch] for key in PER_SKETCH} for name, r in models.items()
            },
        }
    return table


def read_per_sketch(eval_dir: str | Path, split: str, model: str, key: str = "miou") -> list[float] | None:
    """One model's per-sketch ``key`` on ``split`` from ``eval_dir/per_sketch.json`` (None when not recorded)."""
    path = Path(eval_dir) / "per_sketch.json"
    if not path.is_file():
        return None
    table = json.loads(path.read_text(encoding="utf-8"))
    return table.get(split, {}).get("models", {}).get(model, {}).get(key)


def compared_metrics(figures: dict[str, Any]) -> dict[str, Any]:
    """The content of metrics.json: the calibrated τ and each model's mIoU, Acc@P and Acc@S on val and test, out of
    report.json's ``figures``."""
    metrics: dict[str, Any] = {"tau": figures["tau"]}
    for split in ("val", "test"):
        models = {name: m for name, m in figures[split].items() if not _is_group_key(name)}
        metrics[split] = {name: {k: m[k] for k in COMPARED if k in m} for name, m in models.items()}
        for name, intervals in figures[split].get(f"vs_{REFERENCE}", {}).items():
            if name in ("optimal", "last") and "miou" in intervals:
                i = intervals["miou"]
                metrics[split][name][f"miou_vs_{REFERENCE}"] = {k: i[k] for k in ("diff", "low", "high")}
    return metrics


def _is_group_key(name: str) -> bool:
    """Whether a key of a split's figures is not a model: the seen/unseen groups and the comparisons."""
    return name.startswith(("vs_", "optimal_seen", "optimal_unseen"))


def format_table(metrics: dict[str, Any], splits: Sequence[str] = ("val", "test")) -> str:
    """Markdown tables of report.json's ``figures``, in percent: the floors (chance, majority oracle) and the models x
    ``splits`` x (mIoU, Acc@P, Acc@S) as per-sketch means; the calibrated τ; the pooled protocol (pixel accuracy,
    MeanAcc, pooled mIoU, FWIoU, stroke accuracy); each model's difference to clip_surgery with its paired bootstrap
    interval; the optimal checkpoint on seen and unseen test categories; the grounding."""
    names = [name for name in metrics[splits[0]] if not _is_group_key(name)]
    shown = {"chance": "chance (floor)", "majority": "majority oracle (floor)"}

    def row(name: str, keys: tuple[str, ...]) -> str:
        cells = []
        for split in splits:
            m = metrics[split].get(name, {})
            cells += [f"{100 * m[k]:.2f}" if k in m else "-" for k in keys]
        return f"| {shown.get(name, name)} | " + " | ".join(cells) + " |"

    def header(labels: Sequence[str]) -> list[str]:
        return [
            "| model | " + " | ".join(f"{s} {h}" for s in splits for h in labels) + " |",
            "|---|" + "---|" * (len(splits) * len(labels)),
        ]

    lines = [*header(("mIoU", "Acc@P", "Acc@S")), *(row(name, PER_SKETCH) for name in names)]
    if "tau" in metrics:
        lines += ["", f"calibrated τ (val, single category vs rest): {metrics['tau']:.2f} "
                      f"(Acc@P {100 * metrics['tau_val_acc_p']:.2f})"]  # fmt: skip
    if any(k in metrics[split].get(name, {}) for split in splits for name in names for k in POOLED):
        lines += [
            "",
            "pooled over each set (one confusion matrix, the CAVT authors' protocol; stroke accuracy over all "
            "strokes):",
            "",
            *header(POOLED_HEADERS),
            *(row(name, POOLED) for name in names),
        ]
    diffs = {split: metrics[split].get(f"vs_{REFERENCE}", {}) for split in splits}
    compared = list(dict.fromkeys(name for d in diffs.values() for name in d))
    if compared:
        keys = (("miou", "mIoU"), ("acc_p", "Acc@P"), ("miou_pooled", "pooled mIoU"))
        lines += [
            "",
            f"difference to {REFERENCE}, percentage points, paired bootstrap 95 % interval over the sketches (an "
            "interval that holds 0: no difference):",
            "",
            *header([label for _, label in keys]),
        ]
        for name in compared:
            cells = []
            for split in splits:
                for key, _ in keys:
                    d = diffs[split].get(name, {}).get(key)
                    cells.append(Interval(**{k: d[k] for k in ("diff", "low", "high")}).text() if d else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    test = metrics.get("test", {})
    groups = {g: test[f"optimal_{g}"] for g in ("seen", "unseen") if f"optimal_{g}" in test}
    if groups:
        parts = [
            f"{group} categories " + ", ".join(f"{label} {100 * m[k]:.2f}" for k, label in GROUP_FIGURES if k in m)
            for group, m in groups.items()
        ]
        lines += ["", "optimal checkpoint on test: " + "; ".join(parts)]
    grounding = metrics.get("grounding")
    if grounding:
        lines += [
            "",
            "category token names its category (top-1 among the sketch's categories, val, %), given:",
            "",
            "| model | its own strokes | its predicted mask | the whole sketch | another category's strokes |",
            "|---|---|---|---|---|",
        ]
        for name, g in grounding.items():
            cells = [f"{100 * g[k]['top1']:.1f}" if g[k]["top1"] is not None else "-" for k in KINDS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
