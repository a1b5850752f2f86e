"""Every output records what its floats depend on beyond the parameters (torch build, CPU kernel set, threads)."""

from __future__ import annotations

from pathlib import Path

import torch

from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.provenance import cpu_model, provenance
from tests.conftest import read_checkpoint


def test_provenance_names_torch_the_kernel_set_and_the_threads(tmp_path: Path) -> None:
    facts = provenance()
    assert facts == {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                     "threads": torch.get_num_threads()}  # fmt: skip
    assert facts["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "NO AVX", "ZVECTOR", "SVE256", "VSX")
    assert isinstance(cpu_model(), str) and cpu_model()
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test")))
    path = save_checkpoint(model, tmp_path / "m.pt")
    assert read_checkpoint(path)["provenance"] == facts
