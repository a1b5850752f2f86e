"""Legends: what a result's colours mean (category, share of stroke pixels, strokes for vector input), and drawing
them to the right of an image."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from sketchseg.render.colours import PAPER_COLOUR, UNLABELLED_COLOUR, colour


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: ``text`` beside a box of ``rgb``."""

    text: str
    rgb: tuple[int, int, int]


def legend_entries(seg) -> list[LegendEntry]:
    """Per category ``name  share%`` (share of stroke pixels), with ``(n strokes)`` for vector input; then the
    unlabelled share (pixels, or strokes whose majority has no category) when there is one."""
    strokes = Counter(s.index for s in seg.stroke_labels) if seg.stroke_labels is not None else None
    out = []
    for k, name in enumerate(seg.categories):
        text = f"{name}  {seg.shares[name] * 100:.1f}%"
        if strokes is not None:
            text += f"  ({strokes[k]} stroke{'s' if strokes[k] != 1 else ''})"
        out.append(LegendEntry(text, colour(k)))
    unlabelled_strokes = strokes[-2] if strokes is not None else 0  # NO_CATEGORY
    if seg.unlabelled or unlabelled_strokes:
        text = f"unlabelled  {seg.unlabelled * 100:.1f}%"
        if strokes is not None:
            text += f"  ({unlabelled_strokes} stroke{'s' if unlabelled_strokes != 1 else ''})"
        out.append(LegendEntry(text, UNLABELLED_COLOUR))
    return out


def draw_legend(img: Image.Image, entries: list[LegendEntry], font_size: int = 14) -> Image.Image:
    """``img`` with the legend to its right on white paper (font scaled with the image, 10 to 48 px)."""
    w, h = img.size
    font = ImageFont.load_default(size=max(10, min(font_size * max(h, w) // 512, 48)))
    box = font.size
    measure = ImageDraw.Draw(img)
    legend_w = int(max((measure.textlength(e.text, font=font) for e in entries), default=0) + box * 3)
    out = Image.new("RGB", (w + legend_w, max(h, (len(entries) + 1) * box * 2)), PAPER_COLOUR)
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, entry in enumerate(entries):
        y = box + k * box * 2
        draw.rectangle([w + box, y, w + 2 * box, y + box], fill=entry.rgb)
        draw.text((w + int(2.5 * box), y - 1), entry.text, fill=(0, 0, 0), font=font)
    return out
