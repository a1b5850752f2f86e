"""`sketchseg segment`: label the strokes of one or more sketches and write overlays, label maps and summaries.

A sketch is an image (PNG, JPEG, ...) or a vector sketch: FS-COCO or stroke-3 ``.npy``, JSON (the web page's point
lists, stroke-3 rows, CBSC files), SVG (:mod:`sketchseg.data.vector`); vector sketches are rasterised as the
benchmark does onto a 512x512 canvas and every stroke gets a label.

Per sketch ``<stem>`` the output directory receives (drawn by :mod:`sketchseg.render`):
- ``<stem>_overlay.png``: strokes coloured by category, with a legend (category and share of stroke pixels); for
  vector input whole strokes are coloured by their stroke label and the legend counts strokes;
- ``<stem>_labels.png``: the label map as an 8-bit palette PNG (:mod:`sketchseg.render.labels`, as the server's
  ``labels_png``) whose pixel VALUES are 0 for background (non-stroke), ``index + 1`` for a stroke pixel labelled
  ``categories[index]`` (the JSON's ``categories``), 255 for a stroke pixel the recipe left unlabelled
  (``--recipe authors``: every map below its threshold; drawn black in the overlay);
- ``<stem>_isolated_<k>.png`` (with ``--threshold``): the isolated strokes of category k, black on white;
- ``<stem>_strokes.svg`` (vector input): the strokes in the input's coordinates, coloured by stroke label;
- ``<stem>.json``: categories, shares of stroke pixels, weights used, threshold, notes; for vector input also
  ``stroke_labels`` (one ``{"label", "index", "confidence", "pixels"}`` per input stroke, in input order; ``index``
  0-based into ``categories``, -1 for a stroke without pixels, -2 for one without a category) and
  ``vector`` (format, stroke count, declared canvas, fitted region). Written last: a sketch whose JSON exists is
  complete.
Every input is validated before anything is written; a bad input exits with code 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sketchseg.errors import InputError
from sketchseg.io_utils import atomic_file, atomic_path, write_json
from sketchseg.render import isolated_png, label_png, overlay_image, strokes_svg
from sketchseg.render.labels import MAX_LABELLED_CATEGORIES
from sketchseg.weights import add_weights_arguments

HELP = "segment sketches (images or vector strokes) into the given categories (writes overlay, label map, JSON)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "sketches", nargs="+", type=Path, metavar="SKETCH", help="sketch file(s): image, or vector .npy/.json/.svg"
    )
    vocab = p.add_mutually_exclusive_group(required=True)
    vocab.add_argument("--categories", help='comma-separated category names, e.g. "giraffe, zebra, grass"')
    vocab.add_argument("--caption", help="a caption; categories are parsed from its nouns")
    p.add_argument(
        "--threshold",
        default=None,
        help="also isolate each category's strokes: a value in [0, 1], or 'auto' for the checkpoint's calibrated τ",
    )
    add_weights_arguments(p)
    p.add_argument(
        "--recipe",
        choices=("sketchseg", "authors"),
        default="sketchseg",
        help="inference recipe: sketchseg (default) or authors (their 85 templates, empty-prompt removal, min-max "
        "maps, bilinear, threshold 0.6 below which strokes stay unlabelled; sketchseg/model/recipe.py)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "category"


def _stems(paths: list[Path]) -> list[str]:
    """Output stems, unique even when two inputs share a file name."""
    stems: list[str] = []
    used: set[str] = set()
    for path in paths:
        stem, k = path.stem, 2
        while stem in used:
            stem, k = f"{path.stem}-{k}", k + 1
        used.add(stem)
        stems.append(stem)
    return stems


def write_outputs(seg, stem: str, out: Path, weights: str) -> list[Path]:
    """Write one sketch's files into ``out``, each whole or not at all (:mod:`sketchseg.io_utils`), rendered before
    any is written; the JSON goes last so that its presence means completion."""
    images = {f"{stem}_overlay.png": overlay_image(seg), f"{stem}_labels.png": label_png(seg)}
    isolated = {}
    if seg.masks is not None:
        for k, name in enumerate(seg.categories):
            fname = f"{stem}_isolated_{k + 1}_{_slug(name)}.png"
            images[fname] = isolated_png(seg.masks[k])
            isolated[name] = {"file": fname, "stroke_share": float(seg.masks[k].sum() / max(seg.strokes.sum(), 1))}
    texts = {f"{stem}_strokes.svg": strokes_svg(seg)} if seg.stroke_labels is not None else {}
    summary = {
        "sketch": seg.source,
        "size": list(seg.labels.shape),
        "categories": seg.categories,
        "shares": seg.shares,
        "stroke_pixels": int(seg.strokes.sum()),
        "weights": weights,
        "threshold": seg.threshold,
        "recipe": seg.recipe,
        "unlabelled": seg.unlabelled,
        "isolated": isolated or None,
        "notes": seg.notes,
        "label_png": "pixel value 0 = background (non-stroke), k = categories[k-1] (a stroke label's index + 1), "
        "255 = stroke left unlabelled; sketchseg.render.labels.decode_labels reads it",
        "files": sorted([*images, *texts]),
    }
    if seg.stroke_labels is not None:
        summary["stroke_labels"] = [s.to_dict() for s in seg.stroke_labels]
        vector = seg.vector.vector
        summary["vector"] = {
            "format": vector.format,
            "strokes": len(vector),
            "canvas": list(vector.canvas) if vector.canvas is not None else None,
            "region": list(seg.vector.fit.region),
        }
    written = []
    for name, image in images.items():
        with atomic_path(out / name) as tmp:
            image.save(tmp, format="PNG")
        written.append(out / name)
    for name, text in texts.items():
        with atomic_file(out / name) as fh:
            fh.write(text)
        written.append(out / name)
    written.append(write_json(out / f"{stem}.json", summary, indent=2))
    return written


def run(args: argparse.Namespace) -> int:
    from sketchseg.data.sketch import read_sketch
    from sketchseg.model.segmenter import normalise_categories
    from sketchseg.weights import load_segmenter, weights_choice

    threshold: float | str | None = args.threshold
    if threshold is not None and threshold != "auto":
        try:
            threshold = float(threshold)
        except ValueError:
            raise InputError(f"--threshold {args.threshold!r}: give a number in [0, 1] or 'auto'") from None
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"--threshold {args.threshold}: must lie in [0, 1]")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be >= 1")
    if args.categories is not None:
        names, _ = normalise_categories(args.categories)  # fail early on an empty list
        if len(names) > MAX_LABELLED_CATEGORIES:
            raise InputError(f"--categories: {len(names)} categories, over the {MAX_LABELLED_CATEGORIES} the label PNG "
                             "holds; give fewer")  # fmt: skip
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"{args.out}: exists and is not a directory")
    # Validate every input before any output is written.
    for path in args.sketches:
        read_sketch(path)
    segmenter, weights = load_segmenter(weights_choice(args), device=args.device, batch_size=args.batch_size,
                                        recipe=args.recipe)  # fmt: skip
    if threshold == "auto":
        meta = getattr(segmenter.model, "checkpoint_meta", {})
        threshold = float(meta.get("calibrated_tau", segmenter.model.threshold.tau().item()))
    if args.caption is not None:
        segmenter.resolve_categories(None, args.caption)  # fail early on a caption without nouns
    args.out.mkdir(parents=True, exist_ok=True)
    stems = _stems(args.sketches)
    results = segmenter.segment_many(
        (read_sketch(p) for p in args.sketches),
        categories=args.categories,
        caption=args.caption,
        threshold=threshold,
    )
    from sketchseg.progress import progress

    bar = progress(total=len(stems), desc="segment", unit="sketch", enabled=len(stems) >= 2)
    for stem, seg in zip(stems, results, strict=True):
        write_outputs(seg, stem, args.out, weights)
        bar.update(1)
    bar.close()
    print(f"weights: {weights}")
    print(f"wrote {len(stems)} sketch result(s) to {args.out}")
    return 0
