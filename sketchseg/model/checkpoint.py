"""Model checkpoints: one file holding the model config, the open_clip architecture, all weights and metadata.

A checkpoint reloads without network and without the files it was trained from: the open_clip config of the
backbone travels inside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from sketchseg.errors import CheckpointError
from sketchseg.model.backbone import Backbone, _register_packaged_configs, describe_weights, quiet_random_init
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel

FORMAT = "sketchseg-checkpoint"
VERSION = 1


def clip_config(cfg: BackboneConfig, clip: torch.nn.Module | None = None) -> dict:
    """The open_clip architecture config of a backbone. With ``clip`` given, QuickGELU is recorded whenever the built
    model uses it (open_clip switches it on by itself for OpenAI weights; a reloaded config must say so, SPEC §2)."""
    import open_clip

    _register_packaged_configs()
    name = cfg.name
    if name.startswith("local-dir:"):
        data = json.loads((Path(name[len("local-dir:") :]) / "open_clip_config.json").read_text())
        model_cfg = data.get("model_cfg", data)
    else:
        model_cfg = open_clip.get_model_config(name)
    model_cfg = dict(model_cfg)
    if cfg.force_quick_gelu:
        model_cfg["quick_gelu"] = True
    if clip is not None:
        from open_clip.transformer import QuickGELU

        if any(isinstance(m, QuickGELU) for m in clip.modules()):
            model_cfg["quick_gelu"] = True
    return model_cfg


def save_checkpoint(model: SketchSegModel, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``model`` (config, architecture, every weight, calibrated τ) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": dataclasses.asdict(model.cfg),
        "clip_config": clip_config(model.cfg.backbone, model.clip),
        "weights": model.weights,
        "tau": float(model.threshold.tau().detach()),
        "meta": meta or {},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict:
    """Load and check a checkpoint file's payload."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a sketchseg checkpoint (written by sketchseg's save_checkpoint?)")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload['version']} is newer than this sketchseg; upgrade")
    return payload


def load_model(path: str | Path) -> SketchSegModel:
    """Rebuild the model stored in a checkpoint (in eval mode)."""
    import open_clip

    path = Path(path)
    payload = read_checkpoint(path)
    cfg = ModelConfig.from_dict(payload["model_config"])
    digest = hashlib.sha1(json.dumps(payload["clip_config"], sort_keys=True).encode()).hexdigest()[:12]
    name = f"sketchseg-ckpt-{digest}"
    if name not in open_clip.list_models():
        # open_clip's registry re-reads its config files, so the file must outlive this call: one file per
        # architecture (named by its hash) in a shared temporary folder, rewritten atomically.
        folder = Path(tempfile.gettempdir()) / "sketchseg-clip-configs"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.json"
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload["clip_config"]))
        os.replace(tmp, target)
        open_clip.add_model_config(target)
    with quiet_random_init():  # the checkpoint's weights are loaded below
        clip = open_clip.create_model(name, pretrained=None, device="cpu", output_dict=False)
    backbone = Backbone(clip=clip, tokenizer=open_clip.get_tokenizer(name), weights="")
    model = SketchSegModel(cfg, backbone=backbone)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the stored architecture ({exc})") from None
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    origin = payload.get("weights") or describe_weights(cfg.backbone)
    model.weights = f"checkpoint {path} (sha256 {sha}…; initialised from: {origin})"
    model.checkpoint_meta = payload.get("meta", {})
    return model.eval()
