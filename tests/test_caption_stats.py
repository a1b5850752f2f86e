"""Caption statistics: hand-made category lists, and the training split's shards counted through the function and
independently from the tar files."""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from sketchseg.data import caption_stats


def test_category_statistics_on_hand_made_lists() -> None:
    stats = caption_stats.category_statistics([["tree", "house"], [], ["tree", "tree", "cloud"], ["house"]])
    assert stats["sketches"] == 4
    assert stats["without_categories"] == 1
    assert stats["distinct_categories"] == 3
    assert stats["mean_categories_per_sketch"] == pytest.approx(5 / 4)  # a repeated name counts once per sketch
    assert list(stats["sketches_per_category"].items()) == [("house", 2), ("tree", 2), ("cloud", 1)]
    assert caption_stats.category_statistics([])["mean_categories_per_sketch"] == 0.0


def recount_from_tar_files(shards: Path, split: str) -> tuple[int, Counter[str], int]:
    """(sketches, sketches per category, sketches without a category) read straight from the split's tar files."""
    sketches, empty, counts = 0, 0, Counter()
    tars = sorted(shards.glob(f"{split}-*.tar"))
    assert [t.name for t in tars] == json.loads((shards / f"{split}.json").read_text())["shards"]
    for path in tars:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".categories.json"):
                    categories = set(json.loads(tar.extractfile(member).read()))
                    sketches += 1
                    empty += not categories
                    counts.update(categories)
    return sketches, counts, empty


def test_shard_statistics_count_every_training_sketch(tiny_data: dict) -> None:
    stats = caption_stats.shard_category_statistics(tiny_data["shards"], "train")
    sketches, counts, empty = recount_from_tar_files(tiny_data["shards"], "train")
    assert stats["sketches"] == sketches == json.loads((tiny_data["shards"] / "train.json").read_text())["num_samples"]
    assert stats["split"] == "train" and sketches > 0 and len(counts) > 1
    assert stats["sketches_per_category"] == dict(counts)
    assert list(stats["sketches_per_category"].values()) == sorted(counts.values(), reverse=True)
    assert (stats["without_categories"], stats["distinct_categories"]) == (empty, len(counts))
    assert stats["mean_categories_per_sketch"] == pytest.approx(counts.total() / sketches)
