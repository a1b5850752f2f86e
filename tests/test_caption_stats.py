"""Caption statistics: hand-made category lists, and the training split's shards counted through the function and
independently from the tar files."""

from __future__ import annotations

import json

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


def test_shard_statistics_count_every_training_sketch(tiny_data: dict) -> None:
    stats = caption_stats.shard_category_statistics(tiny_data["shards"], "train")
    index = json.loads((tiny_data["shards"] / "train.json").read_text())
    assert stats["sketches"] == index["num_samples"] > 0
    assert stats["split"] == "train"
    assert sum(stats["sketches_per_category"].values()) == pytest.approx(
        stats["mean_categories_per_sketch"] * stats["sketches"]
    )
