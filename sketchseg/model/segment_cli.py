"""`sketchseg segment`: label the strokes of one or more sketches and write overlays, label maps and summaries.

Per sketch ``<stem>`` the output directory receives:
- ``<stem>_overlay.png``: strokes coloured by category, with a legend (category and share of stroke pixels);
- ``<stem>_labels.png``: the label map as an 8-bit palette PNG whose pixel VALUES are 0 for background (non-stroke)
  and k for the k-th category (1-based, in the order of the JSON's ``categories``), 255 for a stroke pixel the
  recipe left unlabelled (``--recipe authors``: every map below its threshold; drawn black in the overlay);
- ``<stem>_isolated_<k>.png`` (with ``--threshold``): the isolated strokes of category k, black on white;
- ``<stem>.json``: categories, shares of stroke pixels, weights used, threshold, notes. Written last: a sketch
  whose JSON exists is complete.
Every input is validated before anything is written; a bad input exits with code 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sketchseg.errors import InputError

HELP = "segment sketches into the given categories (writes overlay, label map and JSON per sketch)"

PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (0, 128, 128), (170, 110, 40), (128, 0, 0), (0, 0, 128), (128, 128, 0), (255, 215, 180),
    (170, 255, 195), (220, 190, 255),
]  # fmt: skip


def colour(k: int) -> tuple[int, int, int]:
    return PALETTE[k % len(PALETTE)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sketches", nargs="+", type=Path, metavar="SKETCH", help="sketch image file(s)")
    vocab = p.add_mutually_exclusive_group(required=True)
    vocab.add_argument("--categories", help='comma-separated category names, e.g. "giraffe, zebra, grass"')
    vocab.add_argument("--caption", help="a caption; categories are parsed from its nouns")
    p.add_argument(
        "--threshold",
        default=None,
        help="also isolate each category's strokes: a value in [0, 1], or 'auto' for the checkpoint's calibrated τ",
    )
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", type=Path, help="a sketchseg checkpoint or the authors' released .pth")
    weights.add_argument("--model", default="sketchseg-tiny", help="open_clip model name (default: sketchseg-tiny)")
    p.add_argument("--pretrained", default=None, help="with --model: open_clip tag (openai) or local weights file")
    p.add_argument(
        "--quick-gelu",
        choices=("auto", "true", "false"),
        default="auto",
        help="with --model: QuickGELU activation; auto (default) = on for OpenAI weights (tag or TorchScript file)",
    )
    p.add_argument("--seed", type=int, default=0, help="with --model: seed of the new weights (prompts, projections)")
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


def overlay_image(seg, font_size: int = 14) -> Image.Image:
    """Strokes coloured by label on white, faint original underneath, legend on the right."""
    from sketchseg.model.segmenter import UNLABELLED

    h, w = seg.labels.shape
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    canvas[seg.strokes] = (200, 200, 200)
    for k in range(len(seg.categories)):
        canvas[seg.labels == k] = colour(k)
    canvas[seg.labels == UNLABELLED] = (0, 0, 0)  # as the authors' overlay draws them
    img = Image.fromarray(canvas)
    font = ImageFont.load_default(size=max(10, min(font_size * max(h, w) // 512, 48)))
    lines = [f"{c}  {seg.shares[c] * 100:.1f}%" for c in seg.categories]
    if seg.unlabelled:
        lines.append(f"unlabelled  {seg.unlabelled * 100:.1f}%")
    draw = ImageDraw.Draw(img)
    box = font.size
    widths = [draw.textlength(t, font=font) for t in lines]
    legend_w = int(max(widths) + box * 3)
    out = Image.new("RGB", (w + legend_w, max(h, (len(lines) + 1) * box * 2)), (255, 255, 255))
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, text in enumerate(lines):
        y = box + k * box * 2
        draw.rectangle([w + box, y, w + 2 * box, y + box], fill=colour(k) if k < len(seg.categories) else (0, 0, 0))
        draw.text((w + int(2.5 * box), y - 1), text, fill=(0, 0, 0), font=font)
    return out


def label_png(seg) -> Image.Image:
    """Palette PNG whose values are 0 = background, k = k-th category (1-based), 255 = unlabelled stroke."""
    from sketchseg.model.segmenter import UNLABELLED

    values = np.where(seg.labels == UNLABELLED, 255, seg.labels.astype(np.int16) + 1).astype(np.uint8)  # [H, W]
    img = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
    pal = [255, 255, 255]
    for k in range(254):
        pal.extend(colour(k))
    pal.extend((0, 0, 0))  # 255: unlabelled
    img.putpalette(pal)
    return img


def write_outputs(seg, stem: str, out: Path, weights: str) -> list[Path]:
    """Write one sketch's files into ``out``; the JSON goes last so that its presence means completion."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.tmp-", dir=out))
    try:
        files: dict[str, Path] = {}
        overlay_image(seg).save(tmp / f"{stem}_overlay.png")
        files[f"{stem}_overlay.png"] = tmp / f"{stem}_overlay.png"
        label_png(seg).save(tmp / f"{stem}_labels.png")
        files[f"{stem}_labels.png"] = tmp / f"{stem}_labels.png"
        isolated = {}
        if seg.masks is not None:
            for k, name in enumerate(seg.categories):
                fname = f"{stem}_isolated_{k + 1}_{_slug(name)}.png"
                Image.fromarray(np.where(seg.masks[k], 0, 255).astype(np.uint8)).save(tmp / fname)
                files[fname] = tmp / fname
                isolated[name] = {"file": fname, "stroke_share": float(seg.masks[k].sum() / max(seg.strokes.sum(), 1))}
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
            "label_png": "pixel value 0 = background (non-stroke), k = categories[k-1], 255 = stroke left unlabelled",
            "files": sorted(files),
        }
        (tmp / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        written = []
        for name, path in files.items():
            os.replace(path, out / name)
            written.append(out / name)
        os.replace(tmp / f"{stem}.json", out / f"{stem}.json")
        written.append(out / f"{stem}.json")
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sketchseg.model.config import BackboneConfig, ModelConfig
    from sketchseg.model.image import load_sketch
    from sketchseg.model.segmenter import Segmenter, normalise_categories

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
        normalise_categories(args.categories)  # fail early on an empty list
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"{args.out}: exists and is not a directory")
    # Validate every input before any output is written.
    for path in args.sketches:
        load_sketch(path)
    if args.checkpoint is not None:
        segmenter = Segmenter.from_checkpoint(
            args.checkpoint, device=args.device, batch_size=args.batch_size, recipe=args.recipe
        )
    else:
        quick = {"auto": "auto", "true": True, "false": False}[args.quick_gelu]
        backbone = BackboneConfig(name=args.model, pretrained=args.pretrained, force_quick_gelu=quick, seed=args.seed)
        cfg = ModelConfig(backbone=backbone, seed=args.seed)
        segmenter = Segmenter.from_config(cfg, device=args.device, batch_size=args.batch_size, recipe=args.recipe)
    if threshold == "auto":
        meta = getattr(segmenter.model, "checkpoint_meta", {})
        threshold = float(meta.get("calibrated_tau", segmenter.model.threshold.tau().item()))
    if args.caption is not None:
        segmenter.resolve_categories(None, args.caption)  # fail early on a caption without nouns
    args.out.mkdir(parents=True, exist_ok=True)
    stems = _stems(args.sketches)
    results = segmenter.segment_many(
        (load_sketch(p) for p in args.sketches),
        categories=args.categories,
        caption=args.caption,
        threshold=threshold,
    )
    bar = tqdm(total=len(stems), desc="segment", unit="sketch", disable=len(stems) < 2, file=sys.stderr)
    for stem, seg in zip(stems, results, strict=True):
        write_outputs(seg, stem, args.out, segmenter.weights)
        bar.update(1)
    bar.close()
    print(f"weights: {segmenter.weights}")
    print(f"wrote {len(stems)} sketch result(s) to {args.out}")
    return 0
