"""The paper's split protocol (SPEC §6.1): test = every sketch of a few chosen participants,
val = a few random sketches of each other participant, train = the rest. Deterministic for a seed."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sketchseg.errors import DataError
from sketchseg.io_utils import write_json


def paper_split(
    sketches_by_participant: dict[str, list[str]],
    test_participants: int = 5,
    val_per_participant: int = 5,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Assign sketch ids to ``train``/``val``/``test`` by the paper's protocol.

    Participants and ids are sorted before sampling, so the result depends only on the content and
    the seed, never on file-system order. A participant with at most ``val_per_participant`` sketches
    gives all of them to validation. Returns sorted id lists.
    """
    participants = sorted(sketches_by_participant)
    if len(participants) <= test_participants:
        raise DataError(
            f"split needs more than {test_participants} participants (test participants) but found "
            f"{len(participants)}; lower splits.test_participants or add participants"
        )
    seen: set[str] = set()
    for p in participants:
        for sid in sketches_by_participant[p]:
            if sid in seen:
                raise DataError(f"sketch id {sid!r} appears twice (participant {p!r}); ids must be unique")
            seen.add(sid)
    rng = random.Random(seed)
    test_ps = set(rng.sample(participants, test_participants))
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for p in participants:
        ids = sorted(sketches_by_participant[p])
        if p in test_ps:
            out["test"].extend(ids)
            continue
        val = set(rng.sample(ids, min(val_per_participant, len(ids))))
        out["val"].extend(i for i in ids if i in val)
        out["train"].extend(i for i in ids if i not in val)
    return {k: sorted(v) for k, v in out.items()}


def write_splits(path: str | Path, splits: dict[str, list[str]], meta: dict | None = None) -> None:
    """Write ``{"meta": ..., "train": [...], "val": [...], "test": [...]}`` atomically."""
    write_json(path, {"meta": meta or {}, **splits})


def read_splits(path: str | Path) -> dict[str, list[str]]:
    """Read a splits file written by :func:`write_splits`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: splits file not found; run `sketchseg data prepare` (or `dvc repro prepare`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable splits file ({exc}); delete it and rerun the prepare stage") from None
    return {k: list(data.get(k, [])) for k in ("train", "val", "test")}


# ------------------------------------------------------------------------------------ real FSCOCO-Seg folders

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def sketches_by_participant(root: str | Path, sketch_dir: str = "train/sketches") -> dict[str, list[str]]:
    """Sketch ids per participant from ``root/<sketch_dir>/<participant>/<id>.{png,jpg}`` (sorted), the input of
    :func:`paper_split`. Hidden files and other extensions are ignored; an id found twice raises DataError."""
    folder = Path(root) / sketch_dir
    if not folder.is_dir():
        raise DataError(f"{folder}: participant folder tree not found; check --root (layout: docs/data.md)")
    out: dict[str, list[str]] = {}
    where: dict[str, Path] = {}
    for pdir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        ids = []
        for path in sorted(pdir.iterdir()):
            if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in _IMAGE_EXTENSIONS:
                continue
            if path.stem in where:
                raise DataError(
                    f"{path}: sketch id {path.stem!r} also exists as {where[path.stem]}; ids must be unique: "
                    "remove or rename one copy"
                )
            where[path.stem] = path
            ids.append(path.stem)
        if ids:
            out[pdir.name] = sorted(ids)
    if not out:
        raise DataError(f"{folder}: no sketch found under participant folders <participant>/<id>.png|jpg")
    return out


def check_disjoint(splits: dict[str, list[str]]) -> None:
    """Raise DataError if an id occurs twice within a split or in two splits."""
    owner: dict[str, str] = {}
    for name, ids in splits.items():
        for sid in ids:
            if sid in owner:
                where = "twice in" if owner[sid] == name else f"in both {owner[sid]!r} and"
                raise DataError(f"sketch id {sid!r} is {where} {name!r}; a sketch may belong to one split only")
            owner[sid] = name
