"""The FSCOCO-Seg reader, its validation, rasterisation and the `sketchseg data prepare` command."""

from __future__ import annotations

import json
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchseg.cli import main as cli_main
from sketchseg.data.fscoco import (
    SketchDataError,
    all_classes_places,
    dataset_classes,
    read_all_classes,
    read_all_classes_checked,
    read_dataset,
    read_participants,
    read_split,
    read_split_checked,
)
from sketchseg.data.prepare import prepare
from sketchseg.data.records import SketchRecord
from sketchseg.data.strokes import StrokeRaster
from sketchseg.data.synth import generate
from sketchseg.errors import DataError
from sketchseg.eval.evaluate import samples_from_records

CLASSES = ["tree", "cow", "house", "dog"]

# Hand-made vectors on the 256 canvas: [x, y, pen], pen = 1 ends a stroke.
HORIZONTAL = [[10, 10, 0], [12, 10, 0], [14, 10, 1]]  # one horizontal stroke, 3 points
VERTICAL = [[50, 50, 0], [50, 60, 1]]  # one vertical stroke, 2 points
DOT = [[100, 30, 1]]  # a single-point stroke

# id -> (caption, vector rows, per-stroke labels)
VAL = {
    "v1": ("a tree and a cow", HORIZONTAL + VERTICAL, ["tree", "cow"]),
    "v2": ("a house", DOT, ["house"]),
    "v3": ("two trees", VERTICAL + DOT, ["tree", "tree"]),
}
TEST = {
    "t1": ("a dog under a tree", HORIZONTAL + DOT, ["dog", "tree"]),
    "t2": ("a cow", VERTICAL, ["cow"]),
}
TRAIN = {"p01": {"a1": "A cow near a tree.", "a2": "a house"}, "p02": {"b1": "  a dog\n in a field "}}


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 16), 255).save(path)


def make_tree(root: Path, train=TRAIN, val=VAL, test=TEST, classes=CLASSES, jpg: tuple[str, ...] = ("a2",)) -> Path:
    """Write a tiny FSCOCO-Seg directory; ids in ``jpg`` get a .jpg train image instead of .png."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "all_classes.json").write_text(json.dumps(classes))
    for participant, sketches in train.items():
        for sid, caption in sketches.items():
            ext = ".jpg" if sid in jpg else ".png"
            img = root / "train" / "sketches" / participant / f"{sid}{ext}"
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), "white").save(img)
            txt = root / "train" / "text" / participant / f"{sid}.txt"
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text(caption, encoding="utf-8")
    for split, sketches in (("val", val), ("test", test)):
        for sub in ("images", "captions", "vector_sketches", "classes"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for sid, (caption, vector, labels) in sketches.items():
            _png(root / split / "images" / f"{sid}.png")
            (root / split / "captions" / f"{sid}.txt").write_text(caption, encoding="utf-8")
            np.save(root / split / "vector_sketches" / f"{sid}.npy", np.array(vector, dtype=np.float64))
            (root / split / "classes" / f"{sid}.json").write_text(json.dumps(labels))
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "fscoco")


# ------------------------------------------------------------------------------------------------ good data


def test_read_train_fields(tree: Path) -> None:
    records = read_split(tree, "train")
    assert [r.id for r in records] == ["a1", "a2", "b1"]
    a1, a2, b1 = records
    assert (a1.split, a1.participant, a1.caption) == ("train", "p01", "A cow near a tree.")
    assert a2.image_path == tree / "train" / "sketches" / "p01" / "a2.jpg"
    assert b1.participant == "p02"
    assert b1.caption == "a dog in a field"  # whitespace and newlines collapsed
    assert all(r.vector is None and r.labels is None and not r.annotated for r in records)


def test_read_val_fields(tree: Path) -> None:
    records = read_split(tree, "val")
    assert [r.id for r in records] == ["v1", "v2", "v3"]
    v1 = records[0]
    assert v1.split == "val" and v1.caption == "a tree and a cow"
    assert v1.image_path == tree / "val" / "images" / "v1.png"
    assert v1.labels == ("tree", "cow")
    assert v1.vector.shape == (5, 3)
    np.testing.assert_array_equal(v1.vector, np.array(HORIZONTAL + VERTICAL, dtype=float))
    assert v1.participant is None  # no mapping file
    _, report = read_split_checked(tree, "test")
    assert (report.read, report.strokes, report.skipped) == (2, 3, [])


def test_participants_json_and_synth_json(tree: Path) -> None:
    (tree / "synth.json").write_text(json.dumps({"seed": 1, "participants": {"val": {"v1": "p07"}, "test": {}}}))
    assert read_split(tree, "val")[0].participant == "p07"
    # participants.json takes precedence; participant -> [ids] form
    (tree / "participants.json").write_text(json.dumps({"p09": ["v1", "v2"], "p10": ["t1"]}))
    assert read_participants(tree) == {"v1": "p09", "v2": "p09", "t1": "p10"}
    assert [r.participant for r in read_split(tree, "val")] == ["p09", "p09", None]


def test_bad_participants_json_raises(tree: Path) -> None:
    (tree / "participants.json").write_text(json.dumps([1, 2]))
    with pytest.raises(DataError, match="participants.json"):
        read_split(tree, "val")


def test_read_all_classes_forms(tmp_path: Path) -> None:
    (tmp_path / "all_classes.json").write_text(json.dumps(["tree", "cow", "tree"]))
    assert read_all_classes(tmp_path) == ["tree", "cow"]
    (tmp_path / "all_classes.json").write_text(json.dumps({"cow": 1, "tree": 0}))
    assert read_all_classes(tmp_path) == ["tree", "cow"]


def test_train_captions_by_participant(tree: Path) -> None:
    captions: dict[str, dict[str, str]] = {}
    for r in read_split(tree, "train", verify_images=False):
        captions.setdefault(r.participant or "", {})[r.id] = r.caption
    assert captions == {
        "p01": {"a1": "A cow near a tree.", "a2": "a house"},
        "p02": {"b1": "a dog in a field"},
    }


def test_ignored_files_are_listed(tree: Path) -> None:
    (tree / "val" / "images" / "notes.md").write_text("x")
    (tree / "val" / "images" / ".DS_Store").write_text("x")
    records, report = read_split_checked(tree, "val")
    assert len(records) == 3
    assert report.ignored_files == [str(tree / "val" / "images" / "notes.md")]


# -------------------------------------------------------------------------------------------- rasterisation


def rasterise_record(record: SketchRecord) -> tuple[StrokeRaster, list[str]]:
    """The benchmark raster of an annotated record as evaluation makes it, and its strokes' label names."""
    sample = samples_from_records([record])[0]
    return sample.raster, [sample.vocabulary[i] for i in sample.stroke_labels]


def test_rasterise_horizontal_and_vertical_strokes(tree: Path) -> None:
    v1 = read_split(tree, "val")[0]
    raster, labels = rasterise_record(v1)
    assert labels == ["tree", "cow"]
    assert raster.size == 512 and len(raster.pixels) == 2
    # horizontal stroke: x 20..28 at y 20 after x2; the cross adds x 19 and 29 on the row and rows 19, 21
    assert len(raster.pixels[0]) == 11 + 9 + 9
    expected = {20 * 512 + x for x in range(19, 30)} | {y * 512 + x for y in (19, 21) for x in range(20, 29)}
    assert set(raster.pixels[0].tolist()) == expected
    # vertical stroke: y 100..120 at x 100, cross dilation -> 23 + 21 + 21
    assert len(raster.pixels[1]) == 23 + 21 + 21
    mask = raster.union_mask()
    assert mask.sum() == 29 + 65 and mask[20, 19] and not mask[19, 19]
    assert raster.label_map([0, 1])[110, 100] == 1


def test_rasterise_ignores_points_after_last_pen_flag() -> None:
    vector = np.array(HORIZONTAL + [[200, 200, 0]], dtype=float)
    record = SketchRecord("x", "val", "c", Path("x.png"), vector=vector, labels=("tree",))
    raster, labels = rasterise_record(record)
    assert labels == ["tree"] and len(raster.pixels) == 1
    assert not raster.union_mask()[400, 400]


def test_rasterise_train_record_raises(tree: Path) -> None:
    with pytest.raises(DataError, match="a1"):
        rasterise_record(read_split(tree, "train")[0])


# ------------------------------------------------------------------------------------------------- bad data



def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


# case -> (split, corrupt(root), file the message must name); REASON gives the expected reason key
BAD_CASES = {
    "label_count": ("val", lambda r: (r / "val/classes/v1.json").write_text('["tree"]'), "val/classes/v1.json"),
    "truncated_npy": ("val", lambda r: _truncate(r / "val/vector_sketches/v2.npy"), "val/vector_sketches/v2.npy"),
    "pickled_npy": (
        "val",
        lambda r: np.save(r / "val/vector_sketches/v2.npy", np.array([[1], [2, 3]], dtype=object), allow_pickle=True),
        "val/vector_sketches/v2.npy",
    ),
    "npy_wrong_shape": (
        "val",
        lambda r: np.save(r / "val/vector_sketches/v2.npy", np.zeros((4, 2))),
        "val/vector_sketches/v2.npy",
    ),
    "npy_nan": (
        "val",
        lambda r: np.save(r / "val/vector_sketches/v2.npy", np.array([[np.nan, 1.0, 1.0]])),
        "val/vector_sketches/v2.npy",
    ),
    "missing_caption_val": ("val", lambda r: (r / "val/captions/v1.txt").unlink(), "val/images/v1.png"),
    "missing_caption_train": ("train", lambda r: (r / "train/text/p01/a1.txt").unlink(), "train/sketches/p01/a1.png"),
    "non_utf8_caption": ("val", lambda r: (r / "val/captions/v3.txt").write_bytes(b"a caf\xe9"), "val/captions/v3.txt"),
    "non_utf8_caption_train": (
        "train",
        lambda r: (r / "train/text/p02/b1.txt").write_bytes(b"\xff\xff dog"),
        "train/text/p02/b1.txt",
    ),
    "empty_caption": ("test", lambda r: (r / "test/captions/t1.txt").write_text(" \n"), "test/captions/t1.txt"),
    "no_strokes": (
        "val",
        lambda r: np.save(r / "val/vector_sketches/v3.npy", np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])),
        "val/vector_sketches/v3.npy",
    ),
    "empty_vector": (
        "val",
        lambda r: np.save(r / "val/vector_sketches/v3.npy", np.zeros((0, 3))),
        "val/vector_sketches/v3.npy",
    ),
    "unknown_label": ("test", lambda r: (r / "test/classes/t2.json").write_text('["zebra"]'), "test/classes/t2.json"),
    "caption_without_image": ("val", lambda r: (r / "val/images/v2.png").unlink(), "val/captions/v2.txt"),
    "caption_without_image_train": (
        "train",
        lambda r: (r / "train/text/p02/zz.txt").write_text("orphan"),
        "train/text/p02/zz.txt",
    ),
    "vector_without_classes": ("val", lambda r: (r / "val/classes/v1.json").unlink(), "val/vector_sketches/v1.npy"),
    "classes_without_vector": ("val", lambda r: (r / "val/vector_sketches/v1.npy").unlink(), "val/classes/v1.json"),
    "malformed_classes_json": (
        "val",
        lambda r: (r / "val/classes/v1.json").write_text('["tree",'),
        "val/classes/v1.json",
    ),
    "classes_not_a_list": ("val", lambda r: (r / "val/classes/v1.json").write_text('{"a": 1}'), "val/classes/v1.json"),
    "unreadable_image": ("val", lambda r: (r / "val/images/v1.png").write_bytes(b"not a png"), "val/images/v1.png"),
    "participant_mismatch": (
        "train",
        lambda r: (r / "train/text/p01/a1.txt").rename(r / "train/text/p02/a1.txt"),
        "train/sketches/p01/a1.png",
    ),
}
REASON = {
    "label_count": "label_count",
    "truncated_npy": "bad_vector",
    "pickled_npy": "bad_vector",
    "npy_wrong_shape": "bad_vector",
    "npy_nan": "bad_vector",
    "missing_caption_val": "missing_caption",
    "missing_caption_train": "missing_caption",
    "non_utf8_caption": "bad_caption",
    "non_utf8_caption_train": "bad_caption",
    "empty_caption": "bad_caption",
    "no_strokes": "no_strokes",
    "empty_vector": "no_strokes",
    "unknown_label": "unknown_label",
    "caption_without_image": "missing_image",
    "caption_without_image_train": "missing_image",
    "vector_without_classes": "missing_classes",
    "classes_without_vector": "missing_vector",
    "malformed_classes_json": "bad_classes",
    "classes_not_a_list": "bad_classes",
    "unreadable_image": "bad_image",
    "participant_mismatch": "participant_mismatch",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sketch_raises_naming_file(tree: Path, case: str) -> None:
    split, corrupt, named = BAD_CASES[case]
    corrupt(tree)
    with pytest.raises(SketchDataError) as info:
        read_split(tree, split)
    assert isinstance(info.value, DataError)
    assert str(tree / named) in str(info.value)
    assert info.value.reason == REASON[case]


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sketch_skipped_and_counted(tree: Path, case: str) -> None:
    split, corrupt, named = BAD_CASES[case]
    total = {"train": 3, "val": 3, "test": 2}[split]
    corrupt(tree)
    records, report = read_split_checked(tree, split, on_error="skip")
    assert report.counts() == {REASON[case]: 1}
    assert len(records) == total - (0 if case == "caption_without_image_train" else 1)
    assert report.skipped[0].file == str(tree / named)
    assert report.to_dict()["skipped"] == 1


def test_skip_mode_counts_several_reasons(tree: Path) -> None:
    (tree / "val/classes/v1.json").write_text('["tree"]')
    (tree / "val/captions/v3.txt").write_bytes(b"\xe9")
    records, report = read_split_checked(tree, "val", on_error="skip")
    assert [r.id for r in records] == ["v2"]
    assert report.counts() == {"bad_caption": 1, "label_count": 1}
    assert {s.id for s in report.skipped} == {"v1", "v3"}


def test_every_sketch_skipped_raises(tree: Path) -> None:
    for sid in TEST:
        (tree / f"test/classes/{sid}.json").write_text("[]")
    with pytest.raises(DataError, match="every sketch"):
        read_split(tree, "test", on_error="skip")


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_duplicate_id_two_participants_raises(tree: Path, on_error: str) -> None:
    _png(tree / "train/sketches/p02/a1.png")
    (tree / "train/text/p02/a1.txt").write_text("copy")
    with pytest.raises(DataError) as info:
        read_split(tree, "train", on_error=on_error)
    assert str(tree / "train/sketches/p01/a1.png") in str(info.value)
    assert str(tree / "train/sketches/p02/a1.png") in str(info.value)


def test_duplicate_png_and_jpg_raises(tree: Path) -> None:
    Image.new("RGB", (4, 4)).save(tree / "val/images/v2.jpg")
    with pytest.raises(DataError, match=re.escape(str(tree / "val/images/v2.jpg"))):
        read_split(tree, "val", on_error="skip")


def test_id_in_two_splits_raises(tree: Path) -> None:
    make_tree(tree, train={}, val={}, test={"v1": VAL["v1"]})
    with pytest.raises(DataError, match="'v1' is in both 'val' and 'test'"):
        read_dataset(tree, splits=("val", "test"))


@pytest.mark.parametrize(
    ("corrupt", "named"),
    [
        (lambda r: (r / "all_classes.json").unlink(), "all_classes.json"),
        (lambda r: (r / "all_classes.json").write_text("{oops"), "all_classes.json"),
        (lambda r: (r / "all_classes.json").write_text('[1, "tree"]'), "all_classes.json"),
        (lambda r: (r / "val/classes").rename(r / "val/labels"), "val/classes"),
    ],
)
def test_dataset_level_problems_raise_in_skip_mode(tree: Path, corrupt, named: str) -> None:
    corrupt(tree)
    with pytest.raises(DataError, match=re.escape(str(tree / named))):
        read_split(tree, "val", on_error="skip")


def test_missing_root_and_empty_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset root not found"):
        read_split(tmp_path / "nope", "train")
    make_tree(tmp_path / "d", val={})
    with pytest.raises(DataError, match="no sketch found"):
        read_split(tmp_path / "d", "val")


# --------------------------------------------------------------------------------------------------- prepare

VOCAB = {"tree", "cow", "house", "dog", "field"}


def fake_parse(caption: str) -> list[str]:
    """Stand-in for sketchseg.data.captions.parse_categories: vocabulary words, singular, in order."""
    words = [w.removesuffix("s") for w in re.findall(r"[a-z]+", caption.lower())]
    return list(dict.fromkeys(w for w in words if w in VOCAB))


def test_prepare_writes_splits_categories_checks(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    prepare(tree, out, parse_categories=fake_parse, max_categories=3)
    splits = json.loads((out / "splits.json").read_text())
    assert {k: splits[k] for k in ("train", "val", "test")} == {
        "train": ["a1", "a2", "b1"],
        "val": ["v1", "v2", "v3"],
        "test": ["t1", "t2"],
    }
    cats = json.loads((out / "categories.json").read_text())
    assert cats["all_classes"] == CLASSES
    assert cats["frequency"]["val"] == {
        "cow": {"strokes": 1, "sketches": 1},
        "house": {"strokes": 1, "sketches": 1},
        "tree": {"strokes": 3, "sketches": 2},
    }
    assert cats["frequency"]["test"]["tree"] == {"strokes": 1, "sketches": 1}
    assert cats["train_frequency"] == {"cow": 1, "dog": 1, "field": 1, "house": 1, "tree": 1}
    assert cats["unseen"] == {"val": [], "test": []}
    assert cats["unused_classes"] == []
    checks = json.loads((out / "checks.json").read_text())
    assert checks["ok"] is True
    assert checks["totals"] == {"read": 8, "strokes": 8, "skipped": 0, "skipped_by_reason": {}}
    assert checks["participants"]["train"] == ["p01", "p02"]


def test_prepare_unseen_depends_on_max_categories(tree: Path, tmp_path: Path) -> None:
    cats_path = tmp_path / "o" / "categories.json"
    prepare(tree, tmp_path / "o", parse_categories=fake_parse, max_categories=1)
    cats = json.loads(cats_path.read_text())
    # first category of each train caption: cow (a1), house (a2), dog (b1); tree only ever comes second
    assert cats["train_frequency"] == {"cow": 1, "dog": 1, "house": 1}
    assert cats["train_mentions"]["tree"] == 1
    assert cats["unseen"] == {"val": ["tree"], "test": ["tree"]}
    assert cats["seen"]["test"] == ["cow", "dog"]


def test_prepare_cli_skip_and_raise(tree: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    stub = types.ModuleType("sketchseg.data.captions")
    stub.parse_categories = lambda caption, parser=None: fake_parse(caption)
    stub.dataset_parser = lambda classes=(): None
    monkeypatch.setitem(sys.modules, "sketchseg.data.captions", stub)
    (tree / "test/vector_sketches/t2.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "out"
    assert cli_main(["data", "prepare", "--root", str(tree), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(tree / "test/vector_sketches/t2.npy") in err
    assert not out.exists()  # atomic: nothing written on failure

    code = cli_main(["data", "prepare", "--root", str(tree), "--out", str(out), "--on-error", "skip"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test: 1 sketches" in printed and "bad_vector" in printed
    checks = json.loads((out / "checks.json").read_text())
    assert checks["ok"] is False and checks["totals"]["skipped_by_reason"] == {"bad_vector": 1}
    assert checks["splits"]["test"]["skipped_sketches"][0]["id"] == "t2"
    assert json.loads((out / "splits.json").read_text())["test"] == ["t1"]
    cats = json.loads((out / "categories.json").read_text())
    assert "cow" not in cats["frequency"]["test"]


def test_prepare_flags_test_participant_elsewhere(tree: Path, tmp_path: Path) -> None:
    (tree / "participants.json").write_text(json.dumps({"t1": "p01", "t2": "p05", "v1": "p02"}))
    checks = prepare(tree, tmp_path / "o", parse_categories=fake_parse)
    assert checks["test_participants_elsewhere"] == ["p01"]
    assert checks["sketches_without_participant"] == {"train": 0, "val": 2, "test": 0}


def test_prepare_with_the_real_caption_parser(tree: Path, tmp_path: Path) -> None:
    prepare(tree, tmp_path / "o", max_categories=3)
    cats = json.loads((tmp_path / "o" / "categories.json").read_text())
    # train captions: "A cow near a tree." / "a house" / "a dog in a field" -> every val/test class is seen
    assert {"cow", "tree", "house", "dog"} <= set(cats["train_frequency"])
    assert cats["unseen"] == {"val": [], "test": []}


def test_prepare_compares_names_in_normal_form(tmp_path: Path) -> None:
    """Labels and parsed caption words that differ as strings but name the same category are "seen"."""
    classes = ["Palm Tree", "grapes", "teddy-bear", "sheep", "alarm clock"]
    val = {"v1": ("palm trees", HORIZONTAL + VERTICAL, ["Palm Tree", "grapes"]), "v2": ("a bear", DOT, ["teddy-bear"])}
    test = {"t1": ("sheep and a clock", VERTICAL + DOT, ["sheep", "alarm clock"])}
    train = {"p01": {"a1": "two palm trees and a bowl of grapes", "a2": "a teddy bear next to three sheep"}}
    root = make_tree(tmp_path / "names", train=train, val=val, test=test, classes=classes)

    def raw_variants(caption: str) -> list[str]:  # what a parser may return: other case, plural, spaces
        return {"two palm trees and a bowl of grapes": ["PALM  TREES", "Grape"],
                "a teddy bear next to three sheep": ["Teddy Bear", "sheep"]}[caption]  # fmt: skip

    cats = prepare(root, tmp_path / "fake", parse_categories=raw_variants)["categories"]
    assert cats["train_frequency"] == {"grape": 1, "palm tree": 1, "sheep": 1, "teddy bear": 1}
    assert cats["seen"] == {"val": ["Palm Tree", "grapes", "teddy-bear"], "test": ["sheep"]}
    assert cats["unseen"] == {"val": [], "test": ["alarm clock"]}
    # the real parser, with the dataset's names known first, agrees
    cats = prepare(root, tmp_path / "real")["categories"]
    assert cats["seen"] == {"val": ["Palm Tree", "grapes", "teddy-bear"], "test": ["sheep"]}
    assert cats["train_mentions"] == {"bowl": 1, "grape": 1, "palm tree": 1, "sheep": 1, "teddy bear": 1}


# ------------------------------------------------------------------------- all_classes.json where a release has it


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset in the FSCOCO-Seg layout, written by the synthetic generator (all_classes.json at the root)."""
    root = tmp_path_factory.mktemp("generated") / "release"
    generate(root, participants=3, per_participant=3, seed=0, objects_per_category=0, test_participants=1,
             val_per_participant=1, workers=1, progress=False)  # fmt: skip
    return root


def _release(generated: Path, tmp_path: Path, *places: str) -> Path:
    """A copy of the generated release whose all_classes.json sits at ``places`` (e.g. "val", "test") only."""
    root = tmp_path / "release"
    shutil.copytree(generated, root)
    for place in places:
        shutil.copy(root / "all_classes.json", root / place / "all_classes.json")
    if places:
        (root / "all_classes.json").unlink()
    return root


def test_all_classes_in_the_split_folders_as_the_authors_ship_it(generated: Path, tmp_path: Path) -> None:
    classes = json.loads((generated / "all_classes.json").read_text())
    reference, _ = read_dataset(generated, verify_images=False)
    root = _release(generated, tmp_path, "val", "test")
    assert read_all_classes_checked(root) == (classes, [root / "val/all_classes.json", root / "test/all_classes.json"])
    records, reports = read_dataset(root, verify_images=False)
    def ids(by_split: dict) -> dict:
        return {split: [r.id for r in rs] for split, rs in by_split.items()}

    assert ids(records) == ids(reference)
    assert all(not rep.skipped for rep in reports.values())
    cats = prepare(root, tmp_path / "prepared", verify_images=False)["categories"]
    assert cats["all_classes"] == classes
    # the authors' evaluation reads test/all_classes.json only: that alone is enough too
    (root / "val/all_classes.json").unlink()
    assert read_all_classes_checked(root) == (classes, [root / "test/all_classes.json"])
    assert dataset_classes(root) == classes


def test_identical_copies_are_one_list(generated: Path, tmp_path: Path) -> None:
    root = _release(generated, tmp_path)
    classes = json.loads((root / "all_classes.json").read_text())
    (root / "test/all_classes.json").write_text(json.dumps(list(reversed(classes))))  # same names, other order
    assert read_all_classes_checked(root) == (classes, [root / "all_classes.json", root / "test/all_classes.json"])


def test_copies_that_differ_are_an_error_naming_both(generated: Path, tmp_path: Path) -> None:
    root = _release(generated, tmp_path, "val", "test")
    classes = json.loads((root / "test/all_classes.json").read_text())
    (root / "test/all_classes.json").write_text(json.dumps([*classes[1:], "zebra"]))
    with pytest.raises(DataError) as info:
        read_split(root, "val")
    message = str(info.value)
    assert f"{root / 'val/all_classes.json'} and {root / 'test/all_classes.json'} list different categories" in message
    assert f"1 only in the first, e.g. {classes[:1]}; 1 only in the second, e.g. ['zebra']" in message


def test_no_all_classes_anywhere_lists_every_place_looked_at(generated: Path, tmp_path: Path) -> None:
    root = _release(generated, tmp_path)
    (root / "all_classes.json").unlink()
    places = all_classes_places(root)
    assert places == [root / "all_classes.json", *(root / s / "all_classes.json" for s in ("train", "val", "test"))]
    with pytest.raises(DataError, match="no all_classes.json") as info:
        read_split(root, "test")
    assert all(str(p) in str(info.value) for p in places)
    assert dataset_classes(root) == []
