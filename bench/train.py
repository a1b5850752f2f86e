"""Training-step benchmark (issue: two-level training, §7). Prints JSON.

Step time (forward + backward + optimiser step) of ViT-B/16 with random weights at batch 16 on CPU, global +
category level, and the number of encoder passes one step takes, for:
- ``ours``: one global-level pass, then ONE category pass returning the category tokens of blocks 7, 10 and 12;
- ``authors_design``: the released code's structure, which re-runs the encoder from block 1 for each exit block
  (7, 10, 12) of the category level, plus the global pass (emulated here with our modules: same maths, one category
  pass per exit block).
Target: ours at least 2x faster per step. Encoder passes are counted with a hook on the first block.

Usage: python bench/train.py [--model ViT-B-16] [--batch 16] [--categories 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sketchseg.config import LossConfig
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.similarity import similarity_maps, upsample_maps
from sketchseg.train.losses import stable_ids, total_loss
from sketchseg.train.step import TwoLevelStep

WORDS = "giraffe zebra grass cloud kite tree person bench house sun car dog bird boat fence mountain".split()


def authors_design_loss(step: TwoLevelStep, images: torch.Tensor, captions: list[str], cats: list[list[str]]):
    """Same losses, but one category-level encoder pass per exit block (the released code's structure)."""
    model = step.model
    feats = model.encode_sketch(images)
    cst = model.encode_captions(captions)
    pairs = [(b, n) for b, names in enumerate(cats) for n in names]
    b_idx = torch.tensor([b for b, _ in pairs])
    names = [n for _, n in pairs]
    cct = model.encode_categories(names)
    sim = similarity_maps(feats.patches[b_idx], cct[:, None, :], feats.grid)
    maps = upsample_maps(sim, model.image_size, model.cfg.upsample)
    masked, _ = model.masked_sketches(images[b_idx], maps)
    enc = model.encoder
    exits = enc.cross_blocks
    vct = {}
    try:
        for block in exits:
            enc.cross_blocks = (block,)  # a pass that stops at this block, from block 1
            vct.update(model.category_tokens(masked, cct))
    finally:
        enc.cross_blocks = exits
    loss, _ = total_loss(
        step.loss_cfg, vst=feats.scene, cst=cst, group_ids=stable_ids(captions),
        vct=vct, cct=cct, category_ids=stable_ids(names),
    )  # fmt: skip
    return loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="ViT-B-16")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--categories", type=int, default=3, help="categories per sketch (the paper keeps up to 3)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name=args.model), prompt_dropout=0.0))
    model.train()
    step = TwoLevelStep(model, LossConfig())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    size = model.image_size
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(args.batch, 1, *size, generator=g) > 0.05).float()  # white paper with sparse ink
    captions = [f"a {WORDS[i % len(WORDS)]} next to a {WORDS[(i + 3) % len(WORDS)]}" for i in range(args.batch)]
    cats = [[WORDS[(i + k) % len(WORDS)] for k in range(args.categories)] for i in range(args.batch)]

    passes = {"n": 0}
    first_block = model.clip.visual.transformer.resblocks[0]
    first_block.register_forward_hook(lambda *a: passes.__setitem__("n", passes["n"] + 1))

    def run(kind: str) -> tuple[float, int]:
        passes["n"] = 0
        t0 = time.perf_counter()
        if kind == "ours":
            loss, _ = step(images, captions, cats)
        else:
            loss = authors_design_loss(step, images, captions, cats)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0, passes["n"]

    run("ours")  # warm-up (also fills the text cache for both)
    times: dict[str, list[float]] = {"ours": [], "authors_design": []}
    counts: dict[str, int] = {}
    for _ in range(args.repeats):
        for kind in times:
            t, n = run(kind)
            times[kind].append(t)
            counts[kind] = n
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "model": args.model,
                "batch": args.batch,
                "categories_per_sketch": args.categories,
                "threads": torch.get_num_threads(),
                "ours": {"step_s": round(med["ours"], 2), "encoder_passes": counts["ours"]},
                "authors_design": {
                    "step_s": round(med["authors_design"], 2),
                    "encoder_passes": counts["authors_design"],
                },
                "speedup": round(med["authors_design"] / med["ours"], 2),
                "target_speedup_min": 2.0,
                "pass": med["authors_design"] / med["ours"] >= 2.0,
                "repeats": args.repeats,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
