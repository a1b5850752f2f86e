"""Upper bounds for fine-tuning on a foundation, scored by the evaluation protocol (SPEC §7).

Two bounds tell whether a segmentation target is within reach of a foundation and a set of trainable parameters:

- **grid oracle**: every patch of the model's grid takes the ground-truth label fractions of its pixels, the maps are
  upsampled like a model's similarity maps and scored by the same evaluator: the best any model that labels the
  patch grid can reach.
- **label probe**: the trainable parameters of a fine-tuning mode fitted to per-patch ground-truth labels of annotated
  sketches (cross-entropy over each sketch's own categories, on cosine maps as at inference). Pixel labels are far
  stronger supervision than captions, so what the probe reaches on held-out sketches bounds what caption-supervised
  fine-tuning of the same parameters can reach. On the synthetic dataset the probe can fit as many labelled scenes as
  wanted, drawn anew by the generator in the training participants' styles (:func:`labelled_training_scenes`); a few
  hundred annotated sketches understate the bound.

A diagnostic only: the method never trains on stroke or pixel labels.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchseg.errors import ConfigError, DataError
from sketchseg.eval.evaluate import EvalSample, make_eval_sample
from sketchseg.eval.metrics import SegmentationEvaluator
from sketchseg.model.finetune import center_patch_filters, keep_filters_centred, trainable_parameters
from sketchseg.model.image import model_input
from sketchseg.model.network import SketchSegModel
from sketchseg.model.similarity import upsample_maps


def patch_label_fractions(sample: EvalSample, grid: tuple[int, int]) -> torch.Tensor:
    """Fraction of each patch's pixels that carry each category: [C, rows, cols], C = the sample's vocabulary size.

    The 512x512 label map is cut into ``grid`` cells by adaptive average pooling (cells of 73-74 pixels for a 7x7
    grid, as the model's patches cover the resized sketch). A patch without strokes sums to 0.
    """
    labels = sample.raster.label_map(sample.stroke_labels, background=-1)  # [H, W]
    classes = len(sample.vocabulary)
    one_hot = torch.from_numpy(np.stack([labels == c for c in range(classes)]).astype(np.float32))  # [C, H, W]
    return F.adaptive_avg_pool2d(one_hot[None], grid)[0]  # [C, rows, cols]


def labelled_training_scenes(source: str | Path, count: int, first_index: int = 10_000) -> list[EvalSample]:
    """``count`` new labelled scenes of the synthetic dataset in ``source`` (its ``synth.json``): the training
    participants' styles in turn, seen categories only, scene indices from ``first_index`` on (none of the dataset's).
    """
    from sketchseg.data.synth.scene import make_scene
    from sketchseg.data.synth.writer import participant_names

    meta_file = Path(source) / "synth.json"
    if not meta_file.is_file():
        raise DataError(
            f"{meta_file}: not found; labelled training scenes need the synthetic dataset (data.source: synthetic), "
            "or fit the probe on the validation sketches instead"
        )
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    names = participant_names(int(meta["participants_count"]))
    trainers = [names.index(n) for n, split in meta["participant_splits"].items() if split["train"] > 0]
    if count < 1 or not trainers:
        raise DataError(f"{meta_file}: no training participant, or count {count} < 1")
    seen = list(meta["seen_categories"])
    out = []
    for i in range(count):
        participant = trainers[i % len(trainers)]
        index = first_index + i // len(trainers)
        scene = make_scene(int(meta["seed"]), participant, index, seen)
        sid = f"{names[participant]}_g{index}"
        out.append(make_eval_sample(sid, scene.vector(), list(scene.labels), f"{meta_file}:{sid}"))
    return out


def grid_oracle(samples: Sequence[EvalSample], grid: tuple[int, int], upsample: str = "bicubic") -> dict:
    """Summary of the evaluator when every patch predicts its ground-truth label fractions (the grid's ceiling)."""
    if not samples:
        raise DataError("no sketch to evaluate: the evaluation split is empty")
    evaluator = SegmentationEvaluator()
    for sample in samples:
        maps = patch_label_fractions(sample, grid)[None]  # [1, C, rows, cols]
        size = sample.image.shape
        pred = upsample_maps(maps, (size[0], size[1]), upsample)[0].argmax(dim=0).numpy()  # [H, W]
        evaluator.add(sample.id, pred, sample.raster, sample.stroke_labels, sample.vocabulary)
    return evaluator.summary()


@dataclass(frozen=True)
class ProbeConfig:
    """Label-probe training: AdamW on the model's trainable parameters, cross-entropy on cosine / temperature."""

    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 16
    temperature: float = 0.05
    seed: int = 0
    center_patch_filters: bool | None = None  # as train.center_patch_filters

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.temperature <= 0:
            raise ConfigError(f"label probe: epochs, batch_size, lr and temperature must be positive, got {self}")


def probe_loss(
    model: SketchSegModel, images: torch.Tensor, targets: Sequence[tuple[list[str], torch.Tensor]], temperature: float
) -> torch.Tensor:
    """Mean per-sketch cross-entropy of the patches that hold strokes, against their majority category.

    images: [B, 1, S, S]; targets: per sketch (vocabulary, label fractions [C, rows, cols]).
    """
    feats = model.encode_sketch(images, need_scene=False)
    losses = []
    for patches, (vocabulary, fractions) in zip(feats.patches, targets, strict=True):  # patches: [K, D]
        frac = fractions.flatten(1)  # [C, K]
        inked = frac.sum(dim=0) > 0  # [K]
        if not bool(inked.any()):
            continue
        text = F.normalize(model.encode_categories(vocabulary).to(patches.dtype), dim=-1)  # [C, D]
        logits = F.normalize(patches, dim=-1) @ text.T / temperature  # [K, C]
        losses.append(F.cross_entropy(logits[inked], frac.argmax(dim=0)[inked]))
    if not losses:
        raise DataError("label probe: no patch of the batch holds a stroke")
    return torch.stack(losses).mean()


def fit_label_probe(
    model: SketchSegModel, samples: Sequence[EvalSample], cfg: ProbeConfig, progress: bool = False
) -> list[float]:
    """Fit ``model``'s trainable parameters to the patch labels of ``samples``; returns the mean loss per epoch."""
    from sketchseg.progress import progress as progress_bar

    if not samples:
        raise DataError("label probe: no annotated sketch to fit")
    params = list(trainable_parameters(model).values())
    if not params:
        raise ConfigError("label probe: the model has no trainable parameter (finetune mode?)")
    torch.manual_seed(cfg.seed)
    order = list(range(len(samples)))
    rng = random.Random(cfg.seed)
    images = model_input([s.image for s in samples], model.image_size)  # [N, 1, S, S]
    targets = [(s.vocabulary, patch_label_fractions(s, model.encoder.grid)) for s in samples]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    centre_filters = keep_filters_centred(model, cfg.center_patch_filters)
    history = []
    for _ in progress_bar(range(cfg.epochs), desc="label probe", unit="epoch", enabled=progress, leave=False):
        model.train()
        rng.shuffle(order)
        total, batches = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            loss = probe_loss(model, images[idx], [targets[i] for i in idx], cfg.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if centre_filters:
                center_patch_filters(model.clip)
            total += float(loss.detach())
            batches += 1
        history.append(total / batches)
    model.eval()
    return history
