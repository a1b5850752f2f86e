"""`sketchseg segment` on the real FS-COCO demo sketches and on bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchseg.cli import main
from tests.conftest import DEMO_CATEGORIES, run_cli


@pytest.fixture(autouse=True)
def _no_pipeline_model(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a folder without data/train/models/optimal.pt, so that `segment` without weights options runs the
    untrained default (where the pipeline's model exists, it runs that: test below)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def strokes_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) < 128


def test_segment_every_fixture_sketch_in_one_batched_call(fixtures_dir: Path, tmp_path: Path) -> None:
    """One call over the four demo sketches and a non-square crop (in batches of 3, so one batch mixes sizes) gives
    each sketch the labels, shares and isolated strokes that a call on that sketch alone gives."""
    gray = np.asarray(Image.open(fixtures_dir / "sketch_1.png").convert("L"))
    wide = _write(tmp_path / "wide.png", np.ascontiguousarray(gray[60:420]))  # [360, 512]
    sketches = [fixtures_dir / "sketch_1.png", fixtures_dir / "sketch_2.png", wide, fixtures_dir / "sketch_3.png",
                fixtures_dir / "threshold_example.png"]  # fmt: skip
    cats = [c.strip() for c in DEMO_CATEGORIES["sketch_1"].split(",")]
    args = ["--categories", DEMO_CATEGORIES["sketch_1"], "--threshold", "0.7"]
    out = tmp_path / "batch"
    batched = run_cli("segment", *map(str, sketches), *args, "--batch-size", "3", "-o", str(out))
    assert batched.returncode == 0, batched.stderr
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{p.stem}.json" for p in sketches)
    for sketch in sketches:
        single = tmp_path / "single" / sketch.stem
        assert main(["segment", str(sketch), *args, "-o", str(single)]) == 0
        summary = json.loads((out / f"{sketch.stem}.json").read_text())
        alone = json.loads((single / f"{sketch.stem}.json").read_text())
        assert summary["categories"] == alone["categories"] == cats
        assert "UNTRAINED" in summary["weights"]
        assert summary["threshold"] == 0.7
        assert abs(sum(summary["shares"].values()) - 1.0) < 1e-9
        for f in summary["files"]:
            assert (out / f).is_file()
        labels = np.asarray(Image.open(out / f"{sketch.stem}_labels.png"))
        strokes = strokes_of(sketch)
        assert labels.shape == strokes.shape == tuple(summary["size"]) == tuple(alone["size"])
        assert ((labels > 0) == strokes).all()  # every stroke pixel labelled, nothing else
        assert labels.max() <= len(cats)
        assert sum(share > 0 for share in summary["shares"].values()) >= 2  # not one colour: a moved map would show
        shares = np.bincount(labels[strokes], minlength=len(cats) + 1)[1:] / strokes.sum()
        np.testing.assert_allclose(shares, [summary["shares"][c] for c in cats], atol=1e-12)
        # Batched and single passes differ by ~1e-7 in similarity (matmul blocking), which can flip a pixel where
        # two categories tie: allow 1 stroke pixel in 2000 (seen: 1 of ~20000), far below any misplaced map.
        allowed = strokes.sum() // 2000
        differ = int((labels != np.asarray(Image.open(single / f"{sketch.stem}_labels.png"))).sum())
        assert differ <= allowed, (sketch.name, differ, allowed)
        for c in cats:
            assert abs(summary["shares"][c] - alone["shares"][c]) <= allowed / strokes.sum(), (sketch, c)
            iso = np.asarray(Image.open(out / summary["isolated"][c]["file"])) < 128
            assert not (iso & ~strokes).any()  # isolated masks hold stroke pixels only
            iso_alone = np.asarray(Image.open(single / alone["isolated"][c]["file"])) < 128
            assert int((iso != iso_alone).sum()) <= allowed, (sketch.name, c)
        overlay = Image.open(out / f"{sketch.stem}_overlay.png")
        assert overlay.width > strokes.shape[1]  # legend beside the sketch


def warning_pixels(image: Path) -> int:
    """Pixels of the overlay drawn in the UNTRAINED line's red."""
    from sketchseg.render.colours import WARNING_COLOUR

    return int((np.asarray(Image.open(image).convert("RGB")) == WARNING_COLOUR).all(axis=-1).sum())


def test_segment_runs_the_pipelines_model_by_default_and_marks_untrained_outputs(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    """Without weights options `segment` runs data/train/models/optimal.pt of the working folder when it exists, as
    `serve` does; otherwise the untrained tiny model, whose overlay PNG and strokes SVG say UNTRAINED (issue 22)."""
    from sketchseg.model.checkpoint import save_checkpoint
    from sketchseg.weights import DEFAULT_CHECKPOINT
    from tests.test_serve import perturbed_model

    page = tmp_path / "page.json"
    page.write_text(json.dumps({"strokes": [[[10, 10], [200, 90]], [[50, 300], [400, 400]]], "width": 512,
                                "height": 512}))  # fmt: skip
    sketches = [str(fixtures_dir / "sketch_1.png"), str(page)]
    assert main(["segment", *sketches, "--categories", "tree, house", "-o", str(tmp_path / "untrained")]) == 0
    out = tmp_path / "untrained"
    summary = json.loads((out / "sketch_1.json").read_text())
    assert summary["weights"].startswith(f"untrained sketchseg-tiny ({DEFAULT_CHECKPOINT} not found)")
    assert "UNTRAINED" in summary["weights"]
    assert warning_pixels(out / "sketch_1_overlay.png") > 20 and warning_pixels(out / "page_overlay.png") > 20
    svg = (out / "page_strokes.svg").read_text()
    assert "UNTRAINED weights: results are meaningless</text>" in svg

    save_checkpoint(perturbed_model(), DEFAULT_CHECKPOINT)  # the pipeline's model, in the working folder
    assert main(["segment", *sketches, "--categories", "tree, house", "-o", str(tmp_path / "trained")]) == 0
    out = tmp_path / "trained"
    summary = json.loads((out / "sketch_1.json").read_text())
    assert summary["weights"].startswith(f"checkpoint {DEFAULT_CHECKPOINT} (sha256 ")
    assert warning_pixels(out / "sketch_1_overlay.png") == 0 and warning_pixels(out / "page_overlay.png") == 0
    assert "UNTRAINED" not in (out / "page_strokes.svg").read_text()


def _write(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode=mode).save(path)
    return path


def _assert_rejected(res, out: Path, word: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert word in lines[0]
    assert "Traceback" not in res.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("case", ["text_as_png", "truncated", "all_white", "empty_categories"])
def test_bad_inputs_are_rejected_cleanly(case: str, fixtures_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    sketch = fixtures_dir / "sketch_1.png"
    cats = "tree, house"
    if case == "text_as_png":
        sketch = tmp_path / "notes.png"
        sketch.write_text("this is not an image\n")
        word = "not an image"
    elif case == "truncated":
        data = (fixtures_dir / "sketch_1.png").read_bytes()
        sketch = tmp_path / "cut.png"
        sketch.write_bytes(data[: len(data) // 2])
        word = "truncated"
    elif case == "all_white":
        sketch = _write(tmp_path / "white.png", np.full((64, 64), 255, np.uint8))
        word = "no strokes"
    else:
        cats = " , ,"
        word = "empty category list"
    # a good sketch first: nothing may be written for it either
    res = run_cli("segment", str(fixtures_dir / "sketch_2.png"), str(sketch), "--categories", cats, "-o", str(out))
    _assert_rejected(res, out, word)


def _segment_one(tmp_path: Path, sketch: Path, cats: str = "tree, house") -> tuple[dict, np.ndarray]:
    """`sketchseg segment` in this process (the command's code without the interpreter start-up, ~8 s of CPU; the
    subprocess runs above cover the entry point and its stderr)."""
    out = tmp_path / "out"
    assert main(["segment", str(sketch), "--categories", cats, "-o", str(out)]) == 0
    labels = np.asarray(Image.open(out / f"{sketch.stem}_labels.png"))
    return json.loads((out / f"{sketch.stem}.json").read_text()), labels


def test_rgba_transparent_background_is_composited_on_white(fixtures_dir: Path, tmp_path: Path) -> None:
    strokes = strokes_of(fixtures_dir / "sketch_2.png")
    rgba = np.zeros((*strokes.shape, 4), np.uint8)  # transparent black everywhere ...
    rgba[strokes, 3] = 255  # ... except opaque black strokes
    summary, labels = _segment_one(tmp_path, _write(tmp_path / "rgba.png", rgba, "RGBA"))
    assert ((labels > 0) == strokes).all()
    assert summary["stroke_pixels"] == strokes.sum()


def test_white_strokes_on_black_are_inverted(fixtures_dir: Path, tmp_path: Path) -> None:
    gray = np.asarray(Image.open(fixtures_dir / "sketch_3.png").convert("L"))
    summary, labels = _segment_one(tmp_path, _write(tmp_path / "neg.png", 255 - gray))
    assert ((labels > 0) == (gray < 128)).all()
    assert any("inverted" in n for n in summary["notes"])


def test_large_non_square_image(tmp_path: Path) -> None:
    gray = np.full((3000, 4000), 255, np.uint8)
    gray[1000:1010, 500:3500] = 0
    gray[200:2800, 2000:2012] = 0
    summary, labels = _segment_one(tmp_path, _write(tmp_path / "big.png", gray))
    assert labels.shape == (3000, 4000)
    assert ((labels > 0) == (gray < 128)).all()
    assert summary["size"] == [3000, 4000]


def test_duplicate_categories_are_merged(fixtures_dir: Path, tmp_path: Path) -> None:
    summary, labels = _segment_one(tmp_path, fixtures_dir / "sketch_1.png", "tree, Tree,  house , tree")
    assert summary["categories"] == ["tree", "house"]
    assert any("duplicate" in n for n in summary["notes"])
    assert labels.max() <= 2


def test_label_png_and_stroke_labels_follow_one_convention(fixtures_dir: Path, tmp_path: Path) -> None:
    """<stem>_labels.png reads back through the one label codec to the Segmenter's labels (a stroke pixel without a
    category, `--recipe authors` below its threshold, as UNLABELLED); a stroke label's index is 0-based into the JSON's
    categories, its pixels' PNG value index + 1, as in the server's answer and the pyfunc model's."""
    from sketchseg.data.vector import read_vector
    from sketchseg.model.config import BackboneConfig, ModelConfig
    from sketchseg.model.segmenter import UNLABELLED, Segmenter
    from sketchseg.render.labels import decode_labels

    def segmenter(recipe: str) -> Segmenter:  # what `segment` builds without --checkpoint or --model
        cfg = ModelConfig(backbone=BackboneConfig(name="sketchseg-tiny", seed=0), seed=0)
        return Segmenter.from_config(cfg, recipe=recipe)

    sketch, cats = fixtures_dir / "sketch_1.png", DEMO_CATEGORIES["sketch_1"]
    assert main(["segment", str(sketch), "--categories", cats, "--recipe", "authors", "-o", str(tmp_path / "a")]) == 0
    labels = decode_labels(tmp_path / "a" / "sketch_1_labels.png")
    expected = segmenter("authors").segment(sketch, categories=cats)
    assert (expected.labels == UNLABELLED).any() and (expected.labels >= 0).any()
    np.testing.assert_array_equal(labels, expected.labels)

    page = tmp_path / "page.json"
    page.write_text(json.dumps({"strokes": [[[10, 10], [200, 90]], [[50, 300], [60, 310], [400, 400]], [[5, 480]]],
                                "width": 512, "height": 512}))  # fmt: skip
    assert main(["segment", str(page), "--categories", "tree, house, sun", "-o", str(tmp_path / "v")]) == 0
    summary = json.loads((tmp_path / "v" / "page.json").read_text())
    expected = segmenter("sketchseg").segment(read_vector(page), categories="tree, house, sun")
    assert summary["stroke_labels"] == [s.to_dict() for s in expected.stroke_labels]
    for label in summary["stroke_labels"]:
        assert label["label"] == summary["categories"][label["index"]]
    np.testing.assert_array_equal(decode_labels(tmp_path / "v" / "page_labels.png"), expected.labels)
