"""Metrics of the evaluation protocol on tiny hand-made sketches; expected values computed by hand in comments."""

from __future__ import annotations

import numpy as np
import pytest

from sketchseg.errors import InputError
from sketchseg.eval.metrics import SegmentationEvaluator, evaluate_sketch, frequency_correlation, pearson

# A 4x4 map; strokes given as flat pixel indices (y * 4 + x).
#   stroke 0 (GT 0): pixels 0, 1, 2, 3   (top row)
#   stroke 1 (GT 1): pixels 4, 5, 6      (second row)
#   stroke 2 (GT 1): pixels 12, 13       (bottom row)
STROKES = [np.array([0, 1, 2, 3]), np.array([4, 5, 6]), np.array([12, 13])]
LABELS = [0, 1, 1]
VOCAB = ["tree", "house"]


def pred_map(values: dict[int, int], fill: int = 0) -> np.ndarray:
    p = np.full(16, fill)
    for idx, v in values.items():
        p[idx] = v
    return p.reshape(4, 4)


def test_perfect_prediction() -> None:
    m = evaluate_sketch(pred_map({4: 1, 5: 1, 6: 1, 12: 1, 13: 1}, fill=0), STROKES, LABELS, VOCAB)
    assert m.acc_p == 1.0 and m.acc_s == 1.0 and m.miou == 1.0
    assert m.n_pixels == 9


def test_partial_prediction_hand_computed() -> None:
    # predictions: row 0 -> [0, 0, 1, 1]; row 1 -> [1, 1, 0]; bottom -> [0, 0]; everything else ignored
    pred = pred_map({0: 0, 1: 0, 2: 1, 3: 1, 4: 1, 5: 1, 6: 0, 12: 0, 13: 0, 15: 1})
    m = evaluate_sketch(pred, STROKES, LABELS, VOCAB)
    # correct pixels: 0, 1, 4, 5 -> 4 / 9
    assert m.acc_p == pytest.approx(4 / 9, abs=1e-12)
    # strokes: s0 votes {0: 2, 1: 2} tie -> 0 (smallest) correct; s1 votes 1 (2 of 3) correct; s2 votes 0 wrong -> 2/3
    assert m.acc_s == pytest.approx(2 / 3, abs=1e-12)
    # tree: GT {0,1,2,3}, pred {0,1,6,12,13} -> inter 2, union 7 -> 2/7
    # house: GT {4,5,6,12,13}, pred {2,3,4,5} -> inter 2, union 7 -> 2/7
    assert m.iou == {0: pytest.approx(2 / 7), 1: pytest.approx(2 / 7)}
    assert m.miou == pytest.approx(2 / 7, abs=1e-12)
    np.testing.assert_array_equal(m.confusion, [[2, 2, 0], [3, 2, 0]])


def test_empty_prediction_counts_as_wrong_everywhere() -> None:
    m = evaluate_sketch(np.full((4, 4), -1), STROKES, LABELS, VOCAB)
    assert m.acc_p == 0.0 and m.acc_s == 0.0
    # both GT categories have IoU 0 (no predicted pixel), "no category" creates no category
    assert m.iou == {0: 0.0, 1: 0.0} and m.miou == 0.0


def test_class_present_only_in_prediction_counts_in_the_union() -> None:
    vocab = ["tree", "house", "sun"]
    pred = pred_map({4: 1, 5: 1, 6: 1, 12: 2, 13: 2})  # bottom stroke predicted as "sun", absent from GT
    m = evaluate_sketch(pred, STROKES, LABELS, vocab)
    # tree: 4/4 -> 1; house: GT 5 pixels, pred 3 -> 3/5; sun: pred 2, GT 0 -> 0; mean over 3 categories
    assert m.iou[0] == 1.0 and m.iou[1] == pytest.approx(3 / 5) and m.iou[2] == 0.0
    assert m.miou == pytest.approx((1 + 3 / 5 + 0) / 3, abs=1e-12)
    assert m.acc_p == pytest.approx(7 / 9, abs=1e-12)


def test_overlapping_strokes_last_drawn_wins_for_pixels_full_set_for_strokes() -> None:
    # stroke 0 (GT tree): pixels 0, 1, 2; stroke 1 (GT house): pixels 2, 3 -> pixel 2 belongs to house (last drawn)
    strokes = [np.array([0, 1, 2]), np.array([2, 3])]
    pred = pred_map({0: 0, 1: 0, 2: 0, 3: 1})
    m = evaluate_sketch(pred, strokes, [0, 1], VOCAB)
    # pixel GT: 0->tree, 1->tree, 2->house, 3->house; correct: 0, 1, 3 -> 3/4
    assert m.acc_p == pytest.approx(3 / 4)
    # stroke 0 votes over {0,1,2}: all tree -> correct; stroke 1 over {2,3}: {tree: 1, house: 1} tie -> tree: wrong
    assert m.acc_s == pytest.approx(1 / 2)
    # tree: GT {0,1}, pred {0,1,2} -> 2/3; house: GT {2,3}, pred {3} -> 1/2
    assert m.miou == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_labels_by_name_and_errors() -> None:
    m = evaluate_sketch(pred_map({}, fill=1), STROKES, ["tree", "house", "house"], VOCAB)
    assert m.acc_p == pytest.approx(5 / 9)
    with pytest.raises(InputError):
        evaluate_sketch(np.zeros((4, 4)), STROKES, [0, 1], VOCAB)  # 2 labels for 3 strokes
    with pytest.raises(InputError):
        evaluate_sketch(np.zeros(16), STROKES, LABELS, VOCAB)  # not 2-D


def test_dataset_summary_mean_acc_fwiou_seen_unseen() -> None:
    ev = SegmentationEvaluator(seen_categories={"tree"}, frequencies={"train": {"tree": 10, "house": 2}})
    # sketch A: the hand-computed partial case above; sketch B: perfect on a single tree stroke of 2 pixels
    ev.add("A", pred_map({0: 0, 1: 0, 2: 1, 3: 1, 4: 1, 5: 1, 6: 0, 12: 0, 13: 0}), STROKES, LABELS, VOCAB)
    ev.add("B", pred_map({}, fill=0), [np.array([7, 8])], [0], ["tree"])
    s = ev.summary()
    assert s["acc_p"] == pytest.approx((4 / 9 + 1) / 2)
    assert s["miou"] == pytest.approx((2 / 7 + 1) / 2)
    # pooled: tree GT 4 + 2 = 6 pixels, correct 2 + 2 = 4; house GT 5, correct 2 -> pixel acc 6 / 11
    assert s["pixel_acc"] == pytest.approx(6 / 11)
    assert s["per_category"]["tree"]["acc_p"] == pytest.approx(4 / 6)
    assert s["per_category"]["house"]["acc_p"] == pytest.approx(2 / 5)
    assert s["mean_acc"] == pytest.approx((4 / 6 + 2 / 5) / 2)
    # pooled IoU: tree pred = A {0,1,6,12,13} + B {7,8} = 7, inter 4, union 6 + 7 - 4 = 9 -> 4/9
    #             house pred = A {2,3,4,5} = 4, inter 2, union 5 + 4 - 2 = 7 -> 2/7
    assert s["fwiou"] == pytest.approx(6 / 11 * 4 / 9 + 5 / 11 * 2 / 7)
    assert s["seen"]["pixel_acc"] == pytest.approx(4 / 6)
    assert s["unseen"]["pixel_acc"] == pytest.approx(2 / 5)
    # two categories: correlation of (acc, freq) = ((2/3, 10), (2/5, 2)) is +1
    assert s["frequency_correlation"]["train"]["r"] == pytest.approx(1.0)
    assert len(ev.per_sketch()) == 2


def test_pearson_and_frequency_correlation() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x = (1, 2, 3, 4), y = (1, 3, 2, 4): cov = 1, var_x = var_y = 1.25 -> r = 0.8
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1], [2]) is None and pearson([1, 1], [2, 3]) is None
    out = frequency_correlation({"a": 0.1, "b": 0.5, "c": 0.9}, {"a": 1, "b": 20, "c": 30}, min_frequency=11)
    assert out == {"r": pytest.approx(1.0), "n": 2}
