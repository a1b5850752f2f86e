"""The DVC data stages on a fresh copy of the repository: repro runs them, a second repro does nothing, and a changed
data parameter reruns only the stages that depend on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sketchseg.config import flatten
from sketchseg.io_utils import listing_fingerprint as fingerprint
from sketchseg.pipeline import STAGES, code_deps, code_files
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def sh(*cmd: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the copy ``cwd``; its own sketchseg/ and flows/ are imported (PYTHONPATH), not the editable
    install's, so the stages run the code that was copied."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(cwd), **(env or {})}  # fmt: skip
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{cmd}: {res.stdout}\n{res.stderr}"
    return res


PLACEHOLDERS = ("fscoco", "friss", "cbsc")  # data/NAME/README.md: tracked folders that DVC stages depend on


def fresh_clone(dst: Path, **data_overrides) -> Path:
    """A copy of the tracked pipeline files in a new git repository with DVC initialised (analytics off)."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, dst / name)
    for placeholder in PLACEHOLDERS:
        (dst / "data" / placeholder).mkdir(parents=True)
        shutil.copy(REPO / "data" / placeholder / "README.md", dst / "data" / placeholder / "README.md")
    for folder in ("sketchseg", "flows"):
        shutil.copytree(REPO / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((dst / "params.yaml").read_text())
    params["data"]["synth"].update(participants=7, per_participant=8, objects_per_category=1)
    params["data"].update(data_overrides)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", cwd=dst)
    sh("dvc", "init", "-q", cwd=dst)
    sh("dvc", "config", "core.analytics", "false", cwd=dst)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A", cwd=dst)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init", cwd=dst)
    return dst


def declared_code(dvc_yaml: Path = REPO / "dvc.yaml") -> dict[str, list[str]]:
    """Each stage's code dependencies as dvc.yaml lists them."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    return {name: [d for d in spec["deps"] if d.startswith(("sketchseg", "flows"))] for name, spec in stages.items()}


def test_stage_code_deps_are_what_the_stages_import() -> None:
    declared = declared_code()
    assert set(declared) == set(STAGES)
    for stage in STAGES:
        assert declared[stage] == code_deps(stage), (
            f"dvc.yaml's code deps of stage {stage} differ from what it imports: run "
            "`python -m sketchseg.pipeline code-deps --write` and commit dvc.yaml"
        )
    assert "sketchseg/model/encoder.py" in code_files(STAGES["foundation"].code)  # through the foundation's report
    assert "sketchseg/train/trainer.py" not in code_files(STAGES["foundation"].code)


def test_a_new_import_is_a_code_dep_the_yaml_lacks(tmp_path: Path) -> None:
    for folder in ("sketchseg", "flows"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    train = tmp_path / "sketchseg/foundation/train.py"
    train.write_text(train.read_text() + "\n\ndef _late() -> None:\n    from sketchseg.serve import app  # noqa\n")
    derived = code_deps("foundation", root=tmp_path)
    assert "sketchseg/serve/app.py" in derived or "sketchseg/serve" in derived
    covered = declared_code()["foundation"]
    missing = [d for d in derived if not any(d == c or d.startswith(c + "/") for c in covered)]
    assert "sketchseg/serve/app.py" in missing  # the check in test_stage_code_deps_are_what_the_stages_import fails


def ran(output: str) -> set[str]:
    return {stage for stage in ("synth", "source", "prepare", "shards") if f"Running stage '{stage}'" in output}


@pytest.mark.slow
def test_data_stages_repro_noop_and_selective_rerun(tmp_path: Path) -> None:
    repo = fresh_clone(tmp_path)
    first = sh("dvc", "repro", "shards", cwd=repo)
    assert ran(first.stdout) == {"synth", "source", "prepare", "shards"}
    assert (repo / "data/synth/all_classes.json").is_file()
    assert json.loads((repo / "data/source/SOURCE.json").read_text())["root"] == "data/synth"
    assert (repo / "data/prepared/splits.json").is_file()
    assert sorted(p.name for p in (repo / "data/shards").glob("val-*.tar"))
    second = sh("dvc", "repro", "shards", cwd=repo)
    assert ran(second.stdout) == set(), second.stdout
    # one data parameter of the shards stage only
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["samples_per_shard"] = 7
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = sh("dvc", "repro", "shards", cwd=repo)
    assert ran(third.stdout) == {"shards"}, third.stdout
    # a parameter of the prepare stage reruns prepare and what depends on it, not the source
    params["data"]["max_categories"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fourth = sh("dvc", "repro", "shards", cwd=repo)
    assert ran(fourth.stdout) == {"prepare", "shards"}, fourth.stdout


@pytest.mark.slow
def test_fscoco_source_names_the_release_and_tracks_its_changes(tiny_data: dict, tmp_path: Path) -> None:
    release = tmp_path / "release"
    shutil.copytree(tiny_data["root"], release)
    (tmp_path / "repo").mkdir()
    repo = fresh_clone(tmp_path / "repo", source="fscoco", fscoco_root=str(release))
    first = sh("dvc", "repro", "shards", cwd=repo)
    assert ran(first.stdout) == {"synth", "source", "prepare", "shards"}
    assert sorted(p.name for p in (repo / "data/source").iterdir()) == ["SOURCE.json"]  # the release is not copied
    source = json.loads((repo / "data/source/SOURCE.json").read_text())
    assert source == {"source": "fscoco", "root": str(release.resolve()), "fingerprint": fingerprint(release)}
    splits = json.loads((repo / "data/prepared/splits.json").read_text())
    assert sorted(splits["val"]) == sorted(p.stem for p in (release / "val" / "images").glob("*.png"))  # read there
    # a changed caption in the release reruns everything downstream
    caption = next((release / "val" / "captions").glob("*.txt"))
    caption.write_text("a horse and a tree next to a house\n")
    os.utime(caption, (1, 1))
    second = sh("dvc", "repro", "shards", cwd=repo)
    assert ran(second.stdout) == {"source", "prepare", "shards"}, second.stdout
    changed = json.loads((repo / "data/source/SOURCE.json").read_text())
    assert changed["fingerprint"] == fingerprint(release) != source["fingerprint"]
    assert {**changed, "fingerprint": None} == {**source, "fingerprint": None}


@pytest.mark.slow
def test_end_to_end_repro_on_tiny_parameters(tmp_path: Path) -> None:
    """The whole pipeline (source -> prepare -> shards -> foundation -> train-flow) on tiny parameters; a second
    repro does nothing; `dvc metrics show` reads the results; `dvc exp run -S` reruns the training only, and `dvc exp
    show` compares the metrics and params of the commit and of two experiments (each row with numbers: the metrics
    file is a cached output, so every experiment's commit has it through its dvc.lock)."""
    repo = fresh_clone(tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["foundation"].update(steps=4, batch_size=8, warmup_steps=2, mosaics=16)
    params["foundation"]["backbone"]["name"] = "sketchseg-test"
    params["train"].update(epochs=1, batch_size=4, max_steps_per_epoch=2, val_max_sketches=4, threads=1)
    params["eval"].update(max_sketches=4, overlays=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PREFECT_HOME": str(tmp_path / "prefect")}
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "tiny", cwd=repo, env=env)
    first = sh("dvc", "repro", cwd=repo, env=env)
    assert "Running stage 'train'" in first.stdout and "Running stage 'foundation'" in first.stdout
    metrics = json.loads((repo / "data/eval/metrics.json").read_text())
    assert set(metrics["test"]) == {"chance", "majority", "clip", "clip_surgery", "optimal", "last"}
    report = json.loads((repo / "data/eval/report.json").read_text())
    figures = report["figures"]
    assert set(report["provenance"]) == {"torch", "cpu_capability", "threads"}  # what the floats depend on
    foundation = json.loads((repo / "data/foundation/foundation.json").read_text())
    assert foundation["provenance"]["threads"] == 2 and report["provenance"]["threads"] == 1  # train.threads: 1
    assert set(figures["grounding"]) == {"clip_surgery", "optimal", "last"}
    assert set(figures["grounding"]["optimal"]) == {"pairs", "own", "predicted", "whole", "other"}
    assert "another category's strokes" in (repo / "data/eval/table.md").read_text()
    for name in ("threshold_curves.png", "train_history.json", "tau_steps.json", "table.md"):
        assert (repo / "data/eval" / name).is_file(), name
    assert (repo / "data/foundation/open_clip_config.json").is_file()
    assert (repo / "data/train/models/optimal.pt").is_file() and (repo / "data/train/calibration.json").is_file()
    assert not (repo / "data/work").exists() and not (repo / "data/train-run").exists()  # the stage's work folders
    second = sh("dvc", "repro", cwd=repo, env=env)
    assert "Running stage" not in second.stdout, second.stdout
    # a change to a module the foundation runs (the encoder, through its zero-shot report) is a changed dependency
    encoder = repo / "sketchseg/model/encoder.py"
    original = encoder.read_text()
    encoder.write_text(original + "\n# touched\n")
    status = sh("dvc", "status", "--json", cwd=repo, env=env).stdout
    assert {"foundation", "train"} <= set(json.loads(status)) and "synth" not in json.loads(status), status
    encoder.write_text(original)
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=repo, env=env).stdout)
    (row,) = shown[""]["data"].values()  # one metrics file: one row of `dvc metrics show`
    models = ("chance", "majority", "clip", "clip_surgery", "optimal", "last")
    keys = ("miou", "acc_p", "acc_s", "miou_pooled")
    compared = {f"{s}.{m}.{k}" for s in ("val", "test") for m in models for k in keys}
    intervals = {f"{s}.{m}.miou_vs_clip_surgery.{k}" for s in ("val", "test") for m in ("optimal", "last")
                 for k in ("diff", "low", "high")}  # fmt: skip
    assert set(flatten(row["data"])) == {"tau", *compared, *intervals}  # not the report's every figure
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A", cwd=repo, env=env)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "run", cwd=repo, env=env)
    for name, lr in (("lr-low", "0.002"), ("lr-high", "0.05")):
        exp = sh("dvc", "exp", "run", "-n", name, "-S", f"train.lr={lr}", cwd=repo, env=env)
        assert "Running stage 'train'" in exp.stdout and "Running stage 'foundation'" not in exp.stdout
    table = json.loads(sh("dvc", "exp", "show", "--json", cwd=repo, env=env).stdout)
    (commit,) = [row for row in table if row["rev"] != "workspace"]
    rows = {"commit": commit["data"]} | {e["name"]: e["revs"][0]["data"] for e in commit["experiments"] or []}
    assert set(rows) == {"commit", "lr-low", "lr-high"}, rows.keys()
    figures = {}
    for name, data in rows.items():
        shown = data["metrics"]["data/eval/metrics.json"]
        assert "error" not in shown, (name, shown)  # `dvc exp show` printed `!` for every metric before
        figures[name] = shown["data"]["test"]["optimal"]["miou"], shown["data"]["tau"]
        assert all(isinstance(v, float) for v in figures[name]), (name, figures[name])
    lrs = {name: data["params"]["params.yaml"]["data"]["train"]["lr"] for name, data in rows.items()}
    assert lrs == {"commit": params["train"]["lr"], "lr-low": 0.002, "lr-high": 0.05}
    assert figures["commit"] == (metrics["test"]["optimal"]["miou"], metrics["tau"])  # the commit's own file
    assert figures["lr-high"] != figures["commit"]  # another training: other numbers
