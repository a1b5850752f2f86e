"""The category-token grounding diagnostic: the images it feeds, its scores against a brute-force computation, and
the two extremes (a token that reads only the text, a token that reads only the strokes)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sketchseg.eval.evaluate import make_eval_sample
from sketchseg.eval.grounding import KINDS, category_grounding, grounding_images
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.image import model_input
from sketchseg.model.network import SketchSegModel

torch.set_num_threads(1)


def stroke(points: list[tuple[float, float]]) -> np.ndarray:
    rows = np.array([[x, y, 0.0] for x, y in points], dtype=np.float32)
    rows[-1, 2] = 1.0
    return rows


def two_category_sample(sketch_id: str = "s1"):
    """A house of two strokes at the top left, a tree of one stroke at the bottom right; they overlap at one corner."""
    house = [stroke([(20, 20), (100, 20), (100, 100), (20, 100), (20, 20)]), stroke([(20, 20), (60, 0), (100, 20)])]
    tree = [stroke([(100, 100), (200, 200), (230, 120)])]
    vector = np.concatenate(house + tree)
    return make_eval_sample(sketch_id, vector, ["house", "house", "tree"])


def one_category_sample():
    return make_eval_sample("single", stroke([(30, 30), (200, 200)]), ["tree"])


def test_grounding_images_hold_exactly_the_strokes_asked_for() -> None:
    sample = two_category_sample()
    images = grounding_images(sample)
    labels = sample.raster.label_map(sample.stroke_labels)
    assert sample.vocabulary == ["house", "tree"]
    for c in range(2):
        assert np.array_equal(images["own"][c] == 0, labels == c)
        assert set(np.unique(images["own"][c]).tolist()) == {0, 255}
        assert np.array_equal(images["whole"][c], sample.image)
    assert np.array_equal(images["other"][0], images["own"][1])
    assert np.array_equal(images["other"][1], images["own"][0])
    # the shared corner pixel goes to the tree (drawn last), not to both
    assert not ((images["own"][0] == 0) & (images["own"][1] == 0)).any()


class TextOnlyToken(SketchSegModel):
    """A category token that is its own text: the extreme of a token that ignores the sketch."""

    def category_tokens(self, masked: torch.Tensor, text: torch.Tensor) -> dict[int, torch.Tensor]:
        return {b: text.clone() for b in self.encoder.cross_blocks}


class InkOnlyToken(SketchSegModel):
    """A category token made from the strokes alone: the text of the category that owns most of the ink in the
    image (the ink of each category is known to this test double), whatever text it is asked with."""

    masks: list[torch.Tensor]
    names: list[str]

    def category_tokens(self, masked: torch.Tensor, text: torch.Tensor) -> dict[int, torch.Tensor]:
        ink = masked[:, 0] < 0.95  # [N, S, S]: any ink (thin lines are faint at 64 px)
        owner = torch.stack([(ink & m).flatten(1).sum(1) for m in self.masks], dim=1).argmax(dim=1)  # [N]
        tokens = self.encode_categories(self.names)[owner]
        return {b: tokens for b in self.encoder.cross_blocks}


def model_cfg(**kw) -> ModelConfig:
    return ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=6), **kw)


def test_sketches_of_one_category_give_no_pairs() -> None:
    out = category_grounding(TextOnlyToken(model_cfg()), [one_category_sample()])
    assert out["pairs"] == 0 and all(out[k] == {"top1": None, "cosine": None} for k in KINDS)


def test_a_token_that_reads_the_text_names_its_category_from_any_image() -> None:
    model = TextOnlyToken(model_cfg())
    out = category_grounding(model, [two_category_sample(), one_category_sample()])
    assert out["pairs"] == 2  # the one-category sketch is left out
    for kind in KINDS:
        assert out[kind]["top1"] == 1.0
        assert abs(out[kind]["cosine"] - 1.0) < 1e-5


def test_a_token_that_reads_the_strokes_fails_on_another_category() -> None:
    sample = two_category_sample()
    model = InkOnlyToken(model_cfg())
    own = grounding_images(sample)["own"]
    model.masks = [model_input([im], model.image_size)[0, 0] < 0.95 for im in own]
    model.names = sample.vocabulary
    out = category_grounding(model, [sample])
    assert out["own"]["top1"] == 1.0
    assert out["other"]["top1"] == 0.0
    assert out["whole"]["top1"] == 0.5  # one category owns most of the whole sketch's ink


def predicted_image(model: SketchSegModel, sketch: torch.Tensor, text_c: torch.Tensor) -> torch.Tensor:
    """The masked sketch of one category written out (SPEC §3.6): cosine of every patch with the category's text,
    bicubic to input size, min-max normalised, strokes kept where it exceeds τ. sketch: [1, 1, S, S] -> same."""
    patches = F.normalize(model.encode_sketch(sketch, need_scene=False).patches[0], dim=-1)  # [K, D]
    grid = (patches @ F.normalize(text_c, dim=-1)).reshape(1, 1, *model.encoder.grid)  # [1, 1, rows, cols]
    full = F.interpolate(grid, size=model.image_size, mode="bicubic", align_corners=False)  # [1, 1, S, S]
    norm = (full - full.min()) / (full.max() - full.min())
    keep = (norm > model.threshold.tau()).float()
    return 1.0 - (1.0 - sketch) * keep


def test_scores_equal_a_brute_force_computation() -> None:
    torch.manual_seed(0)
    model = SketchSegModel(model_cfg(cross_attention=True)).eval()
    with torch.no_grad():
        for lin in model.encoder.cross_q.values():  # make the cross-attention query matter
            lin.weight.normal_(std=0.5)
        model.clip.visual.conv1.weight.mul_(10.0)  # and the image: the kinds' mean cosines then differ by ~1e-3
    samples = [two_category_sample("a"), two_category_sample("b"), one_category_sample()]
    out = category_grounding(model, samples)
    top1 = {k: [] for k in KINDS}
    cos = {k: [] for k in top1}
    last = max(model.encoder.cross_blocks)
    kept = []
    with torch.no_grad():
        for sample in samples[:2]:
            text = F.normalize(model.encode_categories(sample.vocabulary), dim=-1)
            whole = model_input([sample.image], model.image_size)  # [1, 1, S, S]
            for kind in top1:
                for c, image in enumerate(grounding_images(sample)["whole" if kind == "predicted" else kind]):
                    if kind == "predicted":
                        x = predicted_image(model, whole, text[c])
                        kept.append(float((x < 1).sum() / (whole < 1).sum()))
                    else:
                        x = model_input([image], model.image_size)
                    token = F.normalize(model.category_tokens(x, text[c : c + 1])[last], dim=-1)[0]
                    sims = torch.stack([token @ t for t in text])
                    top1[kind].append(float(int(sims.argmax()) == c))
                    cos[kind].append(float(sims[c]))
    assert out["pairs"] == 4
    assert all(0.05 < share < 0.95 for share in kept), kept  # the masks keep some strokes, not all
    for kind in top1:
        assert out[kind]["top1"] == np.mean(top1[kind]), kind
        assert abs(out[kind]["cosine"] - np.mean(cos[kind])) < 1e-5, kind
    # the tolerance above tells the image kinds apart: the masked sketch is neither the whole sketch nor one category
    assert min(abs(out["predicted"]["cosine"] - out[k]["cosine"]) for k in ("own", "whole", "other")) > 5e-4
