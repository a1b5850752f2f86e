"""SketchSegModel: backbone + dual-path encoder + frozen text tower + learnable threshold (SPEC §2-§3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sketchseg.model.backbone import Backbone, image_mean_std, is_random_init, load_backbone, normalise_intensity
from sketchseg.model.config import ModelConfig
from sketchseg.model.encoder import SketchEncoder, SketchFeatures
from sketchseg.model.finetune import configure_trainable
from sketchseg.model.shifts import sample_major, shift_offsets, shifted_copies
from sketchseg.model.similarity import minmax_normalise, similarity_maps, upsample_maps
from sketchseg.model.text import TextEncoder
from sketchseg.model.threshold import LearnableThreshold, mask_sketch


class SketchSegModel(nn.Module):
    """The whole model. Images enter as intensities [B, 1, S, S] in [0, 1] (1 = white paper, 0 = ink)."""

    def __init__(self, cfg: ModelConfig, backbone: Backbone | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        # a new model on a random backbone: its outputs, images included, say UNTRAINED (a given backbone comes
        # with weights: a checkpoint's, or the one training starts from)
        self.untrained = backbone is None and is_random_init(cfg.backbone)
        backbone = backbone if backbone is not None else load_backbone(cfg.backbone)
        self.origin = backbone.weights  # what the weights were initialised from (kept once through re-saves)
        self.clip_config: dict | None = None  # the open_clip architecture, when known (set by load_model)
        self.weights = f"{backbone.weights}; prompts and cross-attention: new, seed {cfg.seed}"  # shown in outputs
        self.clip = backbone.clip
        self.text = TextEncoder(self.clip, backbone.tokenizer, cfg.templates)
        with torch.random.fork_rng(devices=[]):  # the same config builds the same model; global RNG untouched
            torch.manual_seed(cfg.seed)
            self.encoder = SketchEncoder(self.clip.visual, cfg, text_dim=self.text.embed_dim)
        shift_offsets(self.encoder.patch_size, cfg.patch_shifts)  # checks that the patch splits into n offsets
        self.threshold = LearnableThreshold(cfg.threshold_init, cfg.threshold_temperature)
        mean, std = image_mean_std(self.clip.visual)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        configure_trainable(self, cfg.finetune)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.encoder.image_size

    def normalise(self, intensity: torch.Tensor) -> torch.Tensor:
        """[B, 1, S, S] intensities in [0, 1] -> [B, 3, S, S] CLIP-normalised RGB."""
        return normalise_intensity(intensity, self.pixel_mean, self.pixel_std)

    def encode_sketch(self, intensity: torch.Tensor, need_scene: bool = True) -> SketchFeatures:
        """Global level: scene token [B, D] and patch embeddings [B, K, D]. In evaluation mode without the scene
        token, with ``patch_shifts`` n > 1, the patch embeddings of n x n shifted copies of each sketch
        (:mod:`sketchseg.model.shifts`): [B, n * n * K, D], which :meth:`grid_similarity` averages into finer maps."""
        n = self.cfg.patch_shifts
        if n == 1 or need_scene or self.training:
            return self.encoder(self.normalise(intensity), need_scene=need_scene)
        copies = shifted_copies(intensity, self.encoder.patch_size, n)  # [n * n * B, 1, S, S]
        feats = self.encoder(self.normalise(copies), need_scene=False)
        return SketchFeatures(scene=None, patches=sample_major(feats.patches, n), grid=feats.grid, shifts=n)

    def encode_categories(self, categories: list[str]) -> torch.Tensor:
        """Category names -> [C, D] text embeddings CCT (cached, no gradient); the visual category tokens VCT are
        :meth:`category_tokens`'."""
        return self.text.encode_categories(categories)

    def encode_captions(self, captions: list[str]) -> torch.Tensor:
        """Captions -> [B, D] CST (no gradient)."""
        return self.text.encode_texts(captions)

    def grid_similarity(self, features: SketchFeatures, text: torch.Tensor) -> torch.Tensor:
        """Cosine maps on the patch grid: [B, C, rows, cols]; text: [C, D] or [B, C, D].

        CLIP Surgery's redundant-feature removal (subtract the mean over categories, or the empty prompt's map)
        applies when ``redundancy_removal`` is set.
        """
        f = features
        sim = similarity_maps(f.patches, text, f.grid, shifts=f.shifts, mode=self.cfg.upsample)  # [B, C, gh, gw]
        mode = self.cfg.redundancy_removal
        if mode == "mean":
            sim = sim - sim.mean(dim=1, keepdim=True)
        elif mode == "empty":
            empty = self.text.encode_texts([""]).squeeze(0)  # [D]
            sim = sim - similarity_maps(f.patches, empty[None], f.grid, shifts=f.shifts, mode=self.cfg.upsample)
        return sim

    def category_maps(
        self, features: SketchFeatures, text: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Cosine maps upsampled to ``size`` (default: the model's input size): [B, C, H, W]."""
        return upsample_maps(self.grid_similarity(features, text), size or self.image_size, self.cfg.upsample)

    def masked_sketches(self, intensity: torch.Tensor, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Category-isolated sketches for the category level (Fig. 2e-f).

        intensity: [B, 1, S, S]; maps: [B, C, S, S] raw similarity maps at input size.
        Returns (masked [B, C, S, S] intensities, weights [B, C, S, S]): with ``threshold: learned`` the weights are the
        straight-through mask of the min-max normalised maps, with ``threshold: none`` the normalised maps themselves.
        """
        norm = minmax_normalise(maps)  # [B, C, S, S]
        weights = self.threshold(norm) if self.cfg.threshold == "learned" else norm
        ink = 1.0 - intensity  # [B, 1, S, S]
        return mask_sketch(ink, weights), weights

    def category_tokens(self, masked: torch.Tensor, text: torch.Tensor) -> dict[int, torch.Tensor]:
        """masked: [N, 1, S, S] intensities, text: [N, D] -> {block: [N, D]} VCT from one encoder pass."""
        return self.encoder.category_tokens(self.normalise(masked), text)

    def scene_logits(self, scene: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of scene tokens [B, D] with caption embeddings [M, D] -> [B, M]."""
        return F.normalize(scene, dim=-1) @ F.normalize(captions, dim=-1).T
