"""Vector sketches: every input format read into the same strokes, rasterised exactly as the benchmark does, fitted
onto the 512x512 canvas (aspect ratio, points outside the canvas, dots), malformed input as one-line errors, and the
CBSC fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sketchseg.data.sketch import read_sketch, sketch_from_vector
from sketchseg.data.strokes import rasterise, split_strokes
from sketchseg.data.vector import (
    VectorSketch,
    from_fscoco,
    from_json,
    from_npy,
    from_points,
    from_stroke3,
    from_svg,
    read_vector,
    vector_kind,
)
from sketchseg.data.vector_raster import MARGIN, fit_region, rasterise_vector
from sketchseg.errors import InputError
from sketchseg.eval.evaluate import make_eval_sample

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'

# The stroke (10, 10) -> (12, 10) -> (12, 11) on a 512x512 canvas (scale 1): its 1-pixel segments are
# (10,10) (11,10) (12,10) (12,11); the 3x3 cross dilation of those, written out by hand as (x, y):
THREE_POINT_PIXELS = {
    (9, 10), (10, 9), (10, 10), (10, 11), (11, 9), (11, 10), (11, 11),
    (12, 9), (12, 10), (12, 11), (12, 12), (13, 10), (13, 11),
}  # fmt: skip


def pixel_set(flat: np.ndarray, size: int = 512) -> set[tuple[int, int]]:
    return {(int(i % size), int(i // size)) for i in flat}


def cross(x: int, y: int) -> set[tuple[int, int]]:
    return {(x, y), (x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# every format gives the hand-computed pixels


def three_point_inputs(tmp_path: Path) -> dict[str, VectorSketch]:
    """The same stroke in every format, each on a canvas that maps it onto the 512 raster at scale 1."""
    np.save(tmp_path / "fscoco.npy", np.array([[5, 5, 0], [6, 5, 0], [6, 5.5, 1]], dtype=np.float32))
    points = {"strokes": [[[10, 10], [12, 10], [12, 11]]], "width": 512, "height": 512}
    cbsc = {"scene_strokes": [[10, 10, 0], [2, 0, 0], [0, 1, 1]], "img_w": 512, "img_h": 512}
    svg = f'<svg {SVG_NS} width="512" height="512"><polyline points="10,10 12,10 12,11"/></svg>'
    svg_viewbox = (
        f'<svg {SVG_NS} width="512" height="512" viewBox="0 0 256 256">'
        '<g transform="translate(1, 0)"><path d="M 4 5 L 5 5 L 5 5.5"/></g></svg>'
    )
    return {
        "fscoco .npy": read_vector(tmp_path / "fscoco.npy"),
        "page .json": read_vector(write(tmp_path / "page.json", json.dumps(points))),
        "cbsc .json": read_vector(write(tmp_path / "cbsc.json", json.dumps(cbsc))),
        "stroke3 object": from_json({"stroke3": cbsc["scene_strokes"], "width": 512, "height": 512}),
        "svg": read_vector(write(tmp_path / "s.svg", svg)),
        "svg viewBox + transform": from_svg(svg_viewbox),
        "from_points": from_points([[(10, 10), (12, 10), (12, 11)]], 512, 512),
        "from_stroke3": from_stroke3([[10, 10, 0], [2, 0, 0], [0, 1, 1]], 512, 512),
    }


def test_every_format_rasterises_to_the_hand_computed_pixels(tmp_path):
    for name, vector in three_point_inputs(tmp_path).items():
        assert len(vector) == 1, name
        rasterised = rasterise_vector(vector)
        assert rasterised.fit.offset == (0, 0), name
        assert pixel_set(rasterised.raster.pixels[0]) == THREE_POINT_PIXELS, name


def test_formats_keep_points_and_canvas(tmp_path):
    inputs = three_point_inputs(tmp_path)
    assert inputs["fscoco .npy"].format == "fscoco" and inputs["fscoco .npy"].canvas == (256, 256)
    assert inputs["cbsc .json"].format == "stroke3" and inputs["cbsc .json"].canvas == (512.0, 512.0)
    np.testing.assert_array_equal(inputs["cbsc .json"].strokes[0], [[10, 10], [12, 10], [12, 11]])
    assert inputs["svg"].format == "svg" and inputs["svg"].canvas == (512.0, 512.0)
    np.testing.assert_allclose(inputs["svg viewBox + transform"].strokes[0], [[10, 10], [12, 10], [12, 11]])


def test_stroke3_splits_at_pen_up_and_keeps_an_open_last_stroke():
    rows = [[1, 1, 0], [1, 0, 1], [5, 5, 1], [0, 2, 0], [1, 0, 0]]  # dot in the middle, open last stroke
    v = from_stroke3(rows)
    assert [s.tolist() for s in v.strokes] == [[[1, 1], [2, 1]], [[7, 6]], [[7, 8], [8, 8]]]
    assert v.canvas is None


def test_fscoco_points_after_the_last_pen_up_belong_to_no_stroke():
    v = from_fscoco(np.array([[1, 1, 0], [2, 2, 1], [3, 3, 0]]), source="f.npy")
    assert [s.tolist() for s in v.strokes] == [[[1, 1], [2, 2]]]
    assert any("after the last pen-up" in n for n in v.notes)


def test_npy_absolute_or_offsets_told_apart_by_their_numbers(tmp_path):
    absolute = np.array([[100, 100, 0], [102, 101, 0], [104, 103, 1], [50, 60, 0], [51, 62, 1]], dtype=float)
    offsets = np.array([[100, 100, 0], [2, 1, 0], [2, 2, 1], [-54, -43, 0], [1, 2, 1]], dtype=float)
    assert from_npy(absolute).format == "fscoco"
    decoded = from_npy(offsets)
    assert decoded.format == "stroke3"
    # the offsets are the same drawing as the absolute rows
    assert [s.tolist() for s in decoded.strokes] == [s.tolist() for s in from_fscoco(absolute).strokes]
    np.save(tmp_path / "q.npy", offsets)
    assert read_vector(tmp_path / "q.npy").format == "stroke3"


def test_svg_curves_subpaths_shapes_and_hidden_elements():
    svg = (
        f'<svg {SVG_NS} viewBox="0 0 100 100">'
        '<path d="M 10 10 C 20 80 80 80 90 10 M 10 90 L 90 90"/>'  # two subpaths = two strokes
        '<line x1="0" y1="0" x2="100" y2="100"/><rect x="40" y="40" width="10" height="10"/>'
        '<path d="M 5 5 L 5 5"/>'  # zero length: a dot
        '<path d="M 1 1"/>'  # a bare move draws nothing
        '<line x1="0" y1="0" x2="9" y2="9" style="display:none"/><text x="1" y="1">no stroke</text>'
        '<defs><path d="M 0 0 L 50 50"/></defs></svg>'
    )
    v = from_svg(svg)
    assert len(v) == 5 and v.canvas == (100.0, 100.0)
    curve = v.strokes[0]
    assert len(curve) > 100  # sampled every raster pixel of the 512 canvas (100 units / 512)
    np.testing.assert_allclose(curve[[0, -1]], [[10, 10], [90, 10]])
    assert curve[:, 1].max() == pytest.approx(62.5, abs=0.05)  # the Bezier's lowest point: 0.75 * 80 + 0.25 * 10
    np.testing.assert_allclose(v.strokes[1], [[10, 90], [90, 90]])
    np.testing.assert_allclose(v.strokes[3][[0, -1]], [[40, 40], [40, 40]])  # closed rectangle
    np.testing.assert_allclose(v.strokes[4], [[5, 5], [5, 5]])
    assert from_svg(f'<svg {SVG_NS}><line x1="0" y1="0" x2="9" y2="9"/></svg>').canvas is None


# ---------------------------------------------------------------------------------------------------------------
# fitting onto the canvas


def test_aspect_ratio_kept_and_region_centred():
    v = from_points([[(100, 50)]], width=200, height=100)  # a dot in the middle of a 2:1 canvas
    fit, notes = fit_region(v)
    assert fit.region == (0.0, 0.0, 200.0, 100.0) and fit.scale == 512 / 200 and fit.offset == (0, 128)
    assert not notes
    assert pixel_set(rasterise_vector(v).raster.pixels[0]) == cross(256, 256)


def test_points_outside_the_declared_canvas_fit_canvas_and_points():
    v = from_points([[(-10, 0), (110, 50)]], width=100, height=100)
    rasterised = rasterise_vector(v)
    assert rasterised.fit.region == (-10.0, 0.0, 120.0, 100.0)
    assert rasterised.fit.offset == (0, (512 - round(100 * 512 / 120)) // 2)
    np.testing.assert_allclose(rasterised.fit.apply(np.array([[-10.0, 0.0]])), [[0.0, 42.0]])
    assert any("outside the declared 100x100 canvas" in n for n in rasterised.notes)
    clipped = rasterise_vector(v, clip_to_canvas=True)
    assert clipped.fit.region == (0.0, 0.0, 100.0, 100.0) and not clipped.notes


def test_no_canvas_fits_the_bounding_box_with_a_margin():
    v = from_points([[(0, 0), (100, 50)]])
    fit, _ = fit_region(v)
    pad = MARGIN * 100
    assert fit.region == pytest.approx((-pad, -pad, 100 + 2 * pad, 50 + 2 * pad))
    assert fit.scale == pytest.approx(512 / (100 + 2 * pad))
    one_dot = rasterise_vector(from_points([[(7.5, -3)]]))
    assert pixel_set(one_dot.raster.pixels[0]) == cross(256, 256)


def test_dots_and_zero_length_strokes_are_kept():
    v = from_points([[(20, 20)], [(40, 40), (40, 40)], [(60, 60), (61, 60)]], 512, 512)
    pixels = rasterise_vector(v).raster.pixels
    assert pixel_set(pixels[0]) == cross(20, 20)
    assert pixel_set(pixels[1]) == cross(40, 40)
    assert pixel_set(pixels[2]) == cross(60, 60) | cross(61, 60)


def test_sketch_from_vector_is_the_benchmark_raster():
    vector = np.array([[10, 10, 0], [200, 30, 1], [50, 50, 0], [60, 250, 0], [100, 100, 1]], dtype=float)
    sketch = sketch_from_vector(from_fscoco(vector))
    expected = rasterise(split_strokes(vector))
    np.testing.assert_array_equal(sketch.gray, expected.image())
    np.testing.assert_array_equal(sketch.strokes, expected.union_mask())
    assert all(np.array_equal(a, b) for a, b in zip(sketch.vector.raster.pixels, expected.pixels, strict=True))


def test_eval_samples_keep_the_benchmark_raster_even_outside_the_canvas():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(2, 40))
        vector = np.c_[rng.uniform(-20, 280, (n, 2)), rng.uniform(size=n) < 0.2]
        vector[-1, 2] = 1
        strokes = split_strokes(vector)
        sample = make_eval_sample("s", vector, ["a"] * len(strokes))
        expected = rasterise(strokes)
        assert all(np.array_equal(a, b) for a, b in zip(sample.raster.pixels, expected.pixels, strict=True))


# ---------------------------------------------------------------------------------------------------------------
# recognising files


def test_file_kind_by_extension_then_content(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))
    (tmp_path / "a.npy").rename(tmp_path / "a.bin")
    write(tmp_path / "b.txt", '  {"strokes": [[[1, 2]]]}')
    write(tmp_path / "c.dat", f"<svg {SVG_NS}/>")
    write(tmp_path / "d.json", "garbage")
    write(tmp_path / "e.txt", "hello")
    assert vector_kind(tmp_path / "a.bin") == "npy"
    assert vector_kind(tmp_path / "b.txt") == "json"
    assert vector_kind(tmp_path / "c.dat") == "svg"
    assert vector_kind(tmp_path / "d.json") == "json"
    assert vector_kind(tmp_path / "e.txt") is None
    assert len(read_sketch(tmp_path / "b.txt").vector.vector) == 1


# ---------------------------------------------------------------------------------------------------------------
# malformed input: one-line InputError naming the file

MALFORMED_FILES = {
    "bad.json": ('{"strokes": [', "bad JSON"),
    "number.json": ("3", "must be an object or a list"),
    "keys.json": ('{"lines": []}', "none of the keys"),
    "no_strokes.json": ('{"strokes": []}', "no strokes"),
    "empty_stroke.json": ('{"strokes": [[[1, 2]], []]}', "stroke 1 is empty"),
    "shape.json": ('{"strokes": [[[1, 2, 3]]]}', "stroke 0: points must be [x, y] pairs"),
    "ragged.json": ('{"strokes": [[[1, 2], [3]]]}', "ragged or non-numeric"),
    "text.json": ('{"strokes": [[["a", 1]]]}', "non-numeric"),
    "nan.json": ('{"strokes": [[[NaN, 1]]]}', "NaN or infinite"),
    "inf.json": ('{"strokes": [[[1e999, 1]]]}', "NaN or infinite"),
    "half_canvas.json": ('{"strokes": [[[1, 2]]], "width": 10}', "both width and height"),
    "bad_canvas.json": ('{"strokes": [[[1, 2]]], "width": -4, "height": 3}', "positive finite number"),
    "pen.json": ('{"scene_strokes": [[1, 2, 0], [1, 1, 2]]}', "pen values must be 0 or 1"),
    "rows.json": ('{"scene_strokes": [[1, 2], [1, 1]]}', "[dx, dy, pen] triples"),
    "no_rows.json": ('{"scene_strokes": []}', "no stroke-3 rows"),
    "empty_list.json": ("[]", "no strokes"),
    "latin1.json": (b"\xff\xfe[", "not UTF-8"),
    "nothing.svg": (f"<svg {SVG_NS}><text>hi</text></svg>", "without drawable elements"),
    "broken.svg": ("<svg", "not a readable SVG"),
    "html.svg": ("<html></html>", "not a readable SVG"),
}


def _write_malformed(folder: Path) -> dict[Path, str]:
    out = {}
    for name, (content, reason) in MALFORMED_FILES.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        out[path] = reason
    np.save(folder / "two_columns.npy", np.zeros((4, 2)))
    out[folder / "two_columns.npy"] = "expected an (n, 3) array"
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out[folder / "objects.npy"] = "not a readable numeric .npy"
    np.save(folder / "truncated.npy", np.zeros((100, 3)))
    (folder / "truncated.npy").write_bytes((folder / "truncated.npy").read_bytes()[:200])
    out[folder / "truncated.npy"] = ".npy"
    np.save(folder / "nan.npy", np.array([[1, 2, 0], [np.nan, 1, 1]]))
    out[folder / "nan.npy"] = "NaN or infinite"
    np.save(folder / "no_rows.npy", np.zeros((0, 3)))
    out[folder / "no_rows.npy"] = "no strokes"
    return out


@pytest.fixture
def malformed(tmp_path) -> dict[Path, str]:
    return _write_malformed(tmp_path)


def test_malformed_files_raise_one_line_input_errors(malformed):
    for path, reason in malformed.items():
        with pytest.raises(InputError) as info:
            read_sketch(path)
        message = str(info.value)
        assert message.startswith(str(path)), message
        assert reason in message, (path.name, message)
        assert "\n" not in message


def test_malformed_in_memory_data():
    with pytest.raises(InputError, match="<strokes>: no strokes"):
        from_points([])
    with pytest.raises(InputError, match="stroke 0 is not a list"):
        from_points([5])
    with pytest.raises(InputError, match="strokes must be a list"):
        from_points("1,2")
    with pytest.raises(InputError, match="canvas width 'a' is not a number"):
        from_points([[(1, 2)]], "a", 3)
    with pytest.raises(InputError, match="web: stroke-3 rows must be"):
        from_stroke3([[1, 2, 0, 4]], source="web")
    with pytest.raises(InputError, match="not a readable SVG"):
        from_svg(b"\x89PNG")
    with pytest.raises(InputError, match="f.npy: no strokes .no row has pen = 1"):
        from_fscoco(np.array([[10, 10, 0], [20, 20, 0]]), source="f.npy")


# ---------------------------------------------------------------------------------------------------------------
# CBSC: real stroke-3 scene sketches


def test_every_cbsc_sketch_converts(cbsc_dir):
    files = sorted(cbsc_dir.glob("*/*.json"))
    assert len(files) == 332
    outside = 0
    for path in files:
        data = json.loads(path.read_text())
        sketch = read_sketch(path)
        rasterised = sketch.vector
        assert rasterised.vector.format == "stroke3"
        assert len(rasterised.vector) == data["object_divisions"][-1] == len(rasterised.raster.pixels), path.name
        assert rasterised.vector.n_points == len(data["scene_strokes"])
        assert sketch.gray.shape == (512, 512) and sketch.strokes.any()
        assert all(p.size > 0 for p in rasterised.raster.pixels), path.name  # nothing cut off
        outside += any("outside the declared" in n for n in sketch.notes)
    assert outside > 0  # some real files have points outside their canvas, and they were fitted
