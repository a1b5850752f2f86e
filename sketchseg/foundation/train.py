"""Training a small CLIP from scratch on synthetic sketches, the offline stand-in for a pretrained CLIP (SPEC §2, §6.2).

Both towers are trained contrastively with open_clip's own ``ClipLoss`` on a mix of
- isolated single-object sketches of the generator's ``objects`` part, captioned "a sketch of a {category}" (and a few
  template variants), which teach the object concepts real CLIP learned from countless isolated objects, and
- training scene sketches with their captions.
Stroke and pixel labels are never used. Every image is decoded once, resized to the model's input size and kept in
memory as uint8; captions are tokenised once. Recipe (STACK.md, measured): AdamW lr 1e-3, betas (0.9, 0.98),
weight decay 0.1, linear warm-up then cosine decay, gradient clipping 1.0, horizontal flips, fp32.

The step budget is ``max_steps``; ``minutes`` additionally caps wall-clock time (the cosine schedule is then laid out
over the number of steps that fit, estimated from the first steps). For a reproducible run set ``minutes: 0``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sketchseg.config import FoundationConfig
from sketchseg.errors import DataError
from sketchseg.model.text import text_forward

log = logging.getLogger(__name__)

# "a sketch of {}" is the segmentation prompt (SPEC §3.4); the others add variety.
OBJECT_TEMPLATES = ("a sketch of {}", "a sketch of a {}", "a drawing of a {}", "a {}")
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ContrastiveData:
    """Images as uint8 [N, S, S] and their captions; ``kind`` marks objects (1) and scenes (0)."""

    images: torch.Tensor
    captions: list[str]
    kind: torch.Tensor


def _load_resized(args: tuple[str, int]) -> np.ndarray:
    path, size = args
    with Image.open(path) as img:
        return np.asarray(img.convert("L").resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


def load_images(paths: list[Path], size: int, workers: int) -> torch.Tensor:
    """Decode and resize every image once: uint8 [N, size, size]."""
    jobs = [(str(p), size) for p in paths]
    if workers > 1 and len(jobs) > 256:
        with ProcessPoolExecutor(workers) as pool:
            arrays = list(pool.map(_load_resized, jobs, chunksize=64))
    else:
        arrays = [_load_resized(j) for j in jobs]
    return torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros(0, size, size, dtype=torch.uint8)


def load_contrastive_data(root: Path, size: int, workers: int, seed: int) -> ContrastiveData:
    """Training scenes (train split) and every isolated object of ``root/objects``."""
    from sketchseg.data.fscoco import read_split

    scenes = read_split(root, "train", on_error="skip")
    labels_file = root / "objects" / "labels.json"
    if not labels_file.is_file():
        raise DataError(
            f"{labels_file}: missing; the offline foundation needs the synthetic generator's objects part "
            "(sketchseg data synth --objects-per-category K), or use foundation.mode: pretrained"
        )
    labels: dict[str, str] = json.loads(labels_file.read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    object_ids = sorted(labels)
    object_paths = [root / "objects" / "images" / f"{i}.png" for i in object_ids]
    object_captions = [OBJECT_TEMPLATES[rng.integers(len(OBJECT_TEMPLATES))].format(labels[i]) for i in object_ids]
    paths = [r.image_path for r in scenes] + object_paths
    captions = [r.caption for r in scenes] + object_captions
    kind = torch.tensor([0] * len(scenes) + [1] * len(object_paths), dtype=torch.uint8)
    return ContrastiveData(images=load_images(paths, size, workers), captions=captions, kind=kind)


def place_objects(imgs: torch.Tensor, min_scale: float, gen: torch.Generator) -> torch.Tensor:
    """Shrink each isolated object [B, 1, S, S] by a random factor in [min_scale, 1] and move it to a random place
    on white paper, so that object concepts are also learned at the size objects have in scenes."""
    b = imgs.shape[0]
    scale = min_scale + (1 - min_scale) * torch.rand(b, generator=gen)  # [B]
    shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2, generator=gen) - 1)  # [B, 2], keeps the object inside
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = -shift / scale[:, None]
    grid = F.affine_grid(theta, list(imgs.shape), align_corners=False)
    ink = F.grid_sample(1 - imgs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return 1 - ink


def lr_at(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train_clip(
    clip: torch.nn.Module,
    tokenizer: object,
    data: ContrastiveData,
    cfg: FoundationConfig,
    progress: bool = True,
) -> dict:
    """Contrastive training of both towers in place; returns {"steps", "seconds", "final_loss", "losses"}."""
    from open_clip.loss import ClipLoss
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    tokens = tokenizer(data.captions)  # [N, 77]
    obj_idx = torch.nonzero(data.kind == 1).flatten()
    scene_idx = torch.nonzero(data.kind == 0).flatten()
    n_obj = int(round(cfg.batch_size * cfg.objects_fraction)) if len(obj_idx) else 0
    n_obj = min(n_obj, cfg.batch_size) if len(scene_idx) else cfg.batch_size
    n_scene = cfg.batch_size - n_obj
    if (n_obj and not len(obj_idx)) or (n_scene and not len(scene_idx)):
        raise DataError("no training images for the contrastive foundation (empty objects and scenes)")
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    params = [p for p in clip.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    loss_fn = ClipLoss()
    clip.train()
    total = cfg.max_steps
    budget = cfg.minutes * 60.0
    start = time.time()
    losses: list[float] = []
    bar = tqdm(total=total, desc="foundation", disable=not progress, unit="step")
    step = 0
    while step < total:
        parts = []
        if n_obj:
            parts.append(obj_idx[torch.randint(len(obj_idx), (n_obj,), generator=gen)])
        if n_scene:
            parts.append(scene_idx[torch.randint(len(scene_idx), (n_scene,), generator=gen)])
        idx = torch.cat(parts)
        imgs = data.images[idx].float().div_(255.0).unsqueeze(1)  # [B, 1, S, S]
        if n_obj and cfg.object_min_scale < 1.0:
            imgs[:n_obj] = place_objects(imgs[:n_obj], cfg.object_min_scale, gen)
        flip = torch.rand(len(idx), generator=gen) < 0.5
        imgs[flip] = imgs[flip].flip(-1)
        x = (imgs.expand(-1, 3, -1, -1) - mean) / std
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_at(step, total, cfg.warmup_steps)
        img_f = F.normalize(clip.encode_image(x), dim=-1)
        txt_f = F.normalize(text_forward(clip, tokens[idx]), dim=-1)
        loss = loss_fn(img_f, txt_f, clip.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.detach()))
        step += 1
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if budget > 0 and step == 20:
            # lay the cosine schedule out over the steps that fit in the time budget
            per_step = (time.time() - start) / step
            fit = int(budget / per_step)
            if fit < total:
                total = max(step + 1, fit)
                bar.total = total
                log.info("foundation: %.3f s/step, %d steps fit in %.1f minutes", per_step, total, cfg.minutes)
        if budget > 0 and time.time() - start > budget * 1.05:
            log.warning("foundation: time budget exceeded, stopping at step %d of %d", step, total)
            break
    bar.close()
    clip.eval()
    return {
        "steps": step,
        "seconds": round(time.time() - start, 1),
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "first_loss": float(np.mean(losses[:20])) if losses else None,
    }
