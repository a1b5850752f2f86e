"""Inference benchmark (issue: encoder + segment command, §5). Prints JSON.

ViT-B/16 with random weights on CPU, fp32, against open_clip's own image forward, measured in one run with the
two measurements interleaved so that machine load affects both alike:
(a) one 512x512 sketch with a NEW 4-category vocabulary each time, end to end (PNG file -> label map, similarity
    maps): target <= 1.3x open_clip's image forward of one image;
(b) 16 sketches in one batch (vocabulary already cached): target >= 0.8x open_clip's throughput at batch 16;
(c) one sketch with a NEW 4-category vocabulary on the authors' checkpoint layout (ViT-B-16, random weights written in
    their key layout and converted) with their recipe (85 templates per category, ``--recipe authors``), beside the
    authors' own demo path, about 22 s per sketch with 4 categories on these 2 cores (shared/STACK.md).

Usage: python bench/infer.py [--model ViT-B-16] [--repeats 7] [--threads N] [--no-authors]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.segmenter import Segmenter

WORDS = (
    "giraffe zebra grass cloud kite tree person woman bench house sun car dog bird boat fence mountain road flower "
    "horse train airplane cat cow sheep elephant bear bicycle bus truck chair table lamp clock bottle cup"
).split()


def fake_sketch(seed: int, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 255, np.uint8)
    for _ in range(40):
        x0, y0 = rng.integers(0, size - 60, 2)
        x1, y1 = np.clip([x0, y0] + rng.integers(-80, 80, 2), 0, size - 1)
        n = max(abs(x1 - x0), abs(y1 - y0)) + 1
        xs, ys = np.linspace(x0, x1, n).astype(int), np.linspace(y0, y1, n).astype(int)
        img[ys, xs] = 0
        img[np.clip(ys + 1, 0, size - 1), xs] = 0
    return img


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="ViT-B-16")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-authors", action="store_true", help="skip (c), the authors' layout and recipe")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    segmenter = Segmenter.from_config(ModelConfig(backbone=BackboneConfig(name=args.model)), batch_size=16)
    clip_visual = segmenter.model.clip.visual
    size = segmenter.model.image_size
    tmp = Path(tempfile.mkdtemp())
    paths = []
    for i in range(16):
        paths.append(tmp / f"s{i}.png")
        Image.fromarray(fake_sketch(i)).save(paths[-1])
    x1 = torch.randn(1, 3, *size)
    x16 = torch.randn(16, 3, *size)

    def clip_one() -> None:
        with torch.no_grad():
            clip_visual(x1)

    def clip_batch() -> None:
        with torch.no_grad():
            clip_visual(x16)

    vocab_counter = iter(range(10**6))

    def ours_one() -> None:
        k = next(vocab_counter)
        cats = [f"{WORDS[(4 * k + j) % len(WORDS)]} {k}" for j in range(4)]  # never seen before: no cache hit
        segmenter.segment(paths[0], categories=cats)

    batch_vocab = ["giraffe", "zebra", "grass", "cloud"]

    def ours_batch() -> None:
        list(segmenter.segment_many(paths, categories=batch_vocab))

    # warm-up
    for fn in (clip_one, ours_one, clip_batch, ours_batch):
        fn()
    calls_before = segmenter.model.text.calls
    ours_batch()
    batch_text_calls = segmenter.model.text.calls - calls_before

    t_clip1, t_ours1, t_clip16, t_ours16 = [], [], [], []
    for _ in range(args.repeats):
        t_clip1.append(timed(clip_one))
        t_ours1.append(timed(ours_one))
    for _ in range(max(3, args.repeats // 2)):
        t_clip16.append(timed(clip_batch))
        t_ours16.append(timed(ours_batch))
    med = statistics.median
    a_ratio = med(t_ours1) / med(t_clip1)
    b_ratio = (16 / med(t_ours16)) / (16 / med(t_clip16))
    print(
        json.dumps(
            {
                "model": args.model,
                "precision": "fp32",
                "threads": torch.get_num_threads(),
                "machine": platform.processor() or platform.machine(),
                "a_single_new_vocab": {
                    "open_clip_image_forward_s": round(med(t_clip1), 4),
                    "sketchseg_end_to_end_s": round(med(t_ours1), 4),
                    "ratio": round(a_ratio, 3),
                    "target_ratio_max": 1.3,
                    "pass": a_ratio <= 1.3,
                },
                "b_batch16": {
                    "open_clip_images_per_s": round(16 / med(t_clip16), 2),
                    "sketchseg_sketches_per_s": round(16 / med(t_ours16), 2),
                    "throughput_ratio": round(b_ratio, 3),
                    "target_ratio_min": 0.8,
                    "pass": b_ratio >= 0.8,
                    "text_tower_calls_for_cached_vocabulary": batch_text_calls,
                },
                "repeats": args.repeats,
                **({} if args.no_authors else {"c_authors_recipe_new_vocab": authors_case(paths[0], args.repeats)}),
            },
            indent=2,
        )
    )


AUTHORS_DEMO_S = 22.0  # their demo.py per sketch with 4 categories on these 2 cores (shared/STACK.md)


def authors_case(sketch: Path, repeats: int) -> dict:
    """(c): a random ViT-B-16 in the authors' key layout, converted, segmenting one sketch with their recipe and a new
    4-category vocabulary each time (85 templates per category; the empty category's embedding is cached after the
    first call, as a server keeps it). Interleaved with an emulation of their demo's path on the same model, so that
    machine load affects both alike: open_clip's ``encode_text`` at the full 77-token context for the 4 x 85 prompts
    and the 85 empty ones (their demo re-encodes all of them on every call), plus the image forward."""
    from sketchseg.model.authors import PROMPTS, authors_model_config, convert_state_dict, key_map
    from sketchseg.model.network import SketchSegModel

    source = SketchSegModel(authors_model_config())  # random weights, then written out under their keys
    theirs = {}
    for ours, key in key_map(source).items():
        value = source.state_dict()[ours]
        theirs[f"module.{key}"] = value[None] if key == PROMPTS else value
    segmenter = Segmenter(convert_state_dict(theirs, source="random weights in the authors' layout"), recipe="authors")
    del source, theirs
    counter = iter(range(10**6))

    def one() -> None:
        k = next(counter)
        segmenter.segment(sketch, categories=[f"{WORDS[(4 * k + j) % len(WORDS)]} {k}" for j in range(4)])

    model, templates = segmenter.model, segmenter.recipe.templates
    image = torch.randn(1, 3, *model.image_size)

    def theirs_emulated() -> None:
        k = next(counter)
        prompts = [t.format(n) for n in [f"{WORDS[(4 * k + j) % len(WORDS)]} {k}" for j in range(4)] + [""]
                   for t in templates]  # fmt: skip
        with torch.no_grad():
            model.clip.encode_text(model.text.tokenizer(prompts))  # [425, D] at 77 tokens
            model.encoder(model.normalise(image[:, :1]), need_scene=False)

    one()  # warm-up
    ours, emulated = [], []
    for _ in range(max(3, repeats // 2)):
        ours.append(timed(one))
        emulated.append(timed(theirs_emulated))
    seconds, theirs_s = statistics.median(ours), statistics.median(emulated)
    return {
        "templates_per_category": len(templates),
        "sketchseg_end_to_end_s": round(seconds, 3),
        "authors_demo_path_emulated_s": round(theirs_s, 3),
        "speedup_over_emulated_demo": round(theirs_s / seconds, 2),
        "authors_demo_s_per_sketch_measured_before": AUTHORS_DEMO_S,
    }


if __name__ == "__main__":
    main()
