"""`sketchseg stage NAME -S key=value`: every stage takes parameter overrides, as `sketchseg train -S` does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sketchseg import processes
from sketchseg.cli import main
from sketchseg.config import load_config

SMALL = [
    "-S", "data.synth.participants=3", "-S", "data.synth.per_participant=4", "-S", "data.synth.test_participants=1",
    "-S", "data.synth.val_per_participant=1", "-S", "data.synth.objects_per_category=0",
]  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a params.yaml of defaults only (sizes come from -S); stages run in-process,
    without the process-lifetime hooks a DVC-run stage installs (SIGTERM handler, parent-death signal)."""
    (tmp_path / "params.yaml").write_text("data:\n  source: synthetic\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(processes, "exit_on_sigterm", lambda: None)
    monkeypatch.setattr(processes, "die_with_parent", lambda *a: None)
    return tmp_path


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern))


def test_synth_source_prepare_and_shards_stages_honour_overrides(workdir: Path) -> None:
    assert main(["stage", "source", *SMALL]) == 2  # no synthetic dataset yet: the synth stage comes first
    assert main(["stage", "synth", *SMALL, "-S", "data.synth.seed=5"]) == 0
    assert main(["stage", "source", *SMALL, "-S", "data.synth.seed=5"]) == 0
    assert json.loads((workdir / "data/source/SOURCE.json").read_text()) == {"source": "synthetic",
                                                                            "root": "data/synth"}  # fmt: skip
    source = workdir / "data/synth"
    meta = json.loads((source / "synth.json").read_text())
    assert (meta["participants_count"], meta["per_participant"], meta["seed"]) == (3, 4, 5)
    assert meta["sizes"] == {"train": 6, "val": 2, "test": 4, "objects": 0}
    assert _count(source / "train/sketches", "*/*.png") == 6 and _count(source / "test/images", "*.png") == 4

    assert main(["stage", "prepare", "-S", "data.prepared=elsewhere/prepared", "-S", "data.max_categories=1"]) == 0
    assert not (workdir / "data/prepared").exists()
    categories = json.loads((workdir / "elsewhere/prepared/categories.json").read_text())
    assert categories["max_categories"] == 1

    shards = ["-S", "data.prepared=elsewhere/prepared", "-S", "data.shards=elsewhere/shards", "-S", "data.min_shards=1"]
    assert main(["stage", "shards", *shards]) == 0
    index = json.loads((workdir / "elsewhere/shards/train.json").read_text())
    assert index["num_samples"] == 6 and len(index["shards"]) == 1
    assert not (workdir / "data/shards").exists()


def test_foundation_and_train_stages_get_the_overridden_config(workdir: Path, monkeypatch) -> None:
    import flows.train_flow
    import sketchseg.foundation

    seen: dict = {}

    def build_foundation(cfg, *, data_root, out):
        seen["foundation"] = (cfg.foundation.minutes, out, data_root)
        return {"timing": {}, "training": {"steps": 0}}

    def train_flow(params, overrides=None, work=None, **kwargs):
        seen["train"] = load_config(params, overrides)
        return {}

    monkeypatch.setattr(sketchseg.foundation, "build_foundation", build_foundation)
    monkeypatch.setattr(flows.train_flow, "train_flow", train_flow)
    (workdir / "data/source").mkdir(parents=True)
    (workdir / "data/source/all_classes.json").write_text('["tree"]')
    (workdir / "data/shards").mkdir(parents=True)
    assert main(["stage", "foundation", "-S", "foundation.minutes=0.5", "-S", "foundation.out=elsewhere/f"]) == 0
    assert seen["foundation"] == (0.5, Path("elsewhere/f"), Path("data/synth"))  # whatever data.source says
    assert main(["stage", "train", "-S", "train.epochs=7", "-S", "data.max_categories=2"]) == 0
    assert (seen["train"].train.epochs, seen["train"].data.max_categories) == (7, 2)


def test_unknown_key_is_a_one_line_error_with_exit_code_2(workdir: Path, tmp_path: Path, capsys) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sketchseg", "stage", "source", "-S", "data.synth.nope=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.data.synth: unknown key(s) ['nope']"), lines
    assert not (tmp_path / "data/source").exists()
    # an override without "=" is refused the same way
    assert main(["stage", "prepare", "-S", "data.prepared"]) == 2
    assert capsys.readouterr().err == "error: override 'data.prepared': expected key=value, e.g. train.epochs=3\n"


def test_source_stage_accepts_a_release_with_all_classes_in_its_split_folders(workdir: Path, capsys) -> None:
    from sketchseg.data.synth import generate

    release = workdir / "release"
    generate(release, participants=3, per_participant=2, seed=0, objects_per_category=0, test_participants=1,
             val_per_participant=1, workers=1, progress=False)  # fmt: skip
    for split in ("val", "test"):  # as the authors ship it: test/all_classes.json, no copy at the root
        (release / split / "all_classes.json").write_text((release / "all_classes.json").read_text())
    (release / "all_classes.json").unlink()
    fscoco = ["-S", "data.source=fscoco", "-S", f"data.fscoco_root={release}"]
    assert main(["stage", "source", *fscoco]) == 0
    marker = json.loads((workdir / "data/source/SOURCE.json").read_text())
    assert marker["source"] == "fscoco" and Path(marker["root"]).resolve() == release.resolve()
    for split in ("val", "test"):
        (release / split / "all_classes.json").unlink()
    assert main(["stage", "source", *fscoco]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no all_classes.json" in err
    assert all(f"{release.resolve()}/{place}" in err for place in
               ("all_classes.json", "train/all_classes.json", "val/all_classes.json", "test/all_classes.json"))


def test_source_stage_converts_real_stroke3_sketches(workdir: Path, capsys) -> None:
    """data.source friss: train and val from one folder, test from another, mapped and restricted, with the counts
    of what each rule removed printed and written to data/source/friss.json."""
    from tests.test_friss import scene, write

    friss, cbsc = workdir / "friss", workdir / "cbsc"
    write(friss / "train", "sceneid-1-userid-2", scene([("yoga", 2), ("table", 1)]))
    write(friss / "val", "sceneid-2-userid-2", scene([("palm tree", 1), ("ocean", 2)]))
    write(cbsc / "test", "1_outdoor_1", scene([("tree", 1)]))
    write(cbsc / "test", "1_indoor_2", scene([("table", 3)]))
    real = ["-S", "data.source=friss", "-S", f"data.friss_root={friss}", "-S", f"data.real_test_root={cbsc}",
            "-S", "data.class_map=people_to_synthetic", "-S", "data.vocabulary=synthetic"]  # fmt: skip
    assert main(["stage", "source", *real]) == 0
    out = capsys.readouterr().out
    assert "train: 1 files (0 duplicates read once), 1 sketches, 2 objects; class map renamed 1; vocabulary " \
           "deleted 1 objects (1 strokes)" in out  # fmt: skip
    assert "test: 2 files" in out and "dropped 1 sketches left empty; kept 1 sketches" in out
    report = json.loads((workdir / "data/source/friss.json").read_text())
    assert report["splits"]["val"]["renamed_objects"] == 2 and report["class_map"] == "people_to_synthetic"
    assert json.loads((workdir / "data/source/val/classes/sceneid-2-userid-2.json").read_text()) == [
        "tree", "water", "water"]  # fmt: skip
    assert main(["stage", "prepare", *real]) == 0
    assert "converted train: 1 files" in capsys.readouterr().out  # prepare reports what each rule removed too
    checks = json.loads((workdir / "data/prepared/checks.json").read_text())
    assert checks["conversion"]["splits"]["test"]["dropped_sketches"] == 1
    assert json.loads((workdir / "data/prepared/splits.json").read_text())["test"] == ["1_outdoor_1"]
    assert main(["stage", "source", *real[:4], "-S", f"data.real_test_root={friss}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{friss}: no test split (no test folder)" in err
    write(friss / "test", "sceneid-3-userid-2", scene([("tree", 1)]))  # FrISS's held-out split: never read
    assert main(["stage", "source", *real[:4], "-S", f"data.real_test_root={friss}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.real_test_root is data.friss_root, whose test split is held out" in err
