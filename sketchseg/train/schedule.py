"""The learning-rate schedule of both trainings (the foundation CLIP and the two-level method): linear warm-up, then
cosine decay to 0."""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """The multiplier of the base learning rate at optimiser step ``step`` (0-based) of ``total``: ``(step + 1) /
    warmup`` during the ``warmup`` first steps, then half a cosine from 1 down to 0 at step ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
