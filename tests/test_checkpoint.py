"""Backbone loading from a local weights file, checkpoint round trips, and the Segmenter API."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sketchseg.errors import CheckpointError, InputError
from sketchseg.model.backbone import load_backbone
from sketchseg.model.checkpoint import load_model, save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.segmenter import BACKGROUND, Segmenter

torch.set_num_threads(1)


def test_local_weights_file_loads_the_same_weights(tmp_path: Path) -> None:
    source = load_backbone(BackboneConfig(name="sketchseg-test", seed=11)).clip
    weights = tmp_path / "weights.pt"
    torch.save(source.state_dict(), weights)
    loaded = load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(weights), seed=99))
    assert "local weights file" in loaded.weights
    for (k, a), (_, b) in zip(source.state_dict().items(), loaded.clip.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(CheckpointError, match="not found"):
        load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(tmp_path / "missing.pt")))


def test_quick_gelu_is_forced_when_asked() -> None:
    plain = load_backbone(BackboneConfig(name="sketchseg-test")).clip
    quick = load_backbone(BackboneConfig(name="sketchseg-test", force_quick_gelu=True)).clip
    act = lambda m: type(m.visual.transformer.resblocks[0].mlp.gelu).__name__  # noqa: E731
    assert act(plain) == "GELU" and act(quick) == "QuickGELU"


def test_checkpoint_round_trip_gives_identical_segmentation(
    fixtures_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=4)))
    with torch.no_grad():
        model.encoder.prompts.tokens.normal_()
        model.threshold.set_tau(0.63)
    path = save_checkpoint(model, tmp_path / "m.pt", meta={"note": "test"})
    with caplog.at_level(logging.WARNING):
        again = load_model(path)
    # open_clip's "initialized randomly" warning would be false: the checkpoint's weights are loaded
    assert not [r for r in caplog.records if "randomly" in r.getMessage()]
    assert again.checkpoint_meta == {"note": "test"}
    assert abs(again.threshold.tau().item() - 0.63) < 1e-6
    assert "checkpoint" in again.weights
    sketch = fixtures_dir / "sketch_2.png"
    a = Segmenter(model).segment(sketch, categories="kite, tree, person", threshold=0.6)
    b = Segmenter(again).segment(sketch, categories="kite, tree, person", threshold=0.6)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_allclose(a.similarity, b.similarity, atol=0, rtol=0)
    with pytest.raises(CheckpointError, match="not a sketchseg checkpoint"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        load_model(tmp_path / "other.pt")


def test_segmenter_labels_strokes_only_and_parses_captions(fixtures_dir: Path) -> None:
    seg = Segmenter(SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test"))))
    gray = np.asarray(Image.open(fixtures_dir / "sketch_3.png"))
    result = seg.segment(gray, caption="A woman flying a kite over the grass")
    assert result.categories == ["woman", "kite", "grass"]
    strokes = gray < 128
    assert ((result.labels != BACKGROUND) == strokes).all()
    assert result.similarity.shape == (3, *gray.shape)
    assert result.masks is None
    with pytest.raises(InputError, match="either categories or a caption"):
        seg.segment(gray)
    with pytest.raises(InputError, match="no object nouns"):
        seg.segment(gray, caption="very very high")
    with pytest.raises(InputError, match="threshold"):
        seg.segment(gray, categories=["a"], threshold=1.5)
    calls = seg.model.text.calls
    list(seg.segment_many([gray, gray], categories=["woman", "kite", "grass"]))
    assert seg.model.text.calls == calls  # cached vocabulary: no text-tower call
