"""Threshold calibration: the histogram sweep equals a brute-force loop, and hand-made cases have a known best τ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sketchseg.data.strokes import StrokeRaster
from sketchseg.errors import InputError
from sketchseg.eval.calibration import ThresholdCurve, ThresholdSweep, pair_accuracy_curve, threshold_grid


def test_grid() -> None:
    g = threshold_grid()
    assert len(g) == 66 and g[0] == 0.30 and g[-1] == 0.95 and g[35] == 0.65 and g[41] == 0.71
    # no float drift: every value is the double nearest to its 2-decimal number
    assert all(float(t) == round(0.30 + k / 100, 2) for k, t in enumerate(g))
    assert threshold_grid(0.5, 0.6, 0.05).tolist() == [0.5, 0.55, 0.6]
    with pytest.raises(InputError):
        threshold_grid(0.5, 0.4)


def test_pair_curve_by_hand_with_values_on_the_thresholds() -> None:
    sim = np.array([0.2, 0.5, 0.71, 0.9])
    pos = np.array([False, False, True, True])
    # τ=0.5: predicted [F, F, T, T] -> 4/4 (0.5 is not > 0.5); τ=0.71: [F, F, F, T] -> 3/4; τ=0.8: same -> 3/4
    assert pair_accuracy_curve(sim, pos, np.array([0.5, 0.71, 0.8])).tolist() == [1.0, 0.75, 0.75]
    # below every threshold / above every threshold
    assert pair_accuracy_curve(np.array([0.0, 1.0]), np.array([False, True]), threshold_grid()).tolist() == [1.0] * 66


def test_pair_curve_equals_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(0)
    grid = threshold_grid()
    for _ in range(20):
        n = int(rng.integers(1, 300))
        sim = np.round(rng.random(n), 2)  # many values exactly on thresholds
        pos = rng.random(n) < 0.4
        brute = np.array([np.mean((sim > t) == pos) for t in grid])
        np.testing.assert_array_equal(pair_accuracy_curve(sim, pos, grid), brute)


def test_sweep_equals_brute_force_with_overlapping_strokes() -> None:
    rng = np.random.default_rng(1)
    size, grid = 12, threshold_grid()
    sweep = ThresholdSweep()
    brute_rows = []
    for k in range(6):
        n_strokes = int(rng.integers(2, 7))
        n_cat = int(rng.integers(1, 4))
        # random, often overlapping strokes
        pixels = tuple(np.unique(rng.integers(0, size * size, int(rng.integers(1, 30)))) for _ in range(n_strokes))
        raster = StrokeRaster(size=size, pixels=pixels)
        labels = rng.integers(0, n_cat, n_strokes)
        sims = np.round(rng.random((n_cat, size, size)), 2)
        sweep.add(f"s{k}", sims, raster, labels)
        gt = raster.label_map(labels)  # [H, W], last stroke wins, -1 background
        on = gt >= 0
        for c in sorted(set(labels.tolist())):
            brute_rows.append([np.mean((sims[c][on] > t) == (gt[on] == c)) for t in grid])
    brute = np.array(brute_rows)
    np.testing.assert_array_equal(sweep.pair_accuracies(), brute)
    curve = sweep.curve()
    expected = [math.fsum(brute[:, j]) / len(brute) for j in range(len(grid))]
    assert list(curve.accuracy) == expected
    j = int(np.argmax(expected))
    assert curve.best_threshold == grid[j] and curve.best_accuracy == expected[j]
    assert curve.n_pairs == len(brute)


def test_hand_made_sketch_has_the_known_best_threshold() -> None:
    # 1x6 "map", three strokes of two pixels each; GT: stroke 0 -> category 0, strokes 1, 2 -> category 1
    strokes = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
    labels = [0, 1, 1]
    sims = np.zeros((2, 1, 6))
    sims[0, 0] = [0.9, 0.8, 0.6, 0.5, 0.2, 0.1]  # category 0: perfect iff 0.6 <= τ < 0.8
    sims[1, 0] = [0.1, 0.2, 0.7, 0.75, 0.72, 0.9]  # category 1: perfect iff 0.2 <= τ < 0.7
    sweep = ThresholdSweep()
    rows = sweep.add("s", sims, strokes, labels)
    assert rows.shape == (2, 66)
    curve = sweep.curve()
    # both perfect on [0.60, 0.69]: the smallest, 0.60, wins the tie
    assert curve.best_threshold == 0.60
    assert curve.best_accuracy == 1.0
    assert curve.n_pairs == 2
    # τ = 0.85 (index 55): category 0 keeps pixel 0 only -> 5/6 right; category 1 keeps pixel 5 -> 3/6 right
    assert curve.accuracy[55] == (5 / 6 + 3 / 6) / 2
    # τ = 0.30 (index 0): category 0 also keeps pixels 2, 3 -> 4/6; category 1 perfect -> 6/6
    assert curve.accuracy[0] == (4 / 6 + 1) / 2


def test_owner_rule_decides_the_positive_pixels() -> None:
    # 2x2 raster: stroke 0 (cat 0) = {0, 1}, stroke 1 (cat 1) = {1, 2, 3}: pixel 1 belongs to cat 1 (drawn last)
    raster = StrokeRaster(size=2, pixels=(np.array([0, 1]), np.array([1, 2, 3])))
    sims = np.array([[[0.9, 0.9], [0.1, 0.1]], [[0.1, 0.9], [0.9, 0.9]]])
    sweep = ThresholdSweep(np.array([0.5]))
    rows = sweep.add("s", sims, raster, [0, 1])
    # cat 0 at 0.5: predicted {0, 1}, GT {0} -> pixel 1 wrong -> 3/4; cat 1: predicted {1,2,3} = GT -> 4/4
    assert rows.tolist() == [[0.75], [1.0]]


def test_curve_dict_round_trip_and_errors() -> None:
    sweep = ThresholdSweep(np.array([0.3, 0.6]))
    with pytest.raises(InputError, match="no \\(sketch, category\\) pair"):
        sweep.curve()
    raster = StrokeRaster(size=2, pixels=(np.array([0, 1]),))
    with pytest.raises(InputError, match="upsample"):
        sweep.add("s", np.zeros((1, 3, 3)), raster, [0])
    with pytest.raises(InputError, match="1 stroke labels for 2 strokes"):
        sweep.add("s", np.zeros((1, 2, 2)), [np.array([0]), np.array([1])], [0])
    with pytest.raises(InputError, match="index the 1 similarity maps"):
        sweep.add("s", np.zeros((1, 2, 2)), raster, [1])
    with pytest.raises(InputError, match="NaN"):
        sweep.add("s", np.full((1, 2, 2), np.nan), raster, [0])
    with pytest.raises(InputError, match="strictly increasing"):
        ThresholdSweep(np.array([0.5, 0.5]))
    sweep.add("s", np.array([[[0.5, 0.7], [0.0, 0.0]]]), StrokeRaster(2, (np.array([0]), np.array([1]))), [0, 0])
    curve = sweep.curve()
    assert curve.accuracy == (1.0, 0.5) and curve.best_threshold == 0.3
    assert ThresholdCurve.from_dict(curve.to_dict()) == curve


def test_threshold_plot_writes_a_png(tmp_path) -> None:
    from sketchseg.eval.plots import plot_threshold_curves

    curve = ThresholdCurve((0.3, 0.4, 0.5), (0.5, 0.9, 0.7), 0.4, 0.9, 3)
    out = plot_threshold_curves(tmp_path / "curves.png", {"val": curve, "test": curve.to_dict()}, chosen=0.4)
    with open(out, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError):
        plot_threshold_curves(tmp_path / "x.png", {})
