"""What a float result depends on beyond its parameters, recorded with every output (checkpoints, foundation.json,
report.json): the same parameters give bit-identical outputs only on the same torch build, CPU kernel set and thread
count (measured: the same commit's foundation differed between an Intel and an AMD machine, both AVX2; docs:
measurements)."""

from __future__ import annotations

from typing import Any


def provenance() -> dict[str, Any]:
    """``torch`` (version and build), ``cpu_capability`` (the kernel set torch dispatches to: AVX2, AVX512, ...) and
    ``threads`` (torch's CPU threads) of this process."""
    import torch

    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), or ``unknown``: a host fact for timings, not for outputs."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
