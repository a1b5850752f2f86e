"""Per-stroke labels: the majority vote of each stroke's pixels (tie rule, no category, no pixels), and their
alignment with the input strokes through the real Segmenter on hand-made strokes and the CBSC files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sketchseg.data.strokes import StrokeRaster
from sketchseg.data.vector import VectorSketch, from_points, read_vector
from sketchseg.data.vector_raster import rasterise_vector
from sketchseg.errors import InputError
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.segmenter import Segmenter, SegmentRequest
from sketchseg.model.stroke_labels import NO_CATEGORY, NO_PIXELS, StrokeLabel, vote_stroke_labels


def test_majority_tie_no_category_and_no_pixels():
    # 4x4 map, flat indices 0..15; values: category index, -1/-2 = no category
    labels = np.array([[0, 0, 1, 1],
                       [2, 1, 1, 0],
                       [-2, -2, -2, 0],
                       [-2, 1, -1, -1]])  # fmt: skip
    raster = StrokeRaster(size=4, pixels=(
        np.array([0, 1, 2, 5, 6]),  # 0 0 1 1 1: majority 1 with 3/5
        np.array([0, 1, 2, 3]),  # 0 0 1 1: tie -> lowest index 0, confidence 1/2
        np.array([8, 9, 10, 11]),  # none none none 0: no category with 3/4
        np.array([11, 12, 13, 14]),  # 0 none 1 none: none (2) beats 0 and 1 (1 each)
        np.array([7, 8]),  # 0 and none tie: the category wins
        np.array([], dtype=np.int64),  # no pixels
    ))  # fmt: skip
    got = vote_stroke_labels(labels, raster, ["a", "b", "c"])
    assert got == [
        StrokeLabel("b", 1, 0.6, 5),
        StrokeLabel("a", 0, 0.5, 4),
        StrokeLabel(None, NO_CATEGORY, 0.75, 4),
        StrokeLabel(None, NO_CATEGORY, 0.5, 4),
        StrokeLabel("a", 0, 0.5, 2),
        StrokeLabel(None, NO_PIXELS, 0.0, 0),
    ]
    assert got[0].to_dict() == {"label": "b", "index": 1, "confidence": 0.6, "pixels": 5}


def test_label_map_must_match_the_raster():
    with pytest.raises(InputError, match="does not match the 4x4 strokes"):
        vote_stroke_labels(np.zeros((3, 3), dtype=np.int64), StrokeRaster(4, (np.array([0]),)), ["a"])


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter.from_config(ModelConfig(backbone=BackboneConfig(name="sketchseg-tiny")), batch_size=4)


def _votes_of(seg) -> list[int]:
    """Each stroke's majority over the returned pixel label map, recomputed directly."""
    flat = seg.labels.reshape(-1).astype(np.int64)
    n = len(seg.categories)
    out = []
    for p in seg.vector.raster.pixels:
        counts = np.bincount(np.where(flat[p] < 0, n, flat[p]), minlength=n + 1)
        out.append(int(np.argmax(counts)))
    return out


def test_segmenter_labels_every_input_stroke_in_order(segmenter):
    strokes = [[(20, 20), (200, 40)], [(30, 300), (300, 480), (480, 300)], [(256, 256)], [(400, 60), (400, 60)]]
    vector = from_points(strokes, 512, 512)
    seg = segmenter.segment(vector, categories="tree, house, sun")
    assert len(seg.stroke_labels) == 4
    assert [s.index for s in seg.stroke_labels] == _votes_of(seg)
    assert all(s.label == seg.categories[s.index] and 0 < s.confidence <= 1 for s in seg.stroke_labels)
    assert [s.pixels for s in seg.stroke_labels] == [p.size for p in seg.vector.raster.pixels]
    # reversing the strokes draws the same raster, so the labels come back reversed
    backwards = segmenter.segment(from_points(strokes[::-1], 512, 512), categories="tree, house, sun")
    assert backwards.stroke_labels == seg.stroke_labels[::-1]
    np.testing.assert_array_equal(backwards.labels, seg.labels)


def test_raster_input_has_no_stroke_labels(segmenter):
    image = np.full((64, 64), 255, dtype=np.uint8)
    image[10:50, 30:33] = 0
    seg = segmenter.segment(image, categories="tree")
    assert seg.stroke_labels is None and seg.vector is None


def test_every_entry_point_accepts_vectors(segmenter, tmp_path):
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"strokes": [[[10, 10], [100, 100]], [[300, 30]]], "width": 512, "height": 512}))
    vector = read_vector(path)
    by_path = segmenter.segment(path, categories="a, b")
    by_type = segmenter.segment(vector, categories="a, b")
    many = list(segmenter.segment_many([path, str(path), vector], categories="a, b"))
    requests = [SegmentRequest(vector, categories="a, b"), SegmentRequest(path, caption="a tree and a house")]
    batch = segmenter.segment_batch(requests)
    for seg in [by_type, *many, batch[0]]:
        assert seg.stroke_labels == by_path.stroke_labels
        np.testing.assert_array_equal(seg.labels, by_path.labels)
    assert len(batch[1].stroke_labels) == 2


def test_cbsc_stroke_labels_align_with_their_strokes(cbsc_dir, segmenter):
    files = sorted(cbsc_dir.glob("test/*.json"))[:6]
    vectors = [read_vector(f) for f in files]
    results = list(segmenter.segment_many(vectors, categories="tree, cloud, table, chair"))
    for path, vector, seg in zip(files, vectors, results, strict=True):
        n = json.loads(path.read_text())["object_divisions"][-1]
        assert len(seg.stroke_labels) == len(vector) == n, path.name
        assert [s.index for s in seg.stroke_labels] == _votes_of(seg), path.name


def test_cbsc_ground_truth_label_map_votes_back_to_the_ground_truth(cbsc_dir):
    """A label map painted from the files' own stroke classes (a model double whose answer is known) votes each
    stroke back to its class wherever the stroke owns most of its pixels."""
    checked = 0
    for path in sorted(cbsc_dir.glob("*/*.json"))[::10]:
        data = json.loads(path.read_text())
        names = list(dict.fromkeys(data["gt_class_names"]))
        divisions = data["object_divisions"]
        gt = np.concatenate([[names.index(c)] * (b - a) for c, a, b in
                             zip(data["gt_class_names"], divisions[:-1], divisions[1:], strict=True)])
        raster = rasterise_vector(read_vector(path)).raster
        got = vote_stroke_labels(raster.label_map(gt), raster, names)
        assert len(got) == len(gt)
        owner = raster.owner_map().reshape(-1)
        for i, (label, p) in enumerate(zip(got, raster.pixels, strict=True)):
            if np.mean(owner[p] == i) > 0.5:
                assert label.index == gt[i] and label.label == names[gt[i]], (path.name, i)
                checked += 1
    assert checked > 500


def test_vector_sketch_type_constructors():
    assert VectorSketch.from_points([[(1, 2)]]).strokes[0].tolist() == [[1.0, 2.0]]
    assert len(VectorSketch.from_stroke3([[1, 2, 1], [3, 3, 1]])) == 2
