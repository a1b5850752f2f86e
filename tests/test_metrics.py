"""Segmentation metrics on hand-made tiny sketches; every expected value is computed by hand in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sketchseg.data.strokes import StrokeRaster, rasterise
from sketchseg.errors import InputError
from sketchseg.eval.metrics import (
    SegmentationEvaluator,
    evaluate_sketch,
    frequency_correlation,
    pearson,
    write_metrics_json,
)

TOL = 1e-12


def _raster3(*strokes: list[int]) -> StrokeRaster:
    """A 3x3 raster (flat pixels 0..8) from per-stroke flat pixel lists."""
    return StrokeRaster(size=3, pixels=tuple(np.array(sorted(s), dtype=np.int64) for s in strokes))


def _pred3(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64).reshape(3, 3)


# Overlap sketch: stroke 0 (tree) = {0,1,2,3}, stroke 1 (house) = {3,4,5}; pixel 3 is shared and belongs to
# house (last stroke wins). Pixels 6,7,8 are background.
OVERLAP = _raster3([0, 1, 2, 3], [3, 4, 5])
# pred flat: 0->tree 1->tree 2->house 3->house 4->house 5->tree, background values are arbitrary.
OVERLAP_PRED = _pred3([0, 0, 1, 1, 1, 0, 0, 1, 1])


def test_overlapping_strokes_owner_rule_and_full_stroke_vote() -> None:
    m = evaluate_sketch(OVERLAP_PRED, OVERLAP, [0, 1], ["tree", "house"])
    # GT: 0,1,2 tree; 3,4,5 house. Correct: 0, 1, 3, 4 -> 4/6 (first-wins would give 3/6).
    assert abs(m.acc_p - 4 / 6) < TOL
    # stroke 0 votes over {0,1,2,3} = [t, t, h, h]: tie -> smallest index = tree (correct);
    # stroke 1 votes over {3,4,5} = [h, h, t] -> house (correct). Acc@S = 2/2.
    assert m.acc_s == 1.0
    assert m.stroke_pred.tolist() == [0, 1]
    # tree: inter 2 (0,1), GT 3, predicted 3 (0,1,5) -> 2/4; house: inter 2 (3,4), GT 3, predicted 3 (2,3,4) -> 2/4.
    assert m.iou == {0: 0.5, 1: 0.5}
    assert m.miou == 0.5
    assert m.confusion.tolist() == [[2, 1, 0], [1, 2, 0]]
    assert m.n_pixels == 6


def test_stroke_vote_uses_all_pixels_of_the_stroke() -> None:
    # stroke 0 (a) = {0,1,2}, stroke 1 (b) = {1,2,3}: stroke 1 owns 1,2,3; stroke 0 owns only pixel 0.
    raster = _raster3([0, 1, 2], [1, 2, 3])
    pred = _pred3([0, 1, 1, 1, -1, -1, -1, -1, -1])
    m = evaluate_sketch(pred, raster, [0, 1], ["a", "b"])
    # Every pixel is right by the owner rule: Acc@P = 4/4; IoU a = 1/1, b = 3/3.
    assert m.acc_p == 1.0
    assert m.miou == 1.0
    # stroke 0 votes over {0,1,2} = [a, b, b] -> b (wrong), although its only owned pixel is right. 1/2.
    assert m.acc_s == 0.5
    assert m.stroke_pred.tolist() == [1, 1]


def test_all_negative_prediction_is_empty() -> None:
    raster = _raster3([0, 1], [2])
    pred = np.full((3, 3), -1)
    m = evaluate_sketch(pred, raster, ["a", "b"], ["a", "b"])
    # Nothing predicted: Acc@P 0/3, Acc@S 0/2; IoU a = 0/(2+0-0), b = 0/(1+0-0); no category is created.
    assert m.acc_p == 0.0 and m.acc_s == 0.0
    assert m.iou == {0: 0.0, 1: 0.0}
    assert m.miou == 0.0
    assert m.confusion.tolist() == [[0, 0, 2], [0, 0, 1]]  # last column: "no category"
    assert m.stroke_pred.tolist() == [-1, -1]


def test_prediction_of_a_category_absent_from_gt() -> None:
    raster = _raster3([0, 1], [2])
    pred = np.full((3, 3), 2)  # everything "c", which has no GT pixel
    m = evaluate_sketch(pred, raster, [0, 1], ["a", "b", "c"])
    # a: 0/(2+0) ; b: 0/(1+0) ; c: 0/(0+3) -> three zeros, mIoU 0 over GT ∪ pred = {a, b, c}.
    assert m.iou == {0: 0.0, 1: 0.0, 2: 0.0}
    assert m.acc_p == 0.0 and m.acc_s == 0.0 and m.miou == 0.0


def test_class_only_in_prediction_counts_in_union() -> None:
    raster = _raster3([0, 1, 2], [3, 4])
    pred = _pred3([0, 0, 2, 1, 1, 0, 0, 0, 0])  # pixel 2 (GT a) predicted c
    m = evaluate_sketch(pred, raster, [0, 1], ["a", "b", "c"])
    # Acc@P 4/5. IoU a = 2/(3+2-2) = 2/3, b = 2/(2+2-2) = 1, c = 0/(0+1-0) = 0 -> mIoU (2/3 + 1 + 0)/3 = 5/9.
    assert abs(m.acc_p - 4 / 5) < TOL
    assert abs(m.iou[0] - 2 / 3) < TOL and m.iou[1] == 1.0 and m.iou[2] == 0.0
    assert abs(m.miou - 5 / 9) < TOL
    # stroke a votes [a, a, c] -> a; stroke b votes [b, b] -> b.
    assert m.acc_s == 1.0


def test_single_category_sketch_and_none_votes() -> None:
    raster = _raster3([0, 1], [2])
    pred = _pred3([0, 0, -1, 0, 0, 0, 0, 0, 0])
    m = evaluate_sketch(pred, raster, [0, 0], ["a"])
    # Acc@P 2/3; stroke 1's only vote is "none" -> wrong, Acc@S 1/2; IoU a = 2/(3+2-2) = 2/3.
    assert abs(m.acc_p - 2 / 3) < TOL
    assert m.acc_s == 0.5
    assert abs(m.miou - 2 / 3) < TOL


def test_tie_between_none_and_category_goes_to_category() -> None:
    raster = _raster3([0, 1, 2, 3], [4, 5, 6, 7])
    pred = _pred3([-1, -1, 0, 0, -1, -1, -1, 1, 0])
    m = evaluate_sketch(pred, raster, [0, 1], ["a", "b"])
    # stroke 0: [none, none, a, a] tie -> a (right); stroke 1: [none, none, none, b] -> none (wrong).
    assert m.stroke_pred.tolist() == [0, -1]
    assert m.acc_s == 0.5


def test_category_absent_from_sketch_is_skipped() -> None:
    raster = _raster3([0, 1], [2, 3])
    pred = _pred3([0, 0, 2, 0, 1, 1, 1, 1, 1])  # "b" only on background pixels
    m = evaluate_sketch(pred, raster, ["a", "c"], ["a", "b", "c"])
    # a: inter 2, GT 2, pred 3 -> 2/3; c: inter 1, GT 2, pred 1 -> 1/2; b neither GT nor predicted on strokes.
    assert set(m.iou) == {0, 2}
    assert abs(m.miou - (2 / 3 + 1 / 2) / 2) < TOL  # 7/12
    assert abs(m.acc_p - 3 / 4) < TOL
    # stroke c votes [c, a]: tie -> smallest index a -> wrong. Acc@S 1/2.
    assert m.acc_s == 0.5


def test_pixel_index_arrays_on_a_non_square_map() -> None:
    pred = np.array([[0, 1, 1, 0]])  # [1, 4]
    m = evaluate_sketch(pred, [np.array([0, 1]), np.array([2, 3])], [0, 1], 2)
    # GT [0, 0, 1, 1] vs pred [0, 1, 1, 0] -> 2/4; IoU 0: 1/(2+2-1) = 1/3, IoU 1: 1/3.
    assert m.acc_p == 0.5
    assert abs(m.miou - 1 / 3) < TOL


def test_rasterised_strokes_with_gt_prediction_are_perfect() -> None:
    strokes = [np.array([[10.0, 10.0], [200.0, 200.0]]), np.array([[10.0, 200.0], [200.0, 10.0]])]
    raster = rasterise(strokes)
    pred = raster.label_map([0, 1])
    m = evaluate_sketch(pred, raster, [0, 1], ["tree", "house"])
    assert m.acc_p == 1.0 and m.miou == 1.0
    # The first stroke loses the crossing pixels but still wins its vote by far.
    assert m.acc_s == 1.0


@pytest.mark.parametrize(
    ("pred", "labels", "vocab", "message"),
    [
        (np.zeros((4, 4), dtype=int), [0, 1], ["a", "b"], "resize"),
        (np.zeros((3, 3), dtype=int), [0], ["a", "b"], "1 stroke labels for 2 strokes"),
        (np.full((3, 3), 5), [0, 1], ["a", "b"], "index 5"),
        (np.zeros((3, 3), dtype=int), ["a", "zebra"], ["a", "b"], "'zebra' is not in the vocabulary"),
        (np.zeros((3, 3), dtype=int), [0, 2], ["a", "b"], "outside the vocabulary"),
        (np.zeros((3, 3)), [0, 1], ["a", "b"], "integer"),
        (np.zeros(9, dtype=int), [0, 1], ["a", "b"], "2-D"),
        (np.zeros((3, 3), dtype=int), [0, 1], ["a", "a"], "duplicate"),
    ],
)
def test_bad_inputs_raise_clear_errors(pred: np.ndarray, labels: list, vocab: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        evaluate_sketch(pred, _raster3([0], [1]), labels, vocab)


def test_sketch_without_stroke_pixels_is_rejected() -> None:
    with pytest.raises(InputError, match="no stroke pixels"):
        evaluate_sketch(np.zeros((3, 3), dtype=int), _raster3([]), [0], ["a"])


def _two_sketch_evaluator(**kwargs) -> SegmentationEvaluator:
    ev = SegmentationEvaluator(**kwargs)
    ev.add("s1", OVERLAP_PRED, OVERLAP, ["tree", "house"], ["tree", "house"])
    # s2: vocabulary in another order; house = {0,1,2,3}, dog = {4,5}; pred house,house,house,dog | dog,dog.
    ev.add("s2", _pred3([0, 0, 0, 1, 1, 1, 0, 0, 0]), _raster3([0, 1, 2, 3], [4, 5]), [0, 1], ["house", "dog"])
    return ev


def test_dataset_summary_by_hand() -> None:
    s = _two_sketch_evaluator().summary()
    # s1: Acc@P 4/6, Acc@S 1, mIoU 1/2.  s2: Acc@P 5/6, Acc@S 1, IoU house 3/(4+3-3) = 3/4, dog 2/(2+3-2) = 2/3.
    assert abs(s["acc_p"] - (4 / 6 + 5 / 6) / 2) < TOL
    assert s["acc_s"] == 1.0
    assert abs(s["miou"] - (1 / 2 + (3 / 4 + 2 / 3) / 2) / 2) < TOL  # 29/48
    # Pooled confusion by name: tree -> {tree 2, house 1}; house -> {house 5, tree 1, dog 1}; dog -> {dog 2}.
    pc = s["per_category"]
    assert {c: (pc[c]["pixels"], pc[c]["correct"], pc[c]["predicted"]) for c in pc} == {
        "tree": (3, 2, 3),
        "house": (7, 5, 6),
        "dog": (2, 2, 3),
    }
    assert {c: pc[c]["sketches"] for c in pc} == {"tree": 1, "house": 2, "dog": 1}
    assert abs(pc["tree"]["acc_p"] - 2 / 3) < TOL and abs(pc["house"]["acc_p"] - 5 / 7) < TOL
    assert pc["dog"]["acc_p"] == 1.0
    # pooled IoU: tree 2/(3+3-2) = 1/2, house 5/(7+6-5) = 5/8, dog 2/(2+3-2) = 2/3
    assert pc["tree"]["iou"] == 0.5 and pc["house"]["iou"] == 5 / 8 and abs(pc["dog"]["iou"] - 2 / 3) < TOL
    assert s["pixel_acc"] == 9 / 12
    assert abs(s["mean_acc"] - 50 / 63) < TOL  # (2/3 + 5/7 + 1) / 3
    assert abs(s["fwiou"] - 173 / 288) < TOL  # 3/12 * 1/2 + 7/12 * 5/8 + 2/12 * 2/3
    assert (s["n_sketches"], s["n_strokes"], s["n_pixels"]) == (2, 4, 12)
    assert s["units"] == "fraction"
    assert "seen" not in s and "frequency_correlation" not in s


def test_seen_and_unseen_groups_by_hand() -> None:
    s = _two_sketch_evaluator(seen_categories={"tree", "house"}).summary()
    seen, unseen = s["seen"], s["unseen"]
    # seen pixels: s1 all 6 (4 right), s2 house 4 (3 right) -> per-sketch mean (2/3 + 3/4)/2 = 17/24, pooled 7/10.
    assert abs(seen["acc_p"] - 17 / 24) < TOL
    assert seen["pixel_acc"] == 7 / 10
    assert abs(seen["mean_acc"] - (2 / 3 + 5 / 7) / 2) < TOL
    assert seen["miou"] == (1 / 2 + 5 / 8) / 2
    assert (seen["acc_s"], seen["categories"], seen["pixels"], seen["sketches"]) == (1.0, 2, 10, 2)
    # unseen: dog only, 2/2 right, pooled IoU 2/3, in one sketch.
    assert (unseen["acc_p"], unseen["pixel_acc"], unseen["mean_acc"]) == (1.0, 1.0, 1.0)
    assert abs(unseen["miou"] - 2 / 3) < TOL
    assert (unseen["categories"], unseen["pixels"], unseen["sketches"]) == (1, 2, 1)
    assert s["per_category"]["dog"]["seen"] is False and s["per_category"]["tree"]["seen"] is True


def test_pearson_eq5() -> None:
    assert abs(pearson([1, 2, 3], [2, 4, 6]) - 1.0) < TOL
    assert abs(pearson([1, 2, 3], [3, 2, 1]) + 1.0) < TOL
    # N=3, Σxy=13, Σx=Σy=6, Σx²=Σy²=14: (39-36) / sqrt((42-36)(42-36)) = 3/6
    assert abs(pearson([1, 2, 3], [1, 3, 2]) - 0.5) < TOL
    assert pearson([1, 2, 3], [5, 5, 5]) is None
    assert pearson([1], [1]) is None
    with pytest.raises(InputError):
        pearson([1, 2], [1, 2, 3])


def test_frequency_correlation_filters_and_defaults_to_zero() -> None:
    acc = {"tree": 0.5, "house": 0.75, "dog": 1.0}
    freq = {"tree": 1, "house": 3}  # dog missing -> frequency 0
    # min 0: x = [1, 0.75, 0.5] (dog, house, tree), y = [0, 3, 1]: Σxy = 0 + 2.25 + 0.5 = 2.75, Σx = 2.25, Σy = 4,
    # Σx² = 1.8125, Σy² = 10 -> (3*2.75 - 9) / sqrt((3*1.8125 - 5.0625)(30 - 16)) = -0.75 / sqrt(0.375 * 14)
    r = frequency_correlation(acc, freq)
    assert r["n"] == 3 and abs(r["r"] - (-0.75 / np.sqrt(5.25))) < TOL
    r = frequency_correlation(acc, freq, min_frequency=1)  # tree (0.5, 1), house (0.75, 3): rising -> 1
    assert r["n"] == 2 and abs(r["r"] - 1.0) < TOL


def test_evaluator_frequency_correlation_and_json_round_trip(tmp_path) -> None:
    ev = _two_sketch_evaluator(frequencies={"train": {"tree": 5, "house": 50}, "flat": {"tree": 4, "house": 4}},
                               min_frequency=1)
    s = ev.summary()
    # kept: tree (acc 2/3, 5) and house (acc 5/7, 50) -> two rising points -> r = 1; constant frequencies -> None.
    assert s["frequency_correlation"]["train"]["n"] == 2
    assert abs(s["frequency_correlation"]["train"]["r"] - 1.0) < TOL
    assert s["frequency_correlation"]["flat"]["r"] is None
    out = write_metrics_json(tmp_path / "sub" / "metrics.json", s)
    assert json.loads((tmp_path / "sub" / "metrics.json").read_text()) == s
    assert out.endswith("metrics.json")
    write_metrics_json(tmp_path / "nan.json", {"x": float("nan"), "y": np.float32(0.5), "z": np.arange(2)})
    assert json.loads((tmp_path / "nan.json").read_text()) == {"x": None, "y": 0.5, "z": [0, 1]}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_per_sketch_records() -> None:
    rows = _two_sketch_evaluator().per_sketch()
    assert [r["id"] for r in rows] == ["s1", "s2"]
    assert rows[1]["iou"] == {"house": 3 / 4, "dog": rows[1]["iou"]["dog"]} and abs(rows[1]["iou"]["dog"] - 2 / 3) < TOL
    assert rows[0]["categories"] == ["tree", "house"]
    assert (rows[0]["n_pixels"], rows[0]["n_strokes"]) == (6, 2)
    json.dumps(rows)  # serialisable


def test_empty_evaluator_and_bad_sketch_name_the_problem() -> None:
    ev = SegmentationEvaluator()
    with pytest.raises(InputError, match="empty"):
        ev.summary()
    with pytest.raises(InputError, match="sketch s9: "):
        ev.add("s9", np.zeros((2, 2), dtype=int), _raster3([0]), [0], ["a"])


def test_plots_write_pngs(tmp_path) -> None:
    from sketchseg.eval.plots import overlay_item, plot_category_accuracy, plot_segmentation_overlays

    s = _two_sketch_evaluator().summary()
    p = plot_category_accuracy(tmp_path / "cats.png", s["per_category"], {"train": {"tree": 5, "house": 9}})
    item = overlay_item("s1", OVERLAP_PRED, OVERLAP, [0, 1], ["tree", "house"])
    assert abs(item.acc_p - 4 / 6) < TOL
    assert item.gt.tolist() == [[0, 0, 0], [1, 1, 1], [-1, -1, -1]]
    q = plot_segmentation_overlays(tmp_path / "overlay.png", [item])
    for path in (p, q):
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError):
        plot_segmentation_overlays(tmp_path / "none.png", [])
    with pytest.raises(InputError, match="frequency"):
        plot_category_accuracy(tmp_path / "x.png", s["per_category"], {"train": {"tree": 5}}, min_frequency=10)
