"""Training only the rows of the token embedding that the training text uses.

open_clip's text tower looks every token up in a 49408 x W table: 6.3M of the 7.6M parameters of ``sketchseg-tiny``.
The foundation's captions and category names use a few hundred of those tokens, all known before training, yet a
dense gradient of the whole table, its clipping and its AdamW update cost most of a training step.
:class:`CompactVocabulary` swaps the table for a small one holding only the used rows while the model trains, with
the tokens renumbered in the same order (so the end-of-text token keeps the largest id, which open_clip's argmax
pooling and :func:`sketchseg.model.text.text_forward` rely on), and writes the trained rows back into the full table
afterwards: the saved model is a normal open_clip model.

Every other parameter, and every used row, follows exactly the updates of training the full table (up to float
rounding: tests/test_foundation.py). The rows of tokens the text never uses get no gradient; AdamW would only have
shrunk them by its weight decay, here they keep their initial values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from sketchseg.errors import DataError

Tokenizer = Callable[[Sequence[str]], torch.Tensor]


class CompactVocabulary:
    """Context manager: inside, ``clip.token_embedding`` holds only the rows of the tokens of ``texts``, and
    :meth:`tokenize` gives tokens numbered for it; on exit the rows go back into the full table."""

    def __init__(self, clip: nn.Module, tokenizer: Tokenizer, texts: Sequence[str]) -> None:
        if not self.supports(clip):
            raise TypeError(f"{type(clip).__name__} has no nn.Embedding token_embedding to compact")
        self.clip = clip
        self.tokenizer = tokenizer
        self.full: nn.Embedding = clip.token_embedding
        rows = self.full.num_embeddings
        self.used = torch.unique(tokenizer(list(texts)))  # [U] sorted ascending: renumbering keeps the order
        self.index = torch.full((rows,), -1, dtype=torch.int64)  # full id -> compact id (-1: not used)
        self.index[self.used] = torch.arange(len(self.used))
        self.compact: nn.Embedding | None = None

    @staticmethod
    def supports(clip: nn.Module) -> bool:
        """Whether ``clip`` is a CLIP whose text tower embeds tokens with its own ``token_embedding``."""
        return isinstance(getattr(clip, "token_embedding", None), nn.Embedding)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """``tokenizer(texts)`` renumbered for the compact table: int64 [N, L]."""
        tokens = self.index[self.tokenizer(list(texts))]  # [N, L]
        if bool((tokens < 0).any()):
            raise DataError("a training text uses a token outside the compact vocabulary; pass every training text")
        return tokens

    def __enter__(self) -> CompactVocabulary:
        weight = self.full.weight.detach()[self.used].clone()  # [U, W]
        self.compact = nn.Embedding.from_pretrained(weight, freeze=not self.full.weight.requires_grad)
        self.clip.token_embedding = self.compact
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.compact is not None
        with torch.no_grad():
            self.full.weight[self.used] = self.compact.weight
        self.clip.token_embedding = self.full
