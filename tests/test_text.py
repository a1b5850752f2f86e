"""Text tower: the truncated causal forward gives open_clip's embeddings, and category embeddings are cached."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sketchseg.model.backbone import load_backbone
from sketchseg.model.config import BackboneConfig
from sketchseg.model.text import TextEncoder

torch.set_num_threads(1)

PROMPTS = ["a sketch of giraffe", "a sketch of a very tall tree next to a small red house", "a sketch of kite", ""]


@pytest.mark.parametrize("name", ["sketchseg-test", "sketchseg-tiny"])
def test_truncated_forward_equals_open_clip(name: str) -> None:
    backbone = load_backbone(BackboneConfig(name=name, seed=3))
    text = TextEncoder(backbone.clip, backbone.tokenizer, ("a sketch of {}",))
    assert text.can_truncate
    with torch.no_grad():
        reference = F.normalize(backbone.clip.encode_text(backbone.tokenizer(PROMPTS)), dim=-1)
    ours = text.encode_texts(PROMPTS)
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    # in float64 the two computations agree to rounding error of double precision
    backbone.clip.double()
    with torch.no_grad():
        reference64 = F.normalize(backbone.clip.encode_text(backbone.tokenizer(PROMPTS)), dim=-1)
    ours64 = text.encode_texts(PROMPTS)
    assert ours64.dtype == torch.float64
    assert (ours64 - reference64).abs().max() < 1e-12


def test_category_embeddings_are_cached_and_templates_averaged() -> None:
    backbone = load_backbone(BackboneConfig(name="sketchseg-test"))
    templates = ("a sketch of {}", "a drawing of a {}")
    text = TextEncoder(backbone.clip, backbone.tokenizer, templates)
    first = text.encode_categories(["tree", "house", "sun"])
    assert text.calls == 1
    again = text.encode_categories(["sun", "tree", "house"])
    assert text.calls == 1  # a repeated vocabulary costs no text-tower call
    torch.testing.assert_close(again, first[[2, 0, 1]], atol=0, rtol=0)
    text.encode_categories(["tree", "boat"])
    assert text.calls == 2  # only "boat" was encoded
    per_template = text.encode_texts([t.format("tree") for t in templates])
    expected = F.normalize(per_template.mean(0), dim=-1)
    torch.testing.assert_close(first[0], expected, atol=1e-6, rtol=0)
    assert torch.allclose(first.norm(dim=-1), torch.ones(3))
