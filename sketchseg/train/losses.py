"""Triplet losses with hard-negative mining over the global batch (SPEC §4, paper Eq. 1 and 4), one per level of the
two-level method, and their sum (:func:`total_loss`, configured by :class:`sketchseg.config.LossConfig`).

Global level (``train.loss.global_loss``): anchor = the sketch's scene token VST_i, positive = its caption embedding
CST_i, negative = the caption of the global batch closest to the anchor among captions that are not duplicates of
the anchor's own caption. Duplicates are given by integer group ids (equal id = same caption); a duplicate is never a
negative, even when it is the closest caption (the authors' code used copies of the same sketch as negatives).

Category level (``train.loss.category_loss``): anchor = the category token VCT after each chosen block, positive =
the category's prompt embedding CCT, negative = the closest prompt of a different category (integer category id) in
the global batch. The per-layer losses are summed ("multi-layer loss").

Each triplet contributes `max(d(a, p) - d(a, n) + margin, 0)`; the loss is the mean over all anchors of the
global batch. An anchor with no valid negative (every candidate is a duplicate) contributes 0, still counts in
the mean's denominator, and is reported in the stats. Ties between equally close negatives go to the lowest
global index.

Distances (`distance=`): "euclidean" = Euclidean distance between L2-normalised embeddings (default, SPEC §4),
"cosine" = 1 - cosine similarity. Both normalise internally and compute in float32 or wider.

Distributed training (SPEC §8). Every rank all-gathers anchors, positives and ids (ranks may hold different
numbers of rows), with gradient on its own rows only, and computes the same global loss over ALL anchors of the
global batch. Rank r's backward therefore yields dL/d(rows of rank r), which includes the gradient that reaches
rank r's captions when they serve as negatives (or positives) of other ranks' anchors. DistributedDataParallel
averages gradients over the N ranks, so the gradient of the returned loss is multiplied by N (its value is
unchanged): N processes x batch B then give the same loss value and the same parameter gradients as 1 process
with batch N*B, the rows in rank order. Pass `grad_scale=1.0` if gradients are summed rather than averaged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from sketchseg.config import LossConfig, check_distance
from sketchseg.train.distributed import gather_tensor, gather_with_grad, world_size

DEFAULT_MARGIN = LossConfig.margin


def stable_id(text: str) -> int:
    """A process-independent 63-bit integer id of a caption or category name, for group / category ids.

    Whitespace is collapsed and case folded, so "A cat " and "a cat" are the same caption. Unlike `hash()`,
    the value is identical on every rank and every run, so ids made on different ranks agree.
    """
    key = " ".join(text.split()).casefold().encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def stable_ids(texts: Sequence[str], device: torch.device | None = None) -> torch.Tensor:
    """`stable_id` of each text as a long tensor [len(texts)]."""
    return torch.tensor([stable_id(t) for t in texts], dtype=torch.long, device=device)


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """Distances between the rows of a [N, D] and b [M, D] after L2 normalisation -> [N, M]."""
    check_distance(distance)
    dtype = torch.promote_types(a.dtype, torch.float32)
    a_n = F.normalize(a.to(dtype), dim=-1)  # [N, D]
    b_n = F.normalize(b.to(dtype), dim=-1)  # [M, D]
    if distance == "cosine":
        return 1.0 - a_n @ b_n.T  # [N, M]
    # exact differences (not the |a|^2 + |b|^2 - 2ab expansion): precise near 0 and zero-safe in backward
    return torch.cdist(a_n, b_n, compute_mode="donot_use_mm_for_euclid_dist")  # [N, M]


def mine_hardest_negatives(
    dist: torch.Tensor, anchor_groups: torch.Tensor, candidate_groups: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each anchor, the index of the closest candidate whose group differs from the anchor's group.

    dist: [N, M] anchor-to-candidate distances; anchor_groups: [N]; candidate_groups: [M] integer ids.
    Returns (index [N] long, has_negative [N] bool). Where has_negative is False (every candidate shares the
    anchor's group) the index is 0 and must be ignored. Ties go to the lowest candidate index.
    """
    if dist.dim() != 2 or dist.shape != (anchor_groups.shape[0], candidate_groups.shape[0]):
        raise ValueError(
            f"distance matrix {tuple(dist.shape)} does not match {anchor_groups.shape[0]} anchors x "
            f"{candidate_groups.shape[0]} candidates"
        )
    same = anchor_groups.reshape(-1, 1) == candidate_groups.reshape(1, -1)  # [N, M]
    masked = dist.detach().masked_fill(same, math.inf)  # [N, M]
    has_negative = (~same).any(dim=1)  # [N]
    index = torch.where(has_negative, masked.argmin(dim=1), torch.zeros_like(has_negative, dtype=torch.long))
    return index, has_negative


class _ScaleGrad(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by a constant in the backward pass."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """`x` unchanged, with its gradient multiplied by `scale` in backward."""
    if scale == 1.0 or not x.requires_grad:
        return x
    return _ScaleGrad.apply(x, float(scale))


def hard_negative_triplet_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    groups: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    distance: str = "euclidean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Hard-negative triplet loss over one (already global) batch, no communication.

    anchors: [N, D]; positives: [N, D], row i is anchor i's positive; groups: [N] integer ids. Every row of
    `positives` is a candidate negative for every anchor of a different group. Returns (mean loss over the N
    anchors, stats) with stats: loss, pos_dist (mean over anchors), neg_dist (mean over anchors that have a
    negative; NaN if none), active (fraction of anchors with a positive hinge), triplets (N), no_negative.
    """
    n = anchors.shape[0]
    if positives.shape[0] != n or groups.shape[0] != n:
        raise ValueError(
            f"triplet loss needs as many positives and group ids as anchors: got {n} anchors, "
            f"{positives.shape[0]} positives, {groups.shape[0]} group ids"
        )
    if n == 0:
        zero = anchors.sum() * 0.0 + positives.sum() * 0.0
        stats = {
            "loss": 0.0,
            "pos_dist": math.nan,
            "neg_dist": math.nan,
            "active": 0.0,
            "triplets": 0.0,
            "no_negative": 0.0,
        }
        return zero.float(), stats
    dist = pairwise_distance(anchors, positives, distance)  # [N, N]
    neg_index, has_neg = mine_hardest_negatives(dist, groups, groups)  # [N], [N]
    rows = torch.arange(n, device=dist.device)
    d_pos = dist[rows, rows]  # [N] positive of anchor i = global row i
    d_neg = dist[rows, neg_index]  # [N]
    hinge = torch.clamp(d_pos - d_neg + margin, min=0.0) * has_neg.to(dist.dtype)  # [N]
    loss = hinge.sum() / n
    n_neg = int(has_neg.sum().item())
    stats = {
        "loss": float(loss.item()),
        "pos_dist": float(d_pos.detach().mean().item()),
        "neg_dist": float(d_neg.detach()[has_neg].mean().item()) if n_neg else math.nan,
        "active": float((hinge.detach() > 0).float().mean().item()),
        "triplets": float(n),
        "no_negative": float(n - n_neg),
    }
    return loss, stats


def _resolve_scale(grad_scale: float | None) -> float:
    return float(world_size()) if grad_scale is None else float(grad_scale)


def global_triplet_loss(
    vst: torch.Tensor,
    cst: torch.Tensor,
    group_ids: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    distance: str = "euclidean",
    grad_scale: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The global level's triplet loss (Eq. 1) over the global batch.

    vst: [B, D] this rank's sketch scene tokens; cst: [B, D] their captions' embeddings; group_ids: [B] integer
    caption ids (equal = duplicate caption, never a negative; see `stable_ids`). `grad_scale` defaults to the
    world size (DDP averages gradients). Returns (loss, stats), the stats of `hard_negative_triplet_loss`.
    """
    if vst.dim() != 2 or cst.shape != vst.shape:
        raise ValueError(
            f"the global loss expects VST and CST of equal shape [B, D], got {tuple(vst.shape)} and {tuple(cst.shape)}"
        )
    anchors = gather_with_grad(vst)  # [B_global, D]
    positives = gather_with_grad(cst)  # [B_global, D]
    groups = gather_tensor(group_ids.to(device=vst.device, dtype=torch.long))  # [B_global]
    loss, stats = hard_negative_triplet_loss(anchors, positives, groups, margin, distance)
    return scale_grad(loss, _resolve_scale(grad_scale)), stats


def category_triplet_loss(
    vct: Mapping[int, torch.Tensor],
    cct: torch.Tensor,
    category_ids: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    distance: str = "euclidean",
    grad_scale: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The category level's triplet loss (Eq. 4), summed over layers, over the global batch.

    vct: layer -> [N, D] category tokens of this rank's N (sample, category) pairs (N may differ across ranks);
    cct: [N, D] the categories' prompt embeddings; category_ids: [N] integer category ids (the same category in
    another sample is never a negative). Returns (sum over layers of the per-layer mean loss, stats) with the
    per-layer stats under "l{layer}/..." and "loss" for the sum.
    """
    if not vct:
        raise ValueError("category loss needs category tokens for at least one layer")
    if cct.dim() != 2 or category_ids.shape[0] != cct.shape[0]:
        raise ValueError(
            f"category loss expects CCT [N, D] and N category ids, got {tuple(cct.shape)} and "
            f"{tuple(category_ids.shape)}"
        )
    positives = gather_with_grad(cct)  # [N_global, D]
    ids = gather_tensor(category_ids.to(device=cct.device, dtype=torch.long))  # [N_global]
    total: torch.Tensor | None = None
    stats: dict[str, float] = {}
    for layer in sorted(vct):
        tokens = vct[layer]
        if tokens.shape != cct.shape:
            raise ValueError(
                f"category tokens of layer {layer} have shape {tuple(tokens.shape)}, "
                f"expected {tuple(cct.shape)} like CCT"
            )
        loss_l, stats_l = hard_negative_triplet_loss(gather_with_grad(tokens), positives, ids, margin, distance)
        total = loss_l if total is None else total + loss_l
        stats.update({f"l{layer}/{key}": value for key, value in stats_l.items()})
    assert total is not None
    stats["loss"] = float(total.item())
    return scale_grad(total, _resolve_scale(grad_scale)), stats


def patch_caption_loss(
    patches: torch.Tensor,
    text: torch.Tensor,
    member: torch.Tensor,
    ink: torch.Tensor,
    temperature: float = 0.05,
    grad_scale: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The caption patch loss (an option beyond the paper, ``train.loss.patch_weight``): every patch that holds ink
    should name one of its sketch's caption categories rather than another category of the batch.

    patches: [B, K, D] patch embeddings (the path the segmenter reads); text: [U, D] the batch's categories (the union
    of its captions' categories); member: bool [B, U], category u is in sketch b's caption; ink: bool [B, K], patch k
    of sketch b holds ink. Per inked patch of a sketch with categories, ``-log sum_{u in caption} softmax_u(cos /
    temperature)`` (multiple-instance: the caption says which categories the sketch holds, not where); the loss is
    the mean over the inked patches of the GLOBAL batch, so that N processes x batch B give the gradients of one
    process with batch N x B (counts all-reduced; gradient scaled as the triplet losses', see the module doc).
    A sketch of one category gets every inked patch labelled: captions of single objects supervise like labels.
    """
    p = F.normalize(patches.float(), dim=-1)  # [B, K, D]
    t = F.normalize(text.float(), dim=-1)  # [U, D]
    logp = (p @ t.T / temperature).log_softmax(dim=-1)  # [B, K, U]
    pos = logp.masked_fill(~member[:, None, :], float("-inf")).logsumexp(dim=-1)  # [B, K]
    use = ink & member.any(dim=1, keepdim=True)  # [B, K]
    local_sum = -(pos.masked_fill(~use, 0.0)).sum()
    count = gather_tensor(use.sum().reshape(1).to(torch.float32)).sum()
    total_sum = gather_tensor(local_sum.detach().reshape(1)).sum()
    loss = local_sum / count.clamp_min(1.0)
    return scale_grad(loss, _resolve_scale(grad_scale)), {
        "loss": float(total_sum / count.clamp_min(1.0)),
        "patches": float(count),
    }


def total_loss(
    cfg: LossConfig,
    vst: torch.Tensor | None = None,
    cst: torch.Tensor | None = None,
    group_ids: torch.Tensor | None = None,
    vct: Mapping[int, torch.Tensor] | None = None,
    cct: torch.Tensor | None = None,
    category_ids: torch.Tensor | None = None,
    grad_scale: float | None = None,
    patch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L = L_global + L_category (SPEC §4), each term included when enabled in `cfg`, plus ``patch_weight`` x the
    caption patch loss when it is on (``patch``: the inputs of :func:`patch_caption_loss`).

    Inputs as in `global_triplet_loss` and `category_triplet_loss`; a disabled term's inputs may be None. Returns
    (loss, stats) with "loss", "global/...", "category/..." and "patch/..." entries (floats, global-batch values).
    """
    terms: list[torch.Tensor] = []
    stats: dict[str, float] = {}
    if cfg.global_loss:
        if vst is None or cst is None or group_ids is None:
            raise ValueError("global_loss is on but VST, CST or the caption group ids were not given")
        loss_h, stats_h = global_triplet_loss(vst, cst, group_ids, cfg.margin, cfg.distance, grad_scale)
        terms.append(loss_h)
        stats.update({f"global/{key}": value for key, value in stats_h.items()})
    if cfg.category_loss:
        if vct is None or cct is None or category_ids is None:
            raise ValueError("category_loss is on but the category tokens, CCT or category ids were not given")
        loss_c, stats_c = category_triplet_loss(vct, cct, category_ids, cfg.margin, cfg.distance, grad_scale)
        terms.append(loss_c)
        stats.update({f"category/{key}": value for key, value in stats_c.items()})
    if cfg.patch_weight > 0:
        if patch is None:
            raise ValueError("patch_weight > 0 but the patch embeddings, texts and masks were not given")
        loss_p, stats_p = patch_caption_loss(*patch, temperature=cfg.patch_temperature, grad_scale=grad_scale)
        terms.append(cfg.patch_weight * loss_p)
        stats.update({f"patch/{key}": value for key, value in stats_p.items()})
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    stats["loss"] = float(loss.item())
    return loss, stats
