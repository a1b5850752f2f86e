"""Model checkpoints: one file holding the model config, the open_clip architecture, all weights and metadata.

A checkpoint reloads without network and without the files it was trained from: the open_clip config of the
backbone travels inside it.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import torch

from sketchseg.errors import CheckpointError, ConfigError
from sketchseg.io_utils import atomic_file, file_sha256, json_sha1, save_torch
from sketchseg.model.authors import NUM_TENSORS, load_authors_checkpoint, looks_like_authors
from sketchseg.model.backbone import (
    Backbone,
    _register_packaged_configs,
    describe_weights,
    quiet_random_init,
    resolve_activation,
    uses_quick_gelu,
)
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.provenance import provenance

FORMAT = "sketchseg-checkpoint"
VERSION = 1


def clip_config(cfg: BackboneConfig, clip: torch.nn.Module | None = None) -> dict:
    """The open_clip architecture config of a backbone, its activation included (SPEC §2): the built model's when
    ``clip`` is given, else the one :func:`~sketchseg.model.backbone.resolve_activation` chooses."""
    import open_clip

    _register_packaged_configs()
    name = cfg.name
    if name.startswith("local-dir:"):
        data = json.loads((Path(name[len("local-dir:") :]) / "open_clip_config.json").read_text())
        model_cfg = data.get("model_cfg", data)
    else:
        model_cfg = open_clip.get_model_config(name)
    model_cfg = dict(model_cfg)
    model_cfg["quick_gelu"] = uses_quick_gelu(clip) if clip is not None else resolve_activation(cfg).quick_gelu
    return model_cfg


def weights_origin(weights: str) -> str:
    """What a weights line says the model was initialised from, without the checkpoint wrappers that older
    sketchseg versions nested once per re-save ("checkpoint X (...; initialised from: checkpoint X (..."))."""
    marker = "; initialised from: "
    while weights.startswith("checkpoint ") and marker in weights and weights.endswith(")"):
        weights = weights[weights.index(marker) + len(marker) : -1]
    return weights


def save_checkpoint(model: SketchSegModel, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``model`` (config, architecture, every weight, calibrated τ) to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": dataclasses.asdict(model.cfg),
        # a reloaded model re-saves its stored architecture: its backbone folder (local-dir:) may be gone by now
        "clip_config": model.clip_config or clip_config(model.cfg.backbone, model.clip),
        "weights": weights_origin(model.origin),
        "activation": "QuickGELU" if uses_quick_gelu(model.clip) else "GELU",
        "tau": float(model.threshold.tau().detach()),
        "meta": meta or {},
        "provenance": provenance(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_torch(payload, path)


PAYLOAD_FIELDS = {"model_config": dict, "clip_config": dict, "state_dict": dict}
ACCEPTED = "a sketchseg checkpoint (sketchseg train, sketchseg checkpoint convert) or the authors' released .pth"


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _read_file(path: Path) -> object:
    """The object ``torch.load`` reads from ``path``; CheckpointError for a missing, truncated or unreadable file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: not a readable checkpoint, truncated or damaged ({_one_line(exc)}); expected {ACCEPTED}"
        ) from None


def _is_payload(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _check_payload(payload: dict, path: Path) -> dict:
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload['version']} is newer than this sketchseg; upgrade")
    damaged = [k for k, kind in PAYLOAD_FIELDS.items() if not isinstance(payload.get(k), kind)]
    if damaged:
        raise CheckpointError(f"{path}: damaged sketchseg checkpoint: missing or invalid {', '.join(damaged)}")
    return payload


def _describe(obj: object) -> str:
    """What a foreign checkpoint file holds, in a few words."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return f"a state dict of {len(obj)} tensors (keys such as {', '.join(map(str, list(obj)[:3]))})"
    if isinstance(obj, dict):
        return f"a dict with keys {', '.join(map(str, list(obj)[:5]))}" if obj else "an empty dict"
    return f"a {type(obj).__name__}"


def _check_weights(model: SketchSegModel, state: dict, path: Path) -> None:
    """One-line CheckpointError when ``state`` does not fit ``model`` (missing, unexpected or reshaped tensors)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        f"{k} {list(getattr(state[k], 'shape', []))} instead of {list(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape)
    ]
    problems = [
        f"{label} {len(keys)} tensor(s): {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", reshaped))
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"{path}: damaged sketchseg checkpoint, its weights do not match its stored architecture "
            f"({'; '.join(problems)})"
        )


def load_model(path: str | Path) -> SketchSegModel:
    """Rebuild the model stored in a checkpoint file (in eval mode): a sketchseg checkpoint, or the authors' released
    ``sketch_seg_best_miou.pth``, converted on the fly (:mod:`sketchseg.model.authors`). Anything else, a truncated
    or damaged file included, is a one-line CheckpointError saying what was expected."""
    import open_clip

    path = Path(path)
    obj = _read_file(path)
    if not _is_payload(obj):
        if looks_like_authors(obj):
            return load_authors_checkpoint(obj, path)
        raise CheckpointError(
            f"{path}: not a sketchseg checkpoint, nor the authors' released checkpoint (a state dict of "
            f"{NUM_TENSORS} tensors with keys such as module.visual.prompt_embeddings); it holds {_describe(obj)}"
        )
    payload = _check_payload(obj, path)
    try:
        cfg = ModelConfig.from_dict(payload["model_config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: damaged sketchseg checkpoint, invalid model config ({exc})") from None
    digest = json_sha1(payload["clip_config"])[:12]
    name = f"sketchseg-ckpt-{digest}"
    if name not in open_clip.list_models():
        # open_clip's registry re-reads its config files, so the file must outlive this call: one file per
        # architecture (named by its hash) in a shared temporary folder, rewritten atomically.
        target = Path(tempfile.gettempdir()) / "sketchseg-clip-configs" / f"{name}.json"
        with atomic_file(target) as fh:
            json.dump(payload["clip_config"], fh)
        open_clip.add_model_config(target)
    with quiet_random_init():  # the checkpoint's weights are loaded below
        try:
            clip = open_clip.create_model(name, pretrained=None, device="cpu", output_dict=False)
        except Exception as exc:
            raise CheckpointError(f"{path}: damaged sketchseg checkpoint, bad clip_config ({_one_line(exc)})") from None
    backbone = Backbone(clip=clip, tokenizer=open_clip.get_tokenizer(name), weights="")
    model = SketchSegModel(cfg, backbone=backbone)
    _check_weights(model, payload["state_dict"], path)
    model.load_state_dict(payload["state_dict"])
    sha = file_sha256(path)[:12]
    origin = weights_origin(payload.get("weights") or describe_weights(cfg.backbone))
    activation = "QuickGELU" if uses_quick_gelu(clip) else "GELU"
    model.origin = origin
    model.clip_config = dict(payload["clip_config"])
    model.weights = f"checkpoint {path} (sha256 {sha}…, {activation}; initialised from: {origin})"
    model.checkpoint_meta = payload.get("meta", {})
    return model.eval()
