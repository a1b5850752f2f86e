"""The foundation CLIP: local-dir round trips, pretrained mode, contrastive training, report, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sketchseg.config import config_from_dict
from sketchseg.errors import ConfigError, DataError
from sketchseg.foundation import build_foundation
from sketchseg.foundation.train import ContrastiveData, train_clip
from sketchseg.model.backbone import load_backbone
from sketchseg.model.config import BackboneConfig

torch.set_num_threads(1)


def cfg_for(**foundation):
    base = {"mode": "train", "backbone": {"name": "sketchseg-test", "seed": 2}, "minutes": 0, "max_steps": 3,
            "batch_size": 8, "warmup_steps": 2}  # fmt: skip
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
    direct = open_clip.create_model(f"local-dir:{out}")
    ours = load_backbone(BackboneConfig(name=f"local-dir:{out}")).clip
    for name, tensor in saved.items():
        assert torch.equal(direct.state_dict()[name], tensor), name
        assert torch.equal(ours.state_dict()[name], tensor), name
    # a fixed step budget is deterministic
    again = tmp_path / "f2"
    build_foundation(cfg_for(), data_root=tiny_data["root"], out=again, progress=False)
    second = load_file(str(again / "open_clip_model.safetensors"))
    assert all(torch.equal(saved[k], second[k]) for k in saved)


def test_pretrained_mode_round_trips_a_local_weights_file(tiny_data: dict, tmp_path: Path) -> None:
    source = load_backbone(BackboneConfig(name="sketchseg-test", seed=7)).clip
    weights = tmp_path / "w.pt"
    torch.save(source.state_dict(), weights)
    cfg = cfg_for(mode="pretrained", backbone={"name": "sketchseg-test", "pretrained": str(weights)})
    out = tmp_path / "f"
    report = build_foundation(cfg, data_root=tiny_data["root"], out=out, progress=False)
    assert "local weights file" in report["weights"] and "training" not in report
    saved = load_file(str(out / "open_clip_model.safetensors"))
    for name, tensor in source.state_dict().items():
        assert torch.equal(saved[name], tensor), name


def test_contrastive_training_lowers_the_loss() -> None:
    backbone = load_backbone(BackboneConfig(name="sketchseg-test", seed=1))
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(16, 64, 64, generator=g) > 0.9).to(torch.uint8) * 255
    captions = [
        f"a sketch of a {w}" for w in "tree house sun car dog cat bird boat fence road cow kite bus man sea sky".split()
    ]
    data = ContrastiveData(images=images, captions=captions, kind=torch.zeros(16, dtype=torch.uint8))
    cfg = cfg_for(max_steps=60, batch_size=16, lr=1e-3, warmup_steps=10, objects_fraction=0.0).foundation
    result = train_clip(backbone.clip, backbone.tokenizer, data, cfg, progress=False)
    assert result["steps"] == 60
    assert result["final_loss"] < result["first_loss"] - 0.5


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


def test_quick_gelu_survives_the_local_dir_format(tiny_data: dict, tmp_path: Path) -> None:
    cfg = cfg_for(mode="pretrained", backbone={"name": "sketchseg-test", "force_quick_gelu": True})
    out = tmp_path / "f"
    build_foundation(cfg, data_root=tiny_data["root"], out=out, progress=False)
    assert json.loads((out / "open_clip_config.json").read_text())["model_cfg"]["quick_gelu"] is True
    reloaded = load_backbone(BackboneConfig(name=f"local-dir:{out}")).clip
    assert type(reloaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
