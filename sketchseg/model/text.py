"""The frozen CLIP text tower: category embeddings CCT from prompt templates, caption embeddings CST.

CLIP's text transformer is causal and pools at the end-of-text token, so a prompt's embedding depends only on the
tokens up to that token. :meth:`TextEncoder.encode` therefore runs the tower on the batch truncated to its longest
prompt (about 8 tokens instead of 77 for "a sketch of {}"), which gives the same embeddings at a fraction of the
cost (tests/test_text.py proves equality). Category embeddings are cached per category string.

For the same reason the tokens a batch of prompts shares at its start (the start-of-text token and the template's
words before ``{}``: "a sketch of") have the same states in every prompt and every call: :class:`PrefixCache` keeps
their keys and values per block, and :func:`text_forward_after_prefix` runs the tower on the remaining tokens only,
with the end-of-text token alone in the last block (about half the work for "a sketch of {}").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def text_forward(tower: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP text features (unnormalised) of [N, 77] tokens, computed on the tokens up to the longest prompt's
    end-of-text token. ``tower``: an open_clip CLIP (or its TextTransformer) with a causal mask and argmax pooling.
    Differentiable (used to train the offline foundation CLIP too)."""
    length = int(tokens.argmax(dim=-1).max().item()) + 1  # longest prompt, end-of-text included
    tokens = tokens[:, :length]  # [N, L]
    cast = tower.transformer.get_cast_dtype() if hasattr(tower.transformer, "get_cast_dtype") else torch.float32
    x = tower.token_embedding(tokens).to(cast) + tower.positional_embedding[:length].to(cast)  # [N, L, W]
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
    x = tower.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # [N, W] at end-of-text
    proj = tower.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
    return x  # [N, D]


def _supports_prefix(tower: nn.Module) -> bool:
    blocks = getattr(getattr(tower, "transformer", None), "resblocks", None)
    if blocks is None:
        return False
    for block in blocks:
        attn = getattr(block, "attn", None)
        if not (isinstance(attn, nn.MultiheadAttention) and attn._qkv_same_embed_dim and attn.bias_k is None):
            return False
        if not all(hasattr(block, n) for n in ("ln_1", "ln_2", "mlp", "ls_1", "ls_2")):
            return False
        if not isinstance(getattr(block, "ln_attn", nn.Identity()), nn.Identity):
            return False
    return True


def _block_qkv(block: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[N, L, W] -> q, k, v [N, heads, L, W / heads] from the block's packed in-projection."""
    n, length, width = h.shape
    heads = block.attn.num_heads
    qkv = F.linear(h, block.attn.in_proj_weight, block.attn.in_proj_bias)  # [N, L, 3W]
    qkv = qkv.view(n, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def _block_out(block: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """[N, heads, L, head_dim] -> [N, L, W] through the block's output projection."""
    n, _, length, _ = a.shape
    return block.attn.out_proj(a.transpose(1, 2).reshape(n, length, -1))


@torch.no_grad()
def prefix_states(tower: nn.Module, prefix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values [1, heads, P, head_dim] of every block for the [P] tokens that start every prompt."""
    cast = tower.transformer.get_cast_dtype() if hasattr(tower.transformer, "get_cast_dtype") else torch.float32
    length = prefix.shape[0]
    x = tower.token_embedding(prefix[None]).to(cast) + tower.positional_embedding[:length].to(cast)  # [1, P, W]
    states = []
    for block in tower.transformer.resblocks:
        q, k, v = _block_qkv(block, block.ln_1(x))
        states.append((k, v))
        x = x + block.ls_1(_block_out(block, F.scaled_dot_product_attention(q, k, v, is_causal=True)))
        x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return states


@torch.no_grad()
def text_forward_after_prefix(
    tower: nn.Module, tokens: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """:func:`text_forward` of [N, 77] tokens that all start with the P tokens whose block states are ``states``
    (:func:`prefix_states`); every end-of-text token must come after the prefix. Inference only."""
    eot = tokens.argmax(dim=-1)  # [N]
    start = states[0][0].shape[2]
    length = int(eot.max().item()) + 1
    cast = tower.transformer.get_cast_dtype() if hasattr(tower.transformer, "get_cast_dtype") else torch.float32
    x = tower.token_embedding(tokens[:, start:length]).to(cast) + tower.positional_embedding[start:length].to(cast)
    n = x.shape[0]
    keys = torch.arange(length, device=x.device)
    causal = keys[None, :] <= torch.arange(start, length, device=x.device)[:, None]  # [L - P, L]
    blocks = list(tower.transformer.resblocks)
    for i, (block, (pk, pv)) in enumerate(zip(blocks, states, strict=True)):
        q, k, v = _block_qkv(block, block.ln_1(x))  # [N, heads, L - P, hd]
        k = torch.cat([pk.expand(n, -1, -1, -1), k], dim=2)  # [N, heads, L, hd]
        v = torch.cat([pv.expand(n, -1, -1, -1), v], dim=2)
        if i == len(blocks) - 1:  # only the end-of-text token is read after the last block
            rows = torch.arange(n, device=x.device)
            q = q[rows, :, eot - start].unsqueeze(2)  # [N, heads, 1, hd]
            mask = (keys[None, :] <= eot[:, None])[:, None, None, :]  # [N, 1, 1, L]
            x = x[rows, eot - start].unsqueeze(1)  # [N, 1, W]
            x = x + block.ls_1(_block_out(block, F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
        else:
            x = x + block.ls_1(_block_out(block, F.scaled_dot_product_attention(q, k, v, attn_mask=causal)))
        x = x + block.ls_2(block.mlp(block.ln_2(x)))
    x = tower.ln_final(x[:, 0])  # [N, W]
    proj = tower.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
    return x  # [N, D]


def common_prefix_length(tokens: torch.Tensor) -> int:
    """Number of leading tokens every row of [N, 77] shares, stopping before the first end-of-text token."""
    eot = int(tokens.argmax(dim=-1).min().item())
    same = (tokens[:, :eot] == tokens[:1, :eot]).all(dim=0)  # [eot]
    return eot if bool(same.all()) else int(same.long().argmin().item())


class TextEncoder:
    """Wraps an open_clip CLIP (or CustomTextCLIP) text tower. Always frozen; no gradient flows through it."""

    def __init__(self, clip: nn.Module, tokenizer: object, templates: tuple[str, ...]) -> None:
        tower = clip.text if hasattr(clip, "text") else clip
        self.tower = tower  # the weights belong to the backbone module
        self.clip = clip
        self.tokenizer = tokenizer
        self.templates = tuple(templates)
        self._cache: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}  # (templates, category) -> [D]
        self.calls = 0  # number of text-tower forward passes (for tests and benchmarks)
        pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", "argmax"))
        causal = getattr(tower, "attn_mask", None) is not None
        self.can_truncate = pool == "argmax" and causal and not getattr(tower, "use_pad_mask", False)
        self.can_share_prefix = self.can_truncate and _supports_prefix(tower)
        self._prefixes: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # shared-prefix block states

    def _device(self) -> torch.device:
        return self.tower.token_embedding.weight.device

    @torch.no_grad()
    def encode_texts(self, texts: list[str], truncate: bool = True) -> torch.Tensor:
        """Raw texts -> [N, D] L2-normalised embeddings."""
        tokens = self.tokenizer(texts).to(self._device())  # [N, 77]
        self.calls += 1
        if not (truncate and self.can_truncate):
            return F.normalize(self.clip.encode_text(tokens), dim=-1)
        shared = common_prefix_length(tokens) if self.can_share_prefix else 0
        if shared < 2:  # nothing to share beyond the start-of-text token
            return F.normalize(text_forward(self.tower, tokens), dim=-1)
        weight = self.tower.token_embedding.weight
        key = (tuple(tokens[0, :shared].tolist()), weight.dtype, weight.device)
        if key not in self._prefixes:
            self._prefixes[key] = prefix_states(self.tower, tokens[0, :shared])
        return F.normalize(text_forward_after_prefix(self.tower, tokens, self._prefixes[key]), dim=-1)

    @torch.no_grad()
    def encode_categories(self, categories: list[str], templates: tuple[str, ...] | None = None) -> torch.Tensor:
        """Category names -> [C, D] CCT: templates (default: the model's) averaged after L2 normalisation,
        renormalised. Cached per (templates, category)."""
        templates = self.templates if templates is None else tuple(templates)
        missing = list(dict.fromkeys(c for c in categories if (templates, c) not in self._cache))
        if missing:
            prompts = [t.format(c) for c in missing for t in templates]
            emb = self.encode_texts(prompts).view(len(missing), len(templates), -1)  # [M, T, D]
            emb = F.normalize(emb.mean(dim=1), dim=-1)  # [M, D]
            for c, e in zip(missing, emb, strict=True):
                self._cache[(templates, c)] = e
        if not categories:
            return torch.empty(0, self.embed_dim, device=self._device())
        return torch.stack([self._cache[(templates, c)] for c in categories]).to(self._device())  # [C, D]

    @property
    def embed_dim(self) -> int:
        proj = self.tower.text_projection
        if proj is None:
            return self.tower.ln_final.normalized_shape[0]
        return proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]

    def clear_cache(self) -> None:
        self._cache.clear()
        self._prefixes.clear()
