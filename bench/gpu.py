"""The paper's scale on a GPU, measured with one command (issue 24). Prints JSON.

With random weights (nothing is downloaded), on the device it is given:
- ``train``: the training step as the trainer runs it (TwoLevelStep inside DistributedDataParallel over a one-process
  group, NCCL on CUDA and gloo on CPU; bf16 autocast on CUDA and float32 on CPU, as ``train.precision: auto``
  decides; AdamW; both levels, 3 categories per sketch) at batch 16: steps/s and peak memory;
- ``paper_training``: that step rate projected onto the paper's run (20 epochs of 9,025 training sketches at batch 16,
  ``9025 // 16`` steps per epoch as the trainer drops the last partial batch), against their 7.31 h on 2 GPUs;
  optimiser steps only: no data loading and no per-epoch validation;
- ``segment``: the Segmenter end to end (PNG file in, label map out, float32 as it runs): one 512x512 sketch with a
  new 4-category vocabulary each call (latency), and batches of 64 sketches with a cached vocabulary (throughput),
  against the paper's 1.05 s per sketch; for ``sketchseg`` (the default recipe) and ``authors`` (``--recipe
  authors`` on the authors' architecture: QuickGELU, their exit block; 85 templates per category);
- ``largest_batch``: the largest batch that fits in memory for a training step (without DDP's wrapper: an
  out-of-memory error inside it leaves DDP's reducer unusable; its own buffers are the size of the trainable
  parameters, a few MB) and for the Segmenter's encoder pass, doubled up to a cap, then bisected;
- ``tests``: the suite's DDP-equivalence and bf16 tests (tests/test_distributed.py, tests/test_train.py) run by pytest
  in a subprocess with ``SKETCHSEG_TEST_DEVICE`` set to the device: pass/fail per test.

``--tiny`` runs the same functions on CPU with the small open_clip config ``sketchseg-test``, short repeats, small
batch caps and the tests not marked slow, in well under a minute: CI runs it (tests/test_bench_gpu.py).
Preconditions (CUDA present, NCCL built in, bf16 supported, enough free GPU memory) are checked first and a failed one
ends the run with one line on stderr and exit status 2. A section that fails records ``{"error": ...}`` in the JSON,
prints its traceback to stderr and the run goes on (exit status 1 at the end), so one run on a lent machine returns
every figure it could measure. DEVELOPERS.md: the keys, and how to run this on a lent GPU machine.

Usage: python bench/gpu.py [--tiny] [--device cuda|cpu] [--out FILE] [--sections train,segment,largest,tests]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: nothing may reach the model hubs

try:
    import torch
    import torch.distributed as dist
    from infer import WORDS, fake_sketch  # bench/infer.py: the sketches and words the CPU benchmarks use
    from PIL import Image
    from torch.nn.parallel import DistributedDataParallel

    from sketchseg.config import LossConfig
    from sketchseg.errors import SketchsegError
    from sketchseg.model.authors import authors_model_config
    from sketchseg.model.config import BackboneConfig, ModelConfig
    from sketchseg.model.finetune import trainable_parameters
    from sketchseg.model.network import SketchSegModel
    from sketchseg.model.segmenter import Segmenter
    from sketchseg.train import distributed as dist_utils
    from sketchseg.train.step import TwoLevelStep
except ImportError as exc:  # one line, not a traceback: what is missing and where it comes from
    sys.exit(
        f"bench/gpu.py: cannot import {exc.name or exc}: install the project (make setup), or on a lent GPU machine "
        "carry the wheels DEVELOPERS.md lists and put the repository on PYTHONPATH"
    )

REPO = Path(__file__).resolve().parents[1]
PAPER = {"epochs": 20, "train_sketches": 9025, "batch": 16, "hours": 7.31, "gpus": 2, "s_per_sketch": 1.05}
SECTIONS = ("train", "segment", "largest", "tests")
# The suite's DDP-equivalence and bf16 tests (pytest -k over the two files).
TEST_FILES = ("tests/test_distributed.py", "tests/test_train.py")
TEST_SELECTION = "ddp_two_processes or two_gloo_processes or bf16"
GIB = 2**30


class BenchError(Exception):
    """A precondition that does not hold; the message is the one line the user sees."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"bench/gpu.py: {message} (see --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Arguments, with the defaults of the chosen mode filled in (full size on CUDA, or --tiny on CPU)."""
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="the same code paths on CPU with a tiny model, in seconds")
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda, or cpu with --tiny")
    ap.add_argument("--model", default=None, help="open_clip config (default ViT-B-16; sketchseg-test with --tiny)")
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                    help="training autocast: auto = bf16 on CUDA, float32 on CPU (train.precision)")  # fmt: skip
    ap.add_argument("--train-batch", type=int, default=16, help="sketches per training step (the paper: 16)")
    ap.add_argument("--categories", type=int, default=3, help="categories per training sketch (the paper keeps 3)")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps (default 20; 3 with --tiny)")
    ap.add_argument("--infer-batch", type=int, default=None, help="segmentation batch (default 64; 16 with --tiny)")
    ap.add_argument("--repeats", type=int, default=None, help="timed segmentation calls (default 10; 3 with --tiny)")
    ap.add_argument("--max-train-batch", type=int, default=None, help="cap of the search (default 1024; 32 --tiny)")
    ap.add_argument("--max-infer-batch", type=int, default=None, help="cap of the search (default 8192; 32 --tiny)")
    ap.add_argument("--min-free-gib", type=float, default=None,
                    help="free GPU memory the run needs to start (default 12; 0 with --tiny)")  # fmt: skip
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--tests", choices=("all", "fast"), default=None,
                    help="all selected tests, or those not marked slow (default: all; fast with --tiny)")  # fmt: skip
    ap.add_argument("--tests-timeout", type=float, default=600.0, help="seconds the pytest run may take")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads, the tests' too (default: 1 with --tiny, else torch's)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here (rewritten after each section)")
    args = ap.parse_args(argv)
    tiny = args.tiny
    defaults = {
        "device": "cpu" if tiny else "cuda",
        "model": "sketchseg-test" if tiny else "ViT-B-16",
        "steps": 3 if tiny else 20,
        "infer_batch": 16 if tiny else 64,
        "repeats": 3 if tiny else 10,
        "max_train_batch": 32 if tiny else 1024,
        "max_infer_batch": 32 if tiny else 8192,
        "min_free_gib": 0.0 if tiny else 12.0,
        "tests": "fast" if tiny else "all",
        "threads": 1 if tiny else 0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        ap.error(f"--sections {args.sections!r}: choose from {','.join(SECTIONS)}")
    args.sections = sections
    for name in ("train_batch", "categories", "steps", "infer_batch", "repeats", "max_train_batch", "max_infer_batch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads < 0:
        ap.error("--threads must be 0 (torch's default) or more")
    return args


# ---------------------------------------------------------------------------------------------------- preconditions


def check_preconditions(args: argparse.Namespace) -> torch.device:
    """The device the run measures; BenchError (one line) when it cannot run there."""
    if args.device == "cpu":
        if not args.tiny:
            raise BenchError(
                "the full-size run measures a GPU (--device cuda); on CPU run `python bench/gpu.py --tiny` (the same "
                "code paths, a tiny model) or bench/train.py and bench/infer.py (ViT-B/16 on CPU)"
            )
        if args.precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise BenchError("--precision bf16 on a CPU without bf16 instructions is emulated (35x slower): use auto")
        return torch.device("cpu")
    with warnings.catch_warnings():  # a machine without a driver warns here; the one line below says it all
        warnings.simplefilter("ignore")
        available = torch.cuda.is_available()
    if not available:
        build = "a CPU build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise BenchError(
            f"no CUDA device visible (torch {torch.__version__}, {build}); run this on a GPU machine "
            "(DEVELOPERS.md), or `python bench/gpu.py --tiny` for the same code paths on CPU"
        )
    if not (dist.is_available() and dist.is_nccl_available()):
        raise BenchError(f"torch {torch.__version__} has no NCCL: install a CUDA build of torch with NCCL")
    name = torch.cuda.get_device_name(0)
    if args.precision in ("auto", "bf16") and not torch.cuda.is_bf16_supported():
        raise BenchError(f"{name} does not support bf16 (the trainer's GPU precision); rerun with --precision fp32")
    free, total = torch.cuda.mem_get_info(0)
    if free < args.min_free_gib * GIB:
        raise BenchError(
            f"{name}: {free / GIB:.1f} GiB free of {total / GIB:.1f} GiB, the run needs {args.min_free_gib:g} "
            "(--min-free-gib): free the GPU (nvidia-smi lists its processes) or lower --min-free-gib"
        )
    return torch.device("cuda", 0)


def device_facts(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on."""
    facts: dict[str, Any] = {
        "kind": device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts.update(
            name=props.name,
            count=torch.cuda.device_count(),
            memory_gib=round(props.total_memory / GIB, 2),
            capability=f"{props.major}.{props.minor}",
            nccl=nccl_version(),
        )
    else:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        facts.update(
            name=platform.processor() or platform.machine(),
            count=os.cpu_count() or 1,
            memory_gib=round(pages / GIB, 2),
            capability=torch.backends.cpu.get_cpu_capability(),
            nccl="none",
        )
    return facts


def nccl_version() -> str:
    """NCCL's version as torch reports it ("2.27.5"), or "unknown"."""
    try:
        version = torch.cuda.nccl.version()
    except Exception:  # a fact for the record, never a reason to stop
        return "unknown"
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


# ---------------------------------------------------------------------------------------------------- helpers


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a timer must not stop before the GPU does)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds ``fn`` takes, device work included."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory since the last reset: CUDA's allocated bytes, or the process's maximum resident size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB


def release(device: torch.device) -> None:
    """Return freed memory to the device, so that the next section starts from the same state."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the errors a too-large batch raises (the allocator's, cuBLAS's or cuDNN's, or the host's)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "CUBLAS_STATUS_ALLOC_FAILED" in text)


def use_bf16(args: argparse.Namespace, device: torch.device) -> bool:
    """The trainer's rule (``train.precision``): bf16 autocast when asked, or by default on a GPU."""
    return args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")


def autocast(args: argparse.Namespace, device: torch.device) -> contextlib.AbstractContextManager:
    """The training step's autocast context (bf16), or none (float32)."""
    if use_bf16(args, device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_batch(
    n: int, categories: int, size: tuple[int, int], device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, list[str], list[list[str]]]:
    """``n`` random sketches (white paper with sparse ink) [n, 1, S, S], their captions and category lists."""
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 1, *size, generator=g) > 0.05).float().to(device)  # [n, 1, S, S]
    captions = [f"a {WORDS[i % len(WORDS)]} next to a {WORDS[(i + 3) % len(WORDS)]} {i}" for i in range(n)]
    cats = [[WORDS[(i + k) % len(WORDS)] for k in range(categories)] for i in range(n)]
    return images, captions, cats


def new_model(args: argparse.Namespace, authors: bool = False) -> SketchSegModel:
    """A model of ``--model`` with random weights; ``authors``: the authors' architecture (QuickGELU, exit block)."""
    backbone = BackboneConfig(name=args.model, pretrained=None)
    if not authors:
        return SketchSegModel(ModelConfig(backbone=backbone))
    cfg = authors_model_config()
    if args.model != cfg.backbone.name:  # their layout on a smaller open_clip config: v-v in half its blocks
        cfg.backbone = BackboneConfig(name=args.model, pretrained=None, force_quick_gelu=True)
        cfg.vv_layers = None
    return SketchSegModel(cfg)


@contextlib.contextmanager
def one_process_group(device: torch.device) -> Iterator[dist_utils.DistContext]:
    """A process group of this one process (NCCL on CUDA, gloo on CPU), with the trainer's device choice; yields the
    context the trainer would get. torchrun's WORLD_SIZE=1 makes ``init_distributed`` skip the group, so the group is
    created here, in memory (a HashStore), to run DDP and the losses' all-gathers as a multi-GPU run does."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    ctx = dist_utils.init_distributed(env={}, backend=backend)  # device: cuda:0 (set as current) or cpu
    if dist_utils.is_distributed():
        raise BenchError("a torch.distributed process group already exists in this process")
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield dist_utils.DistContext(rank=0, local_rank=0, world_size=1, device=ctx.device, backend=backend)
    finally:
        dist_utils.destroy_distributed()


# ---------------------------------------------------------------------------------------------------- sections


def train_section(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Steps/s and peak memory of the trainer's step at ``--train-batch``, inside one-process DDP."""
    with one_process_group(device) as ctx:
        model = new_model(args).to(ctx.device)
        model.train()
        runner = DistributedDataParallel(
            TwoLevelStep(model, LossConfig()),
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=False,  # both levels, every exit block: the trainer's setting for the full loss
        )
        params = list(trainable_parameters(model).values())
        optimizer = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.0, betas=(0.9, 0.98))  # experiments/paper.yaml
        images, captions, cats = training_batch(args.train_batch, args.categories, model.image_size, ctx.device)
        losses: list[float] = []

        def step() -> None:  # as the trainer's loop: forward under autocast, backward, clip, AdamW
            with autocast(args, ctx.device):
                loss, _ = runner(images, captions, cats)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))

        for _ in range(2):  # warm-up: kernels chosen, text cache filled, DDP's buckets built
            step()
        release(ctx.device)
        seconds = timed(lambda: [step() for _ in range(args.steps)], ctx.device)
        peak = peak_memory_gib(ctx.device)
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"non-finite training loss: {losses}")
    steps_per_s = args.steps / seconds
    return {
        "batch": args.train_batch,
        "categories_per_sketch": args.categories,
        "steps_timed": args.steps,
        "step_s": round(seconds / args.steps, 4),
        "steps_per_s": round(steps_per_s, 3),
        "sketches_per_s": round(steps_per_s * args.train_batch, 2),
        "peak_memory_gib": round(peak, 3),
        "memory_measure": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process max RSS",
        "last_loss": round(losses[-1], 5),
    }


def paper_projection(train: dict[str, Any]) -> dict[str, Any]:
    """The measured step rate over the paper's run (its epochs and sketches, in steps of the measured batch: the
    paper's 16 by default), against their 7.31 h on 2 GPUs."""
    steps = PAPER["epochs"] * (PAPER["train_sketches"] // train["batch"])  # the trainer drops a last partial batch
    hours = steps / train["steps_per_s"] / 3600
    paper_gpu_hours = PAPER["hours"] * PAPER["gpus"]
    return {
        "epochs": PAPER["epochs"],
        "train_sketches": PAPER["train_sketches"],
        "batch": train["batch"],
        "paper_batch": PAPER["batch"],
        "steps": steps,
        "projected_hours_one_device": round(hours, 3),
        "paper_hours": PAPER["hours"],
        "paper_gpus": PAPER["gpus"],
        "paper_gpu_hours": round(paper_gpu_hours, 2),
        "speedup_vs_paper_wall_clock": round(PAPER["hours"] / hours, 2),
        "speedup_vs_paper_gpu_hours": round(paper_gpu_hours / hours, 2),
    }


def sketch_files(n: int, folder: Path) -> list[Path]:
    """``n`` random 512x512 sketches written as PNG files in ``folder`` (the Segmenter reads them as a user's)."""
    paths = []
    for i in range(n):
        paths.append(folder / f"s{i}.png")
        Image.fromarray(fake_sketch(i)).save(paths[-1])
    return paths


def segment_section(args: argparse.Namespace, device: torch.device, recipe: str, paths: list[Path]) -> dict[str, Any]:
    """Latency of one sketch with a new vocabulary and throughput of ``--infer-batch`` sketches, with ``recipe``."""
    segmenter = Segmenter(new_model(args, authors=recipe == "authors"), device=device, batch_size=args.infer_batch,
                          recipe=recipe)  # fmt: skip
    counter = iter(range(10**9))

    def one() -> None:  # a vocabulary never seen before: every category goes through the text tower
        k = next(counter)
        segmenter.segment(paths[0], categories=[f"{WORDS[(4 * k + j) % len(WORDS)]} {k}" for j in range(4)])

    vocab = ["giraffe", "zebra", "grass", "cloud"]

    def batch() -> None:
        results = list(segmenter.segment_many(paths[: args.infer_batch], categories=vocab))
        if len(results) != args.infer_batch:
            raise RuntimeError(f"segment_many returned {len(results)} results for {args.infer_batch} sketches")

    for fn in (one, one, batch):  # warm-up
        fn()
    single = [timed(one, device) for _ in range(args.repeats)]
    batches = [timed(batch, device) for _ in range(max(2, args.repeats // 2))]
    templates = segmenter.recipe.templates or segmenter.model.cfg.templates
    s1, sb = statistics.median(single), statistics.median(batches)
    per_sketch = sb / args.infer_batch
    return {
        "templates_per_category": len(templates),
        "precision": "fp32",
        "single_new_vocabulary_s": round(s1, 4),
        "single_fastest_s": round(min(single), 4),
        "batch": args.infer_batch,
        "batch_s": round(sb, 4),
        "batch_sketches_per_s": round(args.infer_batch / sb, 2),
        "batch_s_per_sketch": round(per_sketch, 5),
        "paper_s_per_sketch": PAPER["s_per_sketch"],
        "single_speedup_vs_paper": round(PAPER["s_per_sketch"] / s1, 2),
        "batch_speedup_vs_paper": round(PAPER["s_per_sketch"] / per_sketch, 2),
        "repeats": args.repeats,
    }


def search_largest(fits: Callable[[int], bool], start: int, cap: int) -> dict[str, Any]:
    """The largest batch for which ``fits`` holds: doubled from ``start`` up to ``cap``, then bisected to 1/16 of
    the batch (memory grows with the batch: one failure bounds the search)."""
    good, bad, probes = 0, 0, 0
    size = min(start, cap)
    while True:
        probes += 1
        if fits(size):
            good = size
            if size >= cap:
                break
            size = min(size * 2, cap)
        else:
            bad = size
            break
    while bad and bad - good > max(1, good // 16):
        mid = (good + bad) // 2
        probes += 1
        if fits(mid):
            good = mid
        else:
            bad = mid
    return {"largest": good, "smallest_failed": bad, "capped": not bad, "cap": cap, "probes": probes}


def largest_section(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The largest training and inference batches that fit in the device's memory (up to the caps)."""
    model = new_model(args).to(device)
    model.train()
    step = TwoLevelStep(model, LossConfig())
    params = list(trainable_parameters(model).values())
    optimizer = torch.optim.AdamW(params, lr=1e-6, betas=(0.9, 0.98))
    peaks: dict[str, dict[int, float]] = {"train": {}, "infer": {}}

    def probe(kind: str, fn: Callable[[], None], size: int) -> bool:
        release(device)
        try:
            fn()
            sync(device)
            peaks[kind][size] = peak_memory_gib(device)
            return True
        except Exception as exc:  # only a lack of memory means "does not fit"
            if not is_out_of_memory(exc):
                raise
            return False
        finally:
            optimizer.zero_grad(set_to_none=True)
            release(device)

    def train_fits(size: int) -> bool:
        def run() -> None:
            images, captions, cats = training_batch(size, args.categories, model.image_size, device, seed=size)
            with autocast(args, device):
                loss, _ = step(images, captions, cats)
            loss.backward()
            optimizer.step()

        return probe("train", run, size)

    def infer_fits(size: int) -> bool:
        def run() -> None:
            x = torch.ones(size, 1, *model.image_size, device=device)  # [size, 1, S, S] blank sketches
            with torch.no_grad():
                model.encode_sketch(x, need_scene=False)  # the Segmenter's batched encoder pass, float32

        return probe("infer", run, size)

    train = search_largest(train_fits, args.train_batch, args.max_train_batch)
    model.eval()
    infer = search_largest(infer_fits, args.infer_batch, args.max_infer_batch)
    for result, kind in ((train, "train"), (infer, "infer")):
        result["peak_memory_gib_at_largest"] = round(peaks[kind].get(result["largest"], 0.0), 3)
    train["precision"] = "bf16" if use_bf16(args, device) else "fp32"
    infer["precision"] = "fp32"
    return {"train": train, "infer": infer}


def tests_section(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The suite's DDP-equivalence and bf16 tests on ``device`` (SKETCHSEG_TEST_DEVICE), one outcome per test."""
    with tempfile.TemporaryDirectory(prefix="bench-gpu-tests-") as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
               f"--basetemp={Path(tmp) / 'tmp'}", "-k", TEST_SELECTION, *TEST_FILES]  # fmt: skip
        if args.tests == "fast":
            cmd += ["-m", "not slow"]
        # a pytest of its own, not a worker of one this script may run under
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
        env["SKETCHSEG_TEST_DEVICE"] = device.type
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=args.tests_timeout)
        seconds = time.perf_counter() - t0
        if not report.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"pytest wrote no report (exit status {proc.returncode}): {tail[0]}")
        outcomes = junit_outcomes(report)
    counts = {k: sum(1 for v in outcomes.values() if v.split(":")[0] == k) for k in ("passed", "failed", "skipped")}
    return {
        "device": device.type,
        "selection": f"-k '{TEST_SELECTION}'" + (" -m 'not slow'" if args.tests == "fast" else ""),
        **counts,
        "ok": counts["failed"] == 0 and counts["passed"] > 0 and proc.returncode == 0,
        "exit_status": proc.returncode,
        "seconds": round(seconds, 1),
        "outcomes": outcomes,
    }


def junit_outcomes(report: Path) -> dict[str, str]:
    """pytest's JUnit XML -> {"file.py::test": "passed" | "failed: first line" | "skipped: reason"}."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        outcome = "passed"
        for child in case:
            message = (child.get("message") or child.text or "").strip().splitlines()
            first = message[0][:200] if message else ""
            if child.tag in ("failure", "error"):
                outcome = f"failed: {first}"
            elif child.tag == "skipped":
                outcome = f"skipped: {first}"
        outcomes[name] = outcome
    return outcomes


# ---------------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, device: torch.device) -> tuple[dict[str, Any], list[str]]:
    """Every asked-for section, each recorded as it ends (``--out``); returns the results and the failed sections."""
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "mode": "tiny" if args.tiny else "full",
        "device": device_facts(device),
        "model": args.model,
        "weights": "random",
        "precision": "bf16" if use_bf16(args, device) else "fp32",
        "backend": "nccl" if device.type == "cuda" else "gloo",
        "complete": False,
    }
    errors: list[str] = []

    def section(name: str, fn: Callable[[], Any]) -> None:
        print(f"bench/gpu.py: {name} ...", file=sys.stderr, flush=True)
        try:
            result[name] = fn()
        except Exception as exc:  # recorded, and the run goes on: the other figures still come back
            traceback.print_exc(file=sys.stderr)
            message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            result[name] = {"error": message}
            errors.append(f"{name}: {message}")
        release(device)  # the section's models are gone with its frame: their memory goes back to the device
        write_out(args.out, result)

    if "train" in args.sections:
        section("train", lambda: train_section(args, device))
        if "error" not in result["train"]:
            result["paper_training"] = paper_projection(result["train"])
    if "segment" in args.sections:
        with tempfile.TemporaryDirectory(prefix="bench-gpu-") as folder:
            paths = sketch_files(args.infer_batch, Path(folder))
            section("segment", lambda: {r: segment_section(args, device, r, paths) for r in ("sketchseg", "authors")})
    if "largest" in args.sections:
        section("largest_batch", lambda: largest_section(args, device))
    if "tests" in args.sections:
        section("tests", lambda: tests_section(args, device))
    result["errors"] = errors
    result["complete"] = True
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    write_out(args.out, result)
    return result, errors


def write_out(path: Path | None, result: dict[str, Any]) -> None:
    """Write the results so far to ``path`` (when given), atomically."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = check_preconditions(args)
    except (BenchError, SketchsegError) as exc:
        print(f"bench/gpu.py: {exc}", file=sys.stderr)
        return 2
    result, errors = run(args, device)
    print(json.dumps(result, indent=2))
    if errors:
        print(f"bench/gpu.py: {len(errors)} section(s) failed: {'; '.join(errors)}", file=sys.stderr)
        return 1
    if "tests" in result and not result["tests"].get("ok", False):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
