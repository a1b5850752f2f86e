"""What the training reads from the shards: the epoch's global batches, how many optimiser steps an epoch has, and
the categories to embed before the first step.

Data order: every process reads the same deterministic stream (shuffled from ``seed`` and the epoch), groups it into
global batches of ``batch_size x world_size`` and takes its own contiguous slice. N processes with batch B therefore
see exactly the global batches of one process with batch N·B, and a resumed run sees the batches the uninterrupted
run would have seen.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchseg.config import TrainConfig
from sketchseg.data.shards import make_dataset, make_loader, read_index
from sketchseg.errors import ConfigError
from sketchseg.model.image import resized_intensity


def train_transform(sample: dict[str, Any], size: tuple[int, int], flip: bool, seed: int, epoch: int) -> dict:
    """Decoded shard sample -> {"input": [1, S, S] float32 intensities, "caption", "categories", "id"}.
    Horizontal flips are a deterministic function of (seed, epoch, id), identical on every process."""
    arr = resized_intensity(sample["image"], size)  # [S, S]
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


def steps_per_epoch(shards: Path, tc: TrainConfig, world: int) -> int:
    """Optimiser steps of one epoch: the whole global batches of the training split (at most
    ``train.max_steps_per_epoch``), ``train.grad_accum`` batches a step; ConfigError when not one step fits."""
    n_train = int(read_index(shards, "train")["num_samples"])
    global_batch = tc.batch_size * world
    batches = n_train // global_batch
    if tc.max_steps_per_epoch:
        batches = min(batches, tc.max_steps_per_epoch * tc.grad_accum)
    if batches < tc.grad_accum:
        raise ConfigError(
            f"{n_train} training sketches give {batches} batches of {global_batch} per epoch, fewer than "
            f"grad_accum={tc.grad_accum}; lower train.batch_size or add data"
        )
    return batches // tc.grad_accum


def epoch_loader(
    shards: Path, tc: TrainConfig, world: int, epoch: int, size: tuple[int, int]
) -> torch.utils.data.DataLoader:
    """Epoch ``epoch``'s global batches (every process gets them all and takes its slice): {"input": [G, 1, S, S],
    "caption", "categories", "id"} with G = ``batch_size x world``."""
    return make_loader(
        shards,
        "train",
        batch_size=tc.batch_size * world,
        num_workers=tc.num_workers,
        shuffle=True,
        seed=tc.seed,
        epoch=epoch,
        transform=functools.partial(train_transform, size=size, flip=tc.flip, seed=tc.seed, epoch=epoch),
        stack=("input",),
        drop_last=True,
    )


def shard_categories(shards: Path, splits: tuple[str, ...] = ("train", "val")) -> list[str]:
    """Every category of ``splits``' shards, sorted."""
    names: set[str] = set()
    for split in splits:
        for sample in make_dataset(shards, split, shuffle=False, seed=0, decode=False):
            names.update(sample["categories"])
    return sorted(names)
