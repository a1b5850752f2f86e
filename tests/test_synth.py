"""Tests of the synthetic scene-sketch generator (sketchseg.data.synth) and `sketchseg data stats`."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchseg.cli import main
from sketchseg.data.strokes import rasterise, split_strokes
from sketchseg.data.synth import (
    CATEGORY_NAMES,
    DEFAULT_UNSEEN,
    generate,
    make_object,
    make_scene,
    participant_style,
)
from sketchseg.data.synth import writer as synth_writer
from sketchseg.data.synth.captions import NOUNS, make_caption
from sketchseg.data.synth.scene import PlacedObject, strokes_to_vector
from sketchseg.errors import ConfigError

TINY = dict(participants=6, per_participant=3, seed=7, objects_per_category=2, test_participants=2,
            val_per_participant=1, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=[False, True], ids=["classic", "people_variants"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny dataset, without and with the people variants (tests/test_synth_people.py)."""
    out = tmp_path_factory.mktemp("synth") / "data"
    meta = generate(out, **TINY, people_variants=request.param)
    return out, meta


def _annotated_ids(root: Path, split: str) -> list[str]:
    return sorted(p.stem for p in (root / split / "images").glob("*.png"))


# ------------------------------------------------------------------------------------------------ determinism


def test_same_arguments_same_bytes_with_one_or_two_workers(tiny: tuple[Path, dict], tmp_path: Path) -> None:
    root, meta = tiny
    again = tmp_path / "again"
    generate(again, **(TINY | {"workers": 2, "people_variants": meta.get("people_variants", False)}))
    a, b = _files(root), _files(again)
    assert sorted(a) == sorted(b)
    assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]]


def test_other_seed_gives_other_sketches() -> None:
    a, b = make_scene(1, 0, 0), make_scene(2, 0, 0)
    assert not np.array_equal(a.vector(), b.vector()) or a.caption != b.caption


def test_style_is_a_function_of_seed_and_participant() -> None:
    assert participant_style(3, 4) == participant_style(3, 4)
    assert participant_style(3, 4) != participant_style(3, 5)
    assert participant_style(3, 4) != participant_style(4, 4)


# ------------------------------------------------------------------------------------------------ layout


def test_layout_of_val_and_test(tiny: tuple[Path, dict]) -> None:
    root, meta = tiny
    all_labels: set[str] = set()
    for split in ("val", "test"):
        ids = _annotated_ids(root, split)
        assert len(ids) == meta["sizes"][split] > 0
        for sid in ids:
            caption = (root / split / "captions" / f"{sid}.txt").read_text(encoding="utf-8").strip()
            assert caption
            vector = np.load(root / split / "vector_sketches" / f"{sid}.npy")
            assert vector.ndim == 2 and vector.shape[1] == 3 and vector.dtype.kind == "f"
            assert vector[-1, 2] == 1  # the last point closes a stroke: no orphan points
            assert set(np.unique(vector[:, 2])) <= {0.0, 1.0}
            assert vector[:, :2].min() >= 0 and vector[:, :2].max() < 256
            labels = json.loads((root / split / "classes" / f"{sid}.json").read_text(encoding="utf-8"))
            strokes = split_strokes(vector)
            assert len(strokes) == len(labels) > 0
            assert all(name in CATEGORY_NAMES for name in labels)
            all_labels |= set(labels)
            with Image.open(root / split / "images" / f"{sid}.png") as im:
                assert im.mode == "L" and im.size == (512, 512)
                pixels = np.asarray(im)
            assert np.array_equal(pixels, rasterise(strokes).image())
    assert json.loads((root / "all_classes.json").read_text(encoding="utf-8")) == sorted(all_labels)


def test_layout_of_train_and_objects(tiny: tuple[Path, dict]) -> None:
    root, meta = tiny
    images = sorted((root / "train" / "sketches").glob("*/*.png"))
    texts = sorted((root / "train" / "text").glob("*/*.txt"))
    assert len(images) == len(texts) == meta["sizes"]["train"] > 0
    assert [p.relative_to(root / "train" / "sketches").with_suffix("") for p in images] == [
        p.relative_to(root / "train" / "text").with_suffix("") for p in texts
    ]
    for p in images:
        assert p.stem.startswith(p.parent.name + "_")  # id names its participant
        with Image.open(p) as im:
            assert im.mode == "L" and im.size == (512, 512)
    # ids unique over the whole dataset
    ids = [p.stem for p in images] + _annotated_ids(root, "val") + _annotated_ids(root, "test")
    assert len(ids) == len(set(ids)) == TINY["participants"] * TINY["per_participant"]
    labels = json.loads((root / "objects" / "labels.json").read_text(encoding="utf-8"))
    assert Counter(labels.values()) == {c: TINY["objects_per_category"] for c in CATEGORY_NAMES}
    for oid in labels:
        assert (root / "objects" / "images" / f"{oid}.png").is_file()
        vec = np.load(root / "objects" / "vector_sketches" / f"{oid}.npy")
        assert len(split_strokes(vec)) >= 1


def test_vector_form_of_hand_made_strokes() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])
    v = strokes_to_vector([a, b])
    expected = np.array([[1, 2, 0], [3, 4, 1], [5, 6, 0], [7, 8, 0], [9, 10, 1]], dtype=np.float32)
    assert v.dtype == np.float32 and np.array_equal(v, expected)
    assert [s.tolist() for s in split_strokes(v)] == [a.tolist(), b.tolist()]


def test_raster_of_a_sketch_is_the_benchmark_rasterisation() -> None:
    sketch = make_scene(0, 1, 2)
    assert np.array_equal(sketch.raster(), rasterise(split_strokes(sketch.vector())).image())


# ------------------------------------------------------------------------------------------------ content


@pytest.mark.parametrize("people_variants", [False, True])
def test_at_least_twenty_categories_each_drawn_with_strokes(people_variants: bool) -> None:
    assert len(CATEGORY_NAMES) >= 20
    strokes = {c: [len(make_object(0, p, c, p, people_variants).strokes) for p in range(4)] for c in CATEGORY_NAMES}
    assert all(min(n) >= 1 for n in strokes.values())
    several = [c for c, n in strokes.items() if np.mean(n) >= 3]
    assert len(several) >= 18, strokes  # most objects take several strokes (a cloud or a bird may take one)


@pytest.mark.parametrize("people_variants", [False, True])
def test_scenes_are_plausible(people_variants: bool) -> None:
    objects_per_scene = []
    for i in range(40):
        sketch = make_scene(5, i % 7, i, people_variants=people_variants)
        objs = sketch.objects
        objects_per_scene.append(len(objs))
        assert 1 <= len(sketch.categories) <= 5
        assert set(sketch.labels) == {o.category for o in objs}
        sky = [o for o in objs if o.zone == "sky"]
        ground = [o for o in objs if o.zone == "ground"]
        if sky and ground:  # sky objects are centred above where ground objects stand
            assert max(o.base for o in sky) < min(o.base for o in ground)
    assert min(objects_per_scene) >= 2 and max(objects_per_scene) <= 7
    assert len(set(objects_per_scene)) >= 3  # variety in object count


def test_unseen_categories_only_in_val_and_test(tiny: tuple[Path, dict]) -> None:
    root, meta = tiny
    assert meta["unseen_categories"] == sorted(DEFAULT_UNSEEN)
    unseen = set(meta["unseen_categories"])
    words = {w for c in unseen for sing, plur, _ in NOUNS[c] for w in (sing, plur) if w}
    for p in (root / "train" / "text").glob("*/*.txt"):
        tokens = set(re.findall(r"[a-z]+", p.read_text(encoding="utf-8").lower()))
        assert not tokens & words, (p, tokens & words)
    for cats in meta["sketch_categories"]["train"].values():
        assert not set(cats) & unseen
    for split in ("val", "test"):
        found = set()
        for p in (root / split / "classes").glob("*.json"):
            found |= set(json.loads(p.read_text(encoding="utf-8")))
        assert unseen <= found, (split, unseen - found)


@pytest.mark.parametrize("people_variants", [False, True])
def test_train_scene_with_seen_categories_never_draws_an_unseen_one(people_variants: bool) -> None:
    seen = [c for c in CATEGORY_NAMES if c not in DEFAULT_UNSEEN]
    for i in range(30):
        labels = make_scene(2, i % 5, i, allowed=seen, people_variants=people_variants).labels
        assert not set(labels) & set(DEFAULT_UNSEEN)


def test_captions_vary_naturally() -> None:
    people = [PlacedObject("person", "ground", (100, 100, 120, 200), 1.0, 200),
              PlacedObject("person", "ground", (150, 100, 170, 200), 1.0, 200)]
    tree = [PlacedObject("tree", "ground", (20, 60, 80, 220), 1.0, 220)]
    sun = [PlacedObject("sun", "sky", (10, 10, 40, 40), 1.0, 25)]
    caps = [make_caption(people + tree + sun, 120.0, np.random.default_rng(k)).lower() for k in range(200)]
    text = " ".join(caps)
    person_words = {w for sing, plur, _ in NOUNS["person"] for w in (sing, plur)}
    assert len(person_words & set(re.findall(r"[a-z]+", text))) >= 4  # synonyms of person
    assert "two " in text and "people" in text  # number words and irregular plurals
    assert "in the sky" in text
    assert any(lead in text for lead in ("a picture of", "a sketch of", "a drawing of"))
    assert sum("tree" not in c for c in caps) > 0  # sometimes a category is left unmentioned
    assert sum("tree" in c for c in caps) > 100
    assert all("an " + w not in text for w in ("man", "tree", "sun"))  # articles agree
    assert len(set(caps)) > 150


# ------------------------------------------------------------------------------------------------ split


def test_split_protocol(tiny: tuple[Path, dict]) -> None:
    root, meta = tiny
    test_ps = set(meta["test_participants"])
    assert len(test_ps) == TINY["test_participants"]
    test_ids = _annotated_ids(root, "test")
    assert {sid.rsplit("_", 1)[0] for sid in test_ids} == test_ps
    assert len(test_ids) == len(test_ps) * TINY["per_participant"]  # all their sketches
    val_ids = _annotated_ids(root, "val")
    by_p = Counter(sid.rsplit("_", 1)[0] for sid in val_ids)
    others = {p for p in meta["participant_splits"] if p not in test_ps}
    assert by_p == {p: TINY["val_per_participant"] for p in others}
    train_ps = {p.name for p in (root / "train" / "sketches").iterdir()}
    assert train_ps == others
    assert meta["participants"]["test"] == {sid: sid.rsplit("_", 1)[0] for sid in test_ids}


def test_bad_arguments_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="test-participants"):
        generate(tmp_path / "x", participants=2, per_participant=3, test_participants=2, progress=False)
    with pytest.raises(ConfigError, match="unknown unseen"):
        generate(tmp_path / "x", participants=4, per_participant=3, test_participants=1, val_per_participant=1,
                 unseen=["unicorn"], progress=False)
    with pytest.raises(ConfigError, match="no sketch is left for training"):
        generate(tmp_path / "x", participants=4, per_participant=3, test_participants=1, val_per_participant=3,
                 progress=False)
    assert not (tmp_path / "x").exists()


def test_interrupted_generation_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth_writer._run_job
    calls = {"n": 0}

    def failing(job):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("disk on fire")
        return real(job)

    monkeypatch.setattr(synth_writer, "_run_job", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(tmp_path / "out", **TINY)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary directory


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_synth_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(["data", "synth", "--out", str(out), "--participants", "4", "--per-participant", "3",
                 "--objects-per-category", "1", "--test-participants", "1", "--val-per-participant", "1",
                 "--seed", "3", "--unseen", "kite"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sizes"] == {"train": 6, "val": 3, "test": 3, "objects": len(CATEGORY_NAMES)}
    assert summary["unseen_categories"] == ["kite"]
    assert json.loads((out / "synth.json").read_text(encoding="utf-8"))["seed"] == 3
    code = main(["data", "synth", "--out", str(tmp_path / "bad"), "--participants", "3", "--test-participants", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--participants 3 must exceed --test-participants 5" in err
    assert not (tmp_path / "bad").exists()


def test_stats_command(tiny: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, meta = tiny
    sheet = tmp_path / "sheet.png"
    assert main(["data", "stats", "--root", str(root), "--out", str(sheet), "--n", "4", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    for split in ("train", "val", "test"):
        assert stats["splits"][split]["sketches"] == meta["sizes"][split]
    # categories per sketch and frequencies recomputed from the label files
    per = [len(set(json.loads(p.read_text(encoding="utf-8")))) for p in (root / "test" / "classes").glob("*.json")]
    cps = stats["splits"]["test"]["categories_per_sketch"]
    assert cps == {"mean": round(float(np.mean(per)), 3), "min": min(per), "max": max(per)}
    freq = Counter(c for p in (root / "val" / "classes").glob("*.json")
                   for c in set(json.loads(p.read_text(encoding="utf-8"))))
    assert stats["splits"]["val"]["category_frequency"] == dict(freq)
    assert stats["splits"]["train"]["source"] == "synth.json"
    assert stats["splits"]["train"]["category_frequency"] == meta["category_counts"]["train"]
    with Image.open(sheet) as im:
        assert im.size == (2 * 256, 2 * (256 + 40))
        rgb = np.asarray(im.convert("RGB")).astype(int)
    coloured = (np.abs(rgb[..., 0] - rgb[..., 1]) > 60) | (np.abs(rgb[..., 1] - rgb[..., 2]) > 60)
    assert coloured.sum() > 500  # strokes coloured by label
    assert len(stats["contact_sheet"]["ids"]) == 4
    # text output
    assert main(["data", "stats", "--root", str(root)]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"test\s+sketches\s+{meta['sizes']['test']}\b", text)
    assert "categories per sketch" in text and "unseen in train" in text


def test_stats_on_a_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", "--root", str(tmp_path / "nothing")]) == 2
    assert "error:" in capsys.readouterr().err
