"""`sketchseg segment` on vector sketches: strokes SVG and stroke_labels written, raster output unchanged beside them,
and every malformed vector file rejected with one line on stderr and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sketchseg.cli import main
from tests.conftest import run_cli
from tests.test_vector import _write_malformed


@pytest.fixture(autouse=True)
def _no_pipeline_model(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a folder without data/train/models/optimal.pt: `segment` runs its untrained default."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))

RASTER_KEYS = ["sketch", "size", "categories", "shares", "stroke_pixels", "weights", "threshold", "recipe",
               "unlabelled", "isolated", "notes", "label_png", "files"]  # fmt: skip


def test_segment_vector_and_raster_inputs(cbsc_dir: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"strokes": [[[10, 10], [200, 90]], [[50, 300], [60, 310], [400, 400]], [[5, 5]]],
                                "width": 512, "height": 512}))
    cbsc = sorted(cbsc_dir.glob("test/*.json"))[0]
    svg = tmp_path / "drawing.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200">'
                   '<path d="M 10 10 Q 150 190 290 10"/><line x1="0" y1="100" x2="300" y2="100"/></svg>')
    png = fixtures_dir / "sketch_1.png"
    out = tmp_path / "out"
    res = run_cli("segment", str(page), str(cbsc), str(svg), str(png), "--categories", "tree, house",
                  "--threshold", "0.5", "-o", str(out))
    assert res.returncode == 0, res.stderr
    n_cbsc = json.loads(cbsc.read_text())["object_divisions"][-1]
    for stem, n, fmt in (("page", 3, "points"), (cbsc.stem, n_cbsc, "stroke3"), ("drawing", 2, "svg")):
        summary = json.loads((out / f"{stem}.json").read_text())
        assert list(summary) == RASTER_KEYS + ["stroke_labels", "vector"]
        assert len(summary["stroke_labels"]) == n == summary["vector"]["strokes"]
        assert summary["vector"]["format"] == fmt
        assert all(s["label"] in ("tree", "house") and 0 < s["confidence"] <= 1 for s in summary["stroke_labels"])
        assert f"{stem}_strokes.svg" in summary["files"]
        assert (out / f"{stem}_strokes.svg").read_text().count("data-stroke=") == n
        assert summary["size"] == [512, 512]
    raster = json.loads((out / "sketch_1.json").read_text())
    assert list(raster) == RASTER_KEYS
    assert raster["files"] == ["sketch_1_isolated_1_tree.png", "sketch_1_isolated_2_house.png",
                               "sketch_1_labels.png", "sketch_1_overlay.png"]  # fmt: skip
    assert sorted(p.name for p in out.glob("sketch_1*")) == sorted(raster["files"] + ["sketch_1.json"])


def test_malformed_vector_files_exit_2_with_one_line(tmp_path: Path, fixtures_dir: Path, capsys) -> None:
    cases = _write_malformed(tmp_path)
    good = tmp_path / "good.png"
    shutil.copy(fixtures_dir / "sketch_2.png", good)
    for path, reason in cases.items():
        out = tmp_path / f"out_{path.stem}"
        code = main(["segment", str(good), str(path), "--categories", "tree", "-o", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, path.name
        assert len(err) == 1 and err[0].startswith(f"error: {path}:") and reason in err[0], (path.name, err)
        assert not out.exists()  # validated before anything is written
    bad = next(p for p in cases if p.name == "nan.json")
    res = run_cli("segment", str(bad), "--categories", "tree", "-o", str(tmp_path / "o"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: {bad}: stroke 0: NaN or infinite coordinates"]
