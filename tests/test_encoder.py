"""The encoder of SPEC §2-§3 against open_clip and against literal re-implementations of the paper's equations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sketchseg.errors import ConfigError
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel

torch.set_num_threads(1)


def make_model(name: str = "sketchseg-test", **kw) -> SketchSegModel:
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name=name, seed=1), **kw))
    # random LayerNorm affine parameters, so that "LN_post" and "LN1" really matter in the comparisons
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in model.clip.visual.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


def images(model: SketchSegModel, n: int = 2, seed: int = 0) -> torch.Tensor:
    s = model.image_size
    return torch.rand(n, 3, s[0], s[1], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["sketchseg-test", "sketchseg-tiny"])  # class-token pool and average pool
def test_plain_path_equals_open_clip(name: str) -> None:
    model = make_model(name, num_prompts=0, vv_layers=0)
    x = images(model)
    visual = model.clip.visual
    with torch.no_grad():
        ours = model.encoder(x)
        visual.output_tokens = True
        pooled, tokens = visual(x)
        visual.output_tokens = False
    torch.testing.assert_close(ours.scene, pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.patches, tokens @ visual.proj, atol=1e-5, rtol=0)


def literal_embed(model: SketchSegModel, x: torch.Tensor) -> torch.Tensor:
    """SPEC §3.1 written out: ln_pre(cat([cls + pos_0, patches + pos_1..K, prompts])) -> [B, 1 + K + S, W]; the
    patch embedding is the stride-p convolution as a matrix product of pixel blocks, the prompts get no position."""
    visual = model.clip.visual
    w = visual.conv1.weight  # [W, 3, p, p], no bias in CLIP
    p, b = w.shape[-1], x.shape[0]
    blocks = x.unfold(2, p, p).unfold(3, p, p)  # [B, 3, gh, gw, p, p]
    blocks = blocks.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, 3 * p * p)  # [B, K, 3p²], row-major over the grid
    patches = blocks @ w.reshape(w.shape[0], -1).T  # [B, K, W]
    pos = visual.positional_embedding  # [1 + K, W]
    cls = (visual.class_embedding + pos[0]).expand(b, 1, -1)  # [B, 1, W]
    parts = [cls, patches + pos[1:]]
    if model.encoder.prompts is not None:
        parts.append(model.encoder.prompts.tokens.expand(b, -1, -1))  # [B, S, W]
    return visual.ln_pre(torch.cat(parts, dim=1))


def literal_dual_path(model: SketchSegModel, x: torch.Tensor, vv_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SPEC §3.2 written out: per head, values only, scale d_head^-0.5, shared out-projection, no LN2/FFN."""
    enc, visual = model.encoder, model.clip.visual
    tokens = literal_embed(model, x)
    blocks = list(visual.transformer.resblocks)
    width, heads = enc.width, enc.heads
    dh = width // heads
    x_o, x_s = tokens, None
    for i, block in enumerate(blocks):
        if i >= len(blocks) - vv_layers:
            if x_s is None:
                x_s = x_o
            h = block.ln_1(x_o)
            w_v = block.attn.in_proj_weight[2 * width :]
            b_v = block.attn.in_proj_bias[2 * width :]
            v = h @ w_v.T + b_v  # [B, N, W]
            outs = []
            for head in range(heads):
                vh = v[..., head * dh : (head + 1) * dh]
                att = torch.softmax(vh @ vh.transpose(1, 2) * dh**-0.5, dim=-1)
                outs.append(att @ vh)
            a = torch.cat(outs, dim=-1)
            x_s = x_s + a @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
        x_o = block(x_o)  # the unchanged CLIP block
    k = enc.num_patches
    patches = visual.ln_post(x_s[:, 1 : 1 + k]) @ visual.proj
    scene = visual.ln_post(x_o[:, 1 : 1 + k]).mean(1) if visual.pool_type == "avg" else visual.ln_post(x_o[:, 0])
    return patches, scene @ visual.proj


@pytest.mark.parametrize("vv_layers", [1, 3])
def test_vv_path_equals_literal_computation(vv_layers: int) -> None:
    model = make_model(num_prompts=3, vv_layers=vv_layers)
    x = images(model)
    with torch.no_grad():
        ours = model.encoder(x)
        patches, scene = literal_dual_path(model, x, vv_layers)
    torch.testing.assert_close(ours.patches, patches, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.scene, scene, atol=1e-5, rtol=0)
    # and the v-v path really differs from the plain path
    plain = make_model(num_prompts=3, vv_layers=0)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (plain.encoder(x).patches - ours.patches).abs().max() > 1e-3


def test_prompts_enter_after_positional_embedding_and_change_output() -> None:
    model = make_model(num_prompts=3)
    x = images(model)
    with torch.no_grad():
        tokens = model.encoder.embed(x)
        assert tokens.shape == (2, 1 + model.encoder.num_patches + 3, model.encoder.width)
        torch.testing.assert_close(tokens, literal_embed(model, x), atol=1e-5, rtol=0)
        before = model.encoder(x).patches.clone()
        model.encoder.prompts.tokens.add_(torch.randn(model.encoder.prompts.tokens.shape))
        after = model.encoder(x).patches
    assert (before - after).abs().max() > 1e-4
    bound = math.sqrt(6.0 / (3 * 16 * 16 + model.encoder.width))
    fresh = make_model(num_prompts=3)
    assert fresh.encoder.prompts.tokens.abs().max() <= bound


def test_category_token_depends_on_its_own_text_only() -> None:
    model = make_model()
    enc = model.encoder
    assert enc.cross_blocks == (2, 3, 4)  # the paper's 7, 10, 12 scaled to 4 blocks
    x = images(model, n=2)
    text = model.encode_categories(["giraffe", "zebra"])  # [2, D]
    other = model.encode_categories(["giraffe", "cloud"])
    changed_self = model.encode_categories(["house", "zebra"])
    with torch.no_grad():
        base = enc.category_tokens(x, text)
        other_sample = enc.category_tokens(x, other)  # only sample 1's text changes
        own = enc.category_tokens(x, changed_self)  # only sample 0's text changes
    for block in enc.cross_blocks:
        assert base[block].shape == (2, model.clip.visual.output_dim)
        torch.testing.assert_close(other_sample[block][0], base[block][0], atol=0, rtol=0)
        assert (own[block][0] - base[block][0]).abs().max() > 1e-4
        torch.testing.assert_close(own[block][1], base[block][1], atol=0, rtol=0)


def test_category_tokens_without_cross_attention_ignore_text() -> None:
    model = make_model(cross_attention=False)
    x = images(model, n=1)
    with torch.no_grad():
        a = model.encoder.category_tokens(x, model.encode_categories(["tree"]))
        b = model.encoder.category_tokens(x, model.encode_categories(["boat"]))
    for block in a:
        torch.testing.assert_close(a[block], b[block], atol=0, rtol=0)


def test_one_pass_returns_every_exit_block() -> None:
    model = make_model()
    calls = []
    hooks = [b.mlp.register_forward_hook(lambda *a: calls.append(1)) for b in model.clip.visual.transformer.resblocks]
    x = images(model, n=3)
    with torch.no_grad():
        out = model.encoder.category_tokens(x, model.encode_categories(["a", "b", "c"]))
    for h in hooks:
        h.remove()
    assert sorted(out) == [2, 3, 4]
    assert len(calls) == 4  # every block's FFN ran exactly once: one pass through the encoder


def test_threshold_and_maps_receive_gradient_through_masked_sketch() -> None:
    model = make_model()
    model.train()
    s = model.image_size
    intensity = torch.ones(2, 1, *s)
    intensity[:, :, 10:50, 20:24] = 0.0  # two vertical strokes
    intensity[:, :, 30:33, 5:60] = 0.0
    feats = model.encode_sketch(intensity)
    text = model.encode_categories(["tree", "house"])  # [C, D]
    maps = model.category_maps(feats, text)  # [B, C, S, S]
    maps.retain_grad()
    masked, weights = model.masked_sketches(intensity, maps)
    assert set(torch.unique(weights.detach()).tolist()) <= {0.0, 1.0}  # hard mask in the forward pass
    b, c = maps.shape[:2]
    vct = model.category_tokens(masked.reshape(b * c, 1, *s), text.repeat(b, 1))
    loss = sum(F.cosine_similarity(v, text.repeat(b, 1)).sum() for v in vct.values())
    loss.backward()
    assert model.threshold.theta.grad is not None and model.threshold.theta.grad.abs() > 0
    assert maps.grad is not None and maps.grad.abs().sum() > 0
    assert model.encoder.prompts.tokens.grad.abs().sum() > 0


def test_threshold_parametrisation() -> None:
    model = make_model(threshold_init=0.71)
    assert abs(model.threshold.tau().item() - 0.71) < 1e-6
    model.threshold.set_tau(0.55)
    assert abs(model.threshold.tau().item() - 0.55) < 1e-6
    with torch.no_grad():
        model.threshold.theta.fill_(50.0)
    assert model.threshold.tau().item() <= 0.9 + 1e-6


# Trainable-parameter counts of sketchseg-test (width 48, 4 blocks, mlp 192, patch 16, 64 px, embed 32, text 32):
LN = (2 + 2 * 4) * 2 * 48  # ln_pre, ln_post and two per block, weight + bias = 960
PROMPTS = 3 * 48  # 144
CROSS = 3 * (32 * 48 + 48)  # three projections 32 -> 48 = 4752
THETA = 1
BLOCK = 2 * 96 + (3 * 48 * 48 + 3 * 48) + (48 * 48 + 48) + (48 * 192 + 192) + (192 * 48 + 48)  # 28272
VISUAL = 48 * 3 * 16 * 16 + 48 + (16 + 1) * 48 + 96 + 4 * BLOCK + 96 + 48 * 32  # 152544


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("ln+vpt", LN + PROMPTS + CROSS + THETA),
        ("vpt", PROMPTS + CROSS + THETA),
        ("ln", LN + CROSS + THETA),
        ("full", VISUAL + PROMPTS + CROSS + THETA),
    ],
)
def test_finetune_modes_select_exact_parameters(mode: str, expected: int) -> None:
    model = make_model(finetune=mode)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in trainable.values()) == expected
    assert not any(n.startswith("clip.transformer") or "token_embedding" in n for n in trainable)  # text frozen


def test_config_errors_are_actionable() -> None:
    with pytest.raises(ConfigError, match="finetune"):
        ModelConfig(finetune="everything")
    with pytest.raises(ConfigError, match=r"\[1, 4\]"):
        make_model(cross_attention_blocks=(7, 10, 12))
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        SketchSegModel(ModelConfig(backbone=BackboneConfig(name="ViT-Nope")))


def test_category_tokens_equal_literal_cross_attention() -> None:
    """SPEC §3.5 written out per head: in exit blocks the class token's query is Linear(CCT); keys and values are the
    block's tokens; the class token after each exit block goes through LN_post and proj."""
    model = make_model(num_prompts=2)
    enc, visual = model.encoder, model.clip.visual
    x_img = images(model, n=3, seed=4)
    text = model.encode_categories(["tree", "house", "sun"])
    width, heads = enc.width, enc.heads
    dh = width // heads
    with torch.no_grad():
        ours = enc.category_tokens(x_img, text)
        x = literal_embed(model, x_img)
        expected = {}
        for i, block in enumerate(visual.transformer.resblocks):
            number = i + 1
            if number in enc.cross_blocks:
                h = block.ln_1(x)
                w, b = block.attn.in_proj_weight, block.attn.in_proj_bias
                q = h @ w[:width].T + b[:width]
                k = h @ w[width : 2 * width].T + b[width : 2 * width]
                v = h @ w[2 * width :].T + b[2 * width :]
                q = q.clone()
                q[:, 0] = enc.cross_q[str(number)](text)
                heads_out = []
                for hd in range(heads):
                    sl = slice(hd * dh, (hd + 1) * dh)
                    att = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) * dh**-0.5, dim=-1)
                    heads_out.append(att @ v[..., sl])
                a = torch.cat(heads_out, dim=-1) @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
                x = x + a
                x = x + block.mlp(block.ln_2(x))
                expected[number] = visual.ln_post(x[:, 0]) @ visual.proj
            else:
                x = block(x)
    assert sorted(ours) == sorted(expected)
    for number in expected:
        torch.testing.assert_close(ours[number], expected[number], atol=1e-5, rtol=0)
