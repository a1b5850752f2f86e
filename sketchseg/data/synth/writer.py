"""Writing a synthetic dataset in the FSCOCO-Seg layout (SPEC §6.1-§6.2), plus the isolated-object part.

Layout written under ``out``::

    train/sketches/<participant>/<id>.png   train/text/<participant>/<id>.txt
    {val,test}/images/<id>.png  captions/<id>.txt  vector_sketches/<id>.npy  classes/<id>.json
    all_classes.json                        sorted category names used in val/test labels
    objects/images/<id>.png  objects/vector_sketches/<id>.npy  objects/labels.json ({id: category})
    synth.json                              generation metadata

Every sketch comes from its own random stream keyed by (seed, participant, index), so the bytes written do not
depend on the number of worker processes. Rasters are the benchmark's own rendering of the vector strokes
(:func:`sketchseg.data.strokes.rasterise`), for train too. Output goes to a temporary directory renamed into
place at the end: an interrupted run leaves nothing that looks complete.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sketchseg.data.splits import paper_split
from sketchseg.data.strokes import CANVAS, RASTER
from sketchseg.data.synth.scene import SynthSketch, make_object, make_scene
from sketchseg.data.synth.shapes import CATEGORY_NAMES, DEFAULT_UNSEEN
from sketchseg.data.synth.style import make_rng
from sketchseg.errors import ConfigError
from sketchseg.io_utils import atomic_dir, write_json
from sketchseg.progress import progress as progress_bar

FORMAT_VERSION = 1
_FORCE_TAG = 5
_OBJECT_STYLE_TAG = 6
UNSEEN_RATE = 0.15  # share of val/test sketches given one unseen category on purpose


@dataclass(frozen=True)
class _Job:
    """One sketch to draw and write (picklable for worker processes)."""

    kind: str  # "scene" or "object"
    seed: int
    participant: int
    index: int
    sketch_id: str
    split: str  # train / val / test / objects
    participant_name: str
    allowed: tuple[str, ...]
    forced: tuple[str, ...]
    category: str
    root: str
    people_variants: bool = False


def _save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image, mode="L").save(path, format="PNG", optimize=False, compress_level=1)


def _run_job(job: _Job) -> tuple[str, str, tuple[str, ...], str]:
    """Draw and write one sketch; returns (split, id, distinct categories, caption)."""
    root = Path(job.root)
    if job.kind == "object":
        sketch: SynthSketch = make_object(job.seed, job.participant, job.category, job.index, job.people_variants)
    else:
        sketch = make_scene(job.seed, job.participant, job.index, job.allowed, job.forced, job.people_variants)
    vector = sketch.vector()  # [n, 3] float32
    image = sketch.raster(RASTER)  # [512, 512] uint8
    sid = job.sketch_id
    if job.split == "train":
        _save_png(image, root / "train" / "sketches" / job.participant_name / f"{sid}.png")
        (root / "train" / "text" / job.participant_name / f"{sid}.txt").write_text(sketch.caption + "\n", "utf-8")
    elif job.split == "objects":
        _save_png(image, root / "objects" / "images" / f"{sid}.png")
        np.save(root / "objects" / "vector_sketches" / f"{sid}.npy", vector)
    else:
        d = root / job.split
        _save_png(image, d / "images" / f"{sid}.png")
        (d / "captions" / f"{sid}.txt").write_text(sketch.caption + "\n", "utf-8")
        np.save(d / "vector_sketches" / f"{sid}.npy", vector)
        write_json(d / "classes" / f"{sid}.json", list(sketch.labels), indent=None, atomic=False)
    return job.split, sid, tuple(sketch.categories), sketch.caption


def _run_jobs(
    jobs: list[_Job], workers: int, desc: str, progress: bool
) -> Iterator[tuple[str, str, tuple[str, ...], str]]:
    """Results of ``jobs`` in job order, computed in ``workers`` processes."""
    bar = progress_bar(total=len(jobs), desc=desc, unit="sketch", enabled=progress)
    try:
        if workers <= 1:
            for job in jobs:
                yield _run_job(job)
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(workers) as pool:
                for result in pool.imap(_run_job, jobs, chunksize=8):
                    yield result
                    bar.update(1)
    finally:
        bar.close()


def participant_names(participants: int) -> list[str]:
    """Names ``p00``, ``p01``, ... (zero-padded to the width of the largest number)."""
    width = max(2, len(str(participants - 1)))
    return [f"p{k:0{width}d}" for k in range(participants)]


def _check_args(participants: int, per_participant: int, objects_per_category: int, test_participants: int,
                val_per_participant: int, workers: int, unseen: Iterable[str]) -> tuple[str, ...]:
    unseen = tuple(sorted(set(unseen)))
    unknown = [c for c in unseen if c not in CATEGORY_NAMES]
    if unknown:
        raise ConfigError(f"unknown unseen categories {unknown}; choose among {', '.join(CATEGORY_NAMES)}")
    if len(CATEGORY_NAMES) - len(unseen) < 4:
        raise ConfigError(f"{len(unseen)} unseen categories leave fewer than 4 for training; name fewer")
    if test_participants < 1:
        raise ConfigError(f"--test-participants must be at least 1, got {test_participants}")
    if participants <= test_participants:
        raise ConfigError(
            f"--participants {participants} must exceed --test-participants {test_participants} "
            "(test takes every sketch of those participants)"
        )
    if per_participant < 1:
        raise ConfigError(f"--per-participant must be at least 1, got {per_participant}")
    if per_participant <= val_per_participant:
        raise ConfigError(
            f"--per-participant {per_participant} must exceed --val-per-participant {val_per_participant}, "
            "otherwise no sketch is left for training"
        )
    if val_per_participant < 0 or objects_per_category < 0:
        raise ConfigError("--val-per-participant and --objects-per-category must not be negative")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    return unseen


def plan(
    participants: int,
    per_participant: int,
    seed: int = 0,
    objects_per_category: int = 200,
    test_participants: int = 5,
    val_per_participant: int = 5,
    unseen: Iterable[str] = DEFAULT_UNSEEN,
    root: str = "",
    people_variants: bool = False,
) -> tuple[list[_Job], dict]:
    """The jobs of a dataset and the metadata known before drawing (split, unseen categories, participants).

    ``people_variants`` mixes the object variants people draw into every sketch; the metadata records it only
    when on (``"people_variants": true``), so that a dataset without it keeps the bytes it had before the
    parameter existed.
    """
    unseen = _check_args(participants, per_participant, objects_per_category, test_participants,
                         val_per_participant, 1, unseen)
    names = participant_names(participants)
    width = max(4, len(str(per_participant - 1)))
    ids = {p: [f"{p}_{i:0{width}d}" for i in range(per_participant)] for p in names}
    split = paper_split(ids, test_participants, val_per_participant, seed)
    split_of = {sid: name for name, sids in split.items() for sid in sids}
    seen = tuple(c for c in CATEGORY_NAMES if c not in unseen)
    # one unseen category forced into some val/test sketches; the first ones of each split cover all of them
    force_rng = make_rng(seed, _FORCE_TAG)
    forced: dict[str, tuple[str, ...]] = {}
    for name in ("val", "test"):
        for j, sid in enumerate(split[name]):
            if unseen and (j < len(unseen) or force_rng.random() < UNSEEN_RATE):
                pick = unseen[j] if j < len(unseen) else unseen[int(force_rng.integers(len(unseen)))]
                forced[sid] = (pick,)
    jobs = []
    for k, p in enumerate(names):
        for i, sid in enumerate(ids[p]):
            s = split_of[sid]
            jobs.append(_Job("scene", seed, k, i, sid, s, p, seen if s == "train" else CATEGORY_NAMES,
                             forced.get(sid, ()), "", root, people_variants))
    # isolated objects, in the styles of the participants who are not in test
    test_ps = sorted({sid.rsplit("_", 1)[0] for sid in split["test"]})
    style_ps = [k for k, p in enumerate(names) if p not in test_ps]
    obj_rng = make_rng(seed, _OBJECT_STYLE_TAG)
    owidth = max(4, len(str(objects_per_category - 1)))
    for category in CATEGORY_NAMES:
        for i in range(objects_per_category):
            k = style_ps[int(obj_rng.integers(len(style_ps)))]
            jobs.append(_Job("object", seed, k, i, f"{category}_{i:0{owidth}d}", "objects", names[k], (), (),
                             category, root, people_variants))
    participants_meta = {
        p: {
            "split": "test" if p in test_ps else "train+val",
            "train": sum(split_of[s] == "train" for s in ids[p]),
            "val": sum(split_of[s] == "val" for s in ids[p]),
            "test": sum(split_of[s] == "test" for s in ids[p]),
        }
        for p in names
    }
    meta = {
        "format": "fscoco-seg",
        "generator": "sketchseg.data.synth",
        "version": FORMAT_VERSION,
        "seed": seed,
        "participants_count": participants,
        "per_participant": per_participant,
        "test_participants": test_ps,
        "val_per_participant": val_per_participant,
        "objects_per_category": objects_per_category,
        "canvas": CANVAS,
        "raster": RASTER,
        "categories": list(CATEGORY_NAMES),
        "unseen_categories": list(unseen),
        "seen_categories": list(seen),
        "sizes": {name: len(sids) for name, sids in split.items()}
        | {"objects": objects_per_category * len(CATEGORY_NAMES)},
        "participant_splits": participants_meta,
        "participants": {
            name: {sid: sid.rsplit("_", 1)[0] for sid in split[name]} for name in ("val", "test")
        },
    }
    if people_variants:
        meta["people_variants"] = True
    return jobs, meta


def _make_dirs(root: Path, train_participants: list[str]) -> None:
    """Create the layout's folders (train folders only for participants with train sketches)."""
    for p in train_participants:
        (root / "train" / "sketches" / p).mkdir(parents=True, exist_ok=True)
        (root / "train" / "text" / p).mkdir(parents=True, exist_ok=True)
    for name in ("val", "test"):
        for sub in ("images", "captions", "vector_sketches", "classes"):
            (root / name / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("images", "vector_sketches"):
        (root / "objects" / sub).mkdir(parents=True, exist_ok=True)


def generate(
    out: str | Path,
    participants: int = 100,
    per_participant: int = 100,
    seed: int = 0,
    objects_per_category: int = 200,
    test_participants: int = 5,
    val_per_participant: int = 5,
    workers: int = 1,
    unseen: Iterable[str] = DEFAULT_UNSEEN,
    progress: bool = True,
    people_variants: bool = False,
) -> dict:
    """Write a synthetic FSCOCO-Seg dataset to ``out`` (replacing it) and return its metadata (``synth.json``).

    ``people_variants``: mix in the object variants people draw (ponds, humps, tall buildings, canoes ...);
    off, every byte is what the generator wrote before the parameter existed.
    """
    unseen = _check_args(participants, per_participant, objects_per_category, test_participants,
                         val_per_participant, workers, unseen)
    out = Path(out)
    with atomic_dir(out) as tmp:
        jobs, meta = plan(participants, per_participant, seed, objects_per_category, test_participants,
                          val_per_participant, unseen, str(tmp), people_variants)
        _make_dirs(tmp, [p for p, n in meta["participant_splits"].items() if n["train"] > 0])
        counts: dict[str, Counter[str]] = {name: Counter() for name in ("train", "val", "test")}
        per_sketch: dict[str, dict[str, list[str]]] = {"train": {}, "val": {}, "test": {}}
        object_labels: dict[str, str] = {}
        by_id = {j.sketch_id: j for j in jobs if j.kind == "object"}
        for split, sid, cats, _caption in _run_jobs(jobs, workers, "synth", progress):
            if split == "objects":
                object_labels[sid] = by_id[sid].category
                continue
            counts[split].update(cats)
            per_sketch[split][sid] = list(cats)
        used = sorted(set(counts["val"]) | set(counts["test"]))
        write_json(tmp / "all_classes.json", used, sort_keys=True, atomic=False)
        write_json(tmp / "objects" / "labels.json", object_labels, sort_keys=True, atomic=False)
        meta["category_counts"] = {name: dict(sorted(c.items())) for name, c in counts.items()}
        meta["sketch_categories"] = per_sketch
        write_json(tmp / "synth.json", meta, sort_keys=True, atomic=False)
    return meta
