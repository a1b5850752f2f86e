"""Triplet losses with hard-negative mining (SPEC §4): distances, mining, exact values, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from sketchseg.config import LossConfig
from sketchseg.errors import ConfigError
from sketchseg.train.distributed import gather_tensor, gather_with_grad
from sketchseg.train.losses import (
    category_triplet_loss,
    global_triplet_loss,
    hard_negative_triplet_loss,
    mine_hardest_negatives,
    pairwise_distance,
    scale_grad,
    stable_id,
    stable_ids,
    total_loss,
)


def unit(*degrees: float, requires_grad: bool = False) -> torch.Tensor:
    """Unit vectors in the plane at the given angles -> [len(degrees), 2] (float64)."""
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    out = torch.stack([torch.cos(rad), torch.sin(rad)], dim=1)
    return out.requires_grad_(requires_grad)


def chord(delta_deg: float) -> float:
    """Euclidean distance between two unit vectors `delta_deg` degrees apart."""
    return 2 * math.sin(math.radians(abs(delta_deg)) / 2)


# ---------------------------------------------------------------- distances


def test_euclidean_distance_is_on_l2_normalised_embeddings() -> None:
    a = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    b = torch.tensor([[0.0, 2.0], [5.0, 0.0], [-1.0, 0.0]])
    d = pairwise_distance(a, b, "euclidean")
    expected = torch.tensor([[math.sqrt(2), 0.0, 2.0], [0.0, math.sqrt(2), math.sqrt(2)]])
    assert d.shape == (2, 3)
    assert torch.allclose(d, expected, atol=1e-6)


def test_cosine_distance_is_one_minus_cosine() -> None:
    a = unit(0.0, 90.0)
    b = unit(60.0, 180.0) * 7.0  # scale must not matter
    d = pairwise_distance(a, b, "cosine")
    expected = torch.tensor([[0.5, 2.0], [1 - math.cos(math.radians(30)), 1.0]], dtype=torch.float64)
    assert torch.allclose(d, expected, atol=1e-12)


def test_unknown_distance_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown loss distance 'l1'.*euclidean, cosine"):
        pairwise_distance(torch.ones(1, 2), torch.ones(1, 2), "l1")
    with pytest.raises(ConfigError, match="unknown loss distance"):
        LossConfig(distance="manhattan")


def test_loss_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="margin"):
        LossConfig(margin=-0.1)
    with pytest.raises(ConfigError, match="nothing to train"):
        LossConfig(global_loss=False, category_loss=False)
    assert LossConfig().margin == 0.3 and LossConfig().distance == "euclidean"


# ---------------------------------------------------------------- mining


def test_mining_picks_closest_non_duplicate_on_hand_made_matrix() -> None:
    dist = torch.tensor(
        [
            [0.5, 0.1, 0.3, 0.9, 0.7],  # closest is col 1, a duplicate of the anchor (group 0) -> col 2
            [0.2, 0.8, 0.6, 0.1, 0.4],  # group 1: col 3 is group 1 too -> col 0
            [0.9, 0.9, 0.9, 0.9, 0.05],  # group 2: col 4 (group 3) is closest and valid
        ]
    )
    anchor_groups = torch.tensor([0, 1, 2])
    candidate_groups = torch.tensor([0, 0, 2, 1, 3])
    index, has_neg = mine_hardest_negatives(dist, anchor_groups, candidate_groups)
    assert index.tolist() == [2, 0, 4]
    assert has_neg.tolist() == [True, True, True]


def test_mining_reports_anchor_without_negative_and_breaks_ties_by_index() -> None:
    dist = torch.tensor([[0.3, 0.3, 0.3], [0.4, 0.2, 0.2]])
    index, has_neg = mine_hardest_negatives(dist, torch.tensor([7, 5]), torch.tensor([7, 7, 7]))
    assert has_neg.tolist() == [False, True]
    assert index[1].item() == 1  # cols 1 and 2 tie at 0.2 and both are valid for group 5: lowest index wins


def test_mining_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="does not match 2 anchors x 3 candidates"):
        mine_hardest_negatives(torch.zeros(3, 2), torch.zeros(2), torch.zeros(3))


# ---------------------------------------------------------------- exact values


def test_global_triplet_loss_exact_value_excludes_closer_duplicate() -> None:
    # captions 0 and 2 are the same caption (group 10); caption 2 (25 deg) is closer to anchor 0 than
    # anchor 0's own positive (40 deg) but must not be its negative.
    anchors = unit(0.0, 90.0, 30.0)
    positives = unit(40.0, 10.0, 25.0)
    groups = torch.tensor([10, 20, 10])
    margin = 0.1
    h0 = chord(40) - chord(10) + margin  # negative: caption 1 (the only other group)
    h1 = chord(80) - chord(50) + margin  # negatives 40 deg (d=chord 50) and 25 deg (chord 65): hardest = 40 deg
    h2 = max(chord(5) - chord(20) + margin, 0.0)  # inactive
    loss, stats = global_triplet_loss(anchors, positives, groups, margin=margin)
    assert h2 == 0.0
    assert loss.item() == pytest.approx((h0 + h1 + h2) / 3, abs=1e-6)
    assert stats["active"] == pytest.approx(2 / 3)
    assert stats["no_negative"] == 0.0 and stats["triplets"] == 3.0
    assert stats["pos_dist"] == pytest.approx((chord(40) + chord(80) + chord(5)) / 3, abs=1e-6)
    assert stats["neg_dist"] == pytest.approx((chord(10) + chord(50) + chord(20)) / 3, abs=1e-6)


def test_global_triplet_loss_default_margin_and_cosine_distance() -> None:
    anchors = unit(0.0, 90.0)
    positives = unit(70.0, 30.0)
    groups = torch.tensor([1, 2])
    cos_d = lambda deg: 1 - math.cos(math.radians(deg))  # noqa: E731
    loss_e, stats = global_triplet_loss(anchors, positives, groups)  # margin 0.3, euclidean
    expected_e = (max(chord(70) - chord(30) + 0.3, 0) + max(chord(60) - chord(20) + 0.3, 0)) / 2
    assert stats["active"] == 1.0
    assert loss_e.item() == pytest.approx(expected_e, abs=1e-6)
    loss_c, _ = global_triplet_loss(anchors, positives, groups, distance="cosine")
    expected_c = (max(cos_d(70) - cos_d(30) + 0.3, 0) + max(cos_d(60) - cos_d(20) + 0.3, 0)) / 2
    assert loss_c.item() == pytest.approx(expected_c, abs=1e-6)


def test_anchor_without_negative_contributes_zero_but_counts() -> None:
    anchors = unit(0.0, 90.0, 180.0)
    positives = unit(100.0, 60.0, 30.0)
    # anchors 0 and 1 share a caption (group 4): their only negative is caption 2
    loss, stats = global_triplet_loss(anchors, positives, torch.tensor([4, 4, 9]))
    h0 = chord(100) - chord(30) + 0.3
    h1 = chord(30) - chord(60) + 0.3  # inactive
    h2 = chord(150) - chord(80) + 0.3  # candidates at 100 (80 deg away) and 60 deg (120 away): 100 deg is hardest
    assert h1 < 0
    assert loss.item() == pytest.approx((h0 + h2) / 3, abs=1e-6)
    assert stats["no_negative"] == 0.0
    # every caption is the same: no negatives at all, zero loss, all counted
    loss, stats = global_triplet_loss(anchors, positives, torch.tensor([4, 4, 4]))
    assert loss.item() == 0.0
    assert stats["no_negative"] == 3.0 and stats["triplets"] == 3.0 and math.isnan(stats["neg_dist"])


def test_category_loss_sums_layers_and_never_uses_same_category() -> None:
    # pairs: (sample 0, cat 5), (sample 0, cat 7), (sample 1, cat 5): prompt of cat 5 appears twice
    prompts = unit(0.0, 90.0, 0.0)
    ids = torch.tensor([5, 7, 5])
    tokens_7 = unit(10.0, 45.0, 80.0)
    tokens_12 = unit(-20.0, 10.0, 60.0)
    m = 0.3
    # layer 7: token 2 (80 deg) is closer to prompt 90 deg (cat 7) and to its own copy of cat 5 -> negative = cat 7
    layer7 = [chord(10) - chord(80) + m, chord(45) - chord(45) + m, chord(80) - chord(10) + m]
    layer12 = [chord(20) - chord(110) + m, chord(80) - chord(10) + m, chord(60) - chord(30) + m]
    expected = sum(max(h, 0) for h in layer7) / 3 + sum(max(h, 0) for h in layer12) / 3
    loss, stats = category_triplet_loss({12: tokens_12, 7: tokens_7}, prompts, ids)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert stats["l7/loss"] == pytest.approx(sum(max(h, 0) for h in layer7) / 3, abs=1e-6)
    assert stats["l12/active"] == pytest.approx(sum(h > 0 for h in layer12) / 3)
    single, _ = category_triplet_loss({12: tokens_12}, prompts, ids)
    assert single.item() == pytest.approx(sum(max(h, 0) for h in layer12) / 3, abs=1e-6)


def test_total_loss_adds_terms_and_global_loss_switch() -> None:
    vst, cst, groups = unit(0.0, 90.0), unit(70.0, 30.0), torch.tensor([1, 2])
    vct, cct, ids = {12: unit(10.0, 45.0, 80.0)}, unit(0.0, 90.0, 0.0), torch.tensor([5, 7, 5])
    h, _ = global_triplet_loss(vst, cst, groups)
    c, _ = category_triplet_loss(vct, cct, ids)
    both, stats = total_loss(LossConfig(), vst, cst, groups, vct, cct, ids)
    assert both.item() == pytest.approx(h.item() + c.item(), abs=1e-9)
    assert stats["loss"] == pytest.approx(h.item() + c.item(), abs=1e-9)
    assert stats["global/loss"] == pytest.approx(h.item()) and stats["category/l12/loss"] == pytest.approx(c.item())
    only_cat, stats = total_loss(LossConfig(global_loss=False), vct=vct, cct=cct, category_ids=ids)
    assert only_cat.item() == pytest.approx(c.item(), abs=1e-9)
    assert not any(key.startswith("global/") for key in stats)
    with pytest.raises(ValueError, match="global_loss is on"):
        total_loss(LossConfig(), vct=vct, cct=cct, category_ids=ids)


# ---------------------------------------------------------------- gradients and mining dynamics


def test_gradients_reach_anchors_positives_and_negatives() -> None:
    anchors = unit(0.0, 90.0, requires_grad=True)
    positives = unit(70.0, 30.0, requires_grad=True)
    loss, stats = global_triplet_loss(anchors, positives, torch.tensor([1, 2]))
    assert stats["active"] == 1.0
    loss.backward()
    assert anchors.grad is not None and positives.grad is not None
    assert (anchors.grad.norm(dim=1) > 1e-3).all()
    assert (positives.grad.norm(dim=1) > 1e-3).all()  # each caption is a positive and a negative

    # gradient matches finite differences of the loss in the anchor (float64)
    def f(a: torch.Tensor) -> torch.Tensor:
        return global_triplet_loss(a, positives.detach(), torch.tensor([1, 2]))[0]

    assert torch.autograd.gradcheck(f, (unit(0.0, 90.0, requires_grad=True),))


def test_hardest_negative_changes_when_embeddings_change() -> None:
    anchors = unit(0.0, 180.0, 270.0)
    groups = torch.tensor([0, 1, 2])
    before = unit(60.0, 80.0, 120.0)
    index, _ = mine_hardest_negatives(pairwise_distance(anchors, before), groups, groups)
    assert index.tolist() == [1, 2, 0]
    loss, _ = hard_negative_triplet_loss(anchors, before, groups)
    hinges = [chord(60) - chord(80) + 0.3, chord(100) - chord(60) + 0.3, chord(150) - chord(150) + 0.3]
    assert loss.item() == pytest.approx(sum(max(h, 0) for h in hinges) / 3, abs=1e-6)
    after = unit(60.0, 80.0, -30.0)  # caption 2 moves next to anchor 0
    index, _ = mine_hardest_negatives(pairwise_distance(anchors, after), groups, groups)
    assert index.tolist() == [2, 0, 0]
    loss, _ = hard_negative_triplet_loss(anchors, after, groups)
    hinges = [chord(60) - chord(30) + 0.3, chord(100) - chord(120) + 0.3, chord(60) - chord(150) + 0.3]
    assert loss.item() == pytest.approx(sum(max(h, 0) for h in hinges) / 3, abs=1e-6)


def bf16_maths_loss(a: torch.Tensor, p: torch.Tensor, margin: float = 0.3) -> float:
    """The two-sample global loss with every operation in bfloat16 (what the loss must NOT do)."""
    a, p = a.bfloat16(), p.bfloat16()
    a, p = a / a.norm(dim=1, keepdim=True), p / p.norm(dim=1, keepdim=True)
    d = ((a[:, None] - p[None]) ** 2).sum(-1).sqrt()  # [2, 2] in bf16
    hinge = torch.clamp(d.diagonal() - d.flip(1).diagonal() + margin, min=0)  # the other sample is the negative
    return float(hinge.mean())


def test_loss_in_float32_and_half_inputs() -> None:
    a32, p32 = unit(0.0, 90.0).float(), unit(70.0, 30.0).float()
    ref, _ = global_triplet_loss(a32.double(), p32.double(), torch.tensor([1, 2]))
    got, _ = global_triplet_loss(a32.bfloat16(), p32.bfloat16(), torch.tensor([1, 2]))
    assert got.dtype == torch.float32
    # bf16 inputs, fp32 maths: the float64 loss of the bf16-rounded inputs, up to float32 rounding ...
    rounded, _ = global_triplet_loss(a32.bfloat16().double(), p32.bfloat16().double(), torch.tensor([1, 2]))
    assert got.item() == pytest.approx(rounded.item(), abs=1e-6)
    # ... and within the inputs' rounding of the exact loss (1.25e-3 off here), where bf16 maths are not (4.2e-3)
    tol = 2e-3
    assert got.item() == pytest.approx(ref.item(), abs=tol)
    assert abs(bf16_maths_loss(a32, p32) - ref.item()) > tol
    assert abs(bf16_maths_loss(a32, p32) - rounded.item()) > 1e-3


# ---------------------------------------------------------------- helpers


def test_stable_ids_normalise_whitespace_and_case() -> None:
    assert stable_id("A  giraffe on the grass ") == stable_id("a giraffe on the grass")
    assert stable_id("a giraffe on the grass") != stable_id("a giraffe on the sand")
    ids = stable_ids(["tree", "Tree", "cat"])
    assert ids.dtype == torch.long and ids[0] == ids[1] and ids[0] != ids[2]
    assert all(0 <= int(i) < 2**63 for i in ids)


def test_scale_grad_keeps_value_and_scales_gradient() -> None:
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    y = scale_grad((x**2).sum(), 3.0)
    assert y.item() == pytest.approx(6.25)
    y.backward()
    assert x.grad.tolist() == pytest.approx([9.0, -12.0])


def test_gather_is_identity_without_process_group() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x
    ids = torch.tensor([1, 2])
    assert torch.equal(gather_tensor(ids), ids)


def test_caption_patch_loss_on_a_hand_made_batch() -> None:
    from sketchseg.train.losses import patch_caption_loss

    # 2 sketches x 3 patches, 2-d embeddings; categories: 0 = (1, 0), 1 = (0, 1)
    patches = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[0.0, 2.0], [5.0, 0.0], [3.0, 4.0]]],
                           requires_grad=True)  # fmt: skip
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    member = torch.tensor([[True, False], [True, True]])  # sketch 0 holds category 0; sketch 1 both
    ink = torch.tensor([[True, True, False], [True, False, False]])  # patch 2 of sketch 0 is blank, ...
    loss, stats = patch_caption_loss(patches, text, member, ink, temperature=0.5, grad_scale=1.0)
    # sketch 0: patch 0 cos (1, 0) -> -log softmax_0(2, 0); patch 1 cos (0, 1) -> -log softmax_0(0, 2)
    # sketch 1: patch 0 holds both categories of its caption: -log(1) = 0
    first, second = torch.tensor([2.0, 0.0]).log_softmax(0)[0], torch.tensor([0.0, 2.0]).log_softmax(0)[0]
    expected = -(first + second) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert stats == {"loss": pytest.approx(expected.item(), rel=1e-6), "patches": 3.0}
    loss.backward()
    assert patches.grad[0, 1].abs().sum() > 0 and patches.grad[0, 2].abs().sum() == 0  # blank patches: no gradient
    assert patches.grad[1].abs().sum() < 1e-6  # a patch whose caption names every candidate: nothing to learn
    none = patch_caption_loss(patches, text, torch.zeros(2, 2, dtype=torch.bool), ink, grad_scale=1.0)[0]
    assert none.item() == 0.0  # sketches without caption categories do not count


def test_caption_patch_loss_joins_the_total_only_when_weighted() -> None:
    vst, cst = torch.randn(4, 8), torch.randn(4, 8)
    ids = torch.arange(4)
    patch = (torch.randn(4, 3, 8), torch.randn(2, 8), torch.ones(4, 2, dtype=torch.bool) & (torch.arange(2) == 0),
             torch.ones(4, 3, dtype=torch.bool))  # fmt: skip
    off, stats_off = total_loss(LossConfig(category_loss=False), vst=vst, cst=cst, group_ids=ids, patch=patch)
    on, stats_on = total_loss(LossConfig(category_loss=False, patch_weight=0.5), vst=vst, cst=cst, group_ids=ids,
                              patch=patch, grad_scale=1.0)  # fmt: skip
    assert "patch/loss" not in stats_off and on.item() == pytest.approx(off.item() + 0.5 * stats_on["patch/loss"])
    with pytest.raises(ConfigError, match="patch_weight"):
        LossConfig(patch_weight=-1.0)
