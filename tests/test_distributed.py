"""Distributed helpers and DDP equivalence of the global-batch losses (SPEC §4, §8).

The DDP test spawns 2 gloo processes on 127.0.0.1, each with half of a batch, and checks that one SGD step gives
the same loss and the same updated parameters as 1 process with the whole batch. With SKETCHSEG_TEST_DEVICE=cuda
(bench/gpu.py sets it) the processes compute on GPUs: NCCL with a GPU per process, or gloo on GPU 0 when there are
fewer GPUs than processes (NCCL needs a GPU per rank).
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sketchseg.config import LossConfig
from sketchseg.errors import ConfigError
from sketchseg.train.distributed import (
    destroy_distributed,
    gather_tensor,
    gather_with_grad,
    init_distributed,
    is_distributed,
    is_main_process,
    rank,
    seed_everything,
    world_size,
)
from sketchseg.train.losses import total_loss

WORLD = 2
LAYERS = (7, 12)
LR = 0.5
TEST_DEVICE = os.environ.get("SKETCHSEG_TEST_DEVICE", "cpu")  # cpu | cuda: where the DDP processes compute


def ddp_device(rank_: int) -> tuple[torch.device, str]:
    """Rank ``rank_``'s device and the backend: the CPU and gloo by default; with SKETCHSEG_TEST_DEVICE=cuda, GPU
    ``rank_`` and NCCL when there are WORLD GPUs, else GPU 0 for every rank and gloo."""
    if TEST_DEVICE == "cpu":
        return torch.device("cpu"), "gloo"
    if torch.cuda.device_count() >= WORLD:
        return torch.device("cuda", rank_), "nccl"
    return torch.device("cuda", 0), "gloo"


# ---------------------------------------------------------------- single-process behaviour


def test_single_process_defaults() -> None:
    ctx = init_distributed(env={})
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, None, True)
    assert not is_distributed() and world_size() == 1 and rank() == 0 and is_main_process()
    ctx = init_distributed(env={"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"})
    assert ctx.world_size == 1 and not is_distributed()
    destroy_distributed()  # safe without a group


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR, MASTER_PORT is not set; launch with torchrun"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "RANK=2 is not below"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0"),
        ({"RANK": "-1"}, "RANK=-1 is negative"),
    ],
)
def test_bad_torchrun_environment_is_a_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        init_distributed(env=env, backend="gloo")


def test_seed_everything_is_reproducible_and_rank_dependent() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    assert seed_everything(11, rank=0) == 11
    first = draw()
    seed_everything(11, rank=0)
    assert draw() == first
    assert seed_everything(11, rank=1) == 12
    other = draw()
    assert all(a != b for a, b in zip(first, other, strict=True))


# ---------------------------------------------------------------- DDP equivalence


class TinyModel(nn.Module):
    """Linear stand-ins for the sketch encoder (scene and per-layer category tokens) and the text encoder."""

    def __init__(self) -> None:
        super().__init__()
        self.sketch = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.category = nn.ModuleDict({str(layer): nn.Linear(6, 4) for layer in LAYERS})

    def forward(
        self, sketch: torch.Tensor, caption: torch.Tensor, pair: torch.Tensor, prompt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor], torch.Tensor]:
        vst = self.sketch(sketch)  # [B, D]
        cst = self.text(caption)  # [B, D]
        vct = {layer: self.category[str(layer)](pair) for layer in LAYERS}  # layer -> [N, D]
        cct = self.text(prompt)  # [N, D]
        return vst, cst, vct, cct


def make_batch(model: TinyModel) -> tuple[dict[str, torch.Tensor], list[tuple[slice, slice]]]:
    """A global batch of 6 sketches (3 per rank) and 8 (sample, category) pairs (3 on rank 0, 5 on rank 1).

    Caption 1 (rank 0) and caption 4 (rank 1) are the same caption: same group id, same text features, and the
    sketches 1 and 4 are made to embed next to that caption, so the other rank's copy is the closest caption to
    each of these anchors (a hard duplicate that must not become the negative).
    Categories: 4 names with a fixed prompt feature each; category 2 occurs on both ranks.
    """
    g = torch.Generator().manual_seed(3)
    captions = torch.randn(6, 5, generator=g)
    captions[4] = captions[1]
    groups = torch.tensor([100, 101, 102, 103, 101, 104])
    vocab = torch.randn(4, 5, generator=g)
    category_ids = torch.tensor([0, 2, 1, 2, 3, 0, 1, 2])
    batch = {
        "sketch": torch.randn(6, 6, generator=g),
        "caption": captions,
        "groups": groups,
        "pair": torch.randn(8, 6, generator=g),
        "prompt": vocab[category_ids],
        "category_ids": category_ids,
    }
    with torch.no_grad():
        pinv = torch.linalg.pinv(model.sketch.weight)  # [6, 4]
        for i in (1, 4):
            target = model.text(captions[i]) + 0.05 * torch.randn(4, generator=g)  # [4]
            batch["sketch"][i] = pinv @ (target - model.sketch.bias)
    return batch, [(slice(0, 3), slice(0, 3)), (slice(3, 6), slice(3, 8))]


def one_step(model: nn.Module, params: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
    """Forward `model` on `batch`, take one SGD step on the parameters of `params`; return the loss and stats."""
    opt = torch.optim.SGD(params.parameters(), lr=LR)
    vst, cst, vct, cct = model(batch["sketch"], batch["caption"], batch["pair"], batch["prompt"])
    loss, stats = total_loss(LossConfig(), vst, cst, batch["groups"], vct, cct, batch["category_ids"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item(), stats


def _ddp_worker(
    rank_: int,
    port: int,
    state: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    slices: list[tuple[slice, slice]],
    out_dir: str,
) -> None:
    torch.set_num_threads(1)
    env = {
        "RANK": str(rank_),
        "LOCAL_RANK": str(rank_),
        "WORLD_SIZE": str(WORLD),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    os.environ.update(env)  # as torchrun does: this child process's own environment
    device, backend = ddp_device(rank_)
    ctx = init_distributed(backend=backend, timeout_s=60)
    try:
        rows, pairs = slices[rank_]
        local = {
            key: (value[pairs] if key in ("pair", "prompt", "category_ids") else value[rows]).to(device)
            for key, value in batch.items()
        }
        model = TinyModel()
        model.load_state_dict(state)
        model.to(device)
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        loss, stats = one_step(ddp, ddp, local)

        # gather helpers with different row counts per rank: rank r holds r + 2 rows
        x = (torch.arange((rank_ + 2) * 2, dtype=torch.float32).view(-1, 2) + 100 * rank_).to(device).requires_grad_()
        gathered = gather_with_grad(x)
        weights = torch.arange(gathered.numel(), dtype=torch.float32, device=device).view_as(gathered)
        (gathered * weights).sum().backward()
        result = {
            "ctx": (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main, world_size(), rank(), is_main_process()),
            "loss": loss,
            "stats": stats,
            "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "gathered": gathered.detach().cpu(),
            "x_grad": x.grad.cpu(),
            "ids": gather_tensor(torch.full((rank_ + 1,), 7 + rank_, dtype=torch.long, device=device)).cpu(),
        }
        torch.save(result, Path(out_dir) / f"rank{rank_}.pt")
    finally:
        destroy_distributed()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_two_processes_match_one_process_with_double_batch(tmp_path: Path) -> None:
    if TEST_DEVICE != "cpu" and not torch.cuda.is_available():
        pytest.fail(f"SKETCHSEG_TEST_DEVICE={TEST_DEVICE} but no CUDA device is visible", pytrace=False)
    torch.manual_seed(0)
    reference = TinyModel()
    state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    batch, slices = make_batch(reference)
    mp.spawn(_ddp_worker, args=(_free_port(), state, batch, slices, str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]

    ref_loss, ref_stats = one_step(reference, reference, batch)
    # the data exercises what matters: active triplets at every level and a cross-rank duplicate caption
    assert 0.0 < ref_stats["global/active"] and 0.0 < ref_stats["category/l7/active"]
    for r, res in enumerate(results):
        assert res["ctx"] == (r, WORLD, ddp_device(r)[1], r == 0, WORLD, r, r == 0)
        assert res["loss"] == pytest.approx(ref_loss, abs=1e-5)
        for key in ("global/loss", "global/active", "category/l7/loss", "category/l12/loss", "category/loss"):
            assert res["stats"][key] == pytest.approx(ref_stats[key], abs=1e-5), key
        assert res["stats"]["global/triplets"] == 6.0 and res["stats"]["category/l12/triplets"] == 8.0
        for name, value in reference.state_dict().items():
            assert torch.allclose(res["state"][name], value, atol=1e-5), (r, name)
            assert not torch.allclose(value, state[name], atol=1e-4), f"{name} did not move in one step"

    # gather helpers: 2 rows from rank 0, 3 from rank 1, in rank order; gradient only to the local rows
    expected = torch.cat([torch.arange(4.0).view(2, 2), torch.arange(6.0).view(3, 2) + 100])
    weights = torch.arange(10.0).view(5, 2)
    assert torch.equal(results[0]["gathered"], expected) and torch.equal(results[1]["gathered"], expected)
    assert torch.equal(results[0]["x_grad"], weights[:2]) and torch.equal(results[1]["x_grad"], weights[2:])
    assert results[1]["ids"].tolist() == [7, 8, 8] and results[0]["ids"].tolist() == [7, 8, 8]


def test_ddp_reference_depends_on_cross_rank_duplicate_rule() -> None:
    """Power check of the data above: treating caption 4 as a distinct caption (a negative for sample 1) changes
    the loss, so the DDP test would catch a rank that failed to exclude the duplicate it received from the other
    rank."""
    torch.manual_seed(0)
    model = TinyModel()
    batch, _ = make_batch(model)
    with torch.no_grad():
        vst, cst, vct, cct = model(batch["sketch"], batch["caption"], batch["pair"], batch["prompt"])
        loss_ok, _ = total_loss(LossConfig(), vst, cst, batch["groups"], vct, cct, batch["category_ids"])
        distinct = torch.tensor([100, 101, 102, 103, 105, 104])
        loss_dup, _ = total_loss(LossConfig(), vst, cst, distinct, vct, cct, batch["category_ids"])
    assert abs(loss_ok.item() - loss_dup.item()) > 1e-3
