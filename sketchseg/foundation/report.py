"""How good is a foundation CLIP before any fine-tuning: image-to-caption retrieval on validation scenes and
zero-shot segmentation of the test scenes (each sketch's own categories), with and without v-v attention, next to
chance (a uniformly random category per pixel, simulated with a fixed seed) and the majority oracle (every stroke
pixel labelled with the sketch's most frequent ground-truth category)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sketchseg.eval.evaluate import EvalSample, evaluate_model, samples_from_records
from sketchseg.eval.metrics import SegmentationEvaluator
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.image import model_input
from sketchseg.model.network import SketchSegModel

KEYS = ("acc_p", "acc_s", "miou")


def _pick(summary: dict) -> dict:
    return {k: round(float(summary[k]), 4) for k in KEYS}


def reference_baselines(samples: list[EvalSample], seed: int = 0) -> dict[str, dict]:
    """Chance (random label per pixel) and majority (the sketch's most frequent GT category everywhere)."""
    rng = np.random.default_rng(seed)
    chance, majority = SegmentationEvaluator(), SegmentationEvaluator()
    for s in samples:
        size = s.image.shape
        chance.add(s.id, rng.integers(0, len(s.vocabulary), size=size), s.raster, s.stroke_labels, s.vocabulary)
        gt = s.raster.label_map(s.stroke_labels)
        counts = np.bincount(gt[gt >= 0], minlength=len(s.vocabulary))
        majority.add(s.id, np.full(size, int(counts.argmax())), s.raster, s.stroke_labels, s.vocabulary)
    return {"chance": _pick(chance.summary()), "majority": _pick(majority.summary())}


@torch.no_grad()
def retrieval(model: SketchSegModel, images: list[np.ndarray], captions: list[str]) -> dict[str, float]:
    """Image-to-caption retrieval recall@1/@5 (captions of the same set as candidates)."""
    feats = []
    for start in range(0, len(images), 64):
        x = model_input(images[start : start + 64], model.image_size)
        feats.append(model.encode_sketch(x).scene)
    img = F.normalize(torch.cat(feats), dim=-1)
    txt = model.encode_captions(captions)
    sim = img @ txt.T  # [N, N]
    rank = (sim > sim.diag()[:, None]).sum(dim=1)  # captions scoring higher than the right one
    return {"r1": round(float((rank < 1).float().mean()), 4), "r5": round(float((rank < 5).float().mean()), 4),
            "n": len(images)}  # fmt: skip


def zero_shot_report(
    folder: Path, data_root: Path, model_cfg: ModelConfig | None = None, progress: bool = False, limit: int = 0
) -> dict:
    """Retrieval on val and zero-shot segmentation on test for the foundation saved in ``folder``; the v-v path has
    ``model_cfg.vv_layers`` layers (default: the segmenter's default)."""
    from PIL import Image

    from sketchseg.data.fscoco import read_split

    backbone = BackboneConfig(name=f"local-dir:{folder}")
    vv_layers = model_cfg.vv_layers if model_cfg is not None else None
    models = {
        vv: SketchSegModel(
            ModelConfig(backbone=backbone, num_prompts=0, vv=vv, vv_layers=vv_layers, cross_attention=False)
        ).eval()
        for vv in (True, False)
    }
    val = read_split(data_root, "val", on_error="skip")
    images = [np.asarray(Image.open(r.image_path).convert("L")) for r in val]
    report: dict = {"retrieval_val": retrieval(models[True], images, [r.caption for r in val])}
    test = samples_from_records(read_split(data_root, "test", on_error="skip"), limit)
    groups = {"test_2plus": lambda s: len(s.vocabulary) >= 2}  # a subset of test: scored from the same pass
    results = {vv: evaluate_model(model, test, sweep=False, groups=groups, progress=progress)
               for vv, model in models.items()} if test else {}  # fmt: skip
    subsets = {"test": test, "test_2plus": [s for s in test if groups["test_2plus"](s)]}
    for name, samples in subsets.items():
        if not samples:
            continue
        entry = {"sketches": len(samples), **reference_baselines(samples)}
        for vv, result in results.items():
            entry["vv" if vv else "plain"] = _pick(result.summary if name == "test" else result.groups[name])
        entry["vv_minus_majority_acc_p"] = round(entry["vv"]["acc_p"] - entry["majority"]["acc_p"], 4)
        report[name] = entry
    return report
