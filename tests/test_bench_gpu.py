"""bench/gpu.py (issue 24): its --tiny run on CPU gives every figure as a finite number, and its preconditions fail in
one line. The GPU run itself needs a GPU; this proves the same code paths run and the JSON has its shape."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu.py"

# Keys every complete run has, section by section (figures: numbers; the rest: words and flags).
FIGURES = {
    "device": ("threads", "count", "memory_gib"),
    "train": ("batch", "categories_per_sketch", "steps_timed", "step_s", "steps_per_s", "sketches_per_s",
              "peak_memory_gib", "last_loss"),
    "paper_training": ("epochs", "train_sketches", "batch", "paper_batch", "steps", "projected_hours_one_device",
                       "paper_hours", "paper_gpus", "paper_gpu_hours", "speedup_vs_paper_wall_clock",
                       "speedup_vs_paper_gpu_hours"),
    "tests": ("passed", "failed", "skipped", "exit_status", "seconds"),
}  # fmt: skip
SEGMENT_FIGURES = ("templates_per_category", "single_new_vocabulary_s", "single_fastest_s", "batch", "batch_s",
                   "batch_sketches_per_s", "batch_s_per_sketch", "paper_s_per_sketch", "single_speedup_vs_paper",
                   "batch_speedup_vs_paper", "repeats")  # fmt: skip
LARGEST_FIGURES = ("largest", "smallest_failed", "cap", "probes", "peak_memory_gib_at_largest")
WORDS = {"mode": str, "model": str, "weights": str, "precision": str, "backend": str, "complete": bool}


def bench_env() -> dict[str, str]:
    """This environment without the markers of an enclosing pytest-xdist worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    return {**env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def run_bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=bench_env(), capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def leaves(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf of a JSON document."""
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(obj, list):
        return [leaf for i, v in enumerate(obj) for leaf in leaves(v, f"{path}[{i}]")]
    return [(path, obj)]


def is_figure(value: Any) -> bool:
    """A finite int or float (a bool is a flag, not a figure)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
def test_tiny_run_on_cpu_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    res = run_bench("--tiny", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert json.loads(out.read_text()) == report  # --out holds what stdout printed

    for key, kind in WORDS.items():
        assert isinstance(report[key], kind), key
    assert (report["mode"], report["model"], report["weights"]) == ("tiny", "sketchseg-test", "random")
    assert (report["device"]["kind"], report["backend"], report["precision"]) == ("cpu", "gloo", "fp32")
    assert report["complete"] is True and report["errors"] == []
    for section, keys in FIGURES.items():
        for key in keys:
            assert is_figure(report[section][key]), (section, key, report[section].get(key))
    for recipe in ("sketchseg", "authors"):
        for key in SEGMENT_FIGURES:
            assert is_figure(report["segment"][recipe][key]), (recipe, key)
    for kind in ("train", "infer"):
        for key in LARGEST_FIGURES:
            assert is_figure(report["largest_batch"][kind][key]), (kind, key)
    assert is_figure(report["seconds"])
    # no null anywhere, every number finite: a figure that could not be measured is an error, never a gap
    for path, value in leaves(report):
        assert value is not None, path
        assert isinstance(value, (str, bool)) or is_figure(value), (path, value)

    train, paper = report["train"], report["paper_training"]
    assert train["batch"] == 16 and train["steps_per_s"] > 0 and train["peak_memory_gib"] > 0
    assert paper["steps"] == 20 * (9025 // 16) and paper["paper_hours"] == 7.31
    assert paper["projected_hours_one_device"] == pytest.approx(paper["steps"] / train["steps_per_s"] / 3600, rel=0.01)
    assert report["segment"]["authors"]["templates_per_category"] == 85
    assert report["segment"]["sketchseg"]["paper_s_per_sketch"] == 1.05
    for kind in ("train", "infer"):  # CPU: no out-of-memory within the tiny caps
        found = report["largest_batch"][kind]
        assert found["capped"] is True and found["largest"] == found["cap"] and found["smallest_failed"] == 0
    tests = report["tests"]
    assert tests["ok"] is True and tests["device"] == "cpu" and tests["failed"] == 0
    assert tests["passed"] == len(tests["outcomes"]) >= 3
    names = " ".join(tests["outcomes"])
    assert "test_ddp_two_processes_match_one_process_with_double_batch" in names and "bf16" in names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no CUDA device visible"),  # the full run needs a GPU
        (("--tiny", "--device", "cuda"), "no CUDA device visible"),
        (("--device", "cpu"), "the full-size run measures a GPU"),
        (("--tiny", "--sections", "train,gpus"), "--sections 'train,gpus': choose from"),
    ],
)
def test_without_a_gpu_the_script_fails_in_one_line(args: tuple[str, ...], message: str) -> None:
    if torch.cuda.is_available() and message.startswith("no CUDA"):
        pytest.skip("this machine has a GPU")
    res = run_bench(*args, timeout=120)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench/gpu.py: ") and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr


@pytest.fixture()
def gpu(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/gpu.py as a module of this process (it imports bench/infer.py as a sibling)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_gpu(monkeypatch: pytest.MonkeyPatch, free_gib: float, bf16: bool = True) -> None:
    """A visible GPU of 80 GiB with ``free_gib`` free, as torch would describe it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: bf16)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *_: (int(free_gib * 2**30), 80 * 2**30))
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)


def test_too_little_gpu_memory_or_no_bf16_is_one_line(
    gpu: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    fake_gpu(monkeypatch, free_gib=3.5)
    assert gpu.main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["bench/gpu.py: Fake GPU: 3.5 GiB free of 80.0 GiB, the run needs 12 (--min-free-gib): free the "
                   "GPU (nvidia-smi lists its processes) or lower --min-free-gib"]  # fmt: skip
    fake_gpu(monkeypatch, free_gib=70, bf16=False)
    assert gpu.main([]) == 2
    assert "does not support bf16" in capsys.readouterr().err
    assert gpu.check_preconditions(gpu.parse_args(["--precision", "fp32"])) == torch.device("cuda", 0)


def test_a_failing_section_is_recorded_and_the_run_goes_on(
    gpu: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*_: object) -> dict:
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore detail")

    monkeypatch.setattr(gpu, "train_section", broken)
    monkeypatch.setattr(gpu, "largest_section", lambda *_: {"train": {"largest": 1}, "infer": {"largest": 2}})
    args = gpu.parse_args(["--tiny", "--sections", "train,largest", "--out", str(tmp_path / "r.json")])
    result, errors = gpu.run(args, torch.device("cpu"))
    assert result["train"] == {"error": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    assert "paper_training" not in result and result["largest_batch"]["infer"]["largest"] == 2
    assert errors == ["train: RuntimeError: CUDA error: an illegal memory access was encountered"]
    assert json.loads((tmp_path / "r.json").read_text()) == result


def test_largest_batch_search_finds_the_memory_limit(gpu: ModuleType) -> None:
    probes: list[int] = []

    def fits(n: int) -> bool:
        probes.append(n)
        return n <= 300

    found = gpu.search_largest(fits, 16, 4096)
    assert 300 - 300 // 16 <= found["largest"] <= 300 < found["smallest_failed"] and not found["capped"]
    assert probes[:6] == [16, 32, 64, 128, 256, 512] and found["probes"] == len(probes)
    assert gpu.search_largest(lambda n: True, 16, 40) == {"largest": 40, "smallest_failed": 0, "capped": True,
                                                          "cap": 40, "probes": 3}  # fmt: skip
    assert gpu.search_largest(lambda n: False, 16, 40)["largest"] == 0


def test_parse_args_fills_the_mode_defaults(gpu: ModuleType) -> None:
    full, tiny = gpu.parse_args([]), gpu.parse_args(["--tiny"])
    assert (full.device, full.model, full.infer_batch, full.tests) == ("cuda", "ViT-B-16", 64, "all")
    assert (tiny.device, tiny.model, tiny.threads, tiny.tests) == ("cpu", "sketchseg-test", 1, "fast")
    assert isinstance(full, argparse.Namespace) and full.sections == list(gpu.SECTIONS)
