"""Training a small CLIP from scratch on synthetic sketches, the offline stand-in for a pretrained CLIP (SPEC §2, §6.2).

Both towers are trained with open_clip's ``ClipLoss`` on two kinds of pairs per step:

* **global pairs**: training scene sketches with their captions, and isolated objects of distinct categories (shrunk
  and placed at random, :mod:`sketchseg.foundation.data`) with "a sketch of a {category}" and a few variants;
* **region pairs**: four-object mosaics, where the patch embeddings of each cell, taken from the path the segmenter
  reads (the v-v path, SPEC §3.2) and averaged, are paired with the cell's object name (CLIM-style region-text
  contrast). This is what makes the stand-in localise within minutes: scene captions alone teach the global token,
  not the patch tokens. No label of a scene sketch is used.

Sketches are mostly white paper. After every step the patch-embedding filters are re-centred to zero mean, which
makes the patch tokens blind to the blank page; without it the tiny CLIP collapses with a short warm-up (the loss
stays at ln(batch) for hundreds of steps, measured). Recipe otherwise as measured in STACK.md: AdamW lr 1e-3,
betas (0.9, 0.98), weight decay 0.1, linear warm-up then cosine decay, gradient clipping 1.0, horizontal flips of
global images, fp32.

A step computes only what its losses read (bench/foundation.py): the rows of the token embedding the training texts
use (:class:`~sketchseg.foundation.vocabulary.CompactVocabulary`), each distinct text once and in two text passes cut
at their own lengths (captions, names), the scene token of global images and the v-v patches of mosaics in separate
vision passes. Each of these gives the updates of computing everything (up to float rounding; tests).

Training takes ``steps`` optimiser steps, so the same parameters give the same weights on any machine (same torch
build and thread count). ``minutes`` optionally caps wall-clock time as well: the cosine schedule is then laid out
over the number of steps that fit, re-estimated as training goes (:class:`StepBudget`), and the weights depend on the
machine's speed and load; the report says so (``"reproducible": false``).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from sketchseg.config import FoundationConfig
from sketchseg.errors import DataError
from sketchseg.foundation.data import OBJECT_TEMPLATES, ContrastiveData
from sketchseg.foundation.vocabulary import CompactVocabulary
from sketchseg.model.backbone import image_mean_std, normalise_intensity
from sketchseg.model.config import ModelConfig
from sketchseg.model.encoder import SketchEncoder
from sketchseg.model.finetune import center_patch_filters
from sketchseg.model.text import text_forward
from sketchseg.train.schedule import warmup_cosine

log = logging.getLogger(__name__)

def region_features(patches: torch.Tensor, region_index: torch.Tensor) -> torch.Tensor:
    """Mean patch embedding of each mosaic cell: patches [M, K, D], region_index [R, P] -> [M * R, D]."""
    m, _, d = patches.shape
    cells = patches[:, region_index.flatten()].view(m, *region_index.shape, d)  # [M, R, P, D]
    return cells.mean(dim=2).reshape(-1, d)


def text_forward_in_two(clip: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """:func:`text_forward` of tokens [N, L] in two passes, the shorter texts and the longer ones, split where the
    two passes compute the fewest token positions (each pass is cut at its own longest text): the scene captions run
    to ~25 tokens, the object and cell names to ~8. Rows in input order: [N, D]."""
    lengths = tokens.argmax(dim=-1) + 1  # [N] up to the end-of-text token
    order = torch.argsort(lengths, stable=True)  # [N] shortest first
    ranked = lengths[order]
    n = len(ranked)
    # positions computed when the k shortest texts form the first pass: k * ranked[k - 1] + (n - k) * ranked[-1]
    k = torch.arange(1, n + 1)
    cost = k * ranked + (n - k) * ranked[-1]
    split = int(cost.argmin()) + 1
    if split >= n:
        return text_forward(clip, tokens)
    feats = torch.cat([text_forward(clip, tokens[order[:split]]), text_forward(clip, tokens[order[split:]])])
    return feats[torch.argsort(order)]  # [N, D]


def unique_text_forward(clip: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """:func:`text_forward_in_two` of tokens [N, L] with every distinct text computed once (the object and cell names
    of a step repeat: 72 names drawn from 96 captions): [N, D] in input order."""
    distinct, inverse = torch.unique(tokens, dim=0, return_inverse=True)  # [U, L], [N]
    return text_forward_in_two(clip, distinct)[inverse]


class StepBudget:
    """How many optimiser steps fit in a wall-clock budget of ``seconds`` (0 = no budget: ``max_steps``).

    The first ``settle`` steps are slower than the rest (allocations, first touches of memory), so the rate is
    measured from step ``settle`` on and the estimate renewed every ``every`` steps: the schedule is laid out over the
    steps that really fit and the whole budget is used (estimating once, from the first 20 steps, left up to a
    quarter of the budget unused, measured)."""

    def __init__(self, max_steps: int, seconds: float, settle: int = 20, every: int = 50) -> None:
        self.total = max_steps
        self.max_steps, self.seconds, self.settle, self.every = max_steps, seconds, settle, every
        self._mark: float | None = None  # elapsed seconds at step ``settle``

    def update(self, step: int, elapsed: float) -> int:
        """The step count to plan for, after ``step`` steps took ``elapsed`` seconds."""
        if self.seconds <= 0 or step < self.settle:
            return self.total
        if step == self.settle or self._mark is None:
            self._mark = elapsed
            per_step = elapsed / step  # a first, pessimistic, estimate
        elif (step - self.settle) % self.every == 0:
            per_step = (elapsed - self._mark) / (step - self.settle)
        else:
            return self.total
        fit = step + int(max(self.seconds - elapsed, 0.0) / max(per_step, 1e-9))
        self.total = max(step + 1, min(self.max_steps, fit))
        return self.total

    def exhausted(self, elapsed: float) -> bool:
        return self.seconds > 0 and elapsed >= self.seconds


class _Sampler:
    """Draws the images and caption tokens of one step, deterministically from ``gen``."""

    def __init__(self, data: ContrastiveData, tokenizer: object, cfg: FoundationConfig, gen: torch.Generator) -> None:
        self.data, self.gen = data, gen
        n_cat = len(data.categories)
        self.scene_tokens = tokenizer(data.scene_captions) if data.scene_captions else None  # [Ns, L]
        self.object_tokens = tokenizer(data.object_captions()).view(n_cat, len(OBJECT_TEMPLATES), -1)  # [C, T, L]
        self.by_category = [torch.nonzero(data.object_labels == c).flatten() for c in range(n_cat)]
        has_objects = len(data.object_labels) > 0
        self.n_obj = int(round(cfg.batch_size * cfg.objects_fraction)) if has_objects else 0
        if not data.scene_captions:
            self.n_obj = cfg.batch_size if has_objects else 0
        self.n_scene = cfg.batch_size - self.n_obj
        mosaics = data.mosaic_images
        self.n_mosaic = cfg.mosaics_per_step if mosaics is not None and len(mosaics) else 0
        if self.n_obj + self.n_scene == 0 or (self.n_scene and not data.scene_captions):
            raise DataError("no training images for the contrastive foundation (no scenes and no objects)")

    def _randint(self, high: int, n: int) -> torch.Tensor:
        return torch.randint(high, (n,), generator=self.gen)

    def objects(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_obj`` objects of distinct categories (as far as the categories go): images uint8, tokens."""
        n_cat = len(self.by_category)
        rounds = -(-self.n_obj // n_cat)
        cats = torch.cat([torch.randperm(n_cat, generator=self.gen) for _ in range(rounds)])[: self.n_obj]
        picks = [int(self.by_category[c][self._randint(len(self.by_category[c]), 1)]) for c in cats.tolist()]
        templates = self._randint(len(OBJECT_TEMPLATES), self.n_obj)
        return self.data.object_images[picks], self.object_tokens[cats, templates]

    def scenes(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._randint(len(self.data.scene_captions), self.n_scene)
        return self.data.scene_images[idx], self.scene_tokens[idx]

    def mosaics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_mosaic`` mosaics: images uint8 [M, S, S] and the tokens of their cells' names [M * 4, L]."""
        idx = self._randint(len(self.data.mosaic_images), self.n_mosaic)
        cats = self.data.mosaic_labels[idx].flatten()  # [M * 4]
        templates = self._randint(len(OBJECT_TEMPLATES), len(cats))
        return self.data.mosaic_images[idx], self.object_tokens[cats, templates]


def train_clip(
    clip: torch.nn.Module,
    tokenizer: object,
    data: ContrastiveData,
    cfg: FoundationConfig,
    model_cfg: ModelConfig | None = None,
    progress: bool = True,
    compact_vocabulary: bool = True,
) -> dict:
    """Contrastive training of both towers in place (:func:`_train_clip`). With ``compact_vocabulary`` only the
    token-embedding rows of the tokens ``data``'s texts use are trained (:class:`CompactVocabulary`: the same
    updates without the dense gradient, clipping and AdamW update of 6.3M parameters that never change but by weight
    decay; bench/foundation.py measures both); the rows of other tokens keep their values."""
    if not (compact_vocabulary and CompactVocabulary.supports(clip)):
        return _train_clip(clip, tokenizer, data, cfg, model_cfg, progress)
    with CompactVocabulary(clip, tokenizer, data.texts()) as vocabulary:
        return _train_clip(clip, vocabulary.tokenize, data, cfg, model_cfg, progress)


def _train_clip(
    clip: torch.nn.Module,
    tokenizer: object,
    data: ContrastiveData,
    cfg: FoundationConfig,
    model_cfg: ModelConfig | None = None,
    progress: bool = True,
) -> dict:
    """Contrastive training of both towers in place.

    ``model_cfg`` chooses the patch path of the region loss (its ``vv`` and ``vv_layers``; default: the segmenter's
    defaults). Returns {"steps", "planned_steps", "reproducible", "seconds", "first_loss", "final_loss", ...};
    "seconds" is the one machine-dependent figure.
    """
    from open_clip.loss import ClipLoss

    from sketchseg.progress import progress as progress_bar

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = _Sampler(data, tokenizer, cfg, gen)
    mc = model_cfg or ModelConfig()
    path = ModelConfig(num_prompts=0, vv=mc.vv, vv_layers=mc.vv_layers, cross_attention=False)
    encoder = SketchEncoder(clip.visual, path, text_dim=clip.text_projection.shape[-1])
    region_index = data.layout.region_index() if sampler.n_mosaic and data.layout is not None else None
    if sampler.n_mosaic and (region_index is None or data.layout.grid != encoder.grid[0]):
        raise DataError(f"the mosaics were laid out for another patch grid than the model's {encoder.grid}")
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in image_mean_std(clip.visual))

    def normalise(gray: torch.Tensor) -> torch.Tensor:
        return normalise_intensity(gray, mean, std)

    params = [p for p in clip.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        fused=True,  # one kernel per step instead of a loop over parameters: 10x faster on the 6.3M-row vocabulary
    )
    loss_fn = ClipLoss()
    if cfg.center_patch_filters:
        center_patch_filters(clip)
    clip.train()
    capped = bool(cfg.minutes)
    budget = StepBudget(cfg.steps, (cfg.minutes or 0.0) * 60.0)
    total = budget.total
    if capped:
        log.warning(
            "foundation.minutes=%g caps the training by wall-clock time: how many of the %d steps fit, and so the "
            "weights and every result after them, depend on this machine's speed and load; set foundation.minutes: "
            "null for a reproducible run", cfg.minutes, cfg.steps,
        )  # fmt: skip
    log.info(
        "foundation: training %d steps of %d pairs + %d mosaics on %d CPU threads",
        total, sampler.n_obj + sampler.n_scene, sampler.n_mosaic, torch.get_num_threads(),
    )  # fmt: skip
    start = time.time()
    losses: list[float] = []
    region_losses: list[float] = []
    bar = progress_bar(total=total, desc="foundation", unit="step", enabled=progress)
    step = 0
    while step < total:
        images, tokens = [], []
        if sampler.n_obj:
            im, tok = sampler.objects()
            images.append(im)
            tokens.append(tok)
        if sampler.n_scene:
            im, tok = sampler.scenes()
            images.append(im)
            tokens.append(tok)
        glob = torch.cat(images).float().div_(255.0).unsqueeze(1)  # [G, 1, S, S]
        flip = torch.rand(len(glob), generator=gen) < 0.5
        glob[flip] = glob[flip].flip(-1)
        n_glob = len(glob)
        if sampler.n_mosaic:
            # mosaics are not flipped: a flip would swap the cells' names
            mosaic_images, mosaic_tokens = sampler.mosaics()
        for group in opt.param_groups:
            group["lr"] = cfg.lr * warmup_cosine(step, cfg.warmup_steps, total)
        scale = clip.logit_scale.exp()
        # global images need only the scene token, mosaics only the v-v patches: two passes, so that neither
        # computes (forward and backward) the path the other needs
        img_f = F.normalize(encoder(normalise(glob), need_scene=True).scene, dim=-1)  # [G, D]
        if sampler.n_mosaic:
            tokens.append(mosaic_tokens)
        text_f = F.normalize(unique_text_forward(clip, torch.cat(tokens)), dim=-1)  # [G (+ 4M), D]
        txt_f = text_f[:n_glob]  # [G, D]
        loss = loss_fn(img_f, txt_f, scale)
        losses.append(float(loss.detach()))
        if sampler.n_mosaic:
            mosaic_x = normalise(mosaic_images.float().div_(255.0).unsqueeze(1))  # [M, 3, S, S]
            patches = encoder(mosaic_x, need_scene=False).patches  # [M, K, D]
            reg_f = F.normalize(region_features(patches, region_index), dim=-1)  # [4M, D]
            name_f = text_f[n_glob:]  # [4M, D]
            region_loss = loss_fn(reg_f, name_f, scale)
            region_losses.append(float(region_loss.detach()))
            loss = loss + cfg.region_weight * region_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(100))
        if cfg.center_patch_filters:
            center_patch_filters(clip)
        step += 1
        bar.update(1)
        if step % 20 == 0:
            shown = {"loss": f"{np.mean(losses[-20:]):.3f}"}
            if region_losses:
                shown["region"] = f"{np.mean(region_losses[-20:]):.3f}"
            bar.set_postfix(shown)
        if capped:  # lay the cosine schedule out over the steps that fit in the time budget
            elapsed = time.time() - start
            planned = budget.update(step, elapsed)
            if planned != total:
                total = planned
                bar.total = total
                bar.refresh()
                log.debug("foundation: %d steps fit in %.1f minutes", total, cfg.minutes)
            if step < total and budget.exhausted(elapsed):
                log.info("foundation: time budget used, stopping at step %d of %d", step, total)
                break
    bar.close()
    clip.eval()

    def tail(values: list[float], n: int) -> float | None:
        return float(np.mean(values[-n:])) if values else None

    return {
        "steps": step,
        "planned_steps": cfg.steps,
        # with a wall-clock cap the steps, and so the weights, depend on the machine
        "reproducible": not capped,
        "seconds": round(time.time() - start, 1),
        "first_loss": float(np.mean(losses[:20])) if losses else None,
        "final_loss": tail(losses, 50),
        "first_region_loss": float(np.mean(region_losses[:20])) if region_losses else None,
        "final_region_loss": tail(region_losses, 50),
    }
