"""Legends: what a result's colours mean (category, its share, and its strokes for vector input), and drawing them
to the right of an image."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from sketchseg.model.stroke_labels import NO_CATEGORY
from sketchseg.render.colours import PAPER_COLOUR, UNLABELLED_COLOUR, WARNING_COLOUR, colour


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: ``text`` beside a box of ``rgb``."""

    text: str
    rgb: tuple[int, int, int]


def legend_entries(seg) -> list[LegendEntry]:
    """One line per category, then one for what has no category when anything has none.

    An image: ``name  share%``, the share of stroke pixels labelled with the category (``seg.shares``,
    ``seg.unlabelled``). Vector input, whose overlay colours whole strokes by their stroke labels:
    ``name  share%  (n strokes)``, ``n`` the strokes labelled with the category and ``share`` their pixels' share of
    all strokes' pixels (each stroke counts its own pixels), so a category with no stroke has 0 %, whether strokes
    were labelled by their pixels' majority or as wholes (``model.labels``); the line for no category counts the
    strokes whose label is none."""
    if seg.stroke_labels is None:
        out = [LegendEntry(f"{n}  {seg.shares[n] * 100:.1f}%", colour(k)) for k, n in enumerate(seg.categories)]
        if seg.unlabelled:
            out.append(LegendEntry(f"unlabelled  {seg.unlabelled * 100:.1f}%", UNLABELLED_COLOUR))
        return out
    strokes, pixels = Counter(), Counter()
    for s in seg.stroke_labels:
        strokes[s.index] += 1
        pixels[s.index] += s.pixels
    total = max(sum(pixels.values()), 1)

    def text(name: str, index: int) -> str:
        n = strokes[index]
        return f"{name}  {pixels[index] / total * 100:.1f}%  ({n} stroke{'s' if n != 1 else ''})"

    out = [LegendEntry(text(name, k), colour(k)) for k, name in enumerate(seg.categories)]
    if strokes[NO_CATEGORY]:
        out.append(LegendEntry(text("unlabelled", NO_CATEGORY), UNLABELLED_COLOUR))
    return out


def draw_legend(
    img: Image.Image, entries: list[LegendEntry], font_size: int = 14, warning: str | None = None
) -> Image.Image:
    """``img`` with the legend to its right on white paper (font scaled with the image, 10 to 48 px), and
    ``warning``, when given, in red above the legend's lines."""
    w, h = img.size
    font = ImageFont.load_default(size=max(10, min(font_size * max(h, w) // 512, 48)))
    box = font.size
    measure = ImageDraw.Draw(img)
    widths = [measure.textlength(e.text, font=font) + box * 3 for e in entries]
    if warning:
        widths.append(measure.textlength(warning, font=font) + box * 2)
    legend_w = int(max(widths, default=box * 3))
    first = 1 if warning else 0  # legend lines below the warning
    out = Image.new("RGB", (w + legend_w, max(h, (len(entries) + first + 1) * box * 2)), PAPER_COLOUR)
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    if warning:
        draw.text((w + box, box - 1), warning, fill=WARNING_COLOUR, font=font)
    for k, entry in enumerate(entries, start=first):
        y = box + k * box * 2
        draw.rectangle([w + box, y, w + 2 * box, y + box], fill=entry.rgb)
        draw.text((w + int(2.5 * box), y - 1), entry.text, fill=(0, 0, 0), font=font)
    return out
