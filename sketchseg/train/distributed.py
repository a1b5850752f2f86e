"""Distributed-training helpers: process group set-up from torchrun's environment, rank queries,
all-gathers for the global batch (with gradient for the local part), and seeding.

Everything degrades to a single-process no-op when torch.distributed is not initialised, so the same
training code runs under `torchrun` (DistributedDataParallel, SPEC §8) and as a plain `python` process.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from sketchseg.errors import ConfigError

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: its ranks, the job size, its device and the backend in use."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None when the job is a single process and no group was created

    @property
    def is_main(self) -> bool:
        """True on the process that logs, evaluates and writes checkpoints (global rank 0)."""
        return self.rank == 0


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """Read an integer torchrun variable, raising ConfigError with the fix when it is malformed."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(
            f"environment variable {name}={raw!r} is not an integer; launch with torchrun or set it to an integer"
        ) from exc
    if value < 0:
        raise ConfigError(f"environment variable {name}={value} is negative; it must be >= 0")
    return value


def init_distributed(
    env: Mapping[str, str] | None = None,
    backend: str | None = None,
    timeout_s: float = 1800.0,
) -> DistContext:
    """Join the process group described by torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
    MASTER_PORT) and return this process's context.

    Without WORLD_SIZE, or with WORLD_SIZE=1, no group is created and a single-process context is returned.
    The backend defaults to NCCL when CUDA is available (each process then uses GPU LOCAL_RANK) and gloo
    otherwise (explicit backend="gloo" keeps the process on the CPU). `env` defaults to os.environ, which is
    what torchrun sets; pass a mapping to join a group without touching the process environment.
    """
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    rank_ = _env_int(env, "RANK", 0)
    local = _env_int(env, "LOCAL_RANK", rank_)
    if world == 0:
        raise ConfigError("environment variable WORLD_SIZE=0; it must be >= 1 (launch with torchrun)")
    if rank_ >= world:
        raise ConfigError(f"RANK={rank_} is not below WORLD_SIZE={world}; check the torchrun launch arguments")
    use_cuda = torch.cuda.is_available() if backend is None else backend == "nccl"
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                "use --nproc-per-node <= the number of GPUs"
            )
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world == 1:
        return DistContext(rank=0, local_rank=0, world_size=1, device=device, backend=None)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world} but {', '.join(missing)} is not set; launch with torchrun, which sets "
            f"{', '.join(_TORCHRUN_VARS)}"
        )
    chosen = backend or ("nccl" if use_cuda else "gloo")
    if dist.is_initialized():
        raise ConfigError("torch.distributed is already initialised; call init_distributed once per process")
    # os.environ: the standard "env://" rendezvous, which also honours torchrun's store settings;
    # an explicit mapping: the same address and port, given as a tcp:// URL.
    init_method = "env://" if env is os.environ else f"tcp://{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    dist.init_process_group(
        backend=chosen,
        init_method=init_method,
        rank=rank_,
        world_size=world,
        timeout=timedelta(seconds=timeout_s),
    )
    return DistContext(rank=rank_, local_rank=local, world_size=world, device=device, backend=chosen)


def destroy_distributed() -> None:
    """Leave the process group if one was created (safe to call in single-process runs)."""
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the job (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """True on global rank 0, the process that logs and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank (``obj`` itself without a process group)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed Python, NumPy and torch (CPU and CUDA) with `seed + rank` and return that value.

    Offsetting by the rank gives each process its own dropout and augmentation stream; the model weights
    stay identical across ranks because DistributedDataParallel broadcasts rank 0's parameters.
    """
    effective = int(seed) + int(rank)
    random.seed(effective)
    np.random.seed(effective % (2**32))
    torch.manual_seed(effective)
    return effective


def _all_gather_variable(x: torch.Tensor) -> list[torch.Tensor]:
    """All-gather tensors whose first dimension may differ across ranks; returns one detached part per rank."""
    n_local = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    sizes_t = [torch.zeros_like(n_local) for _ in range(world_size())]
    dist.all_gather(sizes_t, n_local)
    sizes = [int(s.item()) for s in sizes_t]
    max_n = max(max(sizes), 1)  # never exchange empty buffers
    padded = x.detach().new_zeros((max_n, *x.shape[1:]))
    padded[: x.shape[0]] = x.detach()
    buffers = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(buffers, padded)
    return [buf[:n] for buf, n in zip(buffers, sizes, strict=True)]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` [n_r, ...] from every rank in rank order -> [sum n_r, ...].

    The first dimension may differ across ranks. This rank's slice is `x` itself, so gradient flows to it;
    the other ranks' slices are detached constants. Without a process group `x` is returned unchanged.
    """
    if not is_distributed():
        return x
    parts = _all_gather_variable(x)
    parts[rank()] = x
    return torch.cat(parts, dim=0)


def gather_tensor(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` [n_r, ...] from every rank in rank order, without gradient (e.g. integer ids)."""
    if not is_distributed():
        return x.detach()
    return torch.cat(_all_gather_variable(x), dim=0)


def _collective_device() -> torch.device:
    """The device small bookkeeping tensors must live on for the active backend (CUDA for NCCL)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
