"""The reader of real stroke-3 scene sketches (FrISS, CBSC) and its conversion to the FSCOCO-Seg layout
(sketchseg/data/friss.py): hand-made files with exact counts, and every file of the external sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sketchseg.data.captions import parse_categories
from sketchseg.data.friss import (
    convert,
    load_class_map,
    load_vocabulary,
    object_list_caption,
    read_scene_file,
    read_set,
)
from sketchseg.data.fscoco import read_dataset
from sketchseg.data.synth.shapes import CATEGORY_NAMES
from sketchseg.data.vector import read_vector
from sketchseg.data.vector_raster import rasterise_vector
from sketchseg.errors import DataError
from sketchseg.eval.evaluate import make_eval_sample, samples_from_set


def scene(objects: list[tuple[str, int]], w: int = 200, h: int = 100, sketch_id: str | None = None) -> dict:
    """A FrISS-style file: each object (class, n) drawn as n horizontal 2-point strokes, 5 px apart."""
    points, divisions, names = [], [0], []  # absolute [x, y, pen]
    for name, n in objects:
        for _ in range(n):
            y = 10 + 5 * (len(points) // 2)
            points += [[10, y, 0], [60, y, 1]]
        divisions.append(divisions[-1] + n)
        names.append(name)
    xy = np.array(points, dtype=float)
    rows = np.vstack([xy[:1], np.column_stack([np.diff(xy[:, :2], axis=0), xy[1:, 2]])])  # stroke-3: offsets
    data = {"img_w": w, "img_h": h, "scene_strokes": rows.tolist(), "object_divisions": divisions,
            "gt_class_names": names, "gt_classes": list(range(len(names)))}  # fmt: skip
    if sketch_id is not None:
        data["img_id"] = sketch_id
    return data


def write(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def hand_made(tmp_path: Path) -> Path:
    """train: 3 sketches (one with nothing in the vocabulary), val/: 2 + an identical notebook copy."""
    root = tmp_path / "set"
    write(root / "train", "sceneid-1-userid-7", scene([("yoga", 2), ("table", 3), ("tree", 1)]))
    write(root / "train", "sceneid-2-userid-7", scene([("table", 1), ("chair", 2)]))
    write(root / "train", "sceneid-3-userid-8", scene([("ocean", 1), ("pond", 2), ("palm tree", 1)]))
    val = scene([("house", 2), ("cup", 1)], sketch_id="sceneid-4-userid-9")
    write(root / "val", "sceneid-4-userid-9", val)
    write(root / "val", "sceneid-4-userid-9-checkpoint", val)
    write(root / "val", "sceneid-5-userid-9", scene([("street", 1), ("yoga", 1)]))
    return root


MAP = {"yoga": "person", "ocean": "water", "pond": "water", "palm tree": "tree", "street": "road"}


def test_mapping_deletion_and_dropping_are_counted_exactly(hand_made: Path) -> None:
    real = read_set({"train": hand_made, "val": hand_made}, class_map=MAP, vocabulary="synthetic")
    train, val = real.reports["train"], real.reports["val"]
    assert (train.files, train.read, train.objects) == (3, 3, 8)
    assert train.renamed_objects == 4  # yoga, ocean, pond, palm tree
    assert (train.deleted_objects, train.deleted_strokes) == (3, 6)  # table x2 (3 + 1 strokes), chair (2)
    assert dict(train.deleted_classes) == {"table": 2, "chair": 1}
    assert (train.dropped_sketches, train.kept, train.kept_objects, train.kept_strokes) == (1, 2, 5, 7)
    assert (val.files, len(val.duplicates), val.read, val.deleted_objects, val.kept) == (3, 1, 2, 1, 2)
    assert "sceneid-4-userid-9-checkpoint.json is identical to" in val.duplicates[0]
    first = real.scenes["train"][0]
    assert first.id == "sceneid-1-userid-7" and first.participant == "userid-7"
    assert [(o.name, o.start, o.end) for o in first.objects] == [("person", 0, 2), ("tree", 2, 3)]
    assert first.labels == ["person", "person", "tree"]
    assert [s.id for s in real.scenes["val"]] == ["sceneid-4-userid-9", "sceneid-5-userid-9"]
    assert real.classes == list(CATEGORY_NAMES)


def test_deleting_objects_moves_nothing_else(hand_made: Path) -> None:
    real = read_set({"train": hand_made}, class_map=MAP, vocabulary="synthetic")
    full = read_scene_file(hand_made / "train" / "sceneid-1-userid-7.json")
    kept = real.scenes["train"][0]
    before = real.fits[kept.id].apply(np.concatenate(full.strokes[:2] + full.strokes[5:6]))
    after = real.vector(kept)[:, :2] * 2  # the 256 canvas -> the 512 raster
    np.testing.assert_allclose(after, before)


def test_without_vocabulary_every_class_is_kept_and_names_are_mapped(hand_made: Path) -> None:
    real = read_set({"train": hand_made}, class_map=MAP)
    assert real.reports["train"].deleted_objects == 0 and real.reports["train"].kept == 3
    assert real.classes == ["chair", "person", "table", "tree", "water"]


def test_an_identical_file_in_two_splits_is_kept_in_the_later_one(tmp_path: Path) -> None:
    data = scene([("tree", 1)])
    write(tmp_path / "validation", "1_outdoor_5", data)
    write(tmp_path / "test", "1_outdoor_5", data)
    real = read_set({"val": tmp_path, "test": tmp_path})
    assert [s.id for s in real.scenes["test"]] == ["1_outdoor_5"] and real.scenes["val"] == []
    assert real.reports["test"].duplicates and "read once, in test" in real.reports["test"].duplicates[0]


def test_two_different_files_of_one_sketch_are_an_error_naming_both(tmp_path: Path) -> None:
    a = write(tmp_path / "val", "s-1", scene([("tree", 1)], sketch_id="s-1"))
    b = write(tmp_path / "val", "s-1-checkpoint", scene([("tree", 2)], sketch_id="s-1"))
    with pytest.raises(DataError, match="two different files") as err:
        read_set({"val": tmp_path})
    assert str(a) in str(err.value) and str(b) in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"object_divisions": [0, 1]}, "do not cut"),
        ({"gt_class_names": [""]}, "non-empty class names"),
        ({"scene_strokes": [[0, 0, 2]]}, "pen values must be 0 or 1"),
        ({"img_w": None}, "give both width and height"),
    ],
)
def test_malformed_files_are_refused_or_skipped_with_the_reason(tmp_path: Path, change: dict, message: str) -> None:
    write(tmp_path / "train", "good", scene([("tree", 2)]))
    bad = write(tmp_path / "train", "bad", {**scene([("tree", 2)]), **change})
    with pytest.raises(DataError, match=message) as err:
        read_set({"train": tmp_path})
    assert str(bad) in str(err.value)
    real = read_set({"train": tmp_path}, on_error="skip")
    assert [s.id for s in real.scenes["train"]] == ["good"] and len(real.reports["train"].skipped) == 1


def test_class_maps_flat_wrapped_shipped_and_vocabularies(tmp_path: Path) -> None:
    (tmp_path / "flat.json").write_text(json.dumps({"Palm Trees": "tree"}))
    (tmp_path / "wrapped.json").write_text(json.dumps({"friss_to_qd": {"yoga": "person"}}))
    assert load_class_map(tmp_path / "flat.json") == {"palm tree": "tree"}
    assert load_class_map(tmp_path / "wrapped.json") == {"yoga": "person"}
    assert load_class_map("people_to_synthetic")["cruise ship"] == "boat"
    assert len(load_class_map("people_to_synthetic")) == 10
    with pytest.raises(DataError, match="class map not found"):
        load_class_map(tmp_path / "missing.json")
    (tmp_path / "v.txt").write_text("tree\nhouse\n\ntree\n")
    (tmp_path / "v.json").write_text('["cloud", "sun"]')
    assert load_vocabulary(tmp_path / "v.txt") == ["tree", "house"]
    assert load_vocabulary(tmp_path / "v.json") == ["cloud", "sun"]
    assert load_vocabulary(["a", " b "]) == ["a", "b"] and load_vocabulary(None) is None
    with pytest.raises(DataError, match="vocabulary is empty"):
        load_vocabulary([])


def test_captions_list_the_objects_and_parse_back() -> None:
    names = ["person", "tree", "person", "water", "airplane", "grass"]
    caption = object_list_caption(names)
    assert caption == "a sketch of two persons, a tree, water, an airplane and grass"
    assert parse_categories(caption, max_categories=None) == ["person", "tree", "water", "airplane", "grass"]
    assert object_list_caption(["house"] * 3) == "a sketch of three houses"


def test_converted_layout_reads_and_rasterises_as_segment_does(hand_made: Path, tmp_path: Path) -> None:
    out = tmp_path / "layout"
    out.mkdir()
    report = convert({"train": hand_made, "val": hand_made, "test": hand_made / "none"}, out, class_map=MAP,
                     vocabulary="synthetic")  # fmt: skip
    assert report["splits"]["train"]["kept"] == 2 and "summary" in report
    records, _ = read_dataset(out, splits=("train", "val"))
    assert [r.caption for r in records["train"]] == ["a sketch of a person and a tree",
                                                      "a sketch of water and a tree"]  # fmt: skip
    (record,) = [r for r in records["val"] if r.id == "sceneid-5-userid-9"]
    assert record.labels == ("road", "person") and record.participant == "userid-9"
    sample = make_eval_sample(record.id, record.vector, list(record.labels))
    drawn = rasterise_vector(read_vector(hand_made / "val" / "sceneid-5-userid-9.json")).raster
    assert [p.tolist() for p in sample.raster.pixels] == [p.tolist() for p in drawn.pixels]


def test_every_friss_and_cbsc_file_reads_with_no_error(friss_dir: Path, cbsc_dir: Path) -> None:
    friss = read_set({"train": friss_dir, "val": friss_dir}, class_map="people_to_synthetic", vocabulary="synthetic")
    cbsc = read_set({"val": cbsc_dir, "test": cbsc_dir}, class_map="people_to_synthetic", vocabulary="synthetic")
    assert (friss.reports["train"].files, friss.reports["val"].files) == (364, 147)
    assert len(friss.reports["val"].duplicates) == 2 and friss.reports["val"].read == 145
    assert (cbsc.reports["val"].files, cbsc.reports["test"].files) == (110, 222)
    assert len(cbsc.reports["test"].duplicates) == 1 and cbsc.reports["val"].read == 109  # kept in test
    for real in (friss, cbsc):
        assert all(not r.skipped for r in real.reports.values())
    assert (friss.reports["train"].kept, cbsc.reports["test"].kept) == (251, 160)
    everything = read_set({"train": friss_dir, "val": friss_dir})
    assert everything.reports["train"].deleted_objects == 0
    for split in ("train", "val"):
        samples = samples_from_set(everything, split)
        assert sum(len(s.raster.pixels) for s in samples) == sum(len(s.strokes) for s in everything.scenes[split])
