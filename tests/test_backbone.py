"""The backbone's activation (QuickGELU for OpenAI weights, chosen without the user knowing), provenance in weights
lines and checkpoints, and reproducible building of the parts sketchseg adds (SPEC §2, issue: the real setting)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import open_clip
import pytest
import torch

from sketchseg.errors import ConfigError
from sketchseg.model.backbone import is_torchscript_file, load_backbone, resolve_activation
from sketchseg.model.checkpoint import load_model, save_checkpoint, weights_origin
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from tests.conftest import read_checkpoint, run_cli

torch.set_num_threads(1)


def activation_of(clip: torch.nn.Module) -> str:
    return type(clip.visual.transformer.resblocks[0].mlp.gelu).__name__


def image_features(clip: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    size = clip.visual.image_size
    size = size if isinstance(size, tuple) else (size, size)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return clip.encode_image(x)


def torchscript_weights(tmp_path: Path, name: str = "sketchseg-test", seed: int = 3) -> Path:
    """A weights file in the format of OpenAI's own releases: a TorchScript archive of the CLIP model."""
    source = load_backbone(BackboneConfig(name=name, seed=seed)).clip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated; OpenAI's files are TorchScript anyway
        scripted = torch.jit.script(source)
    path = tmp_path / "ViT-openai-format.pt"
    scripted.save(str(path))
    return path


def test_openai_torchscript_file_gets_quick_gelu_and_forced_outputs(tmp_path: Path) -> None:
    path = torchscript_weights(tmp_path)
    assert is_torchscript_file(path)
    auto = load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(path)))
    forced = load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(path), force_quick_gelu=True))
    plain = load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(path), force_quick_gelu=False))
    assert activation_of(auto.clip) == "QuickGELU" == activation_of(forced.clip)
    assert activation_of(plain.clip) == "GELU"
    torch.testing.assert_close(image_features(auto.clip), image_features(forced.clip), atol=1e-5, rtol=0)
    # the check has power: the same weights with plain GELU give other features
    assert (image_features(plain.clip) - image_features(forced.clip)).abs().max() > 1e-4
    assert "QuickGELU (auto: OpenAI TorchScript weights file)" in auto.weights


@pytest.fixture
def offline_openai_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """OpenAI's ``openai`` tag of ViT-B-16 served from a local file built here: open_clip's download is replaced by
    that file, and its URL and Hugging Face fetchers fail the test if anything still reaches for the network.
    Returns {tag, source (the model the file holds), asked (the pretrained configs open_clip asked for)}."""
    source = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    weights = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(source.state_dict(), weights)
    asked: list[dict] = []

    def local_download(cfg: dict, *args, **kwargs) -> str:
        asked.append(cfg)
        return str(weights)

    def no_network(*args, **kwargs):
        pytest.fail("a test reached for downloadable weights")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", local_download)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_url", no_network)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_hf", no_network)
    return {"tag": "openai", "source": source, "asked": asked}


def test_openai_tag_gets_quick_gelu_without_warning(offline_openai_tag: dict) -> None:
    """The ``openai`` tag of ViT-B-16, its download replaced by a local file (never the network)."""
    source, asked = offline_openai_tag["source"], offline_openai_tag["asked"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = load_backbone(BackboneConfig(name="ViT-B-16", pretrained=offline_openai_tag["tag"]))
    assert asked and asked[0].get("quick_gelu") is True
    assert not [w for w in caught if "QuickGELU" in str(w.message)]
    assert activation_of(auto.clip) == "QuickGELU"
    assert "QuickGELU" in auto.weights and "'openai'" in auto.weights
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    source.eval()
    with torch.no_grad():
        torch.testing.assert_close(auto.clip.encode_image(x), source.encode_image(x), atol=1e-5, rtol=0)


def test_activation_rules_for_names_tags_and_plain_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, offline_openai_tag: dict
) -> None:
    tag = offline_openai_tag["tag"]  # resolving reads open_clip's tables only; the fixture fails any download
    assert resolve_activation(BackboneConfig(name="ViT-B-16-quickgelu")).quick_gelu
    assert not resolve_activation(BackboneConfig(name="ViT-B-16")).quick_gelu
    assert not resolve_activation(BackboneConfig(name="ViT-B-16", pretrained="laion2b_s34b_b88k")).quick_gelu
    assert resolve_activation(BackboneConfig(name="ViT-B-16", pretrained=tag)).quick_gelu
    forced_off = BackboneConfig(name="ViT-B-16", pretrained=tag, force_quick_gelu=False)
    assert not resolve_activation(forced_off).quick_gelu
    plain = tmp_path / "weights.pt"
    torch.save(load_backbone(BackboneConfig(name="sketchseg-test")).clip.state_dict(), plain)
    assert not is_torchscript_file(plain)
    with caplog.at_level(logging.WARNING, logger="sketchseg"):
        loaded = load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(plain)))
    warned = [r.getMessage() for r in caplog.records if "unknown origin" in r.getMessage()]
    assert len(warned) == 1 and "force_quick_gelu: true" in warned[0] and "GELU" in warned[0]
    assert activation_of(loaded.clip) == "GELU"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sketchseg"):
        load_backbone(BackboneConfig(name="sketchseg-test", pretrained=str(plain), force_quick_gelu=False))
    assert not [r for r in caplog.records if "unknown origin" in r.getMessage()]


def test_force_quick_gelu_values_are_checked() -> None:
    assert BackboneConfig(force_quick_gelu="true").force_quick_gelu is True
    assert BackboneConfig(force_quick_gelu="false").force_quick_gelu is False
    with pytest.raises(ConfigError, match="choose auto"):
        BackboneConfig(force_quick_gelu="sometimes")


def test_activation_is_recorded_in_checkpoints_and_weights_lines(tmp_path: Path) -> None:
    path = torchscript_weights(tmp_path)
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", pretrained=str(path))))
    saved = save_checkpoint(model, tmp_path / "m.pt")
    payload = read_checkpoint(saved)
    assert payload["activation"] == "QuickGELU" and payload["clip_config"]["quick_gelu"] is True
    again = load_model(saved)
    assert activation_of(again.clip) == "QuickGELU"
    assert "QuickGELU" in again.weights


def test_the_same_config_builds_the_same_model_and_leaves_the_global_rng_alone() -> None:
    cfg = ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=5), seed=7)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = SketchSegModel(cfg), SketchSegModel(cfg)
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    other = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=5), seed=8))
    assert not torch.equal(other.encoder.prompts.tokens, a.encoder.prompts.tokens)
    assert not torch.equal(other.encoder.cross_q[str(a.encoder.cross_blocks[0])].weight,
                           a.encoder.cross_q[str(a.encoder.cross_blocks[0])].weight)  # fmt: skip
    assert "seed 7" in a.weights


def test_weights_line_names_its_origin_once_however_often_resaved(tmp_path: Path) -> None:
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test")))
    origin = model.origin
    path = tmp_path / "m.pt"
    for _ in range(3):
        save_checkpoint(model, path)
        model = load_model(path)
        assert model.weights.count("initialised from") == 1, model.weights
        assert model.weights.endswith(f"initialised from: {origin})")
    legacy = f"checkpoint a.pt (sha256 1…; initialised from: checkpoint a.pt (sha256 2…; initialised from: {origin}))"
    assert weights_origin(legacy) == origin


def test_segment_with_a_new_model_states_its_seed_and_is_reproducible(fixtures_dir: Path, tmp_path: Path) -> None:
    sketch = fixtures_dir / "sketch_2.png"
    outs = []
    for k in range(2):
        res = run_cli("segment", str(sketch), "--categories", "kite, tree, smoke", "--model", "sketchseg-test",
                      "--seed", "4", "-o", str(tmp_path / f"o{k}"))  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "seed 4" in res.stdout
        outs.append((tmp_path / f"o{k}" / "sketch_2.json").read_text())
    assert outs[0] == outs[1]


def test_a_reloaded_checkpoint_resaves_after_its_backbone_folder_is_gone(tmp_path: Path) -> None:
    import shutil

    from sketchseg.foundation import save_local_dir
    from sketchseg.model.checkpoint import clip_config

    backbone = BackboneConfig(name="sketchseg-test", seed=2)
    folder = tmp_path / "foundation"
    folder.mkdir()
    save_local_dir(load_backbone(backbone).clip, clip_config(backbone), folder)
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name=f"local-dir:{folder}")))
    first = load_model(save_checkpoint(model, tmp_path / "a.pt"))
    shutil.rmtree(folder)
    again = load_model(save_checkpoint(first, tmp_path / "b.pt"))
    for (key, a), (_, b) in zip(first.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), key
