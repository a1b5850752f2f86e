"""Foundation training-step benchmark (issue 15 §2). Prints JSON.

Milliseconds per optimiser step of the offline foundation CLIP (``sketchseg-tiny``, the stage's recipe: 32 global
pairs + 12 mosaics per step) on a small synthetic dataset drawn by the project's generator (or ``--root``), for:

- ``full``: the text tower's whole 49408-row token embedding trained (a dense gradient and an AdamW update of 6.3M
  parameters every step);
- ``compact``: only the rows of the tokens the training captions use (what :func:`train_clip` does).

Steady-state time per step = (time of ``warmup + steps`` steps - time of ``warmup`` steps) / ``steps``, both runs
from the same fresh model, so start-up and the slow first steps cancel out; wall-clock and CPU time (all threads),
and the step's GFLOP (load-independent).

Usage: python bench/foundation.py [--root DATASET] [--steps 60] [--warmup 20] [--threads 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from sketchseg.config import FoundationConfig
from sketchseg.foundation.data import load_contrastive_data
from sketchseg.foundation.train import train_clip
from sketchseg.model.backbone import load_backbone


def step_seconds(data, cfg: FoundationConfig, steps: int, compact: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``steps`` foundation steps from a fresh model (setup excluded)."""
    backbone = load_backbone(cfg.backbone)
    t0, c0 = time.perf_counter(), time.process_time()
    train_clip(backbone.clip, backbone.tokenizer, data, fixed_steps(cfg, steps), progress=False,
               compact_vocabulary=compact)  # fmt: skip
    return time.perf_counter() - t0, time.process_time() - c0


def gflop_per_step(data, cfg: FoundationConfig, steps: int = 4) -> float:
    """Matmul, attention and convolution GFLOP of one step (torch's FlopCounterMode): the machine's load does not
    change it, unlike a timing."""
    from torch.utils.flop_counter import FlopCounterMode

    backbone = load_backbone(cfg.backbone)
    with FlopCounterMode(display=False) as counter:
        train_clip(backbone.clip, backbone.tokenizer, data, fixed_steps(cfg, steps), progress=False)
    return counter.get_total_flops() / steps / 1e9


def fixed_steps(cfg: FoundationConfig, steps: int) -> FoundationConfig:
    """``cfg`` training exactly ``steps`` steps, whatever the step/budget fields of this version are called."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes: dict = {"steps": steps} if "steps" in fields else {"max_steps": steps}
    if "minutes" in fields:
        changes["minutes"] = 0.0
    return dataclasses.replace(cfg, **changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=None, help="a synthetic dataset (default: a small one, generated)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--mosaics", type=int, default=200)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = dataclasses.replace(FoundationConfig(), mosaics=args.mosaics)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            from sketchseg.data.synth import generate

            root = Path(tmp) / "source"
            generate(root, participants=8, per_participant=20, objects_per_category=10, test_participants=2,
                     val_per_participant=2, progress=False)  # fmt: skip
        backbone = load_backbone(cfg.backbone)
        visual = backbone.clip.visual
        data = load_contrastive_data(root, visual.image_size[0], int(visual.grid_size[0]), mosaics=cfg.mosaics)
        vocab = backbone.clip.token_embedding.weight.shape[0]
        ms: dict[str, float] = {}
        cpu_ms: dict[str, float] = {}
        for mode in ("full", "compact"):
            compact = mode == "compact"
            short = step_seconds(data, cfg, args.warmup, compact)
            long = step_seconds(data, cfg, args.warmup + args.steps, compact)
            ms[mode] = round(1000.0 * (long[0] - short[0]) / args.steps, 1)
            cpu_ms[mode] = round(1000.0 * (long[1] - short[1]) / args.steps, 1)
        gflop = round(gflop_per_step(data, cfg), 2)
    print(json.dumps({
        "model": cfg.backbone.name,
        "global_pairs_per_step": cfg.batch_size,
        "mosaics_per_step": cfg.mosaics_per_step,
        "token_embedding_rows": vocab,
        "threads": torch.get_num_threads(),
        "steps_timed": args.steps,
        "ms_per_step": ms,
        "speedup": round(ms["full"] / ms["compact"], 2),
        "cpu_ms_per_step": cpu_ms,  # CPU time of all threads: steadier than wall-clock on a shared machine
        "cpu_speedup": round(cpu_ms["full"] / cpu_ms["compact"], 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "gflop_per_step": gflop,  # the same in both modes: the embedding's work is memory traffic, not FLOPs
        "data": data.summary(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
