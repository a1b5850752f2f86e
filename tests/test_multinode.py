"""Training launched by torchrun on several nodes (SPEC §8), rehearsed on one machine: two torchrun "nodes" of one gloo
process each, meeting on a loopback endpoint (elastic c10d rendezvous, or the static --master-addr/--master-port
one), train exactly as one process with twice the batch; only global rank 0 writes (each node is given its own
output folder here, as nodes with their own disks would have); a resumed run continues on every node from rank 0's
checkpoint, which the other node does not have."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import run_cli
from tests.test_train import steps, trainable_state, write_params


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rendezvous(kind: str) -> list[str]:
    port = str(free_port())
    if kind == "c10d":
        return ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "sketchseg-test"]
    return ["--master-addr", "127.0.0.1", "--master-port", port]


def two_nodes(params: Path, outs: list[Path], kind: str, *extra: str) -> list[str]:
    """Run `torchrun --nnodes 2 --node-rank R --nproc-per-node 1 ... -m sketchseg.train.worker` for R = 0, 1 at once;
    returns each node's output (stdout and stderr)."""
    common = rendezvous(kind)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r),
             "--nproc-per-node", "1", *common, "-m", "sketchseg.train.worker", "--params", str(params),
             "--out", str(outs[r]), *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for r in range(2)
    ]
    logs = []
    for node in nodes:
        try:
            logs.append(node.communicate(timeout=300)[0])
        finally:
            node.kill()
    for node, log in zip(nodes, logs, strict=True):
        assert node.returncode == 0, log[-4000:]
    return logs


def params_for(path: Path, shards: Path, out: Path, batch_size: int) -> Path:
    params = write_params(path, shards, out, batch_size=batch_size, max_steps_per_epoch=2, flip=True)
    text = yaml.safe_load(params.read_text())
    text["model"]["prompt_dropout"] = 0.0  # dropout streams differ per process by design
    params.write_text(yaml.safe_dump(text))
    return params


@pytest.fixture(scope="module")
def one_process(tiny_data: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one process with the global batch of 8."""
    base = tmp_path_factory.mktemp("one_process")
    params = params_for(base / "one.yaml", tiny_data["shards"], base / "one", batch_size=8)
    res = run_cli("train", "--params", str(params), "--nproc", "1")
    assert res.returncode == 0, res.stderr
    return base / "one"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["c10d", "static"])
def test_two_torchrun_nodes_equal_one_process_with_double_batch(
    kind: str, one_process: Path, tiny_data: dict, tmp_path: Path
) -> None:
    params = params_for(tmp_path / "two.yaml", tiny_data["shards"], tmp_path / "unused", batch_size=4)
    outs = [tmp_path / "node0", tmp_path / "node1"]
    two_nodes(params, outs, kind)
    # one node holds every output, the other nothing (c10d numbers the nodes in the order they join)
    written = [out for out in outs if out.exists()]
    assert len(written) == 1, [sorted(p.name for p in out.iterdir()) for out in written]
    if kind == "static":
        assert written == [outs[0]]  # --node-rank 0 holds global rank 0
    rank0 = written[0]
    assert json.loads((rank0 / "train_metrics.json").read_text())["world_size"] == 2
    s1, s2 = steps(one_process), steps(rank0)
    assert len(s1) == len(s2) == 2
    for a, b in zip(s1, s2, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5
        assert a["global/triplets"] == b["global/triplets"] == 8  # the global batch, split by global rank
    p1, p2 = trainable_state(one_process / "models" / "last.pt"), trainable_state(rank0 / "models" / "last.pt")
    assert p1.keys() == p2.keys() and len(p1) > 10
    for k in p1:
        torch.testing.assert_close(p1[k], p2[k], atol=1e-5, rtol=0)
    assert (p1["clip.visual.ln_post.weight"] - 1).abs().max() > 1e-4  # the steps really moved the parameters

    if kind == "static":
        # a longer run resumed on both nodes: only node 0's folder holds the checkpoint, rank 0 sends it to node 1
        logs = two_nodes(params, outs, kind, "-S", "train.epochs=2", "--resume")
        assert "continuing with epoch 2 (step 2)" in logs[0]
        assert [s["step"] for s in steps(outs[0])] == [1, 2, 3, 4]
        assert [h["epoch"] for h in json.loads((outs[0] / "history.json").read_text())] == [1, 2]
        assert not outs[1].exists()
