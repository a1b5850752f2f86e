"""The training recipe (SPEC §4, §8): DistributedDataParallel under torchrun (gloo on CPU, NCCL on GPU), AdamW with
warm-up and cosine decay, bf16 autocast on GPU, gradient accumulation, τ logged every step, a checkpoint every epoch
and resumption, validation mIoU every epoch with the best ("optimal") and the last model exported.

:class:`TrainingRecipe` reads top to bottom: :meth:`~TrainingRecipe.setup` (processes, precision, model, optimiser,
schedule, resumption, caches), :meth:`~TrainingRecipe.train` (the epochs), :meth:`~TrainingRecipe.train_epoch` (one
pass over the data; the loss is :class:`sketchseg.train.step.TwoLevelStep`'s), :meth:`~TrainingRecipe.validate`,
:meth:`~TrainingRecipe.save_checkpoint` and :meth:`~TrainingRecipe.summary`. The data is
:mod:`sketchseg.train.data`'s, the resumable state :mod:`sketchseg.train.state`'s.

Output folder ``out``:
``checkpoints/last.pt`` (resume state), ``checkpoints/epoch-XXX.pt``, ``models/last.pt`` and ``models/optimal.pt``
(full models, :mod:`sketchseg.model.checkpoint`), ``steps.jsonl`` (one line per optimiser step: loss, τ, lr, ...),
``history.json`` (per-epoch losses and validation metrics) and ``train_metrics.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchseg.config import Config, model_config_for
from sketchseg.io_utils import folder_sha1, write_json
from sketchseg.model.backbone import Backbone, uses_quick_gelu
from sketchseg.model.checkpoint import load_model, save_checkpoint
from sketchseg.model.finetune import center_patch_filters, keep_filters_centred, trainable_parameters
from sketchseg.model.network import SketchSegModel
from sketchseg.train import distributed as dist_utils
from sketchseg.train.data import epoch_loader, shard_categories, steps_per_epoch
from sketchseg.train.schedule import warmup_cosine
from sketchseg.train.state import (
    Progress,
    check_resumable,
    keep_steps_until,
    load_state,
    read_resume_state,
    save_state,
    state_dict,
)
from sketchseg.train.step import TwoLevelStep

log = logging.getLogger(__name__)

# ``model`` parameters that decide which tensors a model holds: with ``train.init_checkpoint`` the checkpoint's apply.
ARCHITECTURE_KEYS = ("backbone", "num_prompts", "vv", "vv_layers", "cross_attention", "cross_attention_blocks",
                     "exit_block")  # fmt: skip


def initial_model(cfg: Config, foundation: str | Path | None) -> SketchSegModel:
    """The model training starts from: a new one on the foundation (or ``model.backbone``), or, with
    ``train.init_checkpoint`` (a sketchseg checkpoint or the authors' released .pth), the checkpoint's architecture and
    every weight, with the run's other ``model`` parameters (finetune, dropouts, templates, threshold settings)."""
    path = cfg.train.init_checkpoint
    if not path:
        return SketchSegModel(model_config_for(cfg, foundation))
    source = load_model(path)
    architecture = {k: getattr(source.cfg, k) for k in ARCHITECTURE_KEYS}
    overridden = [f"{k}: {getattr(cfg.model, k)!r} -> {v!r}" for k, v in architecture.items()
                  if k != "backbone" and getattr(cfg.model, k) != v]  # fmt: skip
    if overridden:
        log.warning("init_checkpoint: the checkpoint's architecture replaces model.%s", "; model.".join(overridden))
    if foundation is not None:
        log.info("train.init_checkpoint: the backbone comes from %s, not from the foundation %s", path, foundation)
    backbone = Backbone(clip=source.clip, tokenizer=source.text.tokenizer, weights=source.weights)
    model = SketchSegModel(dataclasses.replace(cfg.model, **architecture), backbone=backbone)
    model.load_state_dict(source.state_dict())
    model.origin = f"fine-tuned from {source.weights}"  # the weights line of the checkpoints this run saves
    model.weights = source.weights
    log.info("training starts from %s", source.weights)
    return model


def uses_bf16(precision: str, device: torch.device, rank: int) -> bool:
    """Whether ``train.precision`` means bf16 autocast on ``device`` (auto: on GPUs); warns once where the CPU
    only emulates bf16."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if bf16 and device.type == "cpu" and rank == 0 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        log.warning(
            "train.precision=bf16 on a CPU without bf16 instructions (AVX-512 BF16 or AMX; this one: %s): autocast "
            "emulates bf16, measured 35x slower than float32 for ViT-B-16 on 2 AVX2 cores; train.precision=auto "
            "trains in float32 on CPU and in bf16 on GPUs",
            torch.backends.cpu.get_cpu_capability(),
        )  # fmt: skip
    return bf16


class TrainingRecipe:
    """One training (or its continuation), run in every process (torchrun) or in a single one."""

    def __init__(self, cfg: Config, *, out: Path, foundation: Path | None, shards: Path, progress: bool) -> None:
        self.cfg, self.tc = cfg, cfg.train
        self.out, self.foundation, self.shards, self.show_progress = out, foundation, shards, progress
        self.progress = Progress()

    # ---- set-up ---------------------------------------------------------------------------------------------
    def setup(self, resume: bool) -> None:
        """Processes, precision, model, DDP, optimiser and schedule; then the resumed state or a clean folder; then
        the caches and the validation set."""
        tc = self.tc
        self.ctx = ctx = dist_utils.init_distributed()
        if tc.threads:
            torch.set_num_threads(tc.threads)
        dist_utils.seed_everything(tc.seed, ctx.rank)
        self.bf16 = uses_bf16(tc.precision, ctx.device, ctx.rank)
        self.model = initial_model(self.cfg, self.foundation).to(ctx.device)
        self.foundation_sha = folder_sha1(self.foundation)
        step_module = TwoLevelStep(self.model, tc.loss)
        full = tc.loss.global_loss and tc.loss.category_loss and not tc.loss.layers
        self.runner = step_module if ctx.world_size == 1 else torch.nn.parallel.DistributedDataParallel(
            step_module,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=not full,
        )  # fmt: skip
        self.params = trainable_parameters(self.model)
        self.optimizer = torch.optim.AdamW(self.params.values(), lr=tc.lr, weight_decay=tc.weight_decay,
                                           betas=(0.9, 0.98))  # fmt: skip
        self.centre_filters = keep_filters_centred(self.model, tc.center_patch_filters)
        if self.centre_filters and ctx.is_main:
            log.info("patch-embedding filters kept zero-mean after every step (train.center_patch_filters)")
        self.steps_per_epoch = steps_per_epoch(self.shards, tc, ctx.world_size)
        total = self.steps_per_epoch * tc.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, functools.partial(warmup_cosine, warmup=tc.warmup_steps, total=total)
        )
        self.resume(resume)
        self.prepare_validation()

    def resume(self, resume: bool) -> None:
        """Continue from ``checkpoints/last.pt`` (with ``resume``, when it exists), else start a clean folder: the
        outputs of an earlier run must not mix with this one's."""
        last = self.out / "checkpoints" / "last.pt"
        state = read_resume_state(last) if resume else None
        if state is not None:
            check_resumable(state, self.cfg, self.foundation_sha, last)
            self.progress = load_state(state, self.params, self.optimizer, self.scheduler, self.ctx.rank, last)
            if self.ctx.is_main:
                p = self.progress
                log.info("resumed from %s: %d of %d epochs done, continuing with epoch %d (step %d)",
                         last, p.epoch, self.tc.epochs, p.epoch + 1, p.step)  # fmt: skip
                keep_steps_until(self.out / "steps.jsonl", p.step)
        elif self.ctx.is_main:
            if resume:
                log.warning("--resume: no checkpoint at %s; training starts from epoch 1", last)
            for sub in ("checkpoints", "models"):
                shutil.rmtree(self.out / sub, ignore_errors=True)
            (self.out / "steps.jsonl").unlink(missing_ok=True)

    def prepare_validation(self) -> None:
        """Embed every category once, alone: a matrix product's last bits depend on how many rows it has, so
        categories embedded in whatever batch first asks for them would make a resumed run (its cache empty) differ
        from an uninterrupted one. Then the validation sketches, and the untrained model's mIoU on a fresh start."""
        from sketchseg.eval.evaluate import evaluate_model, samples_from_shards

        for name in shard_categories(self.shards):
            self.model.encode_categories([name])  # the text tower is frozen: the cache stays valid all along
        self.val_samples = None
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.val_samples = samples_from_shards(self.shards, "val", self.tc.val_max_sketches)
            if self.progress.epoch == 0:
                self.progress.initial_val = evaluate_model(self.model, self.val_samples, sweep=False).summary["miou"]
                log.info("untrained model: val mIoU %.4f", self.progress.initial_val)

    # ---- training -------------------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """The remaining epochs, each validated and checkpointed; returns the summary (empty on other ranks)."""
        for epoch in range(self.progress.epoch, self.tc.epochs):
            t0 = time.time()
            losses = self.train_epoch(epoch)
            self.progress.epoch = epoch + 1
            record = {
                "epoch": epoch + 1,
                "step": self.progress.step,
                "train_loss": float(np.mean(losses)) if losses else None,
                "tau": float(self.model.threshold.tau().detach()),
            }
            seconds = time.time() - t0  # logged only: the outputs hold nothing that depends on the machine
            if self.ctx.is_main:
                improved = self.validate(record)
                self.save_checkpoint(record, improved)
                log.info("epoch %d: loss %.4f, tau %.3f, val mIoU %.4f%s (%.1f s)", epoch + 1,
                         record["train_loss"] or float("nan"), record["tau"], record["val_miou"],
                         " (best)" if improved else "", seconds)  # fmt: skip
            dist_utils.barrier()
        return self.summary() if self.ctx.is_main else {}

    def train_epoch(self, epoch: int) -> list[float]:
        """One pass over epoch ``epoch``'s batches: this process's slice of each global batch, ``grad_accum`` batches
        per optimiser step; appends each step's row to ``steps.jsonl``. Returns the steps' losses."""
        tc, ctx, model = self.tc, self.ctx, self.model
        # RNG streams (prompt dropout, ...) depend only on (seed, epoch, rank): a resumed run repeats them exactly.
        dist_utils.seed_everything(tc.seed * 1_000_003 + epoch * 1000, ctx.rank)
        model.train()
        loader = epoch_loader(self.shards, tc, ctx.world_size, epoch, model.image_size)
        from sketchseg.progress import progress as progress_bar

        bar = progress_bar(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="step",
                           enabled=self.show_progress and ctx.is_main)  # fmt: skip
        losses: list[float] = []
        lines: list[str] = []
        self.optimizer.zero_grad(set_to_none=True)
        lo, hi = ctx.rank * tc.batch_size, (ctx.rank + 1) * tc.batch_size
        for i, batch in enumerate(loader):
            if i >= self.steps_per_epoch * tc.grad_accum:
                break
            sync = (i + 1) % tc.grad_accum == 0
            stats = self.forward_backward(batch["input"][lo:hi], batch["caption"][lo:hi],
                                          batch["categories"][lo:hi], sync)  # fmt: skip
            if not sync:
                continue
            self.optimizer_step()
            losses.append(stats["loss"])
            if ctx.is_main:
                row = {"step": self.progress.step, "epoch": epoch + 1, "lr": self.scheduler.get_last_lr()[0], **stats}
                row["tau"] = float(model.threshold.tau().detach())  # after the update
                lines.append(json.dumps(row))
                bar.set_postfix(loss=f"{stats['loss']:.3f}", tau=f"{row['tau']:.3f}")
            bar.update(1)
        bar.close()
        if ctx.is_main:
            with open(self.out / "steps.jsonl", "a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
        return losses

    def forward_backward(self, images: torch.Tensor, captions: list[str], categories: list[list[str]],
                         sync: bool) -> dict[str, float]:  # fmt: skip
        """The loss of this process's sketches [B, 1, S, S] and its gradient, accumulated (divided by
        ``grad_accum``); gradients are all-reduced only when ``sync``. Returns the step's stats."""
        distributed = self.ctx.world_size > 1 and not sync
        no_sync = self.runner.no_sync if distributed else contextlib.nullcontext
        autocast = (functools.partial(torch.autocast, device_type=self.ctx.device.type, dtype=torch.bfloat16)
                    if self.bf16 else contextlib.nullcontext)  # fmt: skip
        with no_sync(), autocast():
            loss, stats = self.runner(images.to(self.ctx.device), captions, categories)
        with no_sync():
            (loss / self.tc.grad_accum).backward()
        return stats

    def optimizer_step(self) -> None:
        """Clip, step, re-centre the patch filters (when kept zero-mean), advance the schedule, clear gradients."""
        if self.tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.tc.grad_clip)
        self.optimizer.step()
        if self.centre_filters:
            center_patch_filters(self.model.clip)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1

    # ---- validation, checkpoints, summary -------------------------------------------------------------------
    def validate(self, record: dict[str, Any]) -> bool:
        """Validation mIoU, Acc@P and Acc@S of the epoch ``record`` (added to it and to the history); True when the
        mIoU is the best so far."""
        from sketchseg.eval.evaluate import evaluate_model

        s = evaluate_model(self.model, self.val_samples, sweep=False).summary
        record.update({"val_miou": s["miou"], "val_acc_p": s["acc_p"], "val_acc_s": s["acc_s"]})
        p = self.progress
        improved = s["miou"] > p.best
        p.history.append(record)
        p.best = max(p.best, s["miou"])
        return improved

    def save_checkpoint(self, record: dict[str, Any], improved: bool) -> None:
        """The epoch's models (``models/last.pt``, and ``models/optimal.pt`` when ``improved``), its resume state
        (``checkpoints/epoch-XXX.pt`` and ``last.pt``) and ``history.json``."""
        p, models = self.progress, self.out / "models"
        meta = {"epoch": record["epoch"], "step": p.step, "val_miou": record["val_miou"], "config": self.cfg.to_dict()}
        save_checkpoint(self.model, models / "last.pt", meta=meta)
        if improved:
            save_checkpoint(self.model, models / "optimal.pt", meta=meta)
        state = state_dict(self.params, self.optimizer, self.scheduler, p, self.cfg, self.foundation_sha)
        checkpoints = self.out / "checkpoints"
        save_state(state, checkpoints / f"epoch-{record['epoch']:03d}.pt", checkpoints / "last.pt")
        write_json(self.out / "history.json", p.history, indent=2)

    def summary(self) -> dict[str, Any]:
        """``train_metrics.json``: epochs, steps, τ, best and last validation mIoU, and what the run resolved to."""
        history, tc = self.progress.history, self.tc
        best = max(history, key=lambda r: r["val_miou"]) if history else None
        summary = {
            "epochs": len(history),
            "steps": self.progress.step,
            "final_tau": float(self.model.threshold.tau().detach()),
            "best_val_miou": best["val_miou"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "last_val_miou": history[-1]["val_miou"] if history else None,
            "initial_val_miou": self.progress.initial_val,
            "world_size": self.ctx.world_size,
            # what train.precision "auto" and train.nproc 0 resolved to on this machine
            "device": self.ctx.device.type,
            "precision": "bf16" if self.bf16 else "fp32",
            "batch_size": tc.batch_size,  # per process
            "global_batch": tc.batch_size * self.ctx.world_size * tc.grad_accum,  # sketches per optimiser step
            "weights": self.model.origin,  # what training started from, its activation included
            "activation": "QuickGELU" if uses_quick_gelu(self.model.clip) else "GELU",
        }
        write_json(self.out / "train_metrics.json", summary, indent=2)
        return summary


def train(
    cfg: Config,
    *,
    out: str | Path | None = None,
    foundation: str | Path | None = None,
    resume: bool = False,
    shards: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) a training; called in every process (torchrun) or in a single one. Returns the summary."""
    recipe = TrainingRecipe(cfg, out=Path(out or cfg.train.out), foundation=Path(foundation) if foundation else None,
                            shards=Path(shards or cfg.data.shards), progress=progress)  # fmt: skip
    recipe.setup(resume)
    summary = recipe.train()
    dist_utils.destroy_distributed()
    return summary
