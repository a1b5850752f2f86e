"""The sketch encoder of SPEC §3: visual prompts, the dual path with v-v attention and the text-conditioned
category token, built on an open_clip ``VisionTransformer`` whose modules it reuses (weights are shared, not copied).

Token sequence: ``[class, patch_1..patch_K, prompt_1..prompt_S]``. Prompts carry no positional embedding and are
appended after the positional embedding, before ``ln_pre``.

Each block's attention is computed from the block's own ``in_proj``/``out_proj`` weights, so one ``qkv`` projection
serves the original path (q-k attention), the v-v path (values only) and, for the category token, the cross-attention
(its query replaced by a learned projection of the category text embedding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sketchseg.errors import ConfigError
from sketchseg.model.config import ModelConfig
from sketchseg.model.exit_block import AuthorsExitBlock


@dataclass
class SketchFeatures:
    """Global-level outputs. ``scene``: [B, D] scene token (VST); ``patches``: [B, K, D] patch embeddings H;
    ``grid``: (rows, cols) of the patch grid; ``shifts``: see :mod:`sketchseg.model.shifts`."""

    scene: torch.Tensor | None
    patches: torch.Tensor
    grid: tuple[int, int]
    shifts: int = 1  # n > 1: the patches of n x n shifted copies of each sketch, [B, n * n * K, D] (model.shifts)

    def sample(self, i: int) -> SketchFeatures:
        """The features of sketch ``i`` alone (batch of one)."""
        scene = None if self.scene is None else self.scene[i : i + 1]
        return SketchFeatures(scene=scene, patches=self.patches[i : i + 1], grid=self.grid, shifts=self.shifts)


class VisualPrompts(nn.Module):
    """S learnable prompt tokens (VPT), uniform init in ±sqrt(6 / (3·patch² + width)), dropout in training."""

    def __init__(self, num: int, width: int, patch_size: int, dropout: float) -> None:
        super().__init__()
        bound = math.sqrt(6.0 / (3 * patch_size * patch_size + width))
        self.tokens = nn.Parameter(torch.empty(num, width).uniform_(-bound, bound))  # [S, W]
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: int) -> torch.Tensor:
        return self.dropout(self.tokens).unsqueeze(0).expand(batch, -1, -1)  # [B, S, W]


def _check_block(block: nn.Module) -> None:
    attn = getattr(block, "attn", None)
    ok = (
        isinstance(attn, nn.MultiheadAttention)
        and attn._qkv_same_embed_dim
        and attn.bias_k is None
        and not attn.add_zero_attn
        and all(hasattr(block, n) for n in ("ln_1", "ln_2", "mlp", "ls_1", "ls_2"))
    )
    if not ok:
        raise ConfigError(
            f"unsupported vision block {type(block).__name__}: sketchseg needs open_clip's ResidualAttentionBlock "
            "with nn.MultiheadAttention (standard ViT CLIP configs)"
        )


class SketchEncoder(nn.Module):
    """Dual-path ViT sketch encoder (SPEC §3.1-§3.2, §3.5) around an open_clip ``VisionTransformer``."""

    def __init__(self, visual: nn.Module, cfg: ModelConfig, text_dim: int) -> None:
        super().__init__()
        if getattr(visual, "attn_pool", None) is not None:
            raise ConfigError("attentional-pooling vision towers are not supported; use a standard ViT CLIP config")
        if isinstance(visual.patch_dropout, nn.Module) and not isinstance(visual.patch_dropout, nn.Identity):
            raise ConfigError("patch dropout must be off in the backbone config (it would drop patches of the map)")
        # Not registered as a submodule: the weights belong to the CLIP model that owns this tower, so they appear
        # once in state dicts (under ``clip.visual``) while the encoder reuses them.
        self.__dict__["visual"] = visual
        self.blocks = list(visual.transformer.resblocks)
        for block in self.blocks:
            _check_block(block)
        self.depth = len(self.blocks)
        self.width = visual.transformer.width
        self.heads = self.blocks[0].attn.num_heads
        self.head_dim = self.width // self.heads
        self.grid = tuple(visual.grid_size)
        self.num_patches = self.grid[0] * self.grid[1]
        patch = visual.patch_size[0] if isinstance(visual.patch_size, tuple) else visual.patch_size
        self.patch_size = int(patch)
        self.image_size = tuple(visual.image_size) if isinstance(visual.image_size, tuple) else (visual.image_size,) * 2

        self.vv_layers = cfg.resolved_vv_layers(self.depth)
        self.cross_blocks = cfg.resolved_cross_blocks(self.depth)
        self.cross_attention = cfg.cross_attention
        self.cross_dropout = cfg.cross_attention_dropout
        self.prompts = (
            VisualPrompts(cfg.num_prompts, self.width, patch, cfg.prompt_dropout) if cfg.num_prompts else None
        )
        # Cross-attention: the category token's query is a learned projection of the category text embedding.
        self.cross_q = nn.ModuleDict(
            {str(b): nn.Linear(text_dim, self.width) for b in self.cross_blocks} if cfg.cross_attention else {}
        )
        for lin in self.cross_q.values():
            nn.init.normal_(lin.weight, std=text_dim**-0.5)
            nn.init.zeros_(lin.bias)
        # The authors' text-independent block after the last block, on each path's whole sequence (exit_block.py).
        self.exit_block = AuthorsExitBlock(self.width) if cfg.exit_block == "authors" else None

    # ---- pieces -------------------------------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] normalised images -> [B, 1 + K + S, W] tokens after ``ln_pre``."""
        v = self.visual
        x = v.conv1(images)  # [B, W, gh, gw]
        x = x.flatten(2).transpose(1, 2)  # [B, K, W]
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # [B, 1, W]
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)  # [B, 1 + K, W]
        if self.prompts is not None:
            x = torch.cat([x, self.prompts(x.shape[0]).to(x.dtype)], dim=1)  # [B, 1 + K + S, W]
        return v.ln_pre(x)

    def _qkv(self, block: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[B, N, W] -> q, k, v, each [B, heads, N, head_dim], from the block's own packed in-projection."""
        b, n, _ = h.shape
        qkv = F.linear(h, block.attn.in_proj_weight, block.attn.in_proj_bias)  # [B, N, 3W]
        qkv = qkv.view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def _merge(self, block: nn.Module, a: torch.Tensor) -> torch.Tensor:
        """[B, heads, N, head_dim] -> [B, N, W] through the block's output projection."""
        b, _, n, _ = a.shape
        return block.attn.out_proj(a.transpose(1, 2).reshape(b, n, self.width))

    def _pool_scene(self, x: torch.Tensor) -> torch.Tensor:
        """Scene token from the original path [B, N, W] -> [B, D], pooled as the backbone pools (prompts excluded)."""
        v = self.visual
        x = x[:, : 1 + self.num_patches]
        if v.final_ln_after_pool:
            pooled, _ = v._global_pool(x)
            pooled = v.ln_post(pooled)
        else:
            pooled, _ = v._global_pool(v.ln_post(x))
        return pooled @ v.proj if v.proj is not None else pooled

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """[..., W] -> [..., D]: ``ln_post`` then the visual projection."""
        v = self.visual
        tokens = v.ln_post(tokens)
        return tokens @ v.proj if v.proj is not None else tokens

    # ---- global level -------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, need_scene: bool = True) -> SketchFeatures:
        """Global-level forward: [B, 3, H, W] -> scene token (original path) and patch embeddings (v-v path)."""
        x = self.embed(images)  # x_o: [B, N, W]
        first_vv = self.depth - self.vv_layers
        x_s = None
        for i, block in enumerate(self.blocks):
            last = i == self.depth - 1
            if i < first_vv:
                x = block(x)
                continue
            if x_s is None:
                x_s = x  # the second path starts from the input of the first v-v block
            h = block.ln_1(x)
            q, k, v = self._qkv(block, h)
            x_s = x_s + self._merge(block, F.scaled_dot_product_attention(v, v, v))
            if last and not need_scene:
                break
            x = x + block.ls_1(self._merge(block, F.scaled_dot_product_attention(q, k, v)))
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        if self.exit_block is not None:  # each path separately; the scene token stays the original path's
            x_s = self.exit_block(x_s) if x_s is not None else None
            x = self.exit_block(x) if (need_scene or x_s is None) else x
        path = x_s if x_s is not None else x
        patches = self.project(path[:, 1 : 1 + self.num_patches])  # [B, K, D]
        scene = self._pool_scene(x) if need_scene else None  # [B, D]
        return SketchFeatures(scene=scene, patches=patches, grid=self.grid)

    # ---- category level -----------------------------------------------------------------------------------
    def category_tokens(self, images: torch.Tensor, text: torch.Tensor) -> dict[int, torch.Tensor]:
        """Category tokens VCT of one encoder pass.

        images: [N, 3, H, W] (masked sketches), text: [N, D_text] category embeddings CCT.
        Returns {block (1-based): [N, D]} for every block of ``cross_blocks``: the class token after that block,
        through ``ln_post`` and the projection. With cross-attention, in those blocks the class token's query is
        ``cross_q[block](CCT)``; keys and values are the block's tokens, so the token is a text-conditioned pooling
        of the sketch. The v-v path is not needed here and is skipped.
        """
        if images.shape[0] != text.shape[0]:
            raise ValueError(f"images ({images.shape[0]}) and category texts ({text.shape[0]}) must pair up")
        x = self.embed(images)  # [N, T, W]
        out: dict[int, torch.Tensor] = {}
        last_needed = max(self.cross_blocks)
        n = x.shape[0]
        for i, block in enumerate(self.blocks[:last_needed]):
            number = i + 1
            crossed = self.cross_attention and number in self.cross_blocks
            if number == last_needed:
                # Only the class token's output is needed after the last exit block: one query, and the
                # out-projection and FFN on that token alone (keys and values still come from every token).
                h = block.ln_1(x)
                q, k, v = self._qkv(block, h)
                q0 = q[:, :, :1]
                if crossed:
                    q0 = self.cross_q[str(number)](text.to(h.dtype)).view(n, self.heads, 1, self.head_dim)
                delta = self._merge(block, F.scaled_dot_product_attention(q0, k, v))  # [N, 1, W]
                if crossed and self.cross_dropout > 0:
                    delta = F.dropout(delta, self.cross_dropout, self.training)
                cls = x[:, :1] + block.ls_1(delta)
                cls = cls + block.ls_2(block.mlp(block.ln_2(cls)))
                out[number] = self.project(cls[:, 0])  # [N, D]
                break
            if crossed:
                h = block.ln_1(x)
                q, k, v = self._qkv(block, h)
                q_cat = self.cross_q[str(number)](text.to(h.dtype)).view(n, self.heads, 1, self.head_dim)
                q = torch.cat([q_cat, q[:, :, 1:]], dim=2)  # class-token query from the text
                delta = self._merge(block, F.scaled_dot_product_attention(q, k, v))  # [N, T, W]
                if self.cross_dropout > 0:
                    cat_delta = F.dropout(delta[:, :1], self.cross_dropout, self.training)
                    delta = torch.cat([cat_delta, delta[:, 1:]], dim=1)
                x = x + block.ls_1(delta)
                x = x + block.ls_2(block.mlp(block.ln_2(x)))
            else:
                x = block(x)
            if number in self.cross_blocks:
                out[number] = self.project(x[:, 0])  # [N, D]
        return out
