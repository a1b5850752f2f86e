"""Validate an FSCOCO-Seg directory and record its split, categories and checks.

Writes into ``--out`` (atomically: the folder appears complete or not at all):

- ``splits.json``: the released split as-is (ids per split of the sketches that passed the checks).
- ``categories.json``: all classes; per val/test category its stroke and sketch counts; how many train
  sketches mention each category among the first ``max_categories`` categories parsed from their caption
  (what training supervises) and among all of them; which val/test categories are seen or unseen in training.
  Category names are compared in their normal form (:func:`sketchseg.data.vocabulary.normalise_name`: case,
  whitespace, singular), so "Palm Trees", "palm tree" and "palm-tree" are one category; ``train_frequency`` and
  ``train_mentions`` are keyed by that form, ``frequency``, ``seen`` and ``unseen`` by the labels' own names.
  Captions are parsed with the dataset's ``all_classes.json`` names known first (SPEC §5).
- ``checks.json``: the annotation check report: per split sketches read, strokes, sketches skipped with
  file and reason, ignored files, and which participants are known per split; for a converted real set
  (``friss.json`` beside the data, :mod:`sketchseg.data.friss`) also ``conversion``: what the class map and the
  vocabulary removed per split.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from sketchseg.data.fscoco import ReadReport, read_all_classes, read_dataset
from sketchseg.data.records import SPLITS, SketchRecord
from sketchseg.data.splits import check_disjoint, write_splits
from sketchseg.data.vocabulary import normalise_name
from sketchseg.errors import ConfigError, SketchsegError
from sketchseg.io_utils import atomic_dir, write_json
from sketchseg.progress import progress

log = logging.getLogger(__name__)

ParseFn = Callable[[str], list[str]]


def load_caption_parser(classes: Iterable[str] = ()) -> ParseFn:
    """``sketchseg.data.captions.parse_categories`` with ``classes`` (a dataset's ``all_classes.json``) known
    first, imported on demand."""
    try:
        from sketchseg.data.captions import dataset_parser, parse_categories
    except ImportError as exc:
        raise SketchsegError(
            f"the caption parser sketchseg.data.captions.parse_categories cannot be imported ({exc}); "
            "reinstall sketchseg (pip install -e .)"
        ) from None
    return functools.partial(parse_categories, parser=dataset_parser(classes))


def category_stats(
    records: dict[str, list[SketchRecord]], all_classes: list[str], parse: ParseFn, max_categories: int = 3
) -> dict:
    """The content of ``categories.json`` (see the module docstring)."""
    if max_categories < 1:
        raise ConfigError(f"max_categories must be at least 1, got {max_categories}")
    supervised: Counter[str] = Counter()  # train sketches whose first max_categories categories hold c
    mentioned: Counter[str] = Counter()  # train sketches whose caption mentions c at all
    train = records.get("train", [])
    for r in progress(train, desc="parse captions", unit="caption", leave=False):
        cats = list(dict.fromkeys(normalise_name(c) for c in parse(r.caption)))
        mentioned.update(cats)
        supervised.update(cats[:max_categories])
    frequency: dict[str, dict[str, dict[str, int]]] = {}
    seen: dict[str, list[str]] = {}
    unseen: dict[str, list[str]] = {}
    used: set[str] = set()
    for split in ("val", "test"):
        if split not in records:
            continue
        strokes: Counter[str] = Counter()
        sketches: Counter[str] = Counter()
        for r in records[split]:
            labels = r.labels or ()
            strokes.update(labels)
            sketches.update(set(labels))
        frequency[split] = {c: {"strokes": strokes[c], "sketches": sketches[c]} for c in sorted(strokes)}
        used.update(strokes)
        seen[split] = sorted(c for c in strokes if supervised[normalise_name(c)] > 0)
        unseen[split] = sorted(c for c in strokes if supervised[normalise_name(c)] == 0)
    return {
        "all_classes": list(all_classes),
        "max_categories": max_categories,
        "frequency": frequency,
        "train_frequency": dict(sorted(supervised.items())),
        "train_mentions": dict(sorted(mentioned.items())),
        "seen": seen,
        "unseen": unseen,
        "unused_classes": [c for c in all_classes if c not in used],
    }


def participant_check(records: dict[str, list[SketchRecord]]) -> dict:
    """Participants known per split, and test participants that also drew train/val sketches (a protocol breach:
    the paper's test participants appear in test only)."""
    by_split = {s: sorted({r.participant for r in rs if r.participant is not None}) for s, rs in records.items()}
    unknown = {s: sum(r.participant is None for r in rs) for s, rs in records.items()}
    test = set(by_split.get("test", []))
    elsewhere = sorted(test & (set(by_split.get("train", [])) | set(by_split.get("val", []))))
    if elsewhere:
        log.warning("test participants %s also drew train/val sketches", elsewhere)
    return {"participants": by_split, "sketches_without_participant": unknown, "test_participants_elsewhere": elsewhere}


def checks_report(root: Path, on_error: str, reports: dict[str, ReadReport], participants: dict) -> dict:
    """The content of ``checks.json``."""
    reasons: Counter[str] = Counter()
    for rep in reports.values():
        reasons.update(rep.counts())
    skipped = sum(len(rep.skipped) for rep in reports.values())
    return {
        "root": str(root),
        "on_error": on_error,
        "ok": skipped == 0,
        "totals": {
            "read": sum(rep.read for rep in reports.values()),
            "strokes": sum(rep.strokes for rep in reports.values()),
            "skipped": skipped,
            "skipped_by_reason": dict(sorted(reasons.items())),
        },
        "splits": {s: rep.to_dict() for s, rep in reports.items()},
        **participants,
    }


def prepare(
    root: str | Path,
    out: str | Path,
    *,
    on_error: str = "raise",
    max_categories: int = 3,
    verify_images: bool = True,
    parse_categories: ParseFn | None = None,
) -> dict:
    """Validate ``root`` and write ``splits.json``, ``categories.json`` and ``checks.json`` into ``out``.

    ``parse_categories`` defaults to :func:`sketchseg.data.captions.parse_categories` with the dataset's class
    names known first. Returns the checks report.
    """
    root, out = Path(root), Path(out)
    if max_categories < 1:
        raise ConfigError(f"--max-categories must be at least 1, got {max_categories}")
    all_classes = read_all_classes(root)
    parse = parse_categories or load_caption_parser(all_classes)
    records, reports = read_dataset(root, on_error=on_error, splits=SPLITS, verify_images=verify_images)
    splits = {s: [r.id for r in records[s]] for s in SPLITS}
    check_disjoint(splits)
    categories = category_stats(records, all_classes, parse, max_categories)
    checks = checks_report(root, on_error, reports, participant_check(records))
    conversion = root / "friss.json"  # a converted real set (data.source: friss): what each rule removed
    if conversion.is_file():
        checks["conversion"] = json.loads(conversion.read_text(encoding="utf-8"))
    meta = {"source": "released", "root": str(root), "on_error": on_error, "skipped": checks["totals"]["skipped"]}
    with atomic_dir(out) as tmp:
        write_splits(tmp / "splits.json", splits, meta)
        for name, content in (("categories.json", categories), ("checks.json", checks)):
            write_json(tmp / name, content)
    checks["categories"] = categories
    return checks


def summary(checks: dict, out: Path) -> str:
    """A few lines describing what :func:`prepare` wrote."""
    cats = checks["categories"]
    lines = [f"prepared {out} from {checks['root']}"]
    for split, rep in checks["splits"].items():
        strokes = f", {rep['strokes']} strokes" if rep["strokes"] else ""
        skipped = f", {rep['skipped']} skipped {rep['skipped_by_reason']}" if rep["skipped"] else ""
        lines.append(f"  {split}: {rep['read']} sketches{strokes}{skipped}")
    used = {s: len(f) for s, f in cats["frequency"].items()}
    unseen = {s: len(u) for s, u in cats["unseen"].items()}
    lines.append(f"  categories: {len(cats['all_classes'])} classes; used {used}; unseen in training {unseen}")
    for line in checks.get("conversion", {}).get("summary", []):  # a converted real set: what each rule removed
        lines.append(f"  converted {line}")
    if checks["test_participants_elsewhere"]:
        lines.append(f"  warning: test participants also in train/val: {checks['test_participants_elsewhere']}")
    return "\n".join(lines)
