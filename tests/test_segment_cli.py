"""`sketchseg segment` on the real FS-COCO demo sketches and on bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEMO_CATEGORIES, run_cli


def strokes_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) < 128


def test_segment_every_fixture_sketch_in_one_batched_call(fixtures_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    names = sorted(DEMO_CATEGORIES)
    # the four sketches share no vocabulary, so run each vocabulary once, all sketches of it batched
    for name in names:
        res = run_cli("segment", str(fixtures_dir / f"{name}.png"), "--categories", DEMO_CATEGORIES[name],
                      "--threshold", "0.7", "-o", str(out))
        assert res.returncode == 0, res.stderr
    batched = run_cli("segment", *(str(fixtures_dir / f"{n}.png") for n in names),
                      "--categories", "tree, person", "-o", str(tmp_path / "batch"))
    assert batched.returncode == 0, batched.stderr
    assert sorted(p.name for p in (tmp_path / "batch").glob("*.json")) == sorted(f"{n}.json" for n in names)
    for name in names:
        summary = json.loads((out / f"{name}.json").read_text())
        cats = [c.strip() for c in DEMO_CATEGORIES[name].split(",")]
        assert summary["categories"] == cats
        assert "UNTRAINED" in summary["weights"]
        assert summary["threshold"] == 0.7
        assert abs(sum(summary["shares"].values()) - 1.0) < 1e-9
        for f in summary["files"]:
            assert (out / f).is_file()
        labels = np.asarray(Image.open(out / f"{name}_labels.png"))
        strokes = strokes_of(fixtures_dir / f"{name}.png")
        assert labels.shape == strokes.shape
        assert ((labels > 0) == strokes).all()  # every stroke pixel labelled, nothing else
        assert labels.max() <= len(cats)
        shares = np.bincount(labels[strokes], minlength=len(cats) + 1)[1:] / strokes.sum()
        np.testing.assert_allclose(shares, [summary["shares"][c] for c in cats], atol=1e-12)
        for k in range(1, len(cats) + 1):
            iso = np.asarray(Image.open(out / summary["isolated"][cats[k - 1]]["file"])) < 128
            assert not (iso & ~strokes).any()  # isolated masks hold stroke pixels only
        overlay = Image.open(out / f"{name}_overlay.png")
        assert overlay.width > strokes.shape[1]  # legend beside the sketch


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
    out = tmp_path / "out"
    res = run_cli("segment", str(sketch), "--categories", cats, "-o", str(out))
    assert res.returncode == 0, res.stderr
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
