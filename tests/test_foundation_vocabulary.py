"""The foundation's training shortcuts: only the used token-embedding rows trained (CompactVocabulary), and the
text tower run in two passes cut at their own lengths (text_forward_in_two). Both must train as before."""

from __future__ import annotations

import pytest
import torch

from sketchseg.config import config_from_dict
from sketchseg.errors import DataError
from sketchseg.foundation.data import ContrastiveData, MosaicLayout
from sketchseg.foundation.train import text_forward_in_two, train_clip, unique_text_forward
from sketchseg.foundation.vocabulary import CompactVocabulary
from sketchseg.model.backbone import load_backbone
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.encoder import SketchEncoder
from sketchseg.model.text import text_forward

torch.set_num_threads(1)

CAPTIONS = ["a tree next to a house under the sun", "two dogs", "a big cloud above a small boat on the sea"]
CATEGORIES = ["tree", "house", "sun", "dog", "cloud", "boat"]


def backbone():
    return load_backbone(BackboneConfig(name="sketchseg-test", seed=3))


def toy_data(size: int, grid: int) -> ContrastiveData:
    """Random ink on white paper: 3 captioned scenes, 2 objects per category, 6 mosaics."""
    g = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:
        return torch.where(torch.rand(n, size, size, generator=g) < 0.1, 0, 255).to(torch.uint8)

    return ContrastiveData(
        scene_images=images(len(CAPTIONS)),
        scene_captions=list(CAPTIONS),
        object_images=images(2 * len(CATEGORIES)),
        object_labels=torch.arange(len(CATEGORIES)).repeat(2),
        categories=list(CATEGORIES),
        mosaic_images=images(6),
        mosaic_labels=torch.stack([torch.randperm(len(CATEGORIES), generator=g)[:4] for _ in range(6)]),
        layout=MosaicLayout(grid),
    )


def test_compact_vocabulary_trains_like_the_full_table() -> None:
    cfg = config_from_dict({"foundation": {"steps": 4, "batch_size": 6, "mosaics_per_step": 2,
                                           "warmup_steps": 1}}).foundation  # fmt: skip
    init = backbone().clip.state_dict()
    trained = {}
    for compact in (False, True):
        b = backbone()
        data = toy_data(b.clip.visual.image_size[0], b.clip.visual.grid_size[0])
        train_clip(b.clip, b.tokenizer, data, cfg, progress=False, compact_vocabulary=compact)
        assert type(b.clip.token_embedding) is torch.nn.Embedding and b.clip.token_embedding.num_embeddings == 49408
        trained[compact] = b.clip.state_dict()
        used = torch.unique(b.tokenizer(data.texts()))
    full, compact = trained[False], trained[True]
    assert set(full) == set(compact) == set(init)
    for name in full:
        if name != "token_embedding.weight":
            assert not torch.equal(full[name], init[name]) or name == "attn_mask", name
            torch.testing.assert_close(compact[name], full[name], rtol=1e-4, atol=1e-5, msg=name)
    key = "token_embedding.weight"
    torch.testing.assert_close(compact[key][used], full[key][used], rtol=1e-4, atol=1e-5)
    assert not torch.equal(compact[key][used], init[key][used])
    unused = torch.ones(len(init[key]), dtype=torch.bool)
    unused[used] = False
    assert torch.equal(compact[key][unused], init[key][unused])  # never looked up: kept as they were
    # the full table's AdamW only shrank them by its weight decay, by the same factor everywhere
    ratio = full[key][unused] / init[key][unused]
    assert 0.99 < float(ratio.min()) <= float(ratio.max()) < 1.0 and float(ratio.max() - ratio.min()) < 1e-5


def test_compact_tokens_keep_their_order_and_embeddings() -> None:
    b = backbone()
    full_weight = b.clip.token_embedding.weight.detach().clone()
    tokens = b.tokenizer(CAPTIONS)  # [3, 77]
    with CompactVocabulary(b.clip, b.tokenizer, CAPTIONS) as vocab:
        small = vocab.tokenize(CAPTIONS)
        assert b.clip.token_embedding.num_embeddings == len(vocab.used) < 40
        # the end-of-text token is still each row's maximum: pooling and truncation find the same position
        assert torch.equal(small.argmax(dim=-1), tokens.argmax(dim=-1))
        assert int(small.max()) == len(vocab.used) - 1
        assert torch.equal(b.clip.token_embedding(small), full_weight[tokens])
        with pytest.raises(DataError, match="outside the compact vocabulary"):
            vocab.tokenize(["zebra giraffe"])
        with torch.no_grad():
            b.clip.token_embedding.weight.add_(1.0)
    assert b.clip.token_embedding.num_embeddings == 49408
    weight = b.clip.token_embedding.weight.detach()
    assert torch.equal(weight[vocab.used], full_weight[vocab.used] + 1.0)  # written back
    others = torch.ones(49408, dtype=torch.bool)
    others[vocab.used] = False
    assert torch.equal(weight[others], full_weight[others])


def test_compact_vocabulary_restores_the_table_after_an_error() -> None:
    b = backbone()
    full = b.clip.token_embedding
    with pytest.raises(RuntimeError, match="boom"), CompactVocabulary(b.clip, b.tokenizer, CAPTIONS):
        raise RuntimeError("boom")
    assert b.clip.token_embedding is full


def test_text_in_two_passes_equals_one_pass() -> None:
    b = backbone()
    texts = [*CAPTIONS, "a sketch of a dog", "a sun", "a drawing of a boat", "an elephant"]
    tokens = b.tokenizer(texts)
    one = text_forward(b.clip, tokens)
    two = text_forward_in_two(b.clip, tokens)
    torch.testing.assert_close(two, one, rtol=1e-5, atol=1e-6)
    (g_one,) = torch.autograd.grad(one.square().sum(), b.clip.token_embedding.weight)
    (g_two,) = torch.autograd.grad(two.square().sum(), b.clip.token_embedding.weight)
    # float32 rounding relative to the largest gradient (hundreds here; measured differences up to 6e-7 of it)
    torch.testing.assert_close(g_two, g_one, rtol=1e-4, atol=2e-6 * float(g_one.abs().max()))
    assert torch.equal(text_forward_in_two(b.clip, tokens[:1]), text_forward(b.clip, tokens[:1]))
    repeated = tokens[[4, 0, 4, 6, 0, 4]]  # names repeat within a step
    torch.testing.assert_close(unique_text_forward(b.clip, repeated), text_forward(b.clip, repeated), rtol=1e-5,
                               atol=1e-6)  # fmt: skip


def test_split_passes_give_the_features_of_one_pass() -> None:
    """The step encodes global images (scene token) and mosaics (v-v patches) separately: each is what one pass over
    both gives, so the split changes no result, only what is computed."""
    b = backbone()
    path = ModelConfig(num_prompts=0, cross_attention=False)
    encoder = SketchEncoder(b.clip.visual, path, text_dim=b.clip.text_projection.shape[-1])
    x = torch.randn(7, 3, *encoder.image_size, generator=torch.Generator().manual_seed(0))
    both = encoder(x, need_scene=True)
    torch.testing.assert_close(encoder(x[:4], need_scene=True).scene, both.scene[:4], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(encoder(x[4:], need_scene=False).patches, both.patches[4:], rtol=1e-5, atol=1e-6)
