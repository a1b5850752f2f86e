"""Threshold calibration: the histogram sweep equals a brute-force loop, and a hand-made case has a known best τ."""

from __future__ import annotations

import numpy as np
import pytest

from sketchseg.errors import InputError
from sketchseg.eval.calibration import ThresholdSweep, pair_accuracy_curve, threshold_grid


def test_grid() -> None:
    g = threshold_grid()
    assert len(g) == 66 and g[0] == 0.30 and g[-1] == 0.95 and g[35] == 0.65
    with pytest.raises(InputError):
        threshold_grid(0.5, 0.4)


def test_sweep_equals_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(0)
    grid = threshold_grid()
    for _ in range(20):
        n = int(rng.integers(1, 300))
        sim = np.round(rng.random(n), 2)  # many values exactly on thresholds
        pos = rng.random(n) < 0.4
        brute = np.array([np.mean((sim > t) == pos) for t in grid])
        np.testing.assert_array_equal(pair_accuracy_curve(sim, pos, grid), brute)


def test_hand_made_sketch_has_the_known_best_threshold() -> None:
    # 1x6 "map", three strokes of two pixels each; GT: stroke 0 -> category 0, strokes 1, 2 -> category 1
    strokes = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
    labels = [0, 1, 1]
    sims = np.zeros((2, 1, 6))
    sims[0, 0] = [0.9, 0.8, 0.6, 0.5, 0.2, 0.1]  # category 0: its pixels above 0.6, the others at most 0.6
    sims[1, 0] = [0.1, 0.2, 0.7, 0.75, 0.72, 0.9]  # category 1: its pixels above 0.5
    sweep = ThresholdSweep()
    rows = sweep.add("s", sims, strokes, labels)
    assert rows.shape == (2, 66)
    curve = sweep.curve()
    # category 0 is perfect for τ in [0.60, 0.79]; category 1 for τ in [0.30, 0.69] -> both on [0.60, 0.69]
    assert curve.best_threshold == pytest.approx(0.60)
    assert curve.best_accuracy == 1.0
    assert curve.n_pairs == 2
    # at τ = 0.85 (index 55): category 0 keeps pixel 0 only -> 5/6 right; category 1 keeps pixel 5 -> 3/6 right
    assert curve.accuracy[55] == pytest.approx((5 / 6 + 3 / 6) / 2)
