"""The foundation CLIP: local-dir round trips, pretrained mode, contrastive training, report, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sketchseg.config import config_from_dict
from sketchseg.data.strokes import rasterise, split_strokes
from sketchseg.errors import ConfigError, DataError
from sketchseg.foundation import build_foundation
from sketchseg.foundation.data import (
    CLIPART_FILL_GRAYS,
    CLIPART_LINE_GRAY,
    ContrastiveData,
    MosaicLayout,
    fit_into,
    load_contrastive_data,
    render_clipart,
)
from sketchseg.foundation.train import StepBudget, region_features, train_clip
from sketchseg.model.backbone import load_backbone
from sketchseg.model.config import BackboneConfig
from sketchseg.model.finetune import center_patch_filters

torch.set_num_threads(1)


def cfg_for(**foundation):
    base = {"mode": "train", "backbone": {"name": "sketchseg-test", "seed": 2}, "steps": 3,
            "mosaics": 16, "batch_size": 8, "warmup_steps": 2}  # fmt: skip
    base.update(foundation)
    return config_from_dict({"foundation": base})


@pytest.mark.slow
def test_trained_foundation_reloads_identically_and_reports(tiny_data: dict, tmp_path: Path) -> None:
    import open_clip

    out = tmp_path / "f1"
    report = build_foundation(cfg_for(), data_root=tiny_data["root"], out=out, progress=False)
    assert report["training"]["steps"] == 3
    assert {"retrieval_val", "test", "test_2plus"} <= set(report["zero_shot"])
    for key in ("chance", "majority", "vv", "plain"):
        assert set(report["zero_shot"]["test"][key]) == {"acc_p", "acc_s", "miou"}
    assert json.loads((out / "foundation.json").read_text())["zero_shot"] == report["zero_shot"]
    saved = load_file(str(out / "open_clip_model.safetensors"))
    direct = open_clip.create_model(f"local-dir:{out}").state_dict()
    ours = load_backbone(BackboneConfig(name=f"local-dir:{out}")).clip.state_dict()
    init = load_backbone(cfg_for().foundation.backbone).clip.state_dict()  # where the 3 steps started
    assert set(saved) == set(direct) == set(ours) == set(init)
    for name, tensor in saved.items():
        assert torch.equal(direct[name], tensor), name
        assert torch.equal(ours[name], tensor), name
        assert not torch.equal(init[name], tensor), f"{name}: training left it at its initialisation"
        if init[name].float().norm() > 0:  # a few steps move it a little (seen: at most 9 %), not to new weights
            assert (tensor.float() - init[name].float()).norm() < 0.25 * init[name].float().norm(), name
    # a fixed step budget is deterministic
    again = tmp_path / "f2"
    build_foundation(cfg_for(), data_root=tiny_data["root"], out=again, progress=False)
    second = load_file(str(again / "open_clip_model.safetensors"))
    assert all(torch.equal(saved[k], second[k]) for k in saved)


def test_pretrained_mode_round_trips_a_local_weights_file_and_quick_gelu(tiny_data: dict, tmp_path: Path) -> None:
    """One build (the zero-shot report is its slow part): the weights file's tensors and the forced QuickGELU both
    survive the local-dir format."""
    source = load_backbone(BackboneConfig(name="sketchseg-test", seed=7)).clip
    weights = tmp_path / "w.pt"
    torch.save(source.state_dict(), weights)
    backbone = {"name": "sketchseg-test", "pretrained": str(weights), "force_quick_gelu": True}
    out = tmp_path / "f"
    report = build_foundation(cfg_for(mode="pretrained", backbone=backbone), data_root=tiny_data["root"], out=out,
                              progress=False)  # fmt: skip
    assert "local weights file" in report["weights"] and "training" not in report
    assert report["activation"] == "QuickGELU"
    saved = load_file(str(out / "open_clip_model.safetensors"))
    assert set(saved) == set(source.state_dict())
    for name, tensor in source.state_dict().items():
        assert torch.equal(saved[name], tensor), name
    assert json.loads((out / "open_clip_config.json").read_text())["model_cfg"]["quick_gelu"] is True
    reloaded = load_backbone(BackboneConfig(name=f"local-dir:{out}")).clip
    assert type(reloaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in saved.items())


def test_contrastive_training_lowers_both_losses(tiny_data: dict) -> None:
    backbone = load_backbone(BackboneConfig(name="sketchseg-test", seed=1))
    visual = backbone.clip.visual
    data = load_contrastive_data(tiny_data["root"], visual.image_size[0], visual.grid_size[0], mosaics=16, seed=0)
    cfg = cfg_for(steps=80, batch_size=12, warmup_steps=5, mosaics_per_step=4).foundation
    result = train_clip(backbone.clip, backbone.tokenizer, data, cfg, progress=False)
    assert result["steps"] == 80
    assert result["final_loss"] < result["first_loss"] - 0.5
    assert result["final_region_loss"] < result["first_region_loss"] - 0.5
    # the patch filters stay zero-mean
    weight = backbone.clip.visual.conv1.weight
    assert weight.mean(dim=(2, 3)).abs().max() < 1e-6


def run_budget(budget: StepBudget, step_seconds) -> tuple[int, float]:
    """Simulate a training loop against ``budget``; ``step_seconds(i)`` is the duration of step i."""
    step, elapsed, total = 0, 0.0, budget.total
    while step < total:
        elapsed += step_seconds(step)
        step += 1
        total = budget.update(step, elapsed)
        if step < total and budget.exhausted(elapsed):
            break
    return step, elapsed


def test_step_budget_uses_the_whole_time_budget() -> None:
    # the first 20 steps take 1 s, the others 0.25 s: 20 s + 4 steps/s over the remaining 100 s = 420 steps
    slow_start = lambda i: 1.0 if i < 20 else 0.25  # noqa: E731
    steps, elapsed = run_budget(StepBudget(max_steps=100_000, seconds=120.0), slow_start)
    assert 415 <= steps <= 421 and 118.0 <= elapsed <= 120.5
    # planning from the first 20 steps alone would have stopped at 120 steps
    # the machine slows down half-way: the plan follows and stops on time
    slowing = lambda i: 0.25 if i < 200 else 0.5  # noqa: E731
    steps, elapsed = run_budget(StepBudget(max_steps=100_000, seconds=120.0), slowing)
    assert 335 <= steps <= 341 and elapsed <= 120.5
    # max_steps still caps, and no budget means exactly max_steps
    assert run_budget(StepBudget(max_steps=50, seconds=120.0), slow_start)[0] == 50
    assert run_budget(StepBudget(max_steps=70, seconds=0.0), slow_start)[0] == 70


def test_mosaic_cells_do_not_straddle_patches() -> None:
    layout = MosaicLayout(7)
    assert layout.block == 3 and layout.cells() == [(0, 0), (0, 4), (4, 0), (4, 4)]
    index = layout.region_index()
    assert index.shape == (4, 9) and len(set(index.flatten().tolist())) == 36
    assert index[1].tolist() == [4, 5, 6, 11, 12, 13, 18, 19, 20]
    # every cell's canvas box lies inside its own patches (256 canvas px / 7 patches)
    patch = 256 / 7
    for (r, c), (x0, y0, side) in zip(layout.cells(), layout.canvas_boxes(), strict=True):
        assert c * patch <= x0 and x0 + side <= (c + 3) * patch
        assert r * patch <= y0 and y0 + side <= (r + 3) * patch
    with pytest.raises(ValueError, match="3x3"):
        MosaicLayout(2)


def test_region_features_average_each_cell() -> None:
    patches = torch.arange(2 * 49 * 3, dtype=torch.float32).view(2, 49, 3)  # [M, K, D]
    index = MosaicLayout(7).region_index()
    out = region_features(patches, index)
    assert out.shape == (8, 3)
    assert torch.equal(out[5], patches[1, index[1]].mean(dim=0))


def test_fit_into_keeps_the_object_inside_its_box() -> None:
    rng = np.random.default_rng(0)
    vector = np.array([[10, 20, 0], [110, 60, 0], [60, 220, 1]], dtype=np.float32)
    for scale in (1.0, 0.5):
        out = fit_into(vector, (100.0, 50.0, 60.0), scale, rng)
        lo, hi = out[:, :2].min(axis=0), out[:, :2].max(axis=0)
        assert np.isclose((hi - lo).max(), 60.0 * scale)
        assert (lo >= [100.0 - 1e-4, 50.0 - 1e-4]).all()
        assert (hi <= [160.0 + 1e-4, 110.0 + 1e-4]).all()
        assert np.array_equal(out[:, 2], vector[:, 2])


def test_center_patch_filters() -> None:
    clip = load_backbone(BackboneConfig(name="sketchseg-test", seed=3)).clip
    before = clip.visual.conv1.weight.detach().clone()
    center_patch_filters(clip)
    after = clip.visual.conv1.weight
    assert after.mean(dim=(2, 3)).abs().max() < 1e-6
    assert torch.allclose(after - before, -before.mean(dim=(2, 3), keepdim=True).expand_as(before))


def test_contrastive_data_is_deterministic(tiny_data: dict) -> None:
    a = load_contrastive_data(tiny_data["root"], 64, 4, mosaics=6, seed=5)
    b = load_contrastive_data(tiny_data["root"], 64, 4, mosaics=6, seed=5, workers=2)
    assert torch.equal(a.mosaic_images, b.mosaic_images) and torch.equal(a.object_images, b.object_images)
    assert a.mosaic_labels.shape == (6, 4)
    assert all(len(set(row.tolist())) == 4 for row in a.mosaic_labels)  # four different categories
    assert a.summary()["mosaics"] == 6 and a.scene_images.shape[1:] == (64, 64)
    assert isinstance(a, ContrastiveData) and a.layout == MosaicLayout(4)


def test_clipart_fills_closed_strokes_and_outlines_thickly() -> None:
    square = np.array([[40, 40, 0], [120, 40, 0], [120, 120, 0], [40, 120, 0], [41, 42, 1]], dtype=np.float32)
    hook = np.array([[150, 150, 0], [230, 150, 0], [230, 230, 1]], dtype=np.float32)  # open: ends 80 px apart
    vector = np.concatenate([square, hook])
    image = render_clipart(vector, seed=3)  # [512, 512], canvas x2
    assert image.shape == (512, 512) and image.dtype == np.uint8
    inside_square, inside_hook = image[160, 160], image[400, 400]
    assert CLIPART_FILL_GRAYS[0] <= inside_square < CLIPART_FILL_GRAYS[1]  # closed: filled
    assert inside_hook == 255  # open: not filled
    assert image[80, 160] == CLIPART_LINE_GRAY and image[80 + 3, 160] == CLIPART_LINE_GRAY  # 7 px outline
    sketch = rasterise(split_strokes(vector)).image()
    assert (image < 255).sum() > 4 * (sketch < 255).sum()  # solid shapes, not thin lines
    assert np.array_equal(image, render_clipart(vector, seed=3))
    shades = {int(render_clipart(vector, seed=s)[160, 160]) for s in range(8)}
    assert len(shades) > 1  # the fill shade comes from the seed


def test_clipart_pools_keep_the_layout_of_the_sketch_pools(tiny_data: dict) -> None:
    kw = {"mosaics": 4, "seed": 5}
    sketch = load_contrastive_data(tiny_data["root"], 64, 4, **kw)
    clipart = load_contrastive_data(tiny_data["root"], 64, 4, render="clipart", **kw)
    twice = load_contrastive_data(tiny_data["root"], 64, 4, render="clipart", workers=2, **kw)
    assert torch.equal(clipart.mosaic_labels, sketch.mosaic_labels)
    assert torch.equal(clipart.object_labels, sketch.object_labels)
    assert torch.equal(clipart.object_images, twice.object_images)
    assert torch.equal(clipart.mosaic_images, twice.mosaic_images)
    # same placements, other domain: darker (filled) images whose ink covers the sketch's ink
    assert clipart.object_images.float().mean() < sketch.object_images.float().mean() - 5
    sketch_ink, clipart_ink = sketch.object_images < 128, clipart.object_images < 250
    assert (sketch_ink & ~clipart_ink).float().mean() < 0.01 * sketch_ink.float().mean()
    with pytest.raises(ConfigError, match="render"):
        load_contrastive_data(tiny_data["root"], 64, 4, render="photo", **kw)


def test_bad_inputs(tiny_data: dict, tmp_path: Path) -> None:
    no_objects = tmp_path / "data"
    shutil.copytree(tiny_data["root"], no_objects)
    shutil.rmtree(no_objects / "objects")
    with pytest.raises(DataError, match="objects"):
        build_foundation(cfg_for(), data_root=no_objects, out=tmp_path / "f", progress=False)
    assert not (tmp_path / "f").exists()
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        build_foundation(cfg_for(backbone={"name": "ViT-Nope"}), data_root=tiny_data["root"], out=tmp_path / "g")
    with pytest.raises(ConfigError, match="foundation.mode"):
        cfg_for(mode="download")
    with pytest.raises(ConfigError, match="foundation.object_min_scale"):
        cfg_for(object_min_scale=0.0)
    with pytest.raises(ConfigError, match="foundation.mosaics_per_step"):
        cfg_for(mosaics_per_step=-1)
    with pytest.raises(ConfigError, match="foundation.render='photo': choose sketch or clipart"):
        cfg_for(render="photo")
