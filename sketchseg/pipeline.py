"""`sketchseg stage NAME`: the DVC pipeline's stages, each reading the typed config from params.yaml (and
``-S key=value`` overrides, as ``sketchseg train -S``).

| stage      | reads                          | writes                                                     |
|------------|--------------------------------|------------------------------------------------------------|
| source     | data.source, data.synth        | data/source: synthetic dataset, or SOURCE.json (FS-COCO)   |
| prepare    | data/source                    | data.prepared: splits.json, categories.json, checks.json   |
| shards     | data/source, data.prepared     | data.shards: webdataset shards per split                   |
| foundation | data/source (objects + scenes) | foundation.out: the foundation CLIP (open_clip local-dir)  |
| train      | shards, foundation, params     | train.out, eval.out (runs the Prefect train-flow)          |

With ``data.source: fscoco`` the source stage does not copy the release: it writes ``data/source/SOURCE.json`` with
the release's path and a fingerprint of its file list (names, sizes, modification times), so DVC reruns the
downstream stages when the release changes. Every later stage resolves the dataset root through
:func:`dataset_root`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from sketchseg.config import Config, load_config
from sketchseg.errors import DataError
from sketchseg.io_utils import atomic_dir

HELP = "run one stage of the DVC pipeline (source, prepare, shards, foundation, train) from params.yaml"
STAGES = ("source", "prepare", "shards", "foundation", "train")
SOURCE_DIR = Path("data/source")


def fingerprint(root: Path) -> str:
    """Hash of every file's relative path, size and modification time under ``root``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            st = path.stat()
            h.update(f"{path.relative_to(root)}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def dataset_root(source_dir: Path = SOURCE_DIR) -> Path:
    """The FSCOCO-Seg directory the pipeline reads: the source stage's output or the release it names."""
    marker = source_dir / "SOURCE.json"
    if marker.is_file():
        return Path(json.loads(marker.read_text(encoding="utf-8"))["root"])
    if not (source_dir / "all_classes.json").is_file():
        raise DataError(f"{source_dir}: no dataset; run the source stage first (dvc repro source)")
    return source_dir


def stage_source(cfg: Config, source_dir: Path = SOURCE_DIR) -> None:
    if cfg.data.source == "synthetic":
        from sketchseg.data.synth import generate

        s = cfg.data.synth
        generate(
            source_dir,
            participants=s.participants,
            per_participant=s.per_participant,
            seed=s.seed,
            objects_per_category=s.objects_per_category,
            test_participants=s.test_participants,
            val_per_participant=s.val_per_participant,
            workers=max(1, os.cpu_count() or 1),
        )
        return
    root = Path(cfg.data.fscoco_root).resolve()
    if not root.is_dir():
        raise DataError(
            f"{root}: no FSCOCO-Seg release here (folder not found); unpack the release there or set "
            "data.fscoco_root in params.yaml (README: real FS-COCO)"
        )
    from sketchseg.data.fscoco import read_all_classes

    read_all_classes(root)  # at the root or in the split folders; the error lists every place looked at
    with atomic_dir(source_dir) as tmp:
        (tmp / "SOURCE.json").write_text(
            json.dumps({"source": "fscoco", "root": str(root), "fingerprint": fingerprint(root)}, indent=1) + "\n"
        )


def stage_prepare(cfg: Config) -> None:
    from sketchseg.data.prepare import prepare, summary

    out = Path(cfg.data.prepared)
    checks = prepare(dataset_root(), out, on_error=cfg.data.on_error, max_categories=cfg.data.max_categories)
    print(summary(checks, out))


def stage_shards(cfg: Config) -> None:
    from sketchseg.data.shards import run as shards_run

    args = argparse.Namespace(  # the `sketchseg data shards` command with the configured values
        root=dataset_root(),
        splits=Path(cfg.data.prepared) / "splits.json",
        out=Path(cfg.data.shards),
        samples_per_shard=cfg.data.samples_per_shard,
        min_shards=cfg.data.min_shards,
        max_categories=cfg.data.max_categories,
        seed=cfg.data.synth.seed,
    )
    shards_run(args)


def stage_foundation(cfg: Config, params: Path) -> None:
    from sketchseg.foundation import build_foundation

    build_foundation(cfg, data_root=dataset_root(), out=Path(cfg.foundation.out))


def stage_train(cfg: Config, params: Path, overrides: list[str] | None = None) -> None:
    from flows.train_flow import train_flow

    train_flow(params=str(params), overrides=list(overrides or []))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument(
        "-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter (as train -S)"
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.params, args.set)
    if args.stage == "source":
        stage_source(cfg)
    elif args.stage == "prepare":
        stage_prepare(cfg)
    elif args.stage == "shards":
        stage_shards(cfg)
    elif args.stage == "foundation":
        stage_foundation(cfg, args.params)
    else:
        stage_train(cfg, args.params, args.set)
    return 0
