"""The authors' released checkpoint (shared/authors_checkpoint.md): their key layout, built here from random ViT-B-16
weights (never a committed file), loads wherever a checkpoint is accepted; their exit block equals the documented
formula; the rest of the path equals the same weights under open_clip's names; bad files give one-line errors; their
inference recipe; the conversion command's round trip."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from sketchseg.errors import CheckpointError
from sketchseg.model.authors import convert_state_dict
from sketchseg.model.backbone import Backbone
from sketchseg.model.checkpoint import load_model, save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.exit_block import AuthorsExitBlock
from sketchseg.model.network import SketchSegModel
from tests.conftest import read_checkpoint, run_cli

torch.set_num_threads(1)

CA = "visual.transformer.ca.encoder.layer2.0."


def _cross_attention_tensors(prefix: str, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One copy of their Cross_Attention module (d_model 768, d_ff 1024, text 512): 50 tensors."""
    rnd = lambda *shape, s=0.03: torch.randn(*shape, generator=gen) * s  # noqa: E731
    out = {f"{prefix}text_projection.weight": rnd(768, 512), f"{prefix}text_projection.bias": rnd(768)}
    for layer in ("layers.0.", "layer1.0.", "layer2.0."):
        p = f"{prefix}encoder.{layer}"
        for i in range(4):
            out[f"{p}self_attn.linears.{i}.weight"] = rnd(768, 768)
            out[f"{p}self_attn.linears.{i}.bias"] = rnd(768, s=0.1)
        out[f"{p}feed_forward.w_1.weight"], out[f"{p}feed_forward.w_1.bias"] = rnd(1024, 768), rnd(1024, s=0.1)
        out[f"{p}feed_forward.w_2.weight"], out[f"{p}feed_forward.w_2.bias"] = rnd(768, 1024), rnd(768, s=0.1)
        for j in range(2):
            out[f"{p}sublayer.{j}.norm.a"] = 1 + rnd(768, s=0.2)
            out[f"{p}sublayer.{j}.norm.b"] = rnd(768, s=0.2)
    return out


def their_layout(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(their state dict without ``module.``, the same backbone under open_clip's names), random ViT-B-16 weights.

    Written from the document's key table: blocks 7-12 (N = 6..11) hold ``attn.qkv`` / ``attn.proj`` instead of
    ``attn.in_proj_*`` / ``attn.out_proj.*``; plus prompts, two cross-attention copies and the spare attention."""
    torch.manual_seed(seed)
    clip = open_clip.create_model("ViT-B-16", force_quick_gelu=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # fine-tuned LayerNorms are not at their initial 1/0
        for name, p in clip.named_parameters():
            if ".ln_" in name or name.startswith("visual.ln_"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    named = clip.state_dict()
    theirs: dict[str, torch.Tensor] = {}
    for key, value in named.items():
        for n in range(6, 12):
            block = f"visual.transformer.resblocks.{n}.attn."
            if key.startswith(block):
                leaf = key[len(block) :]
                key = block + {"in_proj_weight": "qkv.weight", "in_proj_bias": "qkv.bias",
                               "out_proj.weight": "proj.weight", "out_proj.bias": "proj.bias"}[leaf]  # fmt: skip
        theirs[key] = value
    theirs["visual.prompt_embeddings"] = torch.rand(1, 3, 768, generator=gen) * 0.2 - 0.1
    theirs.update(_cross_attention_tensors("visual.transformer.ca.", gen))
    theirs.update(_cross_attention_tensors("transformer.ca.", gen))
    theirs["visual.attn.qkv.weight"], theirs["visual.attn.qkv.bias"] = torch.randn(2304, 768), torch.randn(2304)
    theirs["visual.attn.proj.weight"], theirs["visual.attn.proj.bias"] = torch.randn(768, 768), torch.randn(768)
    return theirs, named


@pytest.fixture(scope="module")
def authors(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Their checkpoint file as DataParallel saved it (every key prefixed ``module.``), and its tensors."""
    theirs, named = their_layout(seed=5)
    assert len(theirs) == 407  # the released file's tensor count
    assert abs(sum(v.numel() for v in theirs.values()) / 1e6 - 176.4) < 0.05  # and its 176.4 M parameters
    path = tmp_path_factory.mktemp("authors") / "sketch_seg_best_miou.pth"
    torch.save({f"module.{k}": v for k, v in theirs.items()}, path)
    return {"path": path, "theirs": theirs, "named": named}


@pytest.fixture(scope="module")
def converted(authors: dict) -> SketchSegModel:
    """Their file loaded once through load_model, shared by the tests that only read the model."""
    return load_model(authors["path"])


def literal_norm(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Their norm as the document states it: a * (x - mean) / (unbiased std + 1e-6) + b over the last axis."""
    n = x.shape[-1]
    mean = x.sum(-1, keepdim=True) / n
    std = (((x - mean) ** 2).sum(-1, keepdim=True) / (n - 1)).sqrt()
    return a * (x - mean) / (std + 1e-6) + b


def literal_exit_block(x: torch.Tensor, t: dict[str, torch.Tensor], prefix: str = CA) -> torch.Tensor:
    """The document's formula on one sketch's tokens x [L, W], with their tensors ``t`` (keys under ``prefix``)."""
    w = lambda name: t[prefix + name]  # noqa: E731
    values = x @ w("self_attn.linears.2.weight").T + w("self_attn.linears.2.bias")  # W2 x_j + b2, [L, W]
    c = w("self_attn.linears.3.weight") @ values.mean(0) + w("self_attn.linears.3.bias")  # [W]
    y = literal_norm(x + c, w("sublayer.0.norm.a"), w("sublayer.0.norm.b"))
    hidden = torch.relu(y @ w("feed_forward.w_1.weight").T + w("feed_forward.w_1.bias"))
    ffn = hidden @ w("feed_forward.w_2.weight").T + w("feed_forward.w_2.bias")
    return literal_norm(y + ffn, w("sublayer.1.norm.a"), w("sublayer.1.norm.b"))


def test_exit_block_is_their_text_keyed_layer_and_the_documented_formula() -> None:
    """Small widths: the module equals the formula, and the formula equals their whole layer (8-head attention
    whose keys are one projected text vector repeated per token), whatever the text."""
    torch.manual_seed(0)
    width, heads, tokens = 64, 8, 11
    block = AuthorsExitBlock(width)
    gen = torch.Generator().manual_seed(1)
    t: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 and p.shape[0] == width else 0))
        for ours, theirs in (("value", "self_attn.linears.2"), ("output", "self_attn.linears.3"),
                             ("ff_in", "feed_forward.w_1"), ("ff_out", "feed_forward.w_2")):  # fmt: skip
            t[f"{theirs}.weight"], t[f"{theirs}.bias"] = getattr(block, ours).weight, getattr(block, ours).bias
        for ours, theirs in (("norm0", "sublayer.0.norm"), ("norm1", "sublayer.1.norm")):
            t[f"{theirs}.a"], t[f"{theirs}.b"] = getattr(block, ours).a, getattr(block, ours).b
        x = torch.randn(2, tokens, width, generator=gen) * 3
        out = block(x)
        for i in range(2):
            torch.testing.assert_close(out[i], literal_exit_block(x[i], t, prefix=""), atol=2e-5, rtol=0)
        # their layer in full: queries from the tokens, keys from the text, softmax over tokens, output projection
        # projections of a trained layer's scale: with unscaled ones the logits reach ~1e3, and the last-bit differences
        # a multi-threaded matmul leaves between the identical keys make the softmax visibly non-uniform
        q_w, k_w = torch.randn(width, width) / math.sqrt(width), torch.randn(width, width) / math.sqrt(width)
        q_b, k_b = torch.randn(width), torch.randn(width)
        for text in (torch.randn(width), torch.randn(width) * 5):
            d = width // heads
            q = (x[0] @ q_w.T + q_b).view(tokens, heads, d).transpose(0, 1)  # [h, L, d]
            k = (text.expand(tokens, width) @ k_w.T + k_b).view(tokens, heads, d).transpose(0, 1)
            v = (x[0] @ t["self_attn.linears.2.weight"].T + t["self_attn.linears.2.bias"]).view(tokens, heads, d)
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1) @ v.transpose(0, 1)  # [h, L, d]
            attended = att.transpose(0, 1).reshape(tokens, width) @ t["self_attn.linears.3.weight"].T
            y = literal_norm(x[0] + attended + t["self_attn.linears.3.bias"], t["sublayer.0.norm.a"],
                             t["sublayer.0.norm.b"])  # fmt: skip
            ffn = torch.relu(y @ t["feed_forward.w_1.weight"].T + t["feed_forward.w_1.bias"])
            z = literal_norm(y + ffn @ t["feed_forward.w_2.weight"].T + t["feed_forward.w_2.bias"],
                             t["sublayer.1.norm.a"], t["sublayer.1.norm.b"])  # fmt: skip
            torch.testing.assert_close(out[0], z, atol=2e-5, rtol=0)
        # their norm is not nn.LayerNorm (unbiased std, eps on the std): the difference is visible
        ln = F.layer_norm(x[0], (width,), block.norm0.a, block.norm0.b, eps=1e-6)
        assert (block.norm0(x[0]) - ln).abs().max() > 1e-3


def test_converted_path_equals_open_clip_names_and_the_formula_after_block_12(
    authors: dict, converted: SketchSegModel
) -> None:
    theirs, named = authors["theirs"], authors["named"]
    with torch.no_grad():
        model = converted
        assert model.cfg.exit_block == "authors" and model.encoder.vv_layers == 6
        assert type(model.clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
        images = model.normalise(torch.rand(2, 1, 224, 224))

        # the same tensors under open_clip's own names, through our encoder without the exit block (SPEC §3.2)
        clip = open_clip.create_model("ViT-B-16", force_quick_gelu=True)
        clip.load_state_dict(named)
        reference = SketchSegModel(
            ModelConfig(backbone=BackboneConfig(name="ViT-B-16", force_quick_gelu=True), vv_layers=6),
            backbone=Backbone(clip=clip.eval(), tokenizer=None, weights="open_clip names"),
        ).eval()
        reference.encoder.prompts.tokens.copy_(theirs["visual.prompt_embeddings"][0])
        expected = reference.encoder(images)

        calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        hook = model.encoder.exit_block.register_forward_hook(lambda m, args, out: calls.append((args[0], out)))
        got = model.encoder(images)
        hook.remove()
        block, model.encoder.exit_block = model.encoder.exit_block, None
        without = model.encoder(images)
        model.encoder.exit_block = block

    # 1. everything but the exit block: the same numbers as the open_clip-named weights
    torch.testing.assert_close(without.patches, expected.patches, atol=1e-5, rtol=0)
    torch.testing.assert_close(without.scene, expected.scene, atol=1e-5, rtol=0)
    # 2. the exit block ran once per path (v-v first, then the original path), on all 200 tokens of each sketch,
    #    and equals the document's formula on their tensors
    assert len(calls) == 2 and all(inp.shape == (2, 200, 768) for inp, _ in calls)
    assert (calls[0][0] - calls[1][0]).abs().max() > 1e-3  # two different paths
    for inp, out in calls:
        for i in range(2):
            torch.testing.assert_close(out[i], literal_exit_block(inp[i], theirs), atol=5e-5, rtol=0)
    # 3. patches = v-v path after the block, scene token = the original path's class token after the block,
    #    both through their ln_post and proj
    post = lambda x: F.layer_norm(x, (768,), theirs["visual.ln_post.weight"], theirs["visual.ln_post.bias"])  # noqa
    vv_out, orig_out = calls[0][1], calls[1][1]
    torch.testing.assert_close(got.patches, post(vv_out[:, 1:197]) @ theirs["visual.proj"], atol=1e-5, rtol=0)
    torch.testing.assert_close(got.scene, post(orig_out[:, 0]) @ theirs["visual.proj"], atol=1e-5, rtol=0)
    assert (got.patches - without.patches).abs().max() > 1e-2  # the block matters


def test_loading_names_the_file_once_and_says_what_was_dropped(
    authors: dict, caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib

    sha = hashlib.sha256(authors["path"].read_bytes()).hexdigest()
    with caplog.at_level(logging.INFO, logger="sketchseg"):
        model = load_model(authors["path"])
    assert model.weights.count(str(authors["path"])) == 1 and model.weights.count(sha) == 1
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "315 tensors converted, 92 not on their inference path dropped" in lines[0]
    for group in ("transformer.ca.* 50", "visual.transformer.ca.* 38", "visual.attn.* 4"):
        assert group in lines[0]
    assert torch.equal(model.encoder.prompts.tokens, authors["theirs"]["visual.prompt_embeddings"][0])
    block = authors["theirs"]["visual.transformer.resblocks.9.attn.qkv.weight"]
    assert torch.equal(model.clip.visual.transformer.resblocks[9].attn.in_proj_weight, block)
    # a copy saved without DataParallel's prefix converts to the same model
    plain = convert_state_dict(authors["theirs"])
    for (k, a), (_, b) in zip(model.state_dict().items(), plain.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_their_layout_with_a_missing_misshaped_or_unknown_tensor_is_refused_in_one_line(authors: dict) -> None:
    theirs = authors["theirs"]
    cases = {
        "missing": ({k: v for k, v in theirs.items() if k != "visual.transformer.resblocks.11.attn.qkv.weight"},
                    r"lacks 1 of its tensors: visual\.transformer\.resblocks\.11\.attn\.qkv\.weight"),
        "shape": ({**theirs, "visual.prompt_embeddings": torch.zeros(1, 5, 768)},
                  r"visual\.prompt_embeddings has shape \[1, 5, 768\], the authors' ViT-B/16 layout has \[1, 3, 768\]"),
        "unknown": ({**theirs, "visual.deep_prompt_embeddings": torch.zeros(11, 3, 768)},
                    r"does not have: visual\.deep_prompt_embeddings"),
    }  # fmt: skip
    for name, (state, message) in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            convert_state_dict({f"module.{k}": v for k, v in state.items()}, source="their.pth")
        assert "\n" not in str(info.value), name


def test_truncated_foreign_and_damaged_files_are_refused_in_one_line(tmp_path: Path) -> None:
    foreign = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(2)}, foreign)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(foreign.read_bytes()[:300])
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test")))
    good = save_checkpoint(model, tmp_path / "good.pt")
    payload = read_checkpoint(good)
    del payload["state_dict"]["encoder.prompts.tokens"]
    payload["state_dict"]["encoder.extra"] = torch.zeros(1)
    torch.save(payload, tmp_path / "damaged.pt")
    torch.save({k: v for k, v in payload.items() if k != "model_config"}, tmp_path / "no_config.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {
        foreign: r"not a sketchseg checkpoint, nor the authors' released checkpoint \(a state dict of 407 tensors "
        r"with keys such as module\.visual\.prompt_embeddings\); it holds a state dict of 2 tensors \(keys such as "
        r"fc\.weight, fc\.bias\)",
        truncated: r"not a readable checkpoint, truncated or damaged \(.*\); expected a sketchseg checkpoint",
        cut: r"not a readable checkpoint, truncated or damaged",
        tmp_path / "damaged.pt": r"damaged sketchseg checkpoint, its weights do not match its stored architecture "
        r"\(missing 1 tensor\(s\): encoder\.prompts\.tokens; unexpected 1 tensor\(s\): encoder\.extra\)",
        tmp_path / "no_config.pt": r"damaged sketchseg checkpoint: missing or invalid model_config",
        tmp_path / "absent.pt": r"checkpoint not found",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load_model(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    # through the command line: exit code 2 and one line on stderr, no traceback
    sketch = tmp_path / "s.png"
    from PIL import Image

    Image.fromarray(np.where(np.eye(64, dtype=bool), 0, 255).astype(np.uint8)).save(sketch)
    for path in (foreign, truncated):
        res = run_cli("segment", str(sketch), "--categories", "a, b", "--checkpoint", str(path), "-o", str(tmp_path))
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr
        expected = "not a readable checkpoint" if path == truncated else "nor the authors' released checkpoint"
        assert expected in lines[0]


def test_convert_command_round_trip_equals_the_direct_load(
    authors: dict, converted: SketchSegModel, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sketchseg.cli import main

    out = tmp_path / "authors.pt"
    assert main(["checkpoint", "convert", str(authors["path"]), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    direct, converted = converted, load_model(out)
    assert converted.cfg.exit_block == "authors"
    assert converted.checkpoint_meta["authors_checkpoint"] == str(authors["path"])
    assert converted.weights.count(str(authors["path"])) == 1 and converted.weights.count(str(out)) == 1
    for (k, a), (_, b) in zip(direct.state_dict().items(), converted.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    x = torch.rand(1, 1, 224, 224)
    with torch.no_grad():
        a, b = direct.encode_sketch(x), converted.encode_sketch(x)
    assert torch.equal(a.patches, b.patches) and torch.equal(a.scene, b.scene)
    assert main(["checkpoint", "convert", str(out), str(out)]) == 2
    assert "the same file as the input" in capsys.readouterr().err


@pytest.mark.slow
def test_training_starts_from_a_checkpoint_with_its_architecture(tiny_data: dict, tmp_path: Path) -> None:
    import yaml

    init = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=2), exit_block="authors"))
    with torch.no_grad():
        for p in init.encoder.exit_block.parameters():
            p.add_(torch.randn(p.shape) * 0.1)
        init.encoder.prompts.tokens.normal_()
    start = save_checkpoint(init, tmp_path / "init.pt")
    params = {
        "data": {"shards": str(tiny_data["shards"])},
        "model": {"backbone": {"name": "sketchseg-tiny"}},  # replaced by the checkpoint's architecture
        "foundation": {"out": str(tmp_path / "no-foundation")},
        "train": {"out": str(tmp_path / "run"), "epochs": 1, "batch_size": 4, "lr": 0.01, "warmup_steps": 1,
                  "max_steps_per_epoch": 1, "val_max_sketches": 2, "threads": 1},
    }  # fmt: skip
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    res = run_cli("train", "--params", str(tmp_path / "p.yaml"), "--init-checkpoint", str(start), "--nproc", "1")
    assert res.returncode == 0, res.stderr
    assert "the checkpoint's architecture replaces model.exit_block: 'none' -> 'authors'" in res.stderr
    trained = read_checkpoint(tmp_path / "run" / "models" / "last.pt")
    assert trained["model_config"]["exit_block"] == "authors"
    assert trained["model_config"]["backbone"]["name"] == "sketchseg-test"
    before, after = init.state_dict(), trained["state_dict"]
    frozen = [k for k in before if "exit_block" in k or "conv1" in k or k.startswith("clip.transformer.")]
    assert len(frozen) > 20 and all(torch.equal(before[k], after[k]) for k in frozen)  # from the checkpoint
    assert (before["encoder.prompts.tokens"] - after["encoder.prompts.tokens"]).abs().max() > 1e-4  # trained
    assert str(start) in trained["weights"]


SCENE_TEMPLATES = [  # the five the document lists after open_clip's 80
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "this is the {} in the scene.",
    "this is one {} in the scene.",
]


def hand_made_sketch() -> np.ndarray:
    """A non-square 72x96 sketch: a frame, a diagonal, a small box and a dot."""
    img = np.full((72, 96), 255, np.uint8)
    img[5, 5:90] = img[66, 5:90] = 0
    img[5:67, 5] = img[5:67, 89] = 0
    for i in range(60):
        img[8 + i, 10 + i] = 0
    img[40:50, 60:62] = img[40:42, 60:80] = 0
    img[20, 70] = 0
    return img


def test_authors_recipe_is_their_templates_removal_minmax_bilinear_and_threshold() -> None:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    from sketchseg.data.sketch import sketch_from_array
    from sketchseg.model.image import to_model_input
    from sketchseg.model.recipe import authors_templates
    from sketchseg.model.segmenter import BACKGROUND, UNLABELLED, Segmenter

    templates = authors_templates()
    assert len(templates) == 85
    assert list(templates[:80]) == [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    assert list(templates[80:]) == SCENE_TEMPLATES

    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=7)))
    names = ["tree", "house", "sun"]
    gray = hand_made_sketch()
    seg = Segmenter(model, recipe="authors").segment(gray, categories=names)

    # the recipe written out by hand: open_clip's own text forward per template, L2-normalised, averaged, normalised
    def category(name: str) -> torch.Tensor:
        with torch.no_grad():
            tokens = model.text.tokenizer([t.format(name) for t in templates])
            per_template = F.normalize(model.clip.encode_text(tokens), dim=-1)  # [85, D]
        return F.normalize(per_template.mean(0), dim=-1)

    vectors = torch.stack([category(n) for n in names]) - category("")  # the empty category, not renormalised
    sketch = sketch_from_array(gray)
    x, (side, top, left) = to_model_input(sketch, model.image_size)
    with torch.no_grad():
        patches = F.normalize(model.encode_sketch(x[None], need_scene=False).patches[0], dim=-1)  # [16, D]
    raw = patches @ vectors.T  # [16, C]
    lo, hi = raw.min(0).values, raw.max(0).values
    grid = ((raw - lo) / (hi - lo)).T.reshape(len(names), 4, 4)  # min-max per category over the patches
    full = F.interpolate(grid[None], size=(side, side), mode="bilinear", align_corners=False)[0]
    maps = full[:, top : top + 72, left : left + 96]  # [C, 72, 96]
    torch.testing.assert_close(torch.from_numpy(seg.similarity), maps, atol=1e-4, rtol=0)
    bicubic = F.interpolate(grid[None], size=(side, side), mode="bicubic", align_corners=False)[0]
    assert (bicubic[:, top : top + 72, left : left + 96] - maps).abs().max() > 1e-3  # the mode is visible

    strokes = gray < 128
    kept = maps >= 0.6  # values below the threshold count as 0
    expected = np.full(gray.shape, BACKGROUND, np.int16)
    argmax = maps.argmax(0).numpy()
    expected[strokes] = np.where(kept.any(0).numpy(), argmax, UNLABELLED)[strokes]
    top2 = maps.sort(0, descending=True).values
    clear = ((top2[0] - top2[1] > 1e-4) & ((maps - 0.6).abs().min(0).values > 1e-4)).numpy()  # no near-tie
    assert clear[strokes].mean() > 0.97
    np.testing.assert_array_equal(seg.labels[clear], expected[clear])
    assert ((seg.labels == BACKGROUND) == ~strokes).all()
    unlabelled = seg.labels == UNLABELLED
    assert 0 < unlabelled.sum() < strokes.sum()  # the case exercises both outcomes
    assert seg.threshold == 0.6 and seg.recipe == "authors"
    np.testing.assert_array_equal(unlabelled, strokes & ~seg.masks.any(0))  # unlabelled = in no isolated mask
    assert abs(seg.unlabelled - unlabelled.sum() / strokes.sum()) < 1e-9
    assert abs(sum(seg.shares.values()) + seg.unlabelled - 1) < 1e-9
    # threshold 0 = their evaluation: every stroke pixel labelled, argmax of the same maps
    none_below = Segmenter(model, recipe="authors").segment(gray, categories=names, threshold=0.0)
    assert (none_below.labels[strokes] >= 0).all()
    # the default recipe is untouched: cosine maps, every stroke labelled, no masks without a threshold
    default = Segmenter(model).segment(gray, categories=names)
    assert default.recipe == "sketchseg" and default.masks is None and (default.labels[strokes] >= 0).all()


@pytest.mark.slow
def test_their_file_segments_from_python_and_the_command_line_with_either_recipe(
    authors: dict, converted: SketchSegModel, fixtures_dir: Path, tmp_path: Path
) -> None:
    import json

    from PIL import Image

    from sketchseg.model.segmenter import UNLABELLED, Segmenter

    sketch, names = fixtures_dir / "sketch_1.png", "giraffe, zebra, grass, cloud"
    theirs = Segmenter(converted, recipe="authors")
    calls = theirs.model.text.calls
    seg = theirs.segment(sketch, categories=names)
    assert theirs.model.text.calls - calls == 2  # 85 prompts per category in one pass, the empty category in another
    theirs.segment(sketch, categories=names)
    assert theirs.model.text.calls - calls == 2  # cached
    strokes = seg.strokes
    assert seg.labels.shape == strokes.shape and set(np.unique(seg.labels[strokes])) <= {UNLABELLED, 0, 1, 2, 3}
    assert seg.similarity.min() >= 0 and seg.similarity.max() <= 1  # min-max maps
    ours = Segmenter(theirs.model).segment(sketch, categories=names)  # the default recipe on the same model
    assert (ours.labels[strokes] >= 0).all() and ours.similarity.min() < 0.5

    res = run_cli("segment", str(sketch), "--categories", names, "--checkpoint", str(authors["path"]),
                  "--recipe", "authors", "-o", str(tmp_path))  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "sketch_1.json").read_text())
    assert summary["recipe"] == "authors" and summary["threshold"] == 0.6
    assert summary["weights"] == theirs.weights and str(authors["path"]) in summary["weights"]
    png = np.asarray(Image.open(tmp_path / "sketch_1_labels.png"))
    expected = np.where(seg.labels == UNLABELLED, 255, seg.labels + 1)
    assert (png == expected).mean() > 0.999
    assert abs(summary["unlabelled"] - seg.unlabelled) < 1e-3


@pytest.mark.slow
def test_evaluate_takes_their_file_as_the_evaluated_checkpoint(authors: dict, tiny_data: dict, tmp_path: Path) -> None:
    import json

    from sketchseg.cli import main

    out = tmp_path / "eval"
    code = main(["evaluate", "--checkpoint", str(authors["path"]), "--shards", str(tiny_data["shards"]),
                 "--prepared", str(tiny_data["prepared"]), "--out", str(out), "-S", "eval.max_sketches=2",
                 "-S", "eval.baselines=[]", "-S", "eval.grounding=false", "-S", "eval.overlays=0"])  # fmt: skip
    assert code == 0
    staged = read_checkpoint(out / "checkpoint" / "models" / "optimal.pt")
    assert staged["model_config"]["exit_block"] == "authors" and "calibrated_tau" in staged["meta"]
    assert str(authors["path"]) in staged["weights"]
    figures = json.loads((out / "report.json").read_text())["figures"]
    for split in ("val", "test"):
        assert set(figures[split]) >= {"optimal", "last"} and 0 <= figures[split]["optimal"]["acc_p"] <= 1
    assert figures[split]["optimal"] == figures[split]["last"]  # one checkpoint in both roles


def test_the_pyfunc_model_serves_their_file(authors: dict) -> None:
    """The MLflow pyfunc model (what registration logs) loads its checkpoint artifact through load_model."""
    import mlflow

    from sketchseg.model.segmenter import Segmenter
    from sketchseg.tracking.pyfunc import SketchsegPyfunc, decode_labels, example_sketch, input_example

    pyfunc = SketchsegPyfunc()
    pyfunc.load_context(mlflow.pyfunc.PythonModelContext(artifacts={"checkpoint": str(authors["path"])},
                                                         model_config={}))  # fmt: skip
    assert pyfunc.segmenter.model.cfg.exit_block == "authors"
    out = pyfunc.predict(None, input_example())
    direct = Segmenter(pyfunc.segmenter.model).segment(example_sketch(), categories="house, tree")
    np.testing.assert_array_equal(decode_labels(out["labels_png"][0]), direct.labels)
