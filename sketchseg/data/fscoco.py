"""Reader of the FSCOCO-Seg layout (SPEC §6.1), validating every file as it loads it.

Layout under ``root``::

    all_classes.json                              list of every category name (or {val,test}/all_classes.json)
    train/sketches/<participant>/<id>.{png,jpg}   raster sketch
    train/text/<participant>/<id>.txt             its caption
    {val,test}/images/<id>.png                    raster sketch
    {val,test}/captions/<id>.txt                  its caption
    {val,test}/vector_sketches/<id>.npy           (n, 3) [x, y, pen] strokes on a 256x256 canvas
    {val,test}/classes/<id>.json                  per-stroke category names, aligned with the strokes
    participants.json                             optional: sketch id -> participant (val/test)

``all_classes.json`` may sit at the root or inside the split folders (the authors' evaluation reads
``test/all_classes.json``): every copy found is read; copies with the same names (in any order) are one list,
in the order of the first found (root, then train/, val/, test/); copies with different names are an error
naming both files; when none is found the error lists every place looked at.

``participants.json`` may map ``id -> participant``, ``split -> {id -> participant}`` or
``participant -> [ids]``. Without it, a ``synth.json`` written by the synthetic generator is searched for a
``"participants"`` entry of the same forms. Everything else (``objects/``, other keys of ``synth.json``) is
ignored. Train sketches take their participant from their folder name.

Handling of bad data
--------------------
Problems with the dataset as a whole always raise :class:`~sketchseg.errors.DataError`: nothing sensible
can be read around them. Problems confined to one sketch raise :class:`SketchDataError` (a ``DataError``)
with ``on_error="raise"`` (the default), and with ``on_error="skip"`` drop that sketch with a logged
warning and count it in the :class:`ReadReport` under the reason shown. Skipping is meant for a large
release with a few broken sketches; every message names the file, the problem and the fix.

| problem                                                     | reason key             | raise mode | skip mode |
|-------------------------------------------------------------|------------------------|------------|-----------|
| root, split folder or one of its sub-folders missing        | -                      | raise      | raise     |
| `all_classes.json` missing, unreadable, not a list of names | -                      | raise      | raise     |
| two `all_classes.json` copies with different names         | -                      | raise      | raise     |
| `participants.json` unreadable or of an unknown form        | -                      | raise      | raise     |
| duplicate id (two participants, or `.png` + `.jpg`)         | -                      | raise      | raise     |
| id in two splits (checked by `read_dataset`)                | -                      | raise      | raise     |
| split holds no sketch, or every sketch was skipped          | -                      | raise      | raise     |
| image without caption file                                  | `missing_caption`      | raise      | skip      |
| caption (or vector / classes file) without image            | `missing_image`        | raise      | skip      |
| train image and caption under different participants        | `participant_mismatch` | raise      | skip      |
| caption not UTF-8, unreadable, or empty                     | `bad_caption`          | raise      | skip      |
| image unreadable or corrupt (PIL cannot open or verify it) | `bad_image`            | raise      | skip      |
| classes file (or image) without vector file                 | `missing_vector`       | raise      | skip      |
| vector file without classes file                            | `missing_classes`      | raise      | skip      |
| `.npy` unreadable, truncated, pickled, not `(n, 3)`, NaN    | `bad_vector`           | raise      | skip      |
| vector sketch with no complete stroke (no pen flag 1)       | `no_strokes`           | raise      | skip      |
| classes JSON malformed (not a list of non-empty strings)    | `bad_classes`          | raise      | skip      |
| stroke count differs from label count                       | `label_count`          | raise      | skip      |
| label missing from `all_classes.json`                       | `unknown_label`        | raise      | skip      |

Duplicates raise even in skip mode: keeping either copy silently could put one sketch in two splits.
Files with other extensions (notes, ``Thumbs.db``) are ignored and listed in ``ReadReport.ignored_files``;
hidden files are ignored silently. Caption whitespace (newlines included) is collapsed to single spaces.
Points after a sketch's last pen flag belong to no stroke and are kept in ``vector`` but never drawn.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from sketchseg.data.records import SPLITS, SketchRecord
from sketchseg.data.strokes import split_strokes
from sketchseg.errors import DataError
from sketchseg.progress import progress

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ON_ERROR_CHOICES = ("raise", "skip")
ANNOTATED_SPLITS = ("val", "test")
_VAL_TEST_DIRS = ("images", "captions", "vector_sketches", "classes")

# reason key -> the fix appended to every message with that reason
REASONS: dict[str, str] = {
    "missing_caption": "add the caption .txt file or remove the image",
    "missing_image": "add the sketch image or remove the orphan file",
    "participant_mismatch": "move the image and its caption under the same participant folder",
    "bad_caption": "re-save the caption as non-empty UTF-8 text",
    "bad_image": "re-export the sketch image (PNG or JPEG)",
    "missing_vector": "add the vector_sketches/<id>.npy file or remove the sketch",
    "missing_classes": "add the classes/<id>.json file with one category per stroke",
    "bad_vector": "re-save it with numpy.save as a plain numeric (n, 3) [x, y, pen] array",
    "no_strokes": "a stroke ends at a row whose pen flag is 1; fix the pen flags or remove the sketch",
    "bad_classes": "write a JSON list with one category name (string) per stroke",
    "label_count": "make classes/<id>.json list exactly one category per stroke",
    "unknown_label": "add the category to all_classes.json or correct the classes file",
}


class SketchDataError(DataError):
    """A problem confined to one sketch; skippable with ``on_error="skip"``."""

    def __init__(self, path: Path, reason: str, detail: str, sketch_id: str) -> None:
        self.path = Path(path)
        self.reason = reason
        self.detail = detail
        self.sketch_id = sketch_id
        super().__init__(f"{path}: {detail}; {REASONS[reason]} (or read with on_error='skip' / --on-error skip)")


@dataclass(frozen=True)
class SkippedSketch:
    """One sketch left out in skip mode."""

    id: str
    file: str
    reason: str
    message: str


@dataclass
class ReadReport:
    """What reading one split found: sketches read, sketches skipped (with reasons), files ignored."""

    split: str
    read: int = 0
    strokes: int = 0
    skipped: list[SkippedSketch] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of skipped sketches per reason key."""
        return dict(sorted(Counter(s.reason for s in self.skipped).items()))

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "read": self.read,
            "strokes": self.strokes,
            "skipped": len(self.skipped),
            "skipped_by_reason": self.counts(),
            "skipped_sketches": [vars(s).copy() for s in self.skipped],
            "ignored_files": list(self.ignored_files),
        }


# ----------------------------------------------------------------------------------------------- small readers


def _read_json(path: Path) -> object:
    """Parse a UTF-8 JSON file; any failure becomes a DataError naming the file."""
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); re-save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON ({exc.msg}, line {exc.lineno}); fix or regenerate the file") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror or exc}); check the file's permissions") from None


ALL_CLASSES = "all_classes.json"


def all_classes_places(root: str | Path) -> list[Path]:
    """Where ``all_classes.json`` may be, in precedence order: the root, then each split folder."""
    root = Path(root)
    return [root / ALL_CLASSES, *(root / split / ALL_CLASSES for split in SPLITS)]


def _parse_all_classes(path: Path) -> list[str]:
    """Category names of one ``all_classes.json`` file in file order, duplicates removed.

    Accepted forms: a list of names; a dict ``name -> index`` (ordered by index); a dict ``key -> name``.
    """
    data = _read_json(path)
    names: list[object]
    if isinstance(data, list):
        names = list(data)
    elif isinstance(data, dict) and data and all(isinstance(v, int) for v in data.values()):
        names = sorted(data, key=lambda k: data[k])
    elif isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()):
        names = list(data.values())
    else:
        raise DataError(f"{path}: expected a JSON list of category names, got {type(data).__name__}; fix the file")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise DataError(f"{path}: category names must be non-empty strings, found {bad[:3]!r}; fix the file")
    if not names:
        raise DataError(f"{path}: the category list is empty; list every category used in classes/*.json")
    unique = list(dict.fromkeys(names))
    if len(unique) != len(names):
        log.warning("%s: %d duplicate category names ignored", path, len(names) - len(unique))
    return unique  # type: ignore[return-value]


def read_all_classes_checked(root: str | Path) -> tuple[list[str], list[Path]]:
    """The category names of a release and the ``all_classes.json`` files they were read from.

    Every copy among :func:`all_classes_places` is read; copies with the same names are one list (the first
    copy's order); copies that differ raise :class:`DataError` naming both; none found raises a DataError
    listing every place looked at.
    """
    places = all_classes_places(root)
    found = [p for p in places if p.is_file()]
    if not found:
        raise DataError(
            f"{Path(root)}: no all_classes.json (the list of every category name) found; looked at "
            f"{', '.join(str(p) for p in places)}; an FSCOCO-Seg release has it at its root or in its split "
            "folders (test/all_classes.json): check --root (or data.fscoco_root)"
        )
    first_path, first = found[0], _parse_all_classes(found[0])
    for path in found[1:]:
        names = _parse_all_classes(path)
        if set(names) != set(first):
            only_first, only_other = sorted(set(first) - set(names)), sorted(set(names) - set(first))
            raise DataError(
                f"{first_path} and {path} list different categories ({len(only_first)} only in the first, "
                f"e.g. {only_first[:3]}; {len(only_other)} only in the second, e.g. {only_other[:3]}); "
                "keep one of them or make the copies identical"
            )
    return first, found


def read_all_classes(root: str | Path) -> list[str]:
    """Category names of a release's ``all_classes.json`` (see :func:`read_all_classes_checked`)."""
    return read_all_classes_checked(root)[0]


def dataset_classes(root: str | Path) -> list[str]:
    """The release's category names when it has an ``all_classes.json`` anywhere it may be, else ``[]``."""
    return read_all_classes(root) if any(p.is_file() for p in all_classes_places(root)) else []


def _participant_map(data: object, path: Path) -> dict[str, str] | None:
    """Interpret one of the accepted participant-mapping forms; None if it is none of them."""
    if not isinstance(data, dict):
        return None
    if all(isinstance(v, str) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    if all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in data.values()):
        out: dict[str, str] = {}
        for participant, ids in data.items():
            for sid in ids:
                if sid in out and out[sid] != participant:
                    raise DataError(
                        f"{path}: sketch {sid!r} listed under participants {out[sid]!r} and {participant!r}; "
                        "keep one"
                    )
                out[sid] = str(participant)
        return out
    if all(isinstance(v, dict) for v in data.values()):  # split -> {id -> participant}
        out = {}
        for sub in data.values():
            inner = _participant_map(sub, path)
            if inner is None:
                return None
            out.update(inner)
        return out
    return None


def read_participants(root: str | Path) -> dict[str, str]:
    """Sketch id -> participant for val/test sketches, from ``participants.json`` or ``synth.json``; {} if none."""
    root = Path(root)
    path = root / "participants.json"
    if path.is_file():
        mapping = _participant_map(_read_json(path), path)
        if mapping is None:
            raise DataError(
                f"{path}: expected {{id: participant}}, {{split: {{id: participant}}}} or {{participant: [ids]}}; "
                "fix the file or remove it"
            )
        return mapping
    synth = root / "synth.json"
    if synth.is_file():
        try:
            data = _read_json(synth)
        except DataError as exc:
            log.warning("ignoring participants of %s", exc)
            return {}
        if isinstance(data, dict) and "participants" in data:
            mapping = _participant_map(data["participants"], synth)
            if mapping is not None:
                return mapping
            log.warning("%s: 'participants' entry of an unknown form ignored", synth)
    return {}


def _read_caption(path: Path, sketch_id: str) -> str:
    """Caption text of a UTF-8 .txt file, stripped; per-sketch errors as SketchDataError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SketchDataError(path, "bad_caption", f"unreadable caption ({exc.strerror or exc})", sketch_id) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SketchDataError(
            path, "bad_caption", f"caption is not UTF-8 (byte {exc.start}: {exc.reason})", sketch_id
        ) from None
    text = " ".join(text.split())
    if not text:
        raise SketchDataError(path, "bad_caption", "caption is empty", sketch_id)
    return text


def _verify_image(path: Path, sketch_id: str) -> None:
    """Check that PIL can identify and verify the image file."""
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as exc:  # broad on purpose: PIL raises OSError, SyntaxError, ValueError, struct.error, ...
        raise SketchDataError(path, "bad_image", f"unreadable image ({type(exc).__name__}: {exc})", sketch_id) from None


def _read_vector(path: Path, sketch_id: str) -> tuple[np.ndarray, int]:
    """Load ``(n, 3)`` float64 strokes from a .npy file; returns the array and its stroke count."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # broad on purpose: numpy raises ValueError, OSError, EOFError, UnpicklingError, ...
        raise SketchDataError(
            path, "bad_vector", f"unreadable or truncated .npy ({type(exc).__name__}: {exc})", sketch_id
        ) from None
    if not isinstance(arr, np.ndarray):  # an .npz archive renamed to .npy
        arr.close()
        raise SketchDataError(path, "bad_vector", "file is an .npz archive, not a single array", sketch_id)
    try:
        strokes = split_strokes(arr, source=str(path))
    except DataError as exc:
        detail = str(exc).removeprefix(f"{path}: ")
        raise SketchDataError(path, "bad_vector", detail, sketch_id) from None
    if not strokes:
        raise SketchDataError(
            path, "no_strokes", f"vector sketch has no stroke ({len(arr)} points, no pen flag equal to 1)", sketch_id
        )
    return arr.astype(np.float64), len(strokes)  # [n, 3]


def _read_classes(path: Path, sketch_id: str) -> tuple[str, ...]:
    """Per-stroke category names of a classes JSON file."""
    try:
        data = _read_json(path)
    except DataError as exc:
        raise SketchDataError(path, "bad_classes", str(exc).removeprefix(f"{path}: "), sketch_id) from None
    if not isinstance(data, list) or not all(isinstance(x, str) and x.strip() for x in data):
        shown = json.dumps(data)[:80]
        raise SketchDataError(path, "bad_classes", f"expected a list of category names, got {shown}", sketch_id)
    return tuple(data)


# --------------------------------------------------------------------------------------------------- scanning


def _collect(folder: Path, exts: tuple[str, ...], report: ReadReport, found: dict[str, list[Path]]) -> None:
    """Add the files ``folder/<id>.<ext>`` to ``found`` by id; other entries are reported as ignored."""
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_file() or path.suffix.lower() not in exts:
            report.ignored_files.append(str(path))
            continue
        found.setdefault(path.stem, []).append(path)


def _scan_flat(folder: Path, extensions: Iterable[str], report: ReadReport) -> dict[str, Path]:
    """Files ``folder/<id>.<ext>`` by id; two files for one id raise DataError."""
    found: dict[str, list[Path]] = {}
    _collect(folder, tuple(extensions), report, found)
    _raise_duplicates(found)
    return {k: v[0] for k, v in found.items()}


def _scan_participants(folder: Path, extensions: Iterable[str], report: ReadReport) -> dict[str, Path]:
    """Files ``folder/<participant>/<id>.<ext>`` by id; one id found twice raises DataError."""
    found: dict[str, list[Path]] = {}
    for pdir in sorted(folder.iterdir()):
        if pdir.name.startswith("."):
            continue
        if not pdir.is_dir():
            report.ignored_files.append(str(pdir))
            continue
        _collect(pdir, tuple(extensions), report, found)
    _raise_duplicates(found)
    return {k: v[0] for k, v in found.items()}


def _raise_duplicates(found: dict[str, list[Path]]) -> None:
    dups = {k: v for k, v in found.items() if len(v) > 1}
    if dups:
        sid, paths = next(iter(sorted(dups.items())))
        more = f" ({len(dups) - 1} more ids duplicated)" if len(dups) > 1 else ""
        raise DataError(
            f"{paths[0]}: sketch id {sid!r} is duplicated by {', '.join(str(p) for p in paths[1:])}{more}; "
            "ids must be unique within a split: remove or rename one copy"
        )


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DataError(
            f"{path}: {what} folder not found; the FSCOCO-Seg layout (docs/data.md) needs it "
            "(check --root, or regenerate the data)"
        )


def _progress(items: list, desc: str) -> Iterable:
    return progress(items, desc=desc, unit="sketch", leave=False)


# ---------------------------------------------------------------------------------------------------- reading


def read_split_checked(
    root: str | Path, split: str, *, on_error: str = "raise", verify_images: bool = True
) -> tuple[list[SketchRecord], ReadReport]:
    """Read and validate one split; return its records (sorted by id) and the :class:`ReadReport`.

    ``on_error="raise"`` raises on the first bad sketch; ``"skip"`` leaves bad sketches out and counts them
    (see the module docstring for which problems can be skipped). ``verify_images`` checks every raster.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root}: dataset root not found; --root must hold train/, val/, test/ and all_classes.json "
            "(at the root or in val/ and test/)"
        )
    report = ReadReport(split=split)
    if split == "train":
        records = _read_train(root, on_error, verify_images, report)
    else:
        records = _read_annotated(root, split, on_error, verify_images, report)
    report.read = len(records)
    report.strokes = sum(len(r.labels) for r in records if r.labels is not None)
    if not records:
        if report.skipped:
            first = report.skipped[0]
            raise DataError(
                f"{root / split}: every sketch ({len(report.skipped)}) was skipped, e.g. {first.message}; "
                "the data is unusable as it is"
            )
        raise DataError(f"{root / split}: no sketch found; check --root and the layout (docs/data.md)")
    if report.skipped:
        log.warning("%s: skipped %d sketches %s", root / split, len(report.skipped), report.counts())
    return records, report


def read_split(
    root: str | Path, split: str, *, on_error: str = "raise", verify_images: bool = True
) -> list[SketchRecord]:
    """Records of one split of an FSCOCO-Seg directory, sorted by id (see :func:`read_split_checked`)."""
    return read_split_checked(root, split, on_error=on_error, verify_images=verify_images)[0]


def _handle(exc: SketchDataError, on_error: str, report: ReadReport) -> None:
    if on_error == "raise":
        raise exc
    log.warning("skipping sketch %s: %s", exc.sketch_id, exc)
    report.skipped.append(SkippedSketch(exc.sketch_id, str(exc.path), exc.reason, str(exc)))


def _read_train(root: Path, on_error: str, verify_images: bool, report: ReadReport) -> list[SketchRecord]:
    split_dir = root / "train"
    _require_dir(split_dir, "train split")
    _require_dir(split_dir / "sketches", "train sketches")
    _require_dir(split_dir / "text", "train captions")
    images = _scan_participants(split_dir / "sketches", IMAGE_EXTENSIONS, report)
    captions = _scan_participants(split_dir / "text", (".txt",), report)
    records = []
    for sid in _progress(sorted(images.keys() | captions.keys()), "read train"):
        try:
            image, caption = images.get(sid), captions.get(sid)
            if image is None:
                detail = f"caption without image (no sketches/*/{sid}.png|jpg)"
                raise SketchDataError(caption, "missing_image", detail, sid)
            participant = image.parent.name
            if caption is None:
                expected = split_dir / "text" / participant / f"{sid}.txt"
                raise SketchDataError(image, "missing_caption", f"image without caption ({expected} not found)", sid)
            if caption.parent.name != participant:
                detail = f"image under participant {participant!r} but its caption is {caption}"
                raise SketchDataError(image, "participant_mismatch", detail, sid)
            text = _read_caption(caption, sid)
            if verify_images:
                _verify_image(image, sid)
        except SketchDataError as exc:
            _handle(exc, on_error, report)
            continue
        records.append(SketchRecord(id=sid, split="train", caption=text, image_path=image, participant=participant))
    return records


def _read_annotated(
    root: Path, split: str, on_error: str, verify_images: bool, report: ReadReport
) -> list[SketchRecord]:
    split_dir = root / split
    _require_dir(split_dir, f"{split} split")
    for sub in _VAL_TEST_DIRS:
        _require_dir(split_dir / sub, f"{split} {sub}")
    names, class_files = read_all_classes_checked(root)
    known = set(names)
    participants = read_participants(root)
    images = _scan_flat(split_dir / "images", IMAGE_EXTENSIONS, report)
    captions = _scan_flat(split_dir / "captions", (".txt",), report)
    vectors = _scan_flat(split_dir / "vector_sketches", (".npy",), report)
    classes = _scan_flat(split_dir / "classes", (".json",), report)
    records = []
    ids = sorted(images.keys() | captions.keys() | vectors.keys() | classes.keys())
    for sid in _progress(ids, f"read {split}"):
        try:
            image, caption = images.get(sid), captions.get(sid)
            vector_path, classes_path = vectors.get(sid), classes.get(sid)
            present = next(p for p in (image, caption, vector_path, classes_path) if p is not None)
            if image is None:
                expected = split_dir / "images" / f"{sid}.png"
                kind = {"captions": "caption", "vector_sketches": "vector", "classes": "classes"}[present.parent.name]
                detail = f"{kind} file without image ({expected} not found)"
                raise SketchDataError(present, "missing_image", detail, sid)
            if caption is None:
                expected = split_dir / "captions" / f"{sid}.txt"
                raise SketchDataError(image, "missing_caption", f"image without caption ({expected} not found)", sid)
            if vector_path is None:
                expected = split_dir / "vector_sketches" / f"{sid}.npy"
                detail = f"{'classes file' if classes_path else 'sketch'} without vector file ({expected} not found)"
                raise SketchDataError(classes_path or image, "missing_vector", detail, sid)
            if classes_path is None:
                expected = split_dir / "classes" / f"{sid}.json"
                detail = f"vector without classes file ({expected} not found)"
                raise SketchDataError(vector_path, "missing_classes", detail, sid)
            text = _read_caption(caption, sid)
            if verify_images:
                _verify_image(image, sid)
            vector, n_strokes = _read_vector(vector_path, sid)
            labels = _read_classes(classes_path, sid)
            if len(labels) != n_strokes:
                raise SketchDataError(
                    classes_path,
                    "label_count",
                    f"{len(labels)} labels but {vector_path.name} has {n_strokes} strokes",
                    sid,
                )
            unknown = sorted(set(labels) - known)
            if unknown:
                raise SketchDataError(
                    classes_path,
                    "unknown_label",
                    f"labels {unknown} are not in {class_files[0]}",
                    sid,
                )
        except SketchDataError as exc:
            _handle(exc, on_error, report)
            continue
        records.append(
            SketchRecord(
                id=sid,
                split=split,
                caption=text,
                image_path=image,
                participant=participants.get(sid),
                vector=vector,
                labels=labels,
            )
        )
    return records


def read_dataset(
    root: str | Path, *, on_error: str = "raise", splits: Iterable[str] = SPLITS, verify_images: bool = True
) -> tuple[dict[str, list[SketchRecord]], dict[str, ReadReport]]:
    """Read several splits; an id present in two splits raises DataError (it would leak into evaluation)."""
    records: dict[str, list[SketchRecord]] = {}
    reports: dict[str, ReadReport] = {}
    owner: dict[str, str] = {}
    for split in splits:
        records[split], reports[split] = read_split_checked(root, split, on_error=on_error, verify_images=verify_images)
        for r in records[split]:
            if r.id in owner:
                raise DataError(
                    f"{r.image_path}: sketch id {r.id!r} is in both {owner[r.id]!r} and {split!r}; "
                    "a sketch may belong to one split only: remove one copy"
                )
            owner[r.id] = split
    return records, reports
