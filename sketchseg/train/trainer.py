"""The training loop (SPEC §4, §8): DistributedDataParallel under torchrun (gloo on CPU, NCCL on GPU), AdamW with
warm-up and cosine decay, bf16 autocast on GPU, gradient accumulation, τ logged every step, a checkpoint every epoch
(trainable parameters, optimiser, scheduler, RNG states, epoch, step) and resumption, validation mIoU every epoch
with the best ("optimal") and the last model exported.

Data order: every process reads the same deterministic stream (shuffled from ``seed`` and the epoch), groups it into
global batches of ``batch_size x world_size`` and takes its own contiguous slice. N processes with batch B therefore
see exactly the global batches of one process with batch N·B, and a resumed run sees the batches the uninterrupted
run would have seen.

Output folder ``out``:
``checkpoints/last.pt`` (resume state), ``checkpoints/epoch-XXX.pt``, ``models/last.pt`` and ``models/optimal.pt``
(full models, :mod:`sketchseg.model.checkpoint`), ``steps.jsonl`` (one line per optimiser step: loss, τ, lr, ...),
``history.json`` (per-epoch losses and validation metrics) and ``train_metrics.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sketchseg.config import Config, flatten
from sketchseg.errors import CheckpointError, ConfigError
from sketchseg.io_utils import atomic_file, file_sha256
from sketchseg.model.backbone import Backbone, uses_quick_gelu
from sketchseg.model.checkpoint import load_model, save_checkpoint
from sketchseg.model.config import BackboneConfig
from sketchseg.model.finetune import center_patch_filters, keep_filters_centred, trainable_parameters
from sketchseg.model.network import SketchSegModel
from sketchseg.train import distributed as dist_utils
from sketchseg.train.schedule import warmup_cosine
from sketchseg.train.step import TwoLevelStep

log = logging.getLogger(__name__)


def resolve_foundation(cfg: Config, foundation: str | Path | None) -> Path | None:
    """The foundation folder: ``foundation`` when given, else ``foundation.out`` when it holds a foundation model
    (the DVC stage ``foundation`` wrote it), else None (the configured ``model.backbone``)."""
    if foundation:
        return Path(foundation)
    default = Path(cfg.foundation.out)
    return default if (default / "open_clip_config.json").is_file() else None


def model_config_for(cfg: Config, foundation: str | Path | None):
    """The run's ModelConfig, with the backbone taken from a foundation folder when one is given."""
    model_cfg = cfg.model
    if foundation is not None:
        folder = Path(foundation)
        if not (folder / "open_clip_config.json").is_file():
            raise CheckpointError(f"{folder}: not a foundation model folder; run `sketchseg foundation` first")
        model_cfg = dataclasses.replace(model_cfg, backbone=BackboneConfig(name=f"local-dir:{folder}"))
    return model_cfg


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


def train_transform(sample: dict[str, Any], size: tuple[int, int], flip: bool, seed: int, epoch: int) -> dict:
    """Decoded shard sample -> {"input": [1, S, S] float32 intensities, "caption", "categories", "id"}.
    Horizontal flips are a deterministic function of (seed, epoch, id), identical on every process."""
    img = Image.fromarray(sample["image"]).resize((size[1], size[0]), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 255.0  # [S, S]
    if flip:
        h = hashlib.sha1(f"{seed}:{epoch}:{sample['id']}".encode()).digest()
        if h[0] & 1:
            arr = arr[:, ::-1]
    return {
        "id": sample["id"],
        "input": np.ascontiguousarray(arr)[None],
        "caption": sample["caption"],
        "categories": list(sample["categories"]),
    }


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def canonical(obj: Any) -> Any:
    """``obj`` with its containers rebuilt and every string interned. Pickle writes one copy of an object and refers
    back to it, so a checkpoint's bytes depend on which equal strings happen to be the same object; the strings a
    resumed run read back from its checkpoint (optimiser keys, history) are not the ones an uninterrupted run has."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        return {canonical(k): canonical(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(canonical(v) for v in obj)
    return obj


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(canonical(obj), tmp)  # the same state gives the same bytes, resumed or not
    os.replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    with atomic_file(path) as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


# What a resumed run may change: where it writes, the threads and loader workers it uses, and how many epochs it runs.
RESUMABLE_CHANGES = frozenset({"train.out", "train.threads", "train.num_workers", "train.epochs"})


def config_changes(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Parameters of the ``model`` and ``train`` sections whose value differs: {"train.lr": (saved, current)}."""
    old, new = ({k: tree.get(k, {}) for k in ("model", "train")} for tree in (saved, current))
    old, new = ({k: list(v) if isinstance(v, tuple) else v for k, v in flatten(t).items()} for t in (old, new))
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}


def foundation_digest(folder: str | Path | None) -> str | None:
    """SHA-1 over the names and SHA-256 of the files of a foundation folder; None without a foundation."""
    if folder is None:
        return None
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return hashlib.sha1("".join(f"{p.name}:{file_sha256(p)}\n" for p in files).encode()).hexdigest()


def check_resumable(state: dict[str, Any], cfg: Config, foundation_sha: str | None, where: Path) -> None:
    """Raise when the checkpoint ``state`` was written by a run this one cannot continue (config or foundation)."""
    fix = f"restore them, or train afresh: drop --resume or pick another train.out than {where.parent.parent}"
    if "config" not in state:
        log.warning("%s: written before configs were stored in checkpoints; its parameters are not checked", where)
    else:
        changes = config_changes(state["config"], cfg.to_dict())
        fatal = {k: v for k, v in changes.items() if k not in RESUMABLE_CHANGES}
        if fatal:
            listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in fatal.items())
            raise CheckpointError(f"{where}: cannot resume, parameters changed since the checkpoint ({listed}); {fix}")
        if "train.epochs" in changes:
            old, new = changes["train.epochs"]
            log.warning("train.epochs changed %s -> %s: the learning-rate schedule is rescaled from here on", old, new)
    saved_sha = state.get("foundation_sha1", foundation_sha)
    if saved_sha != foundation_sha:
        raise CheckpointError(f"{where}: cannot resume, the foundation model differs from the checkpoint's; {fix}")


def read_resume_state(path: Path) -> dict[str, Any] | None:
    """The checkpoint ``path`` a resumed run continues from (None when there is none), read by global rank 0 and sent
    to every other rank: on several nodes only rank 0's disk holds it."""
    state = None
    if dist_utils.is_main_process() and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
    return dist_utils.broadcast_object(state)


def keep_steps_until(steps_log: Path, step: int) -> None:
    """Drop the rows after optimiser step ``step`` from ``steps.jsonl``: those of an epoch that was logged but not
    checkpointed before an interruption, which the resumed run logs again."""
    if not steps_log.is_file():
        return
    rows = [line for line in steps_log.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line)["step"] <= step]
    if len(kept) < len(rows):
        with atomic_file(steps_log) as fh:
            fh.write("".join(line + "\n" for line in kept))


def warm_category_cache(model: SketchSegModel, shards: Path) -> None:
    """Embed every category of the training and validation shards once, one category at a time. A matrix product's
    last bits depend on how many rows it has, so embedding categories in whatever batch first asks for them would make
    a resumed run (its cache empty) differ from an uninterrupted one; embedded alone, a category has the same
    embedding in both. The text tower is frozen, so the cache stays valid all along."""
    from sketchseg.data.shards import make_dataset

    names: set[str] = set()
    for split in ("train", "val"):
        for sample in make_dataset(shards, split, shuffle=False, seed=0, decode=False):
            names.update(sample["categories"])
    for name in sorted(names):
        model.encode_categories([name])


def count_train_samples(shards: Path) -> int:
    from sketchseg.data.shards import read_index

    return int(read_index(shards, "train")["num_samples"])


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
    from sketchseg.data.shards import make_loader
    from sketchseg.eval.evaluate import evaluate_model, samples_from_shards
    from sketchseg.progress import progress as progress_bar

    tc = cfg.train
    out = Path(out or tc.out)
    shards = Path(shards or cfg.data.shards)
    ctx = dist_utils.init_distributed()
    world, rank = ctx.world_size, ctx.rank
    if tc.threads:
        torch.set_num_threads(tc.threads)
    dist_utils.seed_everything(tc.seed, rank)
    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and ctx.device.type == "cuda")
    if use_bf16 and ctx.device.type == "cpu" and rank == 0 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        log.warning(
            "train.precision=bf16 on a CPU without bf16 instructions (AVX-512 BF16 or AMX; this one: %s): autocast "
            "emulates bf16, measured 35x slower than float32 for ViT-B-16 on 2 AVX2 cores; train.precision=auto "
            "trains in float32 on CPU and in bf16 on GPUs",
            torch.backends.cpu.get_cpu_capability(),
        )  # fmt: skip

    model = initial_model(cfg, foundation).to(ctx.device)
    foundation_sha = foundation_digest(foundation)
    step_module = TwoLevelStep(model, tc.loss)
    full = tc.loss.global_loss and tc.loss.category_loss and not tc.loss.layers
    if world > 1:
        runner = torch.nn.parallel.DistributedDataParallel(
            step_module,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=not full,
        )
    else:
        runner = step_module
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params.values(), lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.98))
    centre_filters = keep_filters_centred(model, tc.center_patch_filters)
    if centre_filters and ctx.is_main:
        log.info("patch-embedding filters kept zero-mean after every step (train.center_patch_filters)")

    n_train = count_train_samples(shards)
    global_batch = tc.batch_size * world
    batches_per_epoch = n_train // global_batch
    if tc.max_steps_per_epoch:
        batches_per_epoch = min(batches_per_epoch, tc.max_steps_per_epoch * tc.grad_accum)
    if batches_per_epoch < tc.grad_accum:
        raise ConfigError(
            f"{n_train} training sketches give {batches_per_epoch} batches of {global_batch} per epoch, fewer than "
            f"grad_accum={tc.grad_accum}; lower train.batch_size or add data"
        )
    steps_per_epoch = batches_per_epoch // tc.grad_accum
    total_steps = steps_per_epoch * tc.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(warmup_cosine, warmup=tc.warmup_steps, total=total_steps)
    )

    ckpt_dir, models_dir = out / "checkpoints", out / "models"
    history: list[dict[str, Any]] = []
    start_epoch, global_step, best = 0, 0, -1.0
    last_ckpt = ckpt_dir / "last.pt"
    state = read_resume_state(last_ckpt) if resume else None
    if state is not None:
        check_resumable(state, cfg, foundation_sha, last_ckpt)
        missing = set(params) - set(state["trainable"])
        if missing:
            raise CheckpointError(f"{last_ckpt}: does not hold parameters {sorted(missing)[:3]}...; config changed?")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state["trainable"][name])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"][rank] if isinstance(state["rng"], list) else state["rng"])
        start_epoch, global_step = state["epoch"] + 1, state["step"]
        history, best = state["history"], state["best"]
        if ctx.is_main:
            log.info("resumed from %s: %d of %d epochs done, continuing with epoch %d (step %d)",
                     last_ckpt, start_epoch, tc.epochs, start_epoch + 1, global_step)  # fmt: skip
            keep_steps_until(out / "steps.jsonl", global_step)
    elif ctx.is_main:  # a fresh start: outputs of an earlier run must not mix with this one's
        if resume:
            log.warning("--resume: no checkpoint at %s; training starts from epoch 1", last_ckpt)
        for sub in ("checkpoints", "models"):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "steps.jsonl").unlink(missing_ok=True)

    warm_category_cache(model, shards)
    val_samples = None
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        val_samples = samples_from_shards(shards, "val", tc.val_max_sketches)
    initial_val = None
    if ctx.is_main and start_epoch == 0:
        initial_val = evaluate_model(model, val_samples, sweep=False).summary["miou"]  # the untrained model
        log.info("untrained model: val mIoU %.4f", initial_val)
    elif resume and history:
        initial_val = state.get("initial_val_miou")
    steps_log = out / "steps.jsonl"
    autocast = (
        functools.partial(torch.autocast, device_type=ctx.device.type, dtype=torch.bfloat16)
        if use_bf16
        else contextlib.nullcontext
    )

    for epoch in range(start_epoch, tc.epochs):
        t0 = time.time()
        # RNG streams (prompt dropout, ...) depend only on (seed, epoch, rank): a resumed run repeats them exactly.
        dist_utils.seed_everything(tc.seed * 1_000_003 + epoch * 1000, rank)
        model.train()
        loader = make_loader(
            shards,
            "train",
            batch_size=global_batch,
            num_workers=tc.num_workers,
            shuffle=True,
            seed=tc.seed,
            epoch=epoch,
            transform=functools.partial(
                train_transform, size=model.image_size, flip=tc.flip, seed=tc.seed, epoch=epoch
            ),
            stack=("input",),
            drop_last=True,
        )
        bar = progress_bar(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="step",
                           enabled=progress and ctx.is_main)
        losses: list[float] = []
        lines: list[str] = []
        optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(loader):
            if i >= steps_per_epoch * tc.grad_accum:
                break
            lo, hi = rank * tc.batch_size, (rank + 1) * tc.batch_size
            x = batch["input"][lo:hi].to(ctx.device)  # [B, 1, S, S]
            captions, categories = batch["caption"][lo:hi], batch["categories"][lo:hi]
            sync = (i + 1) % tc.grad_accum == 0
            no_sync = runner.no_sync if (world > 1 and not sync) else contextlib.nullcontext
            with no_sync(), autocast():
                loss, stats = runner(x, captions, categories)
            with no_sync():
                (loss / tc.grad_accum).backward()
            if not sync:
                continue
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(list(params.values()), tc.grad_clip)
            optimizer.step()
            if centre_filters:
                center_patch_filters(model.clip)
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            losses.append(stats["loss"])
            if ctx.is_main:
                row = {"step": global_step, "epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], **stats}
                row["tau"] = float(model.threshold.tau().detach())  # after the update
                lines.append(json.dumps(row))
                bar.set_postfix(loss=f"{stats['loss']:.3f}", tau=f"{row['tau']:.3f}")
            bar.update(1)
        bar.close()
        if ctx.is_main:
            with open(steps_log, "a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": global_step,
            "train_loss": float(np.mean(losses)) if losses else None,
            "tau": float(model.threshold.tau().detach()),
        }
        seconds = time.time() - t0  # logged only: the outputs hold nothing that depends on the machine
        if ctx.is_main:
            result = evaluate_model(model, val_samples, sweep=False)
            s = result.summary
            record.update({"val_miou": s["miou"], "val_acc_p": s["acc_p"], "val_acc_s": s["acc_s"]})
            improved = s["miou"] > best
            history.append(record)
            best = max(best, s["miou"])
            meta = {"epoch": epoch + 1, "step": global_step, "val_miou": s["miou"], "config": cfg.to_dict()}
            save_checkpoint(model, models_dir / "last.pt", meta=meta)
            if improved:
                save_checkpoint(model, models_dir / "optimal.pt", meta=meta)
            state = {
                "trainable": {n: p.detach().cpu() for n, p in params.items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(),
                "epoch": epoch,
                "step": global_step,
                "history": history,
                "best": best,
                "initial_val_miou": initial_val,
                "config": cfg.to_dict(),
                "foundation_sha1": foundation_sha,
            }
            _save_atomic(state, ckpt_dir / f"epoch-{epoch + 1:03d}.pt")
            _save_atomic(state, last_ckpt)
            _write_json(out / "history.json", history)
            log.info(
                "epoch %d: loss %.4f, tau %.3f, val mIoU %.4f%s (%.1f s)",
                epoch + 1,
                record["train_loss"] or float("nan"),
                record["tau"],
                s["miou"],
                " (best)" if improved else "",
                seconds,
            )
        dist_utils.barrier()
    summary: dict[str, Any] = {}
    if ctx.is_main:
        best_epoch = max(history, key=lambda r: r["val_miou"]) if history else None
        summary = {
            "epochs": len(history),
            "steps": global_step,
            "final_tau": float(model.threshold.tau().detach()),
            "best_val_miou": best_epoch["val_miou"] if best_epoch else None,
            "best_epoch": best_epoch["epoch"] if best_epoch else None,
            "last_val_miou": history[-1]["val_miou"] if history else None,
            "initial_val_miou": initial_val,
            "world_size": world,
            # what train.precision "auto" and train.nproc 0 resolved to on this machine
            "device": ctx.device.type,
            "precision": "bf16" if use_bf16 else "fp32",
            "batch_size": tc.batch_size,  # per process
            "global_batch": global_batch * tc.grad_accum,  # sketches per optimiser step
            "weights": model.origin,  # what training started from, its activation included
            "activation": "QuickGELU" if uses_quick_gelu(model.clip) else "GELU",
        }
        _write_json(out / "train_metrics.json", summary)
    dist_utils.destroy_distributed()
    return summary
