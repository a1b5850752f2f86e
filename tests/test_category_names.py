"""Where evaluation meets category names from elsewhere (prepare's seen lists and train counts), names are compared
in their normal form (sketchseg.data.vocabulary.normalise_name)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sketchseg.data.strokes import StrokeRaster
from sketchseg.eval.metrics import SegmentationEvaluator, frequency_correlation
from sketchseg.eval.report import _load_categories

TOL = 1e-12


def _evaluator(**kwargs) -> SegmentationEvaluator:
    """Two 3x3 sketches: s1 palm tree {0,1,2} (2 right) + grapes {3,4,5} (all right); s2 sheep {0..3} (3 right)."""
    ev = SegmentationEvaluator(**kwargs)
    s1 = StrokeRaster(size=3, pixels=(np.array([0, 1, 2]), np.array([3, 4, 5])))
    ev.add("s1", np.array([0, 0, 1, 1, 1, 1, 0, 0, 0]).reshape(3, 3), s1, [0, 1], ["palm tree", "grapes"])
    s2 = StrokeRaster(size=3, pixels=(np.array([0, 1, 2, 3]),))
    ev.add("s2", np.array([0, 0, 0, -1, 0, 0, 0, 0, 0]).reshape(3, 3), s2, [0], ["sheep"])
    return ev


def test_seen_groups_compare_names_in_normal_form() -> None:
    # seen names spelled as a caption parser or another file may spell them
    summary = _evaluator(seen_categories={"Palm Trees", "grape"}).summary()
    assert summary == _evaluator(seen_categories={"palm tree", "grapes"}).summary()
    seen, unseen = summary["seen"], summary["unseen"]
    # seen: s1 only, 5 of 6 pixels right; unseen: sheep, 3 of 4 right
    assert abs(seen["acc_p"] - 5 / 6) < TOL and (seen["categories"], seen["pixels"], seen["sketches"]) == (2, 6, 1)
    assert unseen["acc_p"] == 3 / 4 and (unseen["categories"], unseen["pixels"]) == (1, 4)
    per = summary["per_category"]
    assert (per["palm tree"]["seen"], per["grapes"]["seen"], per["sheep"]["seen"]) == (True, True, False)


def test_frequency_correlation_looks_categories_up_in_normal_form() -> None:
    acc = {"palm tree": 2 / 3, "grapes": 1.0, "sheep": 0.75}
    by_label = frequency_correlation(acc, {"palm tree": 1, "grapes": 3, "sheep": 2})
    by_normal_form = frequency_correlation(acc, {"Palm Trees": 1, "grape": 3, "sheep": 2})
    assert by_label == by_normal_form and by_label["n"] == 3
    # x = [2/3, 1, 3/4], y = [1, 3, 2]: ranks agree, r > 0; a missing name counts 0 and changes r
    assert by_label["r"] > 0.9
    assert frequency_correlation(acc, {"palm tree": 1, "grapes": 3})["r"] != by_label["r"]


def test_report_maps_normal_form_train_counts_to_label_names(tmp_path: Path) -> None:
    categories = {
        "frequency": {"test": {"grapes": {"strokes": 2, "sketches": 1}, "Palm Tree": {"strokes": 1, "sketches": 1}}},
        "train_frequency": {"grape": 4, "palm tree": 2, "kite": 1},
        "seen": {"test": ["Palm Tree", "grapes"]},
    }
    (tmp_path / "categories.json").write_text(json.dumps(categories))
    seen, freq = _load_categories(tmp_path)
    assert seen == {"test": {"Palm Tree", "grapes"}}
    assert freq == {"train": {"Palm Tree": 2, "grapes": 4}}
