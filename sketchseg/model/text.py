"""The frozen CLIP text tower: category embeddings CCT from prompt templates, caption embeddings CST.

CLIP's text transformer is causal and pools at the end-of-text token, so a prompt's embedding depends only on the
tokens up to that token. :meth:`TextEncoder.encode` therefore runs the tower on the batch truncated to its longest
prompt (about 8 tokens instead of 77 for "a sketch of {}"), which gives the same embeddings at a fraction of the
cost (tests/test_text.py proves equality). Category embeddings are cached per category string, in a bounded LRU
cache (``max_cached`` entries, least recently used dropped first).
"""

from __future__ import annotations

from collections import OrderedDict

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


MAX_CACHED = 4096  # category embeddings kept by default (a few kB each)


class TextEncoder:
    """Wraps an open_clip CLIP (or CustomTextCLIP) text tower. Always frozen; no gradient flows through it.
    ``max_cached``: category embeddings kept (per templates and category), least recently used dropped first."""

    def __init__(
        self, clip: nn.Module, tokenizer: object, templates: tuple[str, ...], max_cached: int = MAX_CACHED
    ) -> None:
        if max_cached < 1:
            raise ValueError(f"max_cached {max_cached}: must be >= 1")
        tower = clip.text if hasattr(clip, "text") else clip
        self.tower = tower  # the weights belong to the backbone module
        self.clip = clip
        self.tokenizer = tokenizer
        self.templates = tuple(templates)
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple[tuple[str, ...], str], torch.Tensor] = OrderedDict()  # (templates, c) -> [D]
        self.calls = 0  # number of text-tower forward passes (for tests and benchmarks)
        pool = getattr(tower, "text_pool_type", getattr(tower, "pool_type", "argmax"))
        causal = getattr(tower, "attn_mask", None) is not None
        self.can_truncate = pool == "argmax" and causal and not getattr(tower, "use_pad_mask", False)

    def _device(self) -> torch.device:
        return self.tower.token_embedding.weight.device

    @torch.no_grad()
    def encode_texts(self, texts: list[str], truncate: bool = True) -> torch.Tensor:
        """Raw texts -> [N, D] L2-normalised embeddings."""
        tokens = self.tokenizer(texts).to(self._device())  # [N, 77]
        self.calls += 1
        if not (truncate and self.can_truncate):
            return F.normalize(self.clip.encode_text(tokens), dim=-1)
        return F.normalize(text_forward(self.tower, tokens), dim=-1)

    @torch.no_grad()
    def encode_categories(self, categories: list[str], templates: tuple[str, ...] | None = None) -> torch.Tensor:
        """Category names -> [C, D] CCT: templates (default: the model's) averaged after L2 normalisation,
        renormalised. Cached per (templates, category)."""
        templates = self.templates if templates is None else tuple(templates)
        found = {c: self._cache.get((templates, c)) for c in categories}
        missing = [c for c, e in found.items() if e is None]
        if missing:
            prompts = [t.format(c) for c in missing for t in templates]
            emb = self.encode_texts(prompts).view(len(missing), len(templates), -1)  # [M, T, D]
            emb = F.normalize(emb.mean(dim=1), dim=-1)  # [M, D]
            found.update(zip(missing, emb, strict=True))
        for c in found:  # most recently used last; the oldest beyond max_cached dropped
            self._cache[(templates, c)] = found[c]
            self._cache.move_to_end((templates, c))
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        if not categories:
            return torch.empty(0, self.embed_dim, device=self._device())
        return torch.stack([found[c] for c in categories]).to(self._device())  # [C, D]

    @property
    def embed_dim(self) -> int:
        proj = self.tower.text_projection
        if proj is None:
            return self.tower.ln_final.normalized_shape[0]
        return proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]

    def cached_categories(self) -> list[str]:
        """The category names whose embeddings are cached (under any templates), sorted."""
        return sorted({name for _, name in list(self._cache)})

    @property
    def cached(self) -> int:
        """Number of cached embeddings (per templates and category)."""
        return len(self._cache)

    def clear_cache(self) -> None:
        self._cache.clear()
