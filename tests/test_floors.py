"""Floors (chance, majority oracle), the pooled protocol and paired bootstrap intervals on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from sketchseg.data.strokes import StrokeRaster
from sketchseg.eval.bootstrap import Interval, paired_mean_interval, paired_pooled_interval
from sketchseg.eval.evaluate import EvalSample, evaluate_floor
from sketchseg.eval.floors import chance_sketch, floor_sketch, majority_label_map
from sketchseg.eval.metrics import SegmentationEvaluator, pooled_scores

# 4x4 raster; strokes: 0 -> pixels 0..5 (6 px, tree), 1 -> 6..7 (2 px, house), 2 -> 8..11 (4 px, tree)
RASTER = StrokeRaster(4, (np.arange(0, 6), np.arange(6, 8), np.arange(8, 12)))
LABELS = [0, 1, 0]
VOCAB = ["tree", "house"]


def test_chance_is_the_expected_confusion_of_uniform_labels() -> None:
    m = chance_sketch(RASTER, LABELS, 2)
    # tree: 10 px, house: 2 px, N = 12, K = 2: each GT pixel counts 1/2 towards both categories
    np.testing.assert_allclose(m.confusion, [[5, 5, 0], [1, 1, 0]])
    assert m.acc_p == m.acc_s == 0.5 and m.stroke_hits == 1.5
    tree, house = (10 / 2) / (10 + 12 / 2 - 10 / 2), (2 / 2) / (2 + 12 / 2 - 2 / 2)
    assert m.iou == pytest.approx({0: tree, 1: house}) and m.miou == pytest.approx((tree + house) / 2)
    one = chance_sketch(StrokeRaster(4, (np.arange(3),)), [0], 1)
    assert one.acc_p == one.acc_s == one.miou == 1.0  # a one-category sketch is 100 % by any labelling


def test_majority_oracle_labels_everything_with_the_most_frequent_category() -> None:
    assert np.all(majority_label_map(RASTER, LABELS, 2) == 0)
    m = floor_sketch("majority", RASTER, LABELS, VOCAB)
    assert m.acc_p == pytest.approx(10 / 12) and m.acc_s == pytest.approx(2 / 3)
    assert m.iou == pytest.approx({0: 10 / 12, 1: 0.0}) and m.miou == pytest.approx(5 / 12)
    tie = StrokeRaster(4, (np.arange(0, 3), np.arange(3, 6)))
    assert np.all(majority_label_map(tie, [1, 0], 2) == 0)  # a tie goes to the first category


def test_floor_results_through_the_evaluator() -> None:
    samples = [EvalSample("a", RASTER.image(), RASTER, LABELS, VOCAB),
               EvalSample("b", RASTER.image(), StrokeRaster(4, (np.arange(4),)), [0], ["cloud"])]  # fmt: skip
    chance, majority = evaluate_floor("chance", samples), evaluate_floor("majority", samples)
    assert chance.summary["acc_p"] == pytest.approx((0.5 + 1.0) / 2)
    assert chance.summary["stroke_acc"] == pytest.approx((1.5 + 1) / 4)
    assert majority.summary["acc_p"] == pytest.approx((10 / 12 + 1) / 2)
    assert majority.summary["pixel_acc"] == pytest.approx((10 + 4) / 16)
    with pytest.raises(ValueError, match="unknown floor"):
        floor_sketch("random", RASTER, LABELS, VOCAB)


def test_pooled_scores_of_one_confusion_matrix() -> None:
    c = np.array([[8.0, 2.0, 0.0], [1.0, 3.0, 2.0]])  # rows GT tree, house; columns tree, house, none
    s = pooled_scores(c)
    assert s["pixel_acc"] == pytest.approx(11 / 16)
    assert s["mean_acc"] == pytest.approx((8 / 10 + 3 / 6) / 2)
    iou_tree, iou_house = 8 / (10 + 9 - 8), 3 / (6 + 5 - 3)
    assert s["miou_pooled"] == pytest.approx((iou_tree + iou_house) / 2)
    assert s["fwiou"] == pytest.approx(10 / 16 * iou_tree + 6 / 16 * iou_house)
    ev = SegmentationEvaluator()
    pred = np.zeros((4, 4), dtype=np.int64)
    ev.add("a", pred, RASTER, LABELS, VOCAB)
    summary = ev.summary()
    stack = ev.confusion_stack(ev.categories())  # names sorted: house, tree
    assert stack.shape == (1, 2, 3) and stack[0].tolist() == [[0, 2, 0], [0, 10, 0]]
    assert summary["miou_pooled"] == pytest.approx(pooled_scores(stack.sum(axis=0))["miou_pooled"])
    assert summary["stroke_acc"] == pytest.approx(2 / 3)


def test_paired_interval_of_a_known_difference() -> None:
    rng = np.random.default_rng(1)
    b = rng.uniform(0.2, 0.8, 400)  # sketch difficulty varies a lot
    a = b + 0.05 + rng.normal(0, 0.01, 400)  # a model better by 5 points on every sketch, small noise
    i = paired_mean_interval(a, b)
    assert i.diff == pytest.approx(np.mean(a - b)) and i.low < 0.05 < i.high and i.high - i.low < 0.004
    assert i.excludes_zero and i.verdict() == "better"
    assert i.text() == f"{100 * i.diff:+.2f} [{100 * i.low:+.2f}, {100 * i.high:+.2f}]"
    # the same difference unpaired in spirit: noise far larger than the difference -> no difference
    c = b + rng.normal(0, 0.2, 400)
    j = paired_mean_interval(c, b)
    assert j.low < 0 < j.high and j.verdict() == "no difference" and j.text().startswith("no difference (")
    assert paired_mean_interval(a, b, seed=3) != i and paired_mean_interval(a, b) == i  # seeded


def test_pooled_interval_resamples_confusion_matrices() -> None:
    rng = np.random.default_rng(0)
    n = 200
    gt = rng.integers(50, 150, size=(n, 2)).astype(float)  # per sketch GT pixels of 2 categories
    good = np.zeros((n, 2, 3))
    good[:, 0, 0], good[:, 1, 1] = gt[:, 0], gt[:, 1]  # always right
    half = good.copy()
    half[:, 1, 1], half[:, 1, 0] = gt[:, 1] / 2, gt[:, 1] / 2  # half of category 1 labelled 0
    score = lambda c: pooled_scores(c)["pixel_acc"]  # noqa: E731
    i = paired_pooled_interval(good, half, score)
    expected = gt[:, 1].sum() / 2 / gt.sum()
    assert i.diff == pytest.approx(expected) and i.low <= expected <= i.high and i.verdict() == "better"
    same = paired_pooled_interval(good, good, score)
    assert same == Interval(0.0, 0.0, 0.0) and same.verdict() == "no difference"
