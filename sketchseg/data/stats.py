"""Counts, categories per sketch, category frequencies and a contact sheet of an
FSCOCO-Seg directory (the real benchmark or the synthetic one).

Val/test are read through :mod:`sketchseg.data.fscoco` (per-stroke labels); train has no labels, so its category
frequencies come from the generator's ``synth.json`` when present and are reported as unavailable otherwise.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sketchseg.data.fscoco import read_split_checked
from sketchseg.data.records import SketchRecord
from sketchseg.data.strokes import rasterise, split_strokes
from sketchseg.errors import DataError
from sketchseg.io_utils import atomic_file

# distinct colours for stroke labels (RGB), reused cyclically
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (23, 190, 207), (188, 189, 34), (127, 127, 127), (0, 0, 128), (128, 0, 0),
    (0, 128, 128), (210, 105, 30), (75, 0, 130), (0, 100, 0), (255, 20, 147), (70, 130, 180),
    (154, 205, 50), (199, 21, 133), (0, 0, 0), (255, 99, 71), (46, 139, 87), (218, 165, 32),
)  # fmt: skip
TILE = 256
CAPTION_H = 40


def _per_sketch(cats: list[list[str]]) -> dict[str, float]:
    n = [len(c) for c in cats]
    if not n:
        return {"mean": 0.0, "min": 0, "max": 0}
    return {"mean": round(float(np.mean(n)), 3), "min": int(min(n)), "max": int(max(n))}


def _frequencies(cats: list[list[str]]) -> dict[str, int]:
    """Number of sketches containing each category, most frequent first (ties by name)."""
    c = Counter(x for cs in cats for x in set(cs))
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def compute_stats(root: Path) -> tuple[dict, dict[str, list[SketchRecord]]]:
    """The statistics of a dataset directory and its val/test records."""
    stats: dict = {"root": str(root), "splits": {}}
    records: dict[str, list[SketchRecord]] = {}
    meta = None
    synth = root / "synth.json"
    if synth.is_file():
        try:
            meta = json.loads(synth.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
    for split in ("train", "val", "test"):
        if not (root / split).is_dir():
            raise DataError(
                f"{root / split}: split folder missing; --root must hold train/, val/ and test/ (docs/data.md)"
            )
        recs, report = read_split_checked(root, split, on_error="skip", verify_images=False)
        entry: dict = {
            "sketches": len(recs),
            "participants": len({r.participant for r in recs if r.participant is not None}),
            "skipped": len(report.skipped),
        }
        if split == "train":
            sk = (meta or {}).get("sketch_categories", {}).get("train") if isinstance(meta, dict) else None
            if isinstance(sk, dict):
                cats = [list(sk[r.id]) for r in recs if r.id in sk]
                entry["source"] = "synth.json"
            else:
                cats = None
                entry["source"] = "unavailable (train has no stroke labels)"
        else:
            records[split] = recs
            cats = [list(dict.fromkeys(r.labels or ())) for r in recs]
            entry["strokes"] = report.strokes
            entry["source"] = "labels"
        if cats is not None:
            entry["categories_per_sketch"] = _per_sketch(cats)
            entry["category_frequency"] = _frequencies(cats)
        stats["splits"][split] = entry
    if isinstance(meta, dict) and "unseen_categories" in meta:
        stats["unseen_categories"] = meta["unseen_categories"]
    return stats, records


def format_stats(stats: dict) -> str:
    """Human-readable report of :func:`compute_stats`."""
    lines = [f"dataset {stats['root']}"]
    for split, e in stats["splits"].items():
        line = f"{split:5s}  sketches {e['sketches']:6d}  participants {e['participants']:4d}"
        if "strokes" in e:
            line += f"  strokes {e['strokes']}"
        if e.get("skipped"):
            line += f"  skipped {e['skipped']}"
        lines.append(line)
    for split, e in stats["splits"].items():
        if "categories_per_sketch" not in e:
            lines.append(f"{split}: category statistics {e['source']}")
            continue
        c = e["categories_per_sketch"]
        lines.append(f"{split}: categories per sketch mean {c['mean']:.2f} min {c['min']} max {c['max']} "
                     f"({len(e['category_frequency'])} categories, from {e['source']})")
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in e["category_frequency"].items()))
    if "unseen_categories" in stats:
        lines.append("unseen in train: " + ", ".join(stats["unseen_categories"]))
    return "\n".join(lines)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _tile(record: SketchRecord, colours: dict[str, tuple[int, int, int]]) -> Image.Image:
    """A sketch rendered at TILE px with strokes coloured by label, its label names below."""
    strokes = split_strokes(record.vector, source=str(record.image_path))
    labels = list(record.labels or ())
    names = list(dict.fromkeys(labels))
    raster = rasterise(strokes, size=TILE)
    lab = raster.label_map([names.index(x) for x in labels])  # [TILE, TILE], -1 = background
    rgb = np.full((TILE, TILE, 3), 255, dtype=np.uint8)
    for k, name in enumerate(names):
        rgb[lab == k] = colours[name]
    img = Image.new("RGB", (TILE, TILE + CAPTION_H), "white")
    img.paste(Image.fromarray(rgb), (0, 0))
    draw = ImageDraw.Draw(img)
    font, small = _font(13), _font(10)
    draw.text((3, 2), record.id, fill=(150, 150, 150), font=small)
    x, y = 4, TILE + 3
    for name in names:
        w = draw.textlength(name, font=font) + 8
        if x + w > TILE:
            x, y = 4, y + 17
        draw.text((x, y), name, fill=colours[name], font=font)
        x += int(w)
    draw.rectangle((0, 0, TILE - 1, TILE + CAPTION_H - 1), outline=(200, 200, 200))
    return img


def contact_sheet(records: list[SketchRecord], out: Path, n: int = 16, seed: int = 0) -> list[str]:
    """Write a PNG grid of ``n`` sampled sketches with label-coloured strokes; returns the ids shown."""
    if not records:
        raise DataError("no val/test sketch to show on the contact sheet")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(records), size=min(n, len(records)), replace=False).tolist())
    chosen = [records[i] for i in pick]
    names = sorted({x for r in chosen for x in (r.labels or ())})
    colours = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(names)}
    cols = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    sheet = Image.new("RGB", (cols * TILE, rows * (TILE + CAPTION_H)), "white")
    for k, r in enumerate(chosen):
        sheet.paste(_tile(r, colours), ((k % cols) * TILE, (k // cols) * (TILE + CAPTION_H)))
    with atomic_file(out, mode="wb") as fh:
        sheet.save(fh, format="PNG")
    return [r.id for r in chosen]
