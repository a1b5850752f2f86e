"""Paired bootstrap intervals of the difference between two models scored on the same sketches.

The sketches are resampled with replacement ``n_resamples`` times (seeded); both models are scored on each resample,
so the interval is of the DIFFERENCE, paired sketch by sketch: the spread of sketch difficulty, which moves both
models together, does not widen it. The 95 % interval is the 2.5th to 97.5th percentile of the resampled differences
(percentile bootstrap). A difference whose interval holds 0 is reported as no difference.

- per-sketch means (the paper's mIoU, Acc@P, Acc@S): :func:`paired_mean_interval` of the per-sketch values;
- pooled scores (the CAVT protocol, one confusion matrix over the set): :func:`paired_pooled_interval` of the
  per-sketch confusion matrices, summed over each resample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from sketchseg.errors import InputError

N_RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """``diff`` = score(a) - score(b) on the whole set, and its bootstrap interval [``low``, ``high``]."""

    diff: float
    low: float
    high: float
    level: float = LEVEL
    n_resamples: int = N_RESAMPLES

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def verdict(self) -> str:
        """``better``, ``worse`` or ``no difference`` (the interval holds 0)."""
        if not self.excludes_zero:
            return "no difference"
        return "better" if self.diff > 0 else "worse"

    def to_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "verdict": self.verdict()}

    def text(self, scale: float = 100.0) -> str:
        """``+1.23 [+0.40, +2.05]``, or ``no difference (+0.31 [-0.52, +1.10])`` (in percentage points)."""
        shown = f"{scale * self.diff:+.2f} [{scale * self.low:+.2f}, {scale * self.high:+.2f}]"
        return shown if self.excludes_zero else f"no difference ({shown})"


def resample_counts(n_items: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """How often each of ``n_items`` sketches is drawn in each resample: int64 [n_resamples, n_items]."""
    if n_items < 1:
        raise InputError("a bootstrap needs at least one sketch")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_resamples)


def _interval(diff: float, resampled: np.ndarray, level: float) -> Interval:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(resampled, [tail, 100.0 - tail])
    return Interval(float(diff), float(low), float(high), level, int(len(resampled)))


def paired_mean_interval(
    a: np.ndarray, b: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Interval:
    """Interval of mean(a) - mean(b) for per-sketch values ``a``, ``b`` [S] of two models on the same sketches."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"paired scores must be 1-D of the same length, got {a.shape} and {b.shape}")
    d = a - b  # [S]
    counts = resample_counts(len(d), n_resamples, seed)  # [R, S]
    return _interval(float(d.mean()), counts @ d / len(d), level)


def paired_pooled_interval(
    a: np.ndarray,
    b: np.ndarray,
    score: Callable[[np.ndarray], float],
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval:
    """Interval of score(sum a) - score(sum b) for per-sketch confusion matrices ``a``, ``b`` [S, C, C + 1] of two
    models on the same sketches; ``score`` maps a pooled confusion matrix to a number (e.g. pooled mIoU)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise InputError(f"paired confusion matrices must be [S, C, C + 1] alike, got {a.shape} and {b.shape}")
    counts = resample_counts(len(a), n_resamples, seed).astype(np.float64)  # [R, S]
    shape = a.shape[1:]
    pooled_a = (counts @ a.reshape(len(a), -1)).reshape(-1, *shape)  # [R, C, C + 1]
    pooled_b = (counts @ b.reshape(len(b), -1)).reshape(-1, *shape)
    resampled = np.array([score(x) - score(y) for x, y in zip(pooled_a, pooled_b, strict=True)])
    return _interval(score(a.sum(axis=0)) - score(b.sum(axis=0)), resampled, level)
