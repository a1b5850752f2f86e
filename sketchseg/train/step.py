"""One training step of the two-level method (SPEC §3-§4, paper Fig. 2): global level on the scene sketches,
category level on the category-isolated sketches, in one module so that DistributedDataParallel can wrap it.

For a batch of B sketches with up to ``max_categories`` categories each (N (sample, category) pairs):
1. global level: scene tokens VST [B, D] and patch embeddings [B, K, D] from ONE encoder pass; captions -> CST [B, D];
2. per pair: the cosine map of the category over the sample's patches, bicubically upsampled, min-max normalised,
   thresholded with the learnable τ (straight-through), applied to the sketch's strokes -> masked sketch [N, 1, S, S];
3. category level: ONE encoder pass over the N masked sketches returns the category tokens of every exit block;
4. L = L_global + L_category with hard negatives mined over the global batch;
5. optionally (``train.loss.patch_weight`` > 0, beyond the paper) + the caption patch loss on the patch embeddings of
   step 1 (:func:`~sketchseg.train.losses.patch_caption_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sketchseg.config import LossConfig
from sketchseg.errors import ConfigError
from sketchseg.model.network import SketchSegModel
from sketchseg.model.similarity import similarity_maps, upsample_maps
from sketchseg.train.losses import stable_ids, total_loss

INK_SHARE = 0.01  # a patch holds ink when at least this share of its pixels is ink (caption patch loss)


@dataclass
class Batch:
    """images: [B, 1, S, S] intensities in [0, 1]; captions: B strings; categories: per sample, a list of names."""

    images: torch.Tensor
    captions: list[str]
    categories: list[list[str]]


class TwoLevelStep(nn.Module):
    """Computes the training loss of a batch; the category loss reads the exit blocks ``loss.layers`` (none: all)."""

    def __init__(self, model: SketchSegModel, loss: LossConfig) -> None:
        super().__init__()
        self.model = model
        self.loss_cfg = loss
        exits = model.encoder.cross_blocks
        self.layers = tuple(loss.layers or exits)
        bad = [b for b in self.layers if b not in exits]
        if bad:
            raise ConfigError(f"train.loss.layers {bad} are not exit blocks of the model {exits}")

    def patch_inputs(
        self, images: torch.Tensor, patches: torch.Tensor, categories: list[list[str]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The caption patch loss's inputs (:func:`~sketchseg.train.losses.patch_caption_loss`): patches [B, K, D],
        the batch's categories' CCT [U, D], which sketch holds which [B, U] and which patches hold ink [B, K]."""
        model = self.model
        union = sorted({name for names in categories for name in names})
        if union:
            text = model.encode_categories(union).to(patches.dtype)  # [U, D]
        else:  # no category on this rank: one dummy row that no sketch holds
            text = patches.new_ones(1, patches.shape[-1])
        member = torch.tensor([[u in names for u in union] or [False] for names in categories], device=images.device)
        patch = model.encoder.patch_size
        ink = F.avg_pool2d(1.0 - images, patch).flatten(1) > INK_SHARE  # [B, K]
        return patches, text, member, ink

    def forward(self, images: torch.Tensor, captions: list[str], categories: list[list[str]]):
        model = self.model
        device = images.device
        feats = model.encode_sketch(images, need_scene=self.loss_cfg.global_loss)  # scene [B, D], patches [B, K, D]
        cst = model.encode_captions(captions) if self.loss_cfg.global_loss else None  # [B, D]
        group_ids = stable_ids(captions, device=device)
        vct = cct = category_ids = None
        weights = None
        if self.loss_cfg.category_loss:
            pairs = [(b, name) for b, names in enumerate(categories) for name in names]
            dim = feats.patches.shape[-1]
            if pairs:
                b_idx = torch.tensor([b for b, _ in pairs], device=device)  # [N]
                names = [name for _, name in pairs]
                cct = model.encode_categories(names).to(feats.patches.dtype)  # [N, D]
                sim = similarity_maps(feats.patches[b_idx], cct[:, None, :], feats.grid)  # [N, 1, gh, gw]
                maps = upsample_maps(sim, model.image_size, model.cfg.upsample)  # [N, 1, S, S]
                masked, weights = model.masked_sketches(images[b_idx], maps)  # [N, 1, S, S]
                tokens = model.category_tokens(masked, cct)  # {block: [N, D]}
                vct = {b: tokens[b] for b in self.layers}
                category_ids = stable_ids(names, device=device)
            else:  # no category on this rank: empty tensors keep the collective calls of the loss in step
                anchor = feats.patches.sum() * 0.0
                vct = {b: feats.patches.new_zeros(0, dim) + anchor for b in self.layers}
                cct = feats.patches.new_zeros(0, dim)
                category_ids = torch.zeros(0, dtype=torch.long, device=device)
        patch = self.patch_inputs(images, feats.patches, categories) if self.loss_cfg.patch_weight > 0 else None
        loss, stats = total_loss(
            self.loss_cfg,
            vst=feats.scene,
            cst=cst,
            group_ids=group_ids,
            vct=vct,
            cct=cct,
            category_ids=category_ids,
            patch=patch,
        )
        stats["tau"] = float(model.threshold.tau().detach())
        if weights is not None:
            stats["mask_fraction"] = float(weights.detach().mean())
        return loss, stats
