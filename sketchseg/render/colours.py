"""Colours of categories: :data:`PALETTE` for results (overlay, label PNG, strokes SVG; category ``k`` is
``colour(k)``) and :func:`figure_palette` for evaluation figures, whose error maps use green and red."""

from __future__ import annotations

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (0, 128, 128), (170, 110, 40), (128, 0, 0), (0, 0, 128), (128, 128, 0), (255, 215, 180),
    (170, 255, 195), (220, 190, 255),
)  # fmt: skip
INK_COLOUR = (200, 200, 200)  # stroke pixels under the coloured labels (faint original)
UNLABELLED_COLOUR = (0, 0, 0)  # stroke pixels or strokes left without a category (as the authors' overlay draws them)
PAPER_COLOUR = (255, 255, 255)
WARNING_COLOUR = (200, 0, 0)  # the UNTRAINED line of a result of random weights
UNTRAINED_TEXT = "UNTRAINED weights: results are meaningless"


def colour(k: int) -> tuple[int, int, int]:
    """RGB of category ``k`` (0-based); the palette repeats after 16 categories."""
    return PALETTE[k % len(PALETTE)]


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def figure_palette() -> list[tuple[float, float, float]]:
    """Distinct category colours in [0, 1] for figures: tab20's dark then light shades, then tab20b's.

    Grey (reserved for "no category"), green and red (the error map's colours) are left out.
    """
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors
    skip = {4, 5, 6, 7, 14, 15}  # green, red, grey (dark and light)
    dark = [tab20[i][:3] for i in range(0, 20, 2) if i not in skip]
    light = [tab20[i][:3] for i in range(1, 20, 2) if i not in skip]
    extra = [c[:3] for c in colormaps["tab20b"].colors]
    return dark + light + extra
