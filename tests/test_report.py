"""The evaluation report's files: metrics.json keeps the figures compared across experiments, the report the rest."""

from __future__ import annotations

import dataclasses

from sketchseg.data.shards import read_index
from sketchseg.eval.evaluate import samples_from_shards
from sketchseg.eval.report import compared_metrics, evaluated_on, format_table, sample_fingerprint


def interval(diff: float, low: float, high: float) -> dict:
    return {"diff": diff, "low": low, "high": high, "level": 0.95, "n_resamples": 2000, "verdict": "x"}


FIGURES = {
    "tau": 0.62,
    "tau_val_acc_p": 0.55,
    "val": {
        "chance": {"miou": 0.5, "acc_p": 0.45, "acc_s": 0.45},
        "clip": {"miou": 0.2, "acc_p": 0.4, "acc_s": 0.45, "mean_acc": 0.3, "fwiou": 0.25},
        "optimal": {"miou": 0.3, "acc_p": 0.5, "acc_s": 0.6, "mean_acc": 0.4, "fwiou": 0.35, "miou_pooled": 0.2},
        "vs_clip_surgery": {"optimal": {"miou": interval(0.01, -0.005, 0.02)}},
    },
    "test": {
        "chance": {"miou": 0.5, "acc_p": 0.45, "acc_s": 0.45},
        "clip": {"miou": 0.15, "acc_p": 0.35, "mean_acc": 0.3, "fwiou": 0.2},  # no Acc@S: left out, not invented
        "optimal": {"miou": 0.25, "acc_p": 0.45, "acc_s": 0.5, "mean_acc": 0.33, "fwiou": 0.3, "stroke_acc": 0.7},
        "optimal_seen": {"miou": 0.3, "acc_p": 0.5, "mean_acc": 0.4},
        "optimal_unseen": {"miou": 0.1, "acc_p": 0.2, "mean_acc": 0.15},
        "vs_clip_surgery": {"optimal": {"miou": interval(0.03, 0.01, 0.05), "acc_p": interval(-0.02, -0.03, -0.01)}},
    },
    "grounding": {"optimal": {"pairs": 8, "own": {"top1": 0.5}}},
}


def test_metrics_file_keeps_tau_floors_models_and_the_test_difference_to_clip_surgery() -> None:
    assert compared_metrics(FIGURES) == {
        "tau": 0.62,
        "val": {
            "chance": {"miou": 0.5, "acc_p": 0.45, "acc_s": 0.45},
            "clip": {"miou": 0.2, "acc_p": 0.4, "acc_s": 0.45},
            "optimal": {"miou": 0.3, "acc_p": 0.5, "acc_s": 0.6, "miou_pooled": 0.2,
                        "miou_vs_clip_surgery": {"diff": 0.01, "low": -0.005, "high": 0.02}},
        },
        "test": {
            "chance": {"miou": 0.5, "acc_p": 0.45, "acc_s": 0.45},
            "clip": {"miou": 0.15, "acc_p": 0.35},
            "optimal": {"miou": 0.25, "acc_p": 0.45, "acc_s": 0.5,
                        "miou_vs_clip_surgery": {"diff": 0.03, "low": 0.01, "high": 0.05}},
        },
    }  # fmt: skip


def test_table_reads_the_report_figures() -> None:
    grounding = {k: {"top1": 0.5} for k in ("own", "predicted", "whole", "other")}
    table = format_table({**FIGURES, "grounding": {"optimal": {"pairs": 8, **grounding}}})
    assert "| chance (floor) | 50.00 | 45.00 | 45.00 | 50.00 | 45.00 | 45.00 |" in table
    assert "| optimal | 30.00 | 50.00 | 60.00 | 25.00 | 45.00 | 50.00 |" in table
    assert "| clip | 20.00 | 40.00 | 45.00 | 15.00 | 35.00 | - |" in table
    assert "calibrated τ (val, single category vs rest): 0.62 (Acc@P 55.00)" in table
    # pooled: pixel acc, MeanAcc, mIoU, FWIoU, stroke acc; val then test
    assert "| optimal | - | 40.00 | 20.00 | 35.00 | - | - | 33.00 | - | 30.00 | 70.00 |" in table
    assert "| clip | - | 30.00 | - | 25.00 | - | - | 30.00 | - | 20.00 | - |" in table
    assert (
        "| optimal | no difference (+1.00 [-0.50, +2.00]) | - | - | +3.00 [+1.00, +5.00] | -2.00 [-3.00, -1.00] | - |"
    ) in table
    assert (
        "optimal checkpoint on test: seen categories mIoU 30.00, Acc@P 50.00, MeanAcc 40.00; "
        "unseen categories mIoU 10.00, Acc@P 20.00, MeanAcc 15.00"
    ) in table
    assert "| optimal | 50.0 | 50.0 | 50.0 | 50.0 |" in table
    sets = format_table({"friss_val": FIGURES["val"]}, splits=["friss_val"])
    assert sets.startswith("| model | friss_val mIoU | friss_val Acc@P | friss_val Acc@S |") and "τ" not in sets


def test_evaluated_on_tells_the_same_test_from_another(tiny_data: dict) -> None:
    shards = tiny_data["shards"]
    total = read_index(shards, "test")["num_samples"]
    every, few = samples_from_shards(shards, "test"), samples_from_shards(shards, "test", 3)
    assert len(every) == total > 3
    full = evaluated_on(every, split_sketches=total, max_sketches=0)
    assert full == evaluated_on(samples_from_shards(shards, "test"), split_sketches=total, max_sketches=0)
    assert (full["sketches"], full["split_sketches"], full["max_sketches"]) == (total, total, 0)
    quick = evaluated_on(few, split_sketches=total, max_sketches=3)
    assert quick["sketches"] == 3 and quick["fingerprint"] != full["fingerprint"]
    assert sample_fingerprint(every[:3]) == quick["fingerprint"]
    # the order, a sketch's id and a stroke's label are all part of what was measured
    assert sample_fingerprint(every[::-1]) != full["fingerprint"]
    renamed = [dataclasses.replace(every[0], id="other"), *every[1:]]
    assert sample_fingerprint(renamed) != full["fingerprint"]
    first = every[0]
    labels = [len(first.vocabulary), *first.stroke_labels[1:]]  # the first stroke labelled with a new category
    relabelled = dataclasses.replace(first, stroke_labels=labels, vocabulary=[*first.vocabulary, "extra"])
    assert sample_fingerprint([relabelled, *every[1:]]) != full["fingerprint"]
