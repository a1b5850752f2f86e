"""The paper's parameter set (experiments/paper.yaml) rehearsed for real on CPU, as `make paper` runs it: the flags of
experiments/overrides.py passed to `dvc exp run` in a fresh copy of the pipeline, on an FSCOCO-Seg release written by
the synthetic generator (all_classes.json in val/ and test/, as the authors ship it) and random ViT-B-16 weights saved
in the format of OpenAI's own ViT-B-16.pt (a TorchScript archive) inside the test, never downloaded. Only the sizes
are overridden (SIZE: the number of sketches, steps and the batch); ViT-B-16, AdamW lr 1e-6, bf16, the prompts and
blocks are the paper's, and paper.yaml's batch of 16 is checked where it is written. On a CPU without bf16
instructions autocast emulates bf16 (35x slower than float32 here): one step of two sketches takes minutes, the
paper's 16 half an hour."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import open_clip
import pytest
import torch
import yaml
from safetensors.torch import load_file

from sketchseg.config import flatten, load_config
from sketchseg.data.synth import generate
from sketchseg.eval.floors import FLOORS
from sketchseg.train.schedule import warmup_cosine
from tests.conftest import REPO, read_checkpoint
from tests.test_dvc import fresh_clone

PAPER = REPO / "experiments" / "paper.yaml"
# the size of the rehearsal; every other value comes from experiments/paper.yaml
SIZE = {
    # the synthetic data the synth stage generates whatever data.source says (read by no stage but the foundation's
    # zero-shot report here): small
    "data.synth.participants": 4,
    "data.synth.per_participant": 4,
    "data.synth.test_participants": 1,
    "data.synth.val_per_participant": 1,
    "data.synth.objects_per_category": 0,
    "train.epochs": 1,
    "train.batch_size": 2,
    "train.max_steps_per_epoch": 1,
    "train.val_max_sketches": 2,
    "eval.max_sketches": 2,
    "eval.overlays": 1,
}
RELEASE = {"participants": 9, "per_participant": 5, "test_participants": 1, "val_per_participant": 1}  # 32 train
MODELS = {"clip", "clip_surgery", "optimal", "last"}
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def openai_format_weights(path: Path) -> dict[str, torch.Tensor]:
    """Random ViT-B-16 weights (QuickGELU, as OpenAI trained it) saved as a TorchScript archive at ``path``, the format
    of OpenAI's ViT-B-16.pt; returns the state dict."""
    torch.manual_seed(16)
    clip = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated; OpenAI's files are TorchScript anyway
        torch.jit.script(clip).save(str(path))
    return {k: v.detach().clone() for k, v in clip.state_dict().items()}


def fscoco_release(root: Path) -> Path:
    """A small FSCOCO-Seg release from the generator, all_classes.json in the split folders only."""
    generate(root, seed=0, objects_per_category=0, workers=1, progress=False, **RELEASE)
    for split in ("val", "test"):
        shutil.copy(root / "all_classes.json", root / split / "all_classes.json")
    (root / "all_classes.json").unlink()
    return root


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory):
    """`dvc exp run -n paper` with the paper's flags and SIZE, once; yields what the tests read. The folder (some GB
    of ViT-B-16 copies: weights, foundation, checkpoints, DVC cache, MLflow artifacts) is removed afterwards."""
    base = tmp_path_factory.mktemp("paper")
    weights = openai_format_weights(base / "ViT-B-16.pt")
    release = fscoco_release(base / "release")
    (base / "repo").mkdir()
    repo = fresh_clone(base / "repo")
    changes = [f"foundation.backbone.pretrained={base / 'ViT-B-16.pt'}", f"data.fscoco_root={release}"]
    changes += [f"{k}={v}" for k, v in SIZE.items()]
    made = subprocess.run(
        [sys.executable, "experiments/overrides.py", str(PAPER), *changes, "--params", str(repo / "params.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    flags = shlex.split(made.stdout)
    env = {
        **os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}", "PREFECT_HOME": str(base / "prefect"),
        "HF_HUB_OFFLINE": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }  # fmt: skip
    done = subprocess.run(["dvc", "exp", "run", "-n", "paper", *flags], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=3000)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    times = {p.stem: json.loads(p.read_text())["seconds"] for p in sorted((repo / "data/timings").glob("*.json"))}
    print(f"paper rehearsal, seconds per stage (data/timings): {times}")  # shown with pytest -s
    yield {"repo": repo, "release": release, "weights": weights, "file": base / "ViT-B-16.pt", "flags": flags,
           "log": done.stdout + done.stderr, "mlflow": f"sqlite:///{base / 'mlflow.db'}"}  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)


def test_the_run_used_the_paper_set_with_only_sizes_changed(paper_run) -> None:
    repo = paper_run["repo"]
    for stage in ("synth", "source", "prepare", "shards", "foundation", "train"):
        assert f"Running stage '{stage}'" in paper_run["log"], stage
    paper = yaml.safe_load(PAPER.read_text())
    resolved = {k: list(v) if isinstance(v, tuple) else v for k, v in flatten(load_config(repo / "params.yaml")
                .to_dict()).items()}  # fmt: skip  # params.yaml as `dvc exp run -S` left it
    expected = {**paper, **SIZE, "foundation.backbone.pretrained": str(paper_run["file"]),
                "data.fscoco_root": str(paper_run["release"])}  # fmt: skip
    assert {k: resolved[k] for k in expected} == expected
    assert (paper["foundation.backbone.name"], paper["train.batch_size"], paper["train.lr"]) == ("ViT-B-16", 16, 1e-6)
    assert (paper["train.precision"], paper["train.epochs"], paper["train.nproc"]) == ("bf16", 20, 0)
    source = json.loads((repo / "data/source/SOURCE.json").read_text())
    assert source["source"] == "fscoco" and Path(source["root"]) == paper_run["release"].resolve()
    splits = json.loads((repo / "data/prepared/splits.json").read_text())
    assert {k: len(v) for k, v in splits.items() if k in ("train", "val", "test")} == {"train": 32, "val": 8, "test": 5}


def test_foundation_is_openai_vit_b16_from_the_local_file(paper_run) -> None:
    folder = paper_run["repo"] / "data/foundation"
    model_cfg = json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]
    vision = model_cfg["vision_cfg"]
    assert (vision["width"], vision["layers"], vision["patch_size"], vision["image_size"]) == (768, 12, 16, 224)
    assert (model_cfg["embed_dim"], model_cfg["quick_gelu"]) == (512, True)
    report = json.loads((folder / "foundation.json").read_text())
    assert (report["mode"], report["backbone"], report["activation"]) == ("pretrained", "ViT-B-16", "QuickGELU")
    assert report["weights"] == (f"ViT-B-16 with local weights file {paper_run['file']}, "
                                 "QuickGELU (auto: OpenAI TorchScript weights file)")  # fmt: skip
    assert set(report["zero_shot"]) >= {"retrieval_val", "test"}
    saved = load_file(str(folder / "open_clip_model.safetensors"))
    weights = paper_run["weights"]
    for key in ("visual.conv1.weight", "visual.transformer.resblocks.11.mlp.c_fc.weight", "text_projection"):
        assert torch.equal(saved[key], weights[key]), key  # the file's weights, not a fresh initialisation


def test_training_ran_bf16_at_lr_1e6(paper_run) -> None:
    train = paper_run["repo"] / "data/train"
    metrics = json.loads((train / "train_metrics.json").read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"  # train.nproc 0: one process per GPU, one on CPU
    assert (metrics["epochs"], metrics["steps"], metrics["world_size"], metrics["device"]) == (1, 1, 1, device)
    assert (metrics["precision"], metrics["batch_size"], metrics["global_batch"]) == ("bf16", 2, 2)
    rows = [json.loads(line) for line in (train / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    warmup = load_config(paper_run["repo"] / "params.yaml").train.warmup_steps
    assert rows[0]["lr"] == pytest.approx(1e-6 * warmup_cosine(1, warmup, 1), rel=1e-9)
    if device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():  # the user is told what bf16 costs here
        assert "autocast emulates bf16" in paper_run["log"]
    for name in ("optimal", "last"):
        ckpt = read_checkpoint(train / "models" / f"{name}.pt")
        cfg, clip_cfg = ckpt["model_config"], ckpt["clip_config"]
        assert (clip_cfg["vision_cfg"]["width"], clip_cfg["vision_cfg"]["layers"], clip_cfg["quick_gelu"]) == (
            768, 12, True)  # fmt: skip
        assert (cfg["num_prompts"], cfg["vv_layers"], tuple(cfg["cross_attention_blocks"])) == (3, 6, (7, 10, 12))
        assert ckpt["activation"] == "QuickGELU" and "QuickGELU" in ckpt["weights"]
        assert "data/foundation" in ckpt["weights"], ckpt["weights"]
        (prompts,) = [v for k, v in ckpt["state_dict"].items() if k.endswith("prompts.tokens")]
        assert tuple(prompts.shape) == (3, 768)
        run = ckpt["meta"]["config"]["train"]
        assert (run["batch_size"], run["lr"], run["precision"], run["epochs"]) == (2, 1e-6, "bf16", 1)


def test_selection_calibration_evaluation_and_registration(paper_run) -> None:
    from mlflow import MlflowClient

    repo = paper_run["repo"]
    metrics = json.loads((repo / "data/eval/metrics.json").read_text())
    assert set(metrics["val"]) == set(metrics["test"]) == MODELS | set(FLOORS)  # the models and their floors
    assert 0.3 <= metrics["tau"] <= 0.95
    calibration = json.loads((repo / "data/train/calibration.json").read_text())
    assert calibration["tau"] == pytest.approx(metrics["tau"])
    report = json.loads((repo / "data/eval/report.json").read_text())
    assert {s: report["evaluated_on"][s]["sketches"] for s in ("val", "test")} == {"val": 2, "test": 2}
    assert set(report["figures"]["grounding"]) == {"clip_surgery", "optimal", "last"}
    assert (repo / "data/eval/table.md").is_file() and (repo / "data/eval/overlays_test.png").is_file()
    versions = MlflowClient(paper_run["mlflow"]).search_model_versions("name='sketchseg'")
    assert len(versions) == 1
