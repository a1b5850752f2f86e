"""Statistics of the categories parsed from captions: per sketch, per category, and over a split's shards (the
train-flow's ``caption_stats.json``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def category_statistics(category_lists: Iterable[Sequence[str]]) -> dict[str, Any]:
    """Statistics of parsed categories, one list per sketch: sketches, sketches without any category, distinct
    categories, mean categories per sketch and sketches per category (most frequent first, then by name)."""
    counts: Counter[str] = Counter()
    sketches = empty = total = 0
    for categories in category_lists:
        sketches += 1
        unique = list(dict.fromkeys(categories))
        total += len(unique)
        empty += not unique
        counts.update(unique)
    per_category = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return {
        "sketches": sketches,
        "without_categories": empty,
        "distinct_categories": len(counts),
        "mean_categories_per_sketch": total / sketches if sketches else 0.0,
        "sketches_per_category": per_category,
    }


def shard_category_statistics(shards: str | Path, split: str = "train") -> dict[str, Any]:
    """:func:`category_statistics` of the ``categories`` field of ``split``'s shards."""
    from sketchseg.data.shards import make_dataset

    dataset = make_dataset(shards, split, shuffle=False, seed=0, decode=False)
    stats = category_statistics(sample["categories"] for sample in dataset)
    stats["split"] = split
    return stats
