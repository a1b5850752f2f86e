"""The foundation CLIP the method fine-tunes (SPEC §2): open_clip pretrained weights, or a small CLIP trained here
offline on synthetic sketches. Either way it is saved in open_clip's ``local-dir`` format (``open_clip_config.json``
+ ``open_clip_model.safetensors``), which ``open_clip.create_model("local-dir:DIR")`` and sketchseg's
``BackboneConfig(name="local-dir:DIR")`` reload, with a ``foundation.json`` report beside it.

The folder holds nothing that depends on the machine (no timing, host or date), so the same parameters give the same
files, which the train stage depends on; :func:`build_foundation` returns the timings beside the report instead.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from sketchseg.config import Config
from sketchseg.io_utils import atomic_dir, write_json
from sketchseg.model.backbone import image_mean_std, load_backbone
from sketchseg.provenance import provenance

log = logging.getLogger(__name__)

__all__ = ["build_foundation", "save_local_dir"]


def save_local_dir(clip: torch.nn.Module, model_cfg: dict, folder: Path) -> None:
    """Write ``clip`` into ``folder`` in open_clip's local-dir format."""
    from safetensors.torch import save_file

    visual = clip.visual
    preprocess = {
        "size": list(visual.image_size) if isinstance(visual.image_size, tuple) else visual.image_size,
        "mean": list(image_mean_std(visual)[0]),
        "std": list(image_mean_std(visual)[1]),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    write_json(folder / "open_clip_config.json", {"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=2,
               atomic=False)
    state = {k: v.detach().contiguous().cpu() for k, v in clip.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))


def build_foundation(cfg: Config, *, data_root: Path, out: Path, progress: bool = True) -> dict:
    """Create the foundation folder ``out`` (atomically) and return its report (``foundation.json``) with the
    machine-dependent ``"timing"`` (seconds of each part) added, which is not written into the folder."""
    from sketchseg.model.checkpoint import clip_config

    fc = cfg.foundation
    torch.set_num_threads(fc.threads)
    timing: dict[str, float] = {}
    backbone = load_backbone(fc.backbone)
    model_cfg = clip_config(fc.backbone, backbone.clip)
    activation = "QuickGELU" if model_cfg.get("quick_gelu") else "GELU"
    report: dict = {"mode": fc.mode, "backbone": fc.backbone.name, "weights": backbone.weights,
                    "provenance": provenance()}  # fmt: skip
    report["activation"] = activation
    if fc.mode == "train":
        from sketchseg.foundation.data import load_contrastive_data
        from sketchseg.foundation.train import train_clip

        visual = backbone.clip.visual
        size = visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size
        t0 = time.perf_counter()
        data = load_contrastive_data(
            Path(data_root), size, int(visual.grid_size[0]), object_variants=fc.object_variants,
            mosaics=fc.mosaics, object_min_scale=fc.object_min_scale, mosaic_min_scale=fc.mosaic_min_scale,
            render=fc.render, seed=fc.seed, workers=max(1, torch.get_num_threads()), progress=progress,
        )  # fmt: skip
        log.info("foundation data: %s", data.summary())
        timing["data_seconds"] = round(time.perf_counter() - t0, 1)
        report["training"] = train_clip(backbone.clip, backbone.tokenizer, data, fc, cfg.model, progress=progress)
        timing["training_seconds"] = report["training"].pop("seconds")
        if timing["training_seconds"]:
            timing["steps_per_second"] = round(report["training"]["steps"] / timing["training_seconds"], 2)
        report["training"].update(data.summary(), render=fc.render, objects_fraction=fc.objects_fraction)
        report["weights"] = (
            f"{fc.backbone.name} trained from scratch on synthetic data ({data_root}; objects drawn as {fc.render}), "
            f"{activation}"
        )
    from sketchseg.foundation.report import zero_shot_report

    with atomic_dir(out) as tmp:  # the report is measured on the saved files, before they are moved into place
        save_local_dir(backbone.clip, model_cfg, tmp)
        t0 = time.perf_counter()
        report["zero_shot"] = zero_shot_report(tmp, Path(data_root), cfg.model, progress=progress)
        timing["zero_shot_seconds"] = round(time.perf_counter() - t0, 1)
        write_json(tmp / "foundation.json", report, indent=2, atomic=False)
    return {**report, "timing": timing}
