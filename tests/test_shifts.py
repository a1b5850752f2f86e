"""Finer maps from shifted copies (model.patch_shifts) and labels by strokes (model.labels: stroke)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sketchseg.data.strokes import StrokeRaster
from sketchseg.errors import ConfigError
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.shifts import average_shifted, sample_major, shift, shift_offsets, shifted_copies
from sketchseg.model.stroke_labels import NO_PIXELS, stroke_argmax, stroke_label_map


def test_offsets_and_white_paper_shifted_in() -> None:
    assert shift_offsets(16, 1) == [0] and shift_offsets(16, 2) == [0, 8] and shift_offsets(16, 4) == [0, 4, 8, 12]
    with pytest.raises(ConfigError, match="patch_shifts=3"):
        shift_offsets(16, 3)
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    moved = shift(x, 1, 2)
    assert torch.equal(moved[0, 0, 1:, 2:], x[0, 0, :3, :2]) and torch.all(moved[0, 0, 0] == 1)
    assert torch.all(moved[0, 0, :, :2] == 1)
    copies = shifted_copies(torch.stack([x[0], 1 - x[0]]), patch=4, n=2)  # 2 sketches, 4 copies each
    assert copies.shape == (8, 1, 4, 4)
    # copy-major: copy k of sketch b at k * B + b; copy 1 moves the drawing right by patch / n = 2 pixels
    assert torch.equal(copies[1], 1 - x[0]) and torch.equal(copies[2], shift(x, 0, 2)[0])
    assert torch.equal(copies[3], shift(1 - x, 0, 2)[0]) and torch.equal(copies[7], shift(1 - x, 2, 2)[0])


def test_sample_major_groups_each_sketchs_copies() -> None:
    patches = torch.arange(4 * 2 * 3).float().view(4 * 2, 3, 1)  # 4 copies x 2 sketches, K = 3, D = 1
    out = sample_major(patches, 2)
    assert out.shape == (2, 12, 1)
    assert out[1, :, 0].tolist() == [3, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23]  # sketch 1's copies in copy order


def test_average_shifted_moves_each_copy_back_and_averages_what_covers_a_cell() -> None:
    torch.manual_seed(0)
    coarse = torch.rand(1, 2, 4, 3, 3)  # [B, C, copies, rows, cols], n = 2
    out = average_shifted(coarse, 2, mode="bilinear")  # [1, 2, 6, 6]
    up = torch.nn.functional.interpolate(coarse[0].permute(1, 0, 2, 3), size=(6, 6), mode="bilinear",
                                         align_corners=False)  # [copies, C, 6, 6]  # fmt: skip
    for y in range(6):
        for x in range(6):
            # copy (dy, dx) saw the drawing moved dy cells down and dx right: the point (y, x) at (y + dy, x + dx)
            seen = [up[k, :, y + k // 2, x + k % 2] for k in range(4) if y + k // 2 < 6 and x + k % 2 < 6]
            torch.testing.assert_close(out[0, :, y, x], torch.stack(seen).mean(dim=0))
    constant = average_shifted(torch.full((1, 1, 4, 2, 2), 0.3), 2)
    torch.testing.assert_close(constant, torch.full((1, 1, 4, 4), 0.3))


def tiny_model(**changes) -> SketchSegModel:
    cfg = ModelConfig(backbone=BackboneConfig(name="sketchseg-test"), **changes)
    return SketchSegModel(cfg).eval()


def test_model_maps_on_a_finer_grid_from_its_own_passes() -> None:
    torch.manual_seed(0)
    plain, shifted = tiny_model(), tiny_model(patch_shifts=2)
    shifted.load_state_dict(plain.state_dict())
    x = (torch.rand(2, 1, *plain.image_size) > 0.9).float()
    text = plain.encode_categories(["tree", "house", "car"])
    with torch.no_grad():
        base = plain.grid_similarity(plain.encode_sketch(x, need_scene=False), text)  # [2, 3, g, g]
        fine = shifted.grid_similarity(shifted.encode_sketch(x, need_scene=False), text)  # [2, 3, 2g, 2g]
        g = base.shape[-1]
        assert fine.shape == (2, 3, 2 * g, 2 * g)
        # by hand: each copy through the plain model, combined
        patch = plain.encoder.patch_size
        maps = [plain.grid_similarity(plain.encode_sketch(shift(x, dy, dx), need_scene=False), text)
                for dy in (0, patch // 2) for dx in (0, patch // 2)]  # fmt: skip
        expected = average_shifted(torch.stack(maps, dim=2), 2, plain.cfg.upsample)
        torch.testing.assert_close(fine, expected, rtol=1e-5, atol=1e-5)
        one = shifted.encode_sketch(x, need_scene=False).sample(1)
        torch.testing.assert_close(shifted.grid_similarity(one, text), fine[1:], rtol=1e-5, atol=1e-5)
        shifted.train()  # training keeps the plain patch grid
        assert shifted.encode_sketch(x, need_scene=False).patches.shape == plain.encode_sketch(x, False).patches.shape
    with pytest.raises(ConfigError, match="patch_shifts=3"):
        tiny_model(patch_shifts=3)
    with pytest.raises(ConfigError, match="model.labels='strokes'"):
        dataclasses.replace(ModelConfig(), labels="strokes")


def test_labels_by_strokes() -> None:
    # 4x4 raster; stroke 0: pixels 0-3 (top row), stroke 1: pixels 3, 7, 11 (right column, shares pixel 3), stroke 2:
    # no pixel
    raster = StrokeRaster(4, (np.arange(4), np.array([3, 7, 11]), np.array([], dtype=np.int64)))
    sim = np.zeros((2, 16))
    sim[1, [0, 1]] = 1.0  # category 1 wins two of stroke 0's pixels by far...
    sim[0, [2, 3]] = 0.4  # ...category 0 two others by less: the mean says 1
    sim[0, [7, 11]] = 0.2  # stroke 1: category 0 (pixel 3 adds 0.4 to it)
    sim = sim.reshape(2, 4, 4)
    assert stroke_argmax(sim, raster).tolist() == [1, 0, NO_PIXELS]
    labels = stroke_label_map(sim, raster).reshape(-1)
    assert labels[[0, 1, 2]].tolist() == [1, 1, 1]  # stroke 0's label on its own pixels
    assert labels[[3, 7, 11]].tolist() == [0, 0, 0]  # the shared pixel: the last-drawn stroke's
    assert labels[5] == 0  # a pixel of no stroke: its own argmax


def test_segmenter_labels_vector_input_by_strokes_as_the_evaluation_does() -> None:
    from sketchseg.data.vector import from_points
    from sketchseg.model.segmenter import Segmenter

    torch.manual_seed(0)
    model = tiny_model(labels="stroke", patch_shifts=2)
    strokes = [[[20, 20], [200, 40], [240, 200]], [[30, 300], [300, 320]], [[100, 100], [110, 400]], [[400, 50]]]
    vector = from_points(strokes, width=512, height=512)
    seg = Segmenter(model).segment(vector, categories=["tree", "house", "car"])
    raster = seg.vector.raster
    expected = stroke_argmax(seg.similarity, raster)
    assert [s.index for s in seg.stroke_labels] == expected.tolist()
    np.testing.assert_array_equal(seg.labels.astype(np.int64), stroke_label_map(seg.similarity, raster) * seg.strokes
                                  + -1 * ~seg.strokes)  # fmt: skip
    own = seg.similarity.argmax(axis=0).reshape(-1)
    for label, pixels in zip(seg.stroke_labels, raster.pixels, strict=True):
        assert label.confidence == pytest.approx(float(np.mean(own[pixels] == label.index)))
    owner = raster.owner_map().reshape(-1)
    for i, pixels in enumerate(raster.pixels):  # the pixels a stroke owns (on top) all carry its label
        assert set(seg.labels.reshape(-1)[pixels[owner[pixels] == i]].tolist()) <= {expected[i]}
    pixelwise = Segmenter(tiny_model(patch_shifts=2)).segment(vector, categories=["tree", "house", "car"])
    np.testing.assert_allclose(pixelwise.similarity, seg.similarity)  # same maps, labelled pixel by pixel
