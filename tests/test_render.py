"""Rendering (sketchseg/render): overlays colour whole strokes for vector input and pixels for images, the label PNG
codec (values, round trip, what decodes to "no category"), the strokes SVG (attributes, colours, read back to the same
pixels), legends (shares and stroke counts that agree for vector input) and display thickening."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchseg.data.sketch import sketch_from_array, sketch_from_vector
from sketchseg.data.vector import from_points, from_svg
from sketchseg.data.vector_raster import rasterise_vector
from sketchseg.errors import InputError
from sketchseg.model import segmenter
from sketchseg.model.segmenter import Segmentation, with_stroke_labels
from sketchseg.render import (
    UNLABELLED_COLOUR,
    colour,
    decode_labels,
    encode_labels,
    hex_colour,
    label_png,
    label_values,
    legend_entries,
    overlay_image,
    pixel_colours,
    strokes_svg,
    thicken,
)
from sketchseg.render import labels as codec

SVG = "{http://www.w3.org/2000/svg}"


def result(sketch, labels: np.ndarray, categories: list[str], unlabelled: float = 0.0) -> Segmentation:
    """A Segmentation with a given pixel label map (a model double), stroke labels attached as the Segmenter does."""
    ink = labels[sketch.strokes]
    shares = {c: float(np.mean(ink == k)) for k, c in enumerate(categories)}
    seg = Segmentation(categories=categories, labels=labels.astype(np.int16), similarity=np.zeros((1, 1, 1)),
                       strokes=sketch.strokes, shares=shares, source=sketch.source, unlabelled=unlabelled)
    return with_stroke_labels(seg, sketch)


@pytest.fixture
def vector_result() -> Segmentation:
    """Three strokes on a 512 canvas: stroke 0 mostly 'tree' with a few 'house' pixels, stroke 1 all 'house',
    stroke 2 (a dot) left without a category."""
    vector = from_points([[(20, 20), (120, 20)], [(20, 200), (20, 300), (90, 300)], [(400, 400)]], 512, 512)
    sketch = sketch_from_vector(vector)
    labels = np.full((512, 512), -1, dtype=np.int64)
    pixels = sketch.vector.raster.pixels
    flat = labels.reshape(-1)
    flat[pixels[0]] = 0
    flat[pixels[0][:20]] = 1
    flat[pixels[1]] = 1
    flat[pixels[2]] = -2
    return result(sketch, labels, ["tree", "house"], unlabelled=5 / sketch.strokes.sum())


def test_vector_overlay_colours_whole_strokes(vector_result):
    seg = vector_result
    assert [(s.label, s.index) for s in seg.stroke_labels] == [("tree", 0), ("house", 1), (None, -2)]
    rgb = pixel_colours(seg)
    flat = rgb.reshape(-1, 3)
    pixels = seg.vector.raster.pixels
    assert (flat[pixels[0]] == colour(0)).all()  # the 20 'house' pixels of stroke 0 are drawn as its label: tree
    assert (flat[pixels[1]] == colour(1)).all()
    assert (flat[pixels[2]] == UNLABELLED_COLOUR).all()
    assert (rgb[~seg.strokes] == 255).all()
    img = overlay_image(seg)
    assert img.size[1] == 512 and img.size[0] > 512  # legend on the right
    np.testing.assert_array_equal(np.asarray(img)[:, :512], rgb)


def test_raster_overlay_colours_pixels():
    gray = np.full((8, 8), 255, dtype=np.uint8)
    gray[2, 1:7] = 0
    sketch = sketch_from_array(gray)
    labels = np.full((8, 8), -1)
    labels[2, 1:4], labels[2, 4:7] = 0, 1
    seg = result(sketch, labels, ["a", "b"])
    rgb = pixel_colours(seg)
    assert (rgb[2, 1:4] == colour(0)).all() and (rgb[2, 4:7] == colour(1)).all() and (rgb[0] == 255).all()
    assert [e.text for e in legend_entries(seg)] == ["a  50.0%", "b  50.0%"]


def test_legend_counts_strokes_for_vector_input(vector_result):
    texts = [e.text for e in legend_entries(vector_result)]
    assert texts[0].startswith("tree  ") and texts[0].endswith("(1 stroke)")
    assert texts[1].endswith("(1 stroke)")
    assert texts[2].startswith("unlabelled  ") and texts[2].endswith("(1 stroke)")
    assert [e.rgb for e in legend_entries(vector_result)] == [colour(0), colour(1), UNLABELLED_COLOUR]


def test_vector_legend_shares_and_stroke_counts_agree():
    """Issue 22's "tree 4.5 % (0 strokes)": for vector input a category's share is that of the strokes' pixels in
    strokes labelled with it, so a category that some pixels got but no stroke has 0 % and 0 strokes."""
    vector = from_points([[(20, 20), (120, 20)], [(20, 200), (20, 300), (90, 300)], [(400, 400)]], 512, 512)
    sketch = sketch_from_vector(vector)
    pixels = sketch.vector.raster.pixels
    labels = np.full((512, 512), -1, dtype=np.int64)
    flat = labels.reshape(-1)
    flat[pixels[0]] = 0
    flat[pixels[0][:20]] = 2  # a few 'bench' pixels inside a 'tree' stroke
    flat[pixels[1]] = 1
    flat[pixels[2]] = 1
    seg = result(sketch, labels, ["tree", "house", "bench"])
    assert seg.shares["bench"] > 0 and [s.index for s in seg.stroke_labels] == [0, 1, 1]
    n = [p.size for p in pixels]
    total = sum(n)
    assert [e.text for e in legend_entries(seg)] == [
        f"tree  {100 * n[0] / total:.1f}%  (1 stroke)",
        f"house  {100 * (n[1] + n[2]) / total:.1f}%  (2 strokes)",
        "bench  0.0%  (0 strokes)",
    ]


def test_vector_legend_when_the_model_labels_whole_strokes():
    """model.labels: stroke, every pixel of a stroke its stroke's label: with strokes apart, the legend's shares are
    the pixel shares, its counts the stroke labels', and a category without strokes has 0 %."""
    import torch

    from sketchseg.model.config import BackboneConfig, ModelConfig
    from sketchseg.model.network import SketchSegModel
    from sketchseg.model.segmenter import Segmenter

    torch.manual_seed(0)
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test"), labels="stroke")).eval()
    strokes = [[[20, 20], [200, 40]], [[30, 300], [300, 320]], [[400, 50], [420, 200]], [[100, 450]]]
    categories = ["tree", "house", "car", "sun", "bench"]  # more categories than strokes: one has none
    seg = Segmenter(model).segment(from_points(strokes, 512, 512), categories=categories)
    assert Segmenter(model).by_strokes(sketch_from_vector(from_points(strokes, 512, 512)))
    counts = [sum(s.index == k for s in seg.stroke_labels) for k in range(len(categories))]
    assert 0 in counts and sum(counts) == len(strokes)
    assert [e.text for e in legend_entries(seg)] == [
        f"{name}  {seg.shares[name] * 100:.1f}%  ({n} stroke{'s' if n != 1 else ''})"
        for name, n in zip(categories, counts, strict=True)
    ]
    for name, n in zip(categories, counts, strict=True):
        assert (n == 0) == (seg.shares[name] == 0)


def test_vector_legend_counts_a_stroke_drawn_over_by_another():
    """Labels by strokes (model.labels: stroke) where a later stroke covers an earlier one of another category: the
    covered stroke's pixels carry the later label, yet its category has 1 stroke and that stroke's share."""
    from sketchseg.model.stroke_labels import StrokeLabel

    vector = from_points([[(100, 100)], [(50, 100), (150, 100)]], 512, 512)  # a dot, then a line over it
    sketch = sketch_from_vector(vector)
    raster = sketch.vector.raster
    dot, line = (p.size for p in raster.pixels)
    assert set(raster.pixels[0]) <= set(raster.pixels[1])
    labels = raster.label_map([0, 1], background=-1)  # as the Segmenter labels by strokes: the last-drawn on top
    seg = result(sketch, labels, ["bird", "branch"])
    seg.stroke_labels = [StrokeLabel("bird", 0, 1.0, dot), StrokeLabel("branch", 1, 1.0, line)]
    assert seg.shares["bird"] == 0
    assert [e.text for e in legend_entries(seg)] == [
        f"bird  {100 * dot / (dot + line):.1f}%  (1 stroke)",
        f"branch  {100 * line / (dot + line):.1f}%  (1 stroke)",
    ]


def test_label_png_values():
    labels = np.array([[-1, 0, 1], [2, -2, 253]])
    np.testing.assert_array_equal(label_values(labels), [[0, 1, 2], [3, 255, 254]])
    seg = Segmentation(categories=["a"], labels=labels.astype(np.int16), similarity=np.zeros((1, 1, 1)),
                       strokes=labels >= 0)
    img = label_png(seg)
    assert img.mode == "P"
    np.testing.assert_array_equal(np.asarray(img), label_values(labels))
    assert img.getpalette()[3:6] == list(colour(0)) and img.getpalette()[765:768] == [0, 0, 0]


def test_label_png_round_trip_is_exact_and_keeps_no_category_apart() -> None:
    """One codec for every label PNG: background decodes as BACKGROUND, a stroke pixel without a category (255) as
    UNLABELLED (the pyfunc model's decoder made it category 254), every category index as itself."""
    assert (codec.BACKGROUND, codec.UNLABELLED) == (segmenter.BACKGROUND, segmenter.UNLABELLED) == (-1, -2)
    labels = np.array([[-1, 0, 1, 2], [-2, 31, 253, -1]], dtype=np.int16)
    text = encode_labels(labels)
    values = np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))
    np.testing.assert_array_equal(values, [[0, 1, 2, 3], [255, 32, 254, 0]])
    decoded = decode_labels(text)
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, labels)
    assert decoded[1, 0] == segmenter.UNLABELLED and decoded[0, 0] == segmenter.BACKGROUND
    np.testing.assert_array_equal(decode_labels("data:image/png;base64," + text), labels)
    np.testing.assert_array_equal(decode_labels(base64.b64decode(text)), labels)  # the file's bytes
    rng = np.random.default_rng(0)
    big = rng.integers(-2, 254, size=(64, 48)).astype(np.int16)
    np.testing.assert_array_equal(decode_labels(encode_labels(big)), big)


def test_label_png_file_reads_back_to_the_result(vector_result, tmp_path: Path) -> None:
    """The segment command's <stem>_labels.png (label_png(seg).save) reads back to seg.labels."""
    path = tmp_path / "x_labels.png"
    label_png(vector_result).save(path)
    np.testing.assert_array_equal(decode_labels(path), vector_result.labels)
    assert (decode_labels(path) == segmenter.UNLABELLED).sum() == (vector_result.labels == -2).sum() > 0


def test_label_png_refuses_what_it_cannot_hold() -> None:
    with pytest.raises(InputError, match="at most 254 categories"):
        encode_labels(np.array([[254]], dtype=np.int16))
    with pytest.raises(InputError, match="at most 254 categories"):
        encode_labels(np.array([[-3]], dtype=np.int16))
    seg = Segmentation(categories=[f"c{k}" for k in range(255)], labels=np.zeros((2, 2), dtype=np.int16),
                       similarity=np.zeros((1, 1, 1)), strokes=np.ones((2, 2), dtype=bool))  # fmt: skip
    with pytest.raises(InputError, match="255 categories: the 8-bit label PNG holds at most 254"):
        label_png(seg)
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="PNG")
    with pytest.raises(InputError, match="mode RGB, not a label PNG"):
        decode_labels(buf.getvalue())
    with pytest.raises(InputError, match="not valid base64"):
        decode_labels("not base64!")
    with pytest.raises(InputError, match="not a readable PNG"):
        decode_labels(b"GIF89a....")


def test_strokes_svg_colours_and_attributes(vector_result):
    text = strokes_svg(vector_result)
    root = ET.fromstring(text.encode())
    assert root.get("viewBox") == "0 0 512 512" and root.get("width") == "512"
    shapes = [e for e in root.iter() if e.tag in (SVG + "polyline", SVG + "circle")]
    assert [e.tag for e in shapes] == [SVG + "polyline", SVG + "polyline", SVG + "circle"]
    assert [e.get("data-stroke") for e in shapes] == ["0", "1", "2"]
    assert [e.get("data-label") for e in shapes] == ["tree", "house", ""]
    assert shapes[0].get("stroke") == hex_colour(colour(0)) and shapes[1].get("stroke") == hex_colour(colour(1))
    assert shapes[2].get("fill") == "#000000" and shapes[2].get("cx") == "400"
    assert shapes[1].get("points") == "20,200 20,300 90,300"
    assert float(shapes[0].get("data-confidence")) == pytest.approx(vector_result.stroke_labels[0].confidence, 1e-4)


def test_strokes_svg_reads_back_to_the_same_pixels():
    """A 2:1 canvas with points outside it: the SVG (viewBox = the fitted region) read back and rasterised gives the
    same stroke pixels."""
    vector = from_points([[(-30, 10), (150, 80), (190, 20)], [(10, 90), (205.5, 95.25)]], 200, 100)
    sketch = sketch_from_vector(vector)
    labels = np.where(sketch.strokes, 0, -1)
    seg = result(sketch, labels, ["x"])
    back = from_svg(strokes_svg(seg))
    assert len(back) == 2
    again = rasterise_vector(back)
    for a, b in zip(again.raster.pixels, sketch.vector.raster.pixels, strict=True):
        np.testing.assert_array_equal(a, b)


def test_strokes_svg_refuses_raster_results():
    gray = np.full((4, 4), 255, dtype=np.uint8)
    gray[1, 1] = 0
    seg = result(sketch_from_array(gray, source="a.png"), np.where(gray == 0, 0, -1), ["a"])
    with pytest.raises(InputError, match="a.png: no strokes to draw as SVG"):
        strokes_svg(seg)


def test_thicken_grows_by_4_neighbour_steps():
    rgb = np.ones((5, 5, 3))
    mask = np.zeros((5, 5), dtype=bool)
    rgb[2, 2], mask[2, 2] = (1.0, 0.0, 0.0), True
    grown = thicken(rgb, mask, 1)
    red = (grown == (1.0, 0.0, 0.0)).all(axis=2)
    np.testing.assert_array_equal(np.argwhere(red), [[1, 2], [2, 1], [2, 2], [2, 3], [3, 2]])
    assert (thicken(rgb, mask, 2) == (1.0, 0.0, 0.0)).all(axis=2).sum() == 13

