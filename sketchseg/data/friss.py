"""Reader of real scene sketches in the stroke-3 JSON layout of FrISS and CBSC, and their conversion to the
FSCOCO-Seg layout (SPEC §6.1) that the rest of the pipeline reads (``data.source: friss``).

A set is a folder with split folders ``train/``, ``val/`` or ``validation/`` and ``test/`` (any of them may be
missing), one JSON file per sketch::

    {"img_id": "sceneid-0-userid-0",          # optional (CBSC has none): the file name is the id then
     "img_w": 1100, "img_h": 770,             # the drawing canvas in pixels (points may lie outside it)
     "scene_strokes": [[x, y, pen], ...],     # stroke-3: first point absolute, then offsets; pen = 1 ends a stroke
     "object_divisions": [0, 4, 9, ...],      # object i owns strokes divisions[i] .. divisions[i+1] - 1
     "gt_class_names": ["tree", "yoga", ...]} # one class per object, aligned with the divisions

Rules, in the order they apply (each counted in :class:`SetReport`):

1. **Duplicates by sketch id** (``img_id``, else the file name). Identical files are read once, with a note: FrISS's
   ``val/`` holds two notebook copies ``*-checkpoint.json``; CBSC has one file in both ``validation/`` and
   ``test/``, which is kept in the later split of train, val, test (here: test). Two different files with one id
   are an error naming both.
2. **Class map** (``data.class_map``): a JSON object ``name -> name``, flat or wrapped in one key as the datasets'
   own ``*_to_qd_mappings.json`` are; a class it does not name keeps its name. Names are compared in their normal
   form (:func:`~sketchseg.data.vocabulary.normalise_name`).
3. **Vocabulary** (``data.vocabulary``): objects whose (mapped) class is not in it are deleted from the sketch,
   strokes and all, as the CAVT authors score open-vocabulary methods on these sets; a sketch left without objects
   is dropped. Names are kept in the vocabulary's spelling.

Geometry: every sketch is fitted onto the model's square canvas exactly as ``sketchseg segment`` fits a vector file
(:func:`sketchseg.data.vector_raster.fit_region`: the declared canvas, or the canvas and the points together when
some points lie outside it, aspect ratio kept, centred) before objects are deleted, so deleting objects moves
nothing, and then written as FS-COCO's absolute ``[x, y, pen]`` rows on the 256 x 256 canvas: the pipeline's raster
of a sketch is the raster ``segment`` draws of its file.

Captions (what training reads, these sets have none): the sketch's object list in drawing order, one phrase per
class, :func:`object_list_caption`: ``"a sketch of two persons, a tree and water"``. Counts above one are written as
a number and a plural, ``grass`` and ``water`` take no article; the caption parser reads the classes back.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sketchseg.data.vocabulary import normalise_name
from sketchseg.errors import DataError, InputError
from sketchseg.io_utils import write_json

log = logging.getLogger(__name__)

# split -> the folder names it may have, in the order looked at
SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
SPLIT_ORDER = ("train", "val", "test")  # an identical file in two splits is kept in the later one
MASS_NOUNS = frozenset({"grass", "water", "sand", "snow"})  # no article, no count in a caption
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
_PARTICIPANT = re.compile(r"userid-(\d+)")


@dataclass(frozen=True)
class SceneObject:
    """One object instance: its class name and the half-open range ``[start, end)`` of its strokes."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class StrokeScene:
    """One real scene sketch: absolute strokes ``[n_i, 2]`` in input order, the declared canvas ``(w, h)``, and its
    objects. ``labels`` gives each stroke its object's class."""

    id: str
    split: str
    path: Path
    strokes: tuple[np.ndarray, ...]
    canvas: tuple[float, float]
    objects: tuple[SceneObject, ...]

    @property
    def labels(self) -> list[str]:
        out: list[str] = []
        for obj in self.objects:
            out += [obj.name] * (obj.end - obj.start)
        return out

    @property
    def participant(self) -> str:
        """``userid-N`` from a FrISS id, else ``unknown`` (CBSC does not name its drawers)."""
        found = _PARTICIPANT.search(self.id)
        return f"userid-{found.group(1)}" if found else "unknown"


@dataclass
class SetReport:
    """What reading one split found and what each rule removed."""

    split: str
    folders: list[str] = field(default_factory=list)
    files: int = 0
    duplicates: list[str] = field(default_factory=list)  # notes: identical files read once
    read: int = 0
    objects: int = 0
    renamed_objects: int = 0  # objects whose class the class map renamed
    deleted_objects: int = 0  # objects of classes outside the vocabulary
    deleted_strokes: int = 0
    deleted_classes: Counter = field(default_factory=Counter)  # class -> objects deleted
    dropped_sketches: int = 0  # sketches left without objects
    skipped: list[str] = field(default_factory=list)  # malformed files left out (on_error: skip)
    kept: int = 0
    kept_objects: int = 0
    kept_strokes: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "deleted_classes"}
        out["deleted_classes"] = dict(self.deleted_classes.most_common())
        return out

    def line(self) -> str:
        return (
            f"{self.split}: {self.files} files ({len(self.duplicates)} duplicates read once), {self.read} sketches, "
            f"{self.objects} objects; class map renamed {self.renamed_objects}; vocabulary deleted "
            f"{self.deleted_objects} objects ({self.deleted_strokes} strokes) and dropped {self.dropped_sketches} "
            f"sketches left empty; kept {self.kept} sketches, {self.kept_objects} objects, {self.kept_strokes} strokes"
        )


# ------------------------------------------------------------------------------------------------ map, vocabulary


def load_class_map(value: str | Path | Mapping[str, str] | None) -> dict[str, str]:
    """A class map ``normal form of name -> name`` from a mapping, a JSON file holding one, flat or wrapped in one
    key (``{"friss_to_qd": {...}}``), or the name of a map shipped with sketchseg (``people_to_synthetic``: FrISS and
    CBSC names to the synthetic generator's 24 words); None gives an empty map."""
    if value is None:
        return {}
    where = "data.class_map"
    data: Any = value
    if not isinstance(value, Mapping):
        where = str(value)
        path = Path(value)
        shipped = resources.files("sketchseg.data") / "vocab" / f"{value}.json"
        if not path.is_file() and "/" not in str(value) and shipped.is_file():
            path = Path(str(shipped))
        if not path.is_file():
            raise DataError(
                f"{path}: class map not found; give a JSON file of name -> name or a shipped map's name "
                f"({', '.join(shipped_maps())}) (data.class_map)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a JSON class map ({exc}); write a JSON object name -> name") from None
    if isinstance(data, Mapping) and len(data) == 1 and isinstance(next(iter(data.values())), Mapping):
        data = next(iter(data.values()))
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip() for k, v in data.items()
    ):
        raise DataError(f"{where}: a class map is a JSON object of non-empty name -> name strings")
    return {normalise_name(k): v.strip() for k, v in data.items()}


def shipped_maps() -> list[str]:
    """Names of the class maps shipped with sketchseg (package data ``sketchseg/data/vocab/*.json``)."""
    return sorted(p.name.removesuffix(".json") for p in (resources.files("sketchseg.data") / "vocab").iterdir()
                  if p.name.endswith(".json"))  # fmt: skip


def load_vocabulary(value: str | Path | Sequence[str] | None) -> list[str] | None:
    """The class names to keep: a list, a file (a JSON list or one name per line), ``"synthetic"`` (the synthetic
    generator's categories: what the embedded foundation knows), or None (keep every class)."""
    if value is None:
        return None
    if isinstance(value, str) and value == "synthetic":
        from sketchseg.data.synth.shapes import CATEGORY_NAMES

        return list(CATEGORY_NAMES)
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise DataError(
                f"{path}: vocabulary file not found; give a list of names, a file (JSON list or one name per line) "
                "or 'synthetic' (data.vocabulary)"
            )
        text = path.read_text(encoding="utf-8")
        try:
            names = json.loads(text) if text.lstrip().startswith("[") else text.splitlines()
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not a JSON list of names ({exc})") from None
        where = str(path)
    else:
        names, where = list(value), "data.vocabulary"
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{where}: a vocabulary is a list of class names")
    out = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not out:
        raise DataError(f"{where}: the vocabulary is empty; list the class names to keep")
    return out


# ----------------------------------------------------------------------------------------------------- reading


def _fail(path: Path, detail: str) -> DataError:
    return DataError(f"{path}: {detail}; fix or remove the file")


def read_scene_file(path: str | Path, split: str = "") -> StrokeScene:
    """One FrISS / CBSC JSON file as a :class:`StrokeScene` (classes as written); a malformed file raises a
    DataError naming it and the problem."""
    from sketchseg.data.vector import from_stroke3

    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _fail(path, "expected a JSON object with scene_strokes, object_divisions and gt_class_names")
    missing = [k for k in ("scene_strokes", "object_divisions", "gt_class_names", "img_w", "img_h") if k not in data]
    if missing:
        raise _fail(path, f"missing field(s) {missing}")
    try:
        vector = from_stroke3(data["scene_strokes"], data["img_w"], data["img_h"], source=str(path))
    except InputError as exc:
        raise DataError(f"{exc}; fix or remove the file") from None
    names, divisions = data["gt_class_names"], data["object_divisions"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise _fail(path, "gt_class_names must be a list of non-empty class names")
    if not isinstance(divisions, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in divisions):
        raise _fail(path, "object_divisions must be a list of stroke indices")
    n = len(vector.strokes)
    if len(divisions) != len(names) + 1 or divisions[0] != 0 or divisions[-1] != n:
        raise _fail(
            path,
            f"object_divisions {divisions[:4]}...{divisions[-1:]} do not cut {n} strokes into {len(names)} objects "
            "(expected len(gt_class_names) + 1 boundaries from 0 to the stroke count)",
        )
    if any(b < a for a, b in zip(divisions, divisions[1:], strict=False)):
        raise _fail(path, "object_divisions must not decrease")
    objects = tuple(SceneObject(name.strip(), a, b) for name, a, b in zip(names, divisions, divisions[1:],
                                                                           strict=False))  # fmt: skip
    sketch_id = str(data.get("img_id") or path.stem)
    return StrokeScene(sketch_id, split, path, vector.strokes, vector.canvas or (1.0, 1.0), objects)


def split_folder(root: Path, split: str) -> Path | None:
    """The folder of ``split`` under ``root`` (``val/`` or ``validation/`` for val), or None."""
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    return None


def read_scenes(
    roots: Mapping[str, Path | str], on_error: str = "raise"
) -> tuple[dict[str, list[StrokeScene]], dict[str, SetReport]]:
    """Every sketch of each split, ``split -> root`` (the split's folder is looked up under its root), duplicates by
    id resolved (rule 1 of the module doc), sorted by id. Classes are as written: see :func:`restrict`. A malformed
    file raises, or with ``on_error="skip"`` is left out and listed in its report's ``skipped``."""
    kept: dict[str, StrokeScene] = {}  # id -> the copy kept
    reports = {split: SetReport(split) for split in roots}
    for split in SPLIT_ORDER:
        folder = split_folder(Path(roots[split]), split) if split in roots else None
        if folder is None:
            continue
        report = reports[split]
        report.folders.append(str(folder))
        for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")):
            report.files += 1
            try:
                scene = read_scene_file(path, split)
            except DataError as exc:
                if on_error != "skip":
                    raise
                log.warning("skipping %s", exc)
                report.skipped.append(str(exc))
                continue
            other = kept.get(scene.id)
            if other is None:
                kept[scene.id] = scene
                continue
            if other.path.read_bytes() != path.read_bytes():
                raise DataError(f"{other.path} and {path}: two different files for sketch {scene.id!r}; keep one")
            # splits are read in SPLIT_ORDER: the later split keeps an identical copy; within a split the file named
            # by the id does (not a notebook's *-checkpoint.json copy)
            keep = scene if split != other.split or (path.stem == scene.id != other.path.stem) else other
            dropped = other if keep is scene else scene
            note = f"{dropped.path} is identical to {keep.path}: read once, in {keep.split}"
            report.duplicates.append(note)
            log.info("%s", note)
            kept[scene.id] = keep
    scenes: dict[str, list[StrokeScene]] = {split: [] for split in roots}
    for _, scene in sorted(kept.items()):
        scenes[scene.split].append(scene)
    for split, items in scenes.items():
        reports[split].read = len(items)
        reports[split].objects = sum(len(s.objects) for s in items)
    return scenes, reports


def restrict(
    scene: StrokeScene, class_map: Mapping[str, str], vocabulary: Sequence[str] | None, report: SetReport
) -> StrokeScene | None:
    """``scene`` with its classes mapped and its objects outside ``vocabulary`` deleted (rules 2 and 3 of the module
    doc); None when no object is left. Counts go to ``report``."""
    keep = {normalise_name(v): v for v in vocabulary} if vocabulary is not None else None
    objects: list[SceneObject] = []
    strokes: list[np.ndarray] = []
    for obj in scene.objects:
        mapped = class_map.get(normalise_name(obj.name), obj.name)
        if normalise_name(mapped) != normalise_name(obj.name):
            report.renamed_objects += 1
        if keep is not None and normalise_name(mapped) not in keep:
            report.deleted_objects += 1
            report.deleted_strokes += obj.end - obj.start
            report.deleted_classes[mapped] += 1
            continue
        name = keep[normalise_name(mapped)] if keep is not None else mapped
        objects.append(SceneObject(name, len(strokes), len(strokes) + obj.end - obj.start))
        strokes += scene.strokes[obj.start : obj.end]
    if not strokes:
        report.dropped_sketches += 1
        return None
    report.kept += 1
    report.kept_objects += len(objects)
    report.kept_strokes += len(strokes)
    return StrokeScene(scene.id, scene.split, scene.path, tuple(strokes), scene.canvas, tuple(objects))


# ------------------------------------------------------------------------------------------------------ captions


def _plural(name: str) -> str:
    from lemminflect import getInflection

    words = name.split()
    forms = getInflection(words[-1], tag="NNS")
    return " ".join([*words[:-1], forms[0] if forms else words[-1] + "s"])


def object_list_caption(names: Iterable[str]) -> str:
    """The training caption of a sketch's object classes (drawing order, repeats counted): ``["person", "tree",
    "person", "water"]`` -> ``"a sketch of two persons, a tree and water"``."""
    names = list(names)
    counts = Counter(names)
    phrases = []
    for name in dict.fromkeys(names):
        k = counts[name]
        if normalise_name(name) in MASS_NOUNS:
            phrases.append(name)
        elif k == 1:
            phrases.append(f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}")
        else:
            phrases.append(f"{NUMBER_WORDS.get(k, 'many')} {_plural(name)}")
    if not phrases:
        raise DataError("a caption needs at least one object")
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"a sketch of {listed}"


# ------------------------------------------------------------------------------------------- FSCOCO-Seg layout


def fscoco_vector(scene: StrokeScene, fit: Any) -> np.ndarray:
    """``scene``'s strokes as FS-COCO rows ``[x, y, pen]`` on the 256 x 256 canvas, placed by ``fit`` (a
    :class:`~sketchseg.data.vector_raster.Fit` onto the 512 raster, halved): float64 [n, 3]."""
    from sketchseg.data.strokes import CANVAS, RASTER

    rows = []
    for stroke in scene.strokes:
        xy = fit.apply(stroke) * (CANVAS / RASTER)  # [n_i, 2]
        pen = np.zeros((len(xy), 1))
        pen[-1] = 1.0
        rows.append(np.hstack([xy, pen]))
    return np.concatenate(rows)  # [n, 3]


def write_fscoco_layout(
    scenes: Mapping[str, Sequence[StrokeScene]], fits: Mapping[str, Any], out: Path, vocabulary: Sequence[str]
) -> None:
    """Write restricted scenes into ``out`` in the FSCOCO-Seg layout (SPEC §6.1): train sketches as rasters with
    their object-list captions, val and test with vector strokes and per-stroke classes too; ``all_classes.json`` =
    ``vocabulary``; ``participants.json``. ``fits``: sketch id -> the Fit of its original drawing."""
    from PIL import Image

    from sketchseg.data.strokes import rasterise, split_strokes

    write_json(out / "all_classes.json", list(vocabulary), atomic=False)
    participants: dict[str, str] = {}
    for split, items in scenes.items():
        for scene in items:
            vector = fscoco_vector(scene, fits[scene.id])
            image = Image.fromarray(rasterise(split_strokes(vector)).image())
            caption = object_list_caption(o.name for o in scene.objects) + "\n"
            if split == "train":
                files = {
                    "sketches": f"{scene.participant}/{scene.id}.png",
                    "text": f"{scene.participant}/{scene.id}.txt",
                }
            else:
                participants[scene.id] = scene.participant
                files = {"images": f"{scene.id}.png", "captions": f"{scene.id}.txt",
                         "vector_sketches": f"{scene.id}.npy", "classes": f"{scene.id}.json"}  # fmt: skip
            paths = {kind: out / split / kind / name for kind, name in files.items()}
            for path in paths.values():
                path.parent.mkdir(parents=True, exist_ok=True)
            image.save(paths.get("sketches") or paths["images"])
            (paths.get("text") or paths["captions"]).write_text(caption, encoding="utf-8")
            if split != "train":
                np.save(paths["vector_sketches"], vector)
                write_json(paths["classes"], scene.labels, indent=None, atomic=False)
    write_json(out / "participants.json", participants, sort_keys=True, atomic=False)


@dataclass(frozen=True)
class RealSet:
    """Restricted scenes per split with the fit of each original drawing (sketch id -> Fit), the class names and
    what each rule removed."""

    scenes: dict[str, list[StrokeScene]]
    fits: dict[str, Any]
    classes: list[str]
    reports: dict[str, SetReport]

    def vector(self, scene: StrokeScene) -> np.ndarray:
        """``scene`` as FS-COCO rows ``[x, y, pen]`` on the 256 x 256 canvas: float64 [n, 3]."""
        return fscoco_vector(scene, self.fits[scene.id])


def read_set(
    roots: Mapping[str, Path | str],
    *,
    class_map: str | Path | Mapping[str, str] | None = None,
    vocabulary: str | Path | Sequence[str] | None = None,
    on_error: str = "raise",
) -> RealSet:
    """Read the splits ``split -> root`` and apply the class map and the vocabulary (module doc)."""
    from sketchseg.data.vector import VectorSketch
    from sketchseg.data.vector_raster import fit_region

    mapping = load_class_map(class_map)
    names = load_vocabulary(vocabulary)
    scenes, reports = read_scenes(roots, on_error=on_error)
    kept: dict[str, list[StrokeScene]] = {}
    fits: dict[str, Any] = {}
    for split, items in scenes.items():
        kept[split] = []
        for scene in items:
            fits[scene.id] = fit_region(VectorSketch(scene.strokes, canvas=scene.canvas, source=str(scene.path)))[0]
            restricted = restrict(scene, mapping, names, reports[split])
            if restricted is not None:
                kept[split].append(restricted)
    classes = names if names is not None else sorted({o.name for v in kept.values() for s in v for o in s.objects})
    return RealSet(kept, fits, classes, reports)


def convert(
    roots: Mapping[str, Path | str],
    out: Path,
    *,
    class_map: str | Path | Mapping[str, str] | None = None,
    vocabulary: str | Path | Sequence[str] | None = None,
    on_error: str = "raise",
) -> dict[str, Any]:
    """Read the splits ``split -> root``, apply the class map and the vocabulary, and write the FSCOCO-Seg layout
    into ``out`` (an existing folder). Returns the report written to ``out/friss.json``: per split what was read
    and what each rule removed."""
    real = read_set(roots, class_map=class_map, vocabulary=vocabulary, on_error=on_error)
    write_fscoco_layout(real.scenes, real.fits, out, real.classes)
    report = {
        "source": "friss",
        "roots": {split: str(root) for split, root in roots.items()},
        "class_map": None if class_map is None or isinstance(class_map, Mapping) else str(class_map),
        "vocabulary": real.classes,
        "splits": {split: r.to_dict() for split, r in real.reports.items()},
        "summary": [r.line() for r in real.reports.values()],
    }
    write_json(out / "friss.json", report, atomic=False)
    return report
