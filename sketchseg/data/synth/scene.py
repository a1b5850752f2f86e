"""Scene composition: which objects, where, how big, in which order, drawn by which hand.

A scene has a horizon; sky objects (sun, cloud, bird, kite, airplane) sit above it, ground objects stand on the
ground below it and shrink with distance (perspective), mountains stand on the horizon, and surfaces (road,
grass, water) cover bands of ground. A scene holds 2-6 objects of 1-4 categories; objects may overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sketchseg.data.strokes import CANVAS, RASTER, rasterise
from sketchseg.data.synth.captions import make_caption
from sketchseg.data.synth.shapes import CATEGORIES, CATEGORY_NAMES, Path, draw_object
from sketchseg.data.synth.style import OBJECT_TAG, SCENE_TAG, Style, arclength, humanise, make_rng, participant_style

EDGE = CANVAS - 0.51  # largest coordinate kept (x2 and rounded stays inside the 512 raster)
_ZONE_ORDER = {"ground": 0.0, "sky": 0.5, "backdrop": 0.8, "surface": 1.0}


@dataclass(frozen=True)
class PlacedObject:
    """One object instance of a scene: its category and where it was drawn (canvas px, y down)."""

    category: str
    zone: str
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 of the ideal drawing
    rel_size: float  # drawn size relative to the category's typical size (perspective excluded)
    base: float  # y of the ground contact (bottom anchor) or centre for sky objects


@dataclass(frozen=True)
class SynthSketch:
    """A generated sketch: strokes ``[n_i, 2]`` in canvas px with their category names, caption and objects."""

    strokes: tuple[np.ndarray, ...]
    labels: tuple[str, ...]
    caption: str
    objects: tuple[PlacedObject, ...]

    def vector(self) -> np.ndarray:
        """The FS-COCO vector form: ``float32 (n, 3)`` absolute ``[x, y, pen]``, pen = 1 at each stroke's end."""
        return strokes_to_vector(self.strokes)

    def raster(self, size: int = RASTER) -> np.ndarray:
        """``uint8 [size, size]`` rendering of :meth:`vector` by the benchmark's rasteriser (black on white)."""
        return render(self.vector(), size)

    @property
    def categories(self) -> list[str]:
        """Distinct categories in order of first stroke."""
        return list(dict.fromkeys(self.labels))


def strokes_to_vector(strokes: tuple[np.ndarray, ...] | list[np.ndarray]) -> np.ndarray:
    """Concatenate strokes ``[n_i, 2]`` into a ``float32 (n, 3)`` ``[x, y, pen]`` array."""
    parts = []
    for s in strokes:
        pen = np.zeros((len(s), 1))
        pen[-1, 0] = 1.0
        parts.append(np.hstack([s, pen]))
    if not parts:
        return np.zeros((0, 3), dtype=np.float32)
    return np.vstack(parts).astype(np.float32)


def render(vector: np.ndarray, size: int = RASTER) -> np.ndarray:
    """``uint8 [size, size]`` raster of a vector sketch, exactly as the benchmark rasterises it."""
    from sketchseg.data.strokes import split_strokes

    return rasterise(split_strokes(vector), size=size).image()


# ---------------------------------------------------------------------------------------------------------------
# turning ideal paths into strokes


def _bbox(paths: list[Path]) -> tuple[float, float, float, float]:
    pts = np.vstack([p for p, _ in paths])
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _transform(paths: list[Path], anchor: tuple[float, float], unit: float, flip: bool, slant: float) -> list[Path]:
    """Local units -> canvas px: mirror, shear by the participant's slant, scale and move to ``anchor``."""
    sx = -unit if flip else unit
    out = []
    for pts, closed in paths:
        x = anchor[0] + sx * pts[:, 0] - unit * slant * pts[:, 1]
        y = anchor[1] + unit * pts[:, 1]
        out.append((np.stack([x, y], axis=1), closed))
    return out


def _merge(paths: list[Path], style: Style, rng: np.random.Generator, tol: float) -> list[Path]:
    """Join consecutive open paths that meet (within ``tol`` px) into one stroke with probability ``style.merge``."""
    out: list[Path] = []
    for pts, closed in paths:
        if out and not closed and not out[-1][1] and rng.random() < style.merge:
            prev = out[-1][0]
            if np.hypot(*(prev[-1] - pts[0])) < tol:
                out[-1] = (np.vstack([prev, pts[1:]]), False)
                continue
            if np.hypot(*(prev[-1] - pts[-1])) < tol:
                out[-1] = (np.vstack([prev, pts[::-1][1:]]), False)
                continue
        out.append((pts, closed))
    return out


def _split(paths: list[Path], style: Style, rng: np.random.Generator) -> list[Path]:
    """Lift the pen in the middle of long open lines with probability ``style.split``."""
    out: list[Path] = []
    for pts, closed in paths:
        if not closed and len(pts) >= 2 and rng.random() < style.split:
            s = arclength(pts)
            if s[-1] > 50:
                cut = s[-1] * rng.uniform(0.3, 0.7)
                k = int(np.searchsorted(s, cut))
                mid = pts[k - 1] + (pts[k] - pts[k - 1]) * ((cut - s[k - 1]) / max(s[k] - s[k - 1], 1e-9))
                out.append((np.vstack([pts[:k], mid]), False))
                out.append((np.vstack([mid, pts[k:]]), False))
                continue
        out.append((pts, closed))
    return out


def _clip(stroke: np.ndarray) -> list[np.ndarray]:
    """Pieces of a stroke inside the canvas (a stroke leaving the paper is cut where it leaves)."""
    inside = (stroke[:, 0] >= 0) & (stroke[:, 0] <= EDGE) & (stroke[:, 1] >= 0) & (stroke[:, 1] <= EDGE)
    if inside.all():
        return [stroke]
    pieces = []
    idx = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
    for a, b in zip(idx[::2], idx[1::2], strict=True):
        if b - a >= 2:
            pieces.append(stroke[a:b])
    return pieces


def hand_draw(paths: list[Path], unit: float, style: Style, rng: np.random.Generator) -> list[np.ndarray]:
    """Freehand strokes ``[n_i, 2]`` (canvas px, clipped to the canvas) from ideal canvas-px paths."""
    paths = _split(_merge(paths, style, rng, tol=max(2.0, 0.12 * unit)), style, rng)
    strokes: list[np.ndarray] = []
    for pts, closed in paths:
        s = humanise(pts, closed, unit, style, rng)
        strokes.extend(_clip(s))
        if style.retrace and rng.random() < style.retrace:
            strokes.extend(_clip(humanise(pts, closed, unit, style, rng)))
    return strokes


# ---------------------------------------------------------------------------------------------------------------
# scene layout


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection area over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / max(small, 1e-6)


def _choose_categories(rng: np.random.Generator, allowed: list[str], forced: list[str]) -> dict[str, int]:
    """Categories and instance counts of a scene: 1-4 categories (5 with water under a boat), 2-6 objects."""
    n_cat = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.25, 0.38, 0.32]))
    cats = [c for c in dict.fromkeys(forced)]
    pool = [c for c in allowed if c not in cats]
    while len(cats) < n_cat and pool:
        w = np.array([CATEGORIES[c].weight for c in pool])
        c = pool[int(rng.choice(len(pool), p=w / w.sum()))]
        pool.remove(c)
        if {c, *cats} >= {"road", "water"}:
            continue
        cats.append(c)
    if "boat" in cats and "water" not in cats and "water" in allowed and "road" not in cats and rng.random() < 0.85:
        cats.append("water")
    counts: dict[str, int] = {}
    for c in cats:
        m = CATEGORIES[c].max_count
        if m == 1:
            counts[c] = 1
        else:
            p = np.array([0.5 ** k for k in range(m)]) if c != "bird" else np.array([0.5, 1.0, 1.0, 0.6][:m])
            counts[c] = 1 + int(rng.choice(m, p=p / p.sum()))
    while sum(counts.values()) > 6:
        c = max(counts, key=lambda k: counts[k])
        if counts[c] > 1:
            counts[c] -= 1
        else:
            del counts[next(k for k in reversed(list(counts)) if k not in forced)]
    if sum(counts.values()) < 2:
        multi = [c for c in counts if CATEGORIES[c].max_count > 1]
        if multi:
            counts[multi[0]] += 1
        else:
            extra = [c for c in allowed if c not in counts and not {c, *counts} >= {"road", "water"}]
            counts[extra[int(rng.integers(len(extra)))]] = 1
    return counts


def _pick_unit(rng: np.random.Generator, category: str, style: Style) -> tuple[float, float]:
    """(pixels per unit before perspective, size relative to the category's middle size)."""
    lo, hi = CATEGORIES[category].unit
    rel = float(rng.uniform(0.8, 1.25)) * style.scale
    return (lo + hi) / 2 * rel, rel


def compose_scene(
    rng: np.random.Generator,
    style: Style,
    allowed: list[str] | tuple[str, ...] = CATEGORY_NAMES,
    forced: list[str] | tuple[str, ...] = (),
) -> SynthSketch:
    """Draw one scene with categories from ``allowed`` (always including every category of ``forced``)."""
    allowed = sorted(set(allowed) | set(forced))
    counts = _choose_categories(rng, allowed, list(forced))
    horizon = float(rng.uniform(80.0, 145.0))
    # few objects are drawn big, many objects smaller
    zoom = float(rng.uniform(0.95, 1.25)) * (1.2 if sum(counts.values()) <= 3 else 1.0)
    ground_h = CANVAS - horizon
    placed: list[tuple[PlacedObject, list[Path], float, bool]] = []  # object, canvas paths, unit, is_sky
    boxes: dict[str, list[tuple[float, float, float, float]]] = {"ground": [], "sky": []}  # boxes that must not overlap

    def add(category: str, paths: list[Path], anchor: tuple[float, float], unit: float, rel: float, flip: bool) -> None:
        canvas_paths = _transform(paths, anchor, unit, flip, style.slant)
        box = _bbox(canvas_paths)
        placed.append((PlacedObject(category, CATEGORIES[category].zone, box, rel, anchor[1]), canvas_paths, unit,
                       CATEGORIES[category].zone == "sky"))
        if CATEGORIES[category].zone in boxes:
            boxes[CATEGORIES[category].zone].append(box)

    def best_anchor(candidates: list[tuple[float, float, float]], local: tuple[float, float, float, float],
                    flip: bool, zone: str) -> tuple[tuple[float, float, float], float]:
        """Among (x, y, unit) candidates, the one whose box overlaps the placed boxes of ``zone`` least; its cost."""
        best, best_cost = candidates[0], math.inf
        for x, y, unit in candidates:
            x0, y0, x1, y1 = local
            if flip:
                x0, x1 = -x1, -x0
            box = (x + unit * x0, y + unit * y0, x + unit * x1, y + unit * y1)
            out = max(0.0, -box[0]) + max(0.0, box[2] - CANVAS) + max(0.0, -box[1]) * 2
            others = boxes["ground"] + boxes["sky"] if zone == "sky" else boxes[zone]
            cost = sum(_overlap(box, b) for b in others) + out / max(box[2] - box[0], 1.0)
            if cost < best_cost:
                best, best_cost = (x, y, unit), cost
        return best, best_cost

    water_band: tuple[float, float] | None = None
    road_x: float | None = None
    # surfaces and backdrop first: they define where the rest may go
    shore = any(CATEGORIES[c].zone == "ground" and c != "boat" for c in counts)  # land needed below the water
    layers = ("water", "road", "mountain", "grass")
    for category in [c for c in layers if c in counts]:
        if category == "road":
            unit = ground_h
            paths = draw_object("road", rng, style, (CANVAS / unit, 1.0))
            road_x = float(rng.uniform(100, 156))
            add("road", paths, (road_x, CANVAS - 0.6), unit, 1.0, False)
        elif category == "grass":
            unit, rel = _pick_unit(rng, "grass", style)
            land = CANVAS - (water_band[1] if water_band is not None else horizon)
            paths = draw_object("grass", rng, style, ((CANVAS - 10) / unit, max(land - 8, 2 * unit) / unit))
            add("grass", paths, (CANVAS / 2, CANVAS - 4.0), unit, rel, False)
        elif category == "water":
            unit, rel = _pick_unit(rng, "water", style)
            depth = ground_h * (float(rng.uniform(0.3, 0.5)) if shore else float(rng.uniform(0.45, 0.95)))
            water_band = (horizon + 2, horizon + depth)
            paths = draw_object("water", rng, style, ((CANVAS - 10) / unit, (depth - 4) / unit))
            add("water", paths, (CANVAS / 2, horizon + depth), unit, rel, False)
        elif category == "mountain":
            unit, rel = _pick_unit(rng, "mountain", style)
            unit = min(unit, horizon - 15)
            width = float(rng.uniform(110, 300)) / unit
            paths = draw_object("mountain", rng, style, (width, 1.0))
            add("mountain", paths, (float(rng.uniform(60, 196)), horizon), unit, rel, False)

    # ground objects: near ones lower and bigger
    order = [c for c in counts if CATEGORIES[c].zone == "ground"]
    for category in order:
        for _ in range(counts[category]):
            spec = CATEGORIES[category]
            flip = bool(spec.flip and rng.random() < 0.5)
            base_unit, rel = _pick_unit(rng, category, style)
            base_unit *= zoom
            ext = (float(rng.uniform(2.5, 6.0)), 1.0) if category == "fence" else (1.0, 1.0)
            paths = draw_object(category, rng, style, ext)
            local = _bbox(paths)
            lo, hi = horizon + 4.0, CANVAS - 6.0
            if category == "boat" and water_band is not None:
                lo, hi = water_band[0] + 0.3 * (water_band[1] - water_band[0]), water_band[1]
            elif water_band is not None:  # on the shore, in front of the water
                lo = min(water_band[1] + 4.0, hi - 10.0)
            best, cost = None, math.inf
            for shrink in (1.0, 0.75, 0.55):  # crowded scene: try smaller drawings
                cands = []
                for _k in range(8):
                    y = lo + (hi - lo) * float(rng.random()) ** 0.6  # rather near than far
                    depth = (y - horizon) / ground_h
                    if category == "boat":  # boats are what a water scene is about: keep them large
                        depth = max(depth, 0.7)
                    unit = base_unit * shrink * (0.55 + 0.6 * depth)
                    unit = min(unit, (y - 6.0) / max(-local[1], 1e-3), (CANVAS - 8.0) / max(local[2] - local[0], 1e-3))
                    half = unit * (local[2] - local[0]) / 2
                    x = float(rng.uniform(min(half + 4, CANVAS / 2), max(CANVAS - half - 4, CANVAS / 2)))
                    if category == "car" and road_x is not None and rng.random() < 0.7:  # cars drive on the road
                        x = road_x + float(rng.uniform(-25, 25))
                    cands.append((x, y, unit))
                cand, c = best_anchor(cands, local, flip, "ground")
                if c < cost - 0.1:
                    best, cost = cand, c
                if cost < 0.3:
                    break
            assert best is not None
            x, y, unit = best
            add(category, paths, (x, y), unit, rel, flip)

    # sky objects
    sky_lo, sky_hi = 14.0, max(horizon - 18.0, 40.0)
    for category in [c for c in counts if CATEGORIES[c].zone == "sky"]:
        flock = (float(rng.uniform(40, 216)), float(rng.uniform(sky_lo + 10, sky_hi - 5)))
        for _ in range(counts[category]):
            flip = bool(CATEGORIES[category].flip and rng.random() < 0.5)
            unit, rel = _pick_unit(rng, category, style)
            unit *= zoom
            paths = draw_object(category, rng, style)
            local = _bbox(paths)
            cands = []
            for _k in range(8):
                if category == "sun":
                    x = float(rng.uniform(25, 70)) if rng.random() < 0.5 else float(rng.uniform(186, 231))
                    y = float(rng.uniform(sky_lo + 10, min(70.0, sky_hi)))
                elif category == "bird":
                    x, y = flock[0] + float(rng.normal(0, 25)), flock[1] + float(rng.normal(0, 12))
                elif category == "kite":
                    x, y = float(rng.uniform(40, 216)), float(rng.uniform(sky_lo + 15, sky_hi))
                else:
                    x, y = float(rng.uniform(30, 226)), float(rng.uniform(sky_lo + 5, sky_hi))
                cands.append((x, min(max(y, sky_lo), sky_hi), unit))
            (x, y, unit), _cost = best_anchor(cands, local, flip, "sky")
            add(category, paths, (x, y), unit, rel, flip)

    # drawing order: object by object, main ground objects tend to come first
    keys = [_ZONE_ORDER[p[0].zone] + float(rng.uniform(0.0, 1.5)) for p in placed]
    order = [int(i) for i in np.argsort(keys, kind="stable")]
    drawn: dict[int, list[np.ndarray]] = {}
    for idx in order:
        _, paths, unit, _ = placed[idx]
        drawn[idx] = hand_draw(paths, max(unit, 12.0), style, rng)
    objects = tuple(p[0] for p in placed)
    _hide_occluded(objects, [p[1] for p in placed], drawn)
    strokes: list[np.ndarray] = []
    labels: list[str] = []
    for idx in order:
        strokes.extend(drawn[idx])
        labels.extend([objects[idx].category] * len(drawn[idx]))
    caption = make_caption(objects, horizon, rng)
    return SynthSketch(tuple(strokes), tuple(labels), caption, objects)


# ---------------------------------------------------------------------------------------------------------------
# occlusion: people do not draw what lies behind a nearer object


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise (in y-up terms) convex hull ``[m, 2]`` of ``points [n, 2]`` (monotone chain)."""
    pts = np.unique(np.round(np.asarray(points, dtype=np.float64), 1), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for p in seq:
            while len(out) >= 2:
                a, b = out[-2], out[-1]
                if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) <= 0:
                    out.pop()
                else:
                    break
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def inside_hull(points: np.ndarray, hull: np.ndarray, margin: float = 2.0) -> np.ndarray:
    """Boolean ``[n]``: points more than ``margin`` px inside the convex polygon ``hull``."""
    if len(hull) < 3:
        return np.zeros(len(points), dtype=bool)
    a, b = hull, np.roll(hull, -1, axis=0)  # edges a -> b, [m, 2]
    edge = b - a
    length = np.maximum(np.hypot(edge[:, 0], edge[:, 1]), 1e-9)
    rel = points[:, None, :] - a[None, :, :]  # [n, m, 2]
    cross = (edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]) / length[None, :]  # signed distance
    return np.all(cross > margin, axis=1)


def _hide_occluded(
    objects: tuple[PlacedObject, ...], paths: list[list[Path]], drawn: dict[int, list[np.ndarray]]
) -> None:
    """Cut out of each object's strokes the parts hidden behind nearer ground objects (in place).

    Ground objects standing lower on the page are nearer; they hide farther ground objects, and anything that is
    not a ground object (sky, mountains, surfaces) lies behind every ground object. A ground object that would
    lose more than 60 % of its ink (another object more than 75 %) stays whole (drawn see-through), so every
    object keeps strokes. Visible pieces shorter than 8 px are dropped (they would read as birds or dots).
    """
    ground = [i for i, o in enumerate(objects) if o.zone == "ground"]
    hulls: dict[int, np.ndarray] = {}
    for i, obj in enumerate(objects):
        occluders = [
            j for j in ground
            if j != i and _overlap(obj.bbox, objects[j].bbox) > 0
            and (obj.zone != "ground" or objects[j].base > obj.base + 2.0)
        ]
        if not occluders:
            continue
        for j in occluders:
            if j not in hulls:
                hulls[j] = convex_hull(np.vstack([p for p, _ in paths[j]]))
        before = sum(len(s) for s in drawn[i])
        kept: list[np.ndarray] = []
        for stroke in drawn[i]:
            hidden = np.zeros(len(stroke), dtype=bool)
            for j in occluders:
                hidden |= inside_hull(stroke, hulls[j])
            if not hidden.any():
                kept.append(stroke)
                continue
            edges = np.flatnonzero(np.diff(np.concatenate([[0], (~hidden).astype(np.int8), [0]])))
            for a, b in zip(edges[::2], edges[1::2], strict=True):  # visible pieces, crumbs dropped
                if b - a >= 2 and arclength(stroke[a:b])[-1] >= 8.0:
                    kept.append(stroke[a:b])
        keep = 0.4 if obj.zone == "ground" else 0.25  # a lake or a field may disappear largely behind things
        if kept and sum(len(s) for s in kept) >= keep * before:
            drawn[i] = kept


def object_sketch(rng: np.random.Generator, style: Style, category: str) -> SynthSketch:
    """One isolated object, centred and filling most of the canvas; its caption is a short noun phrase."""
    from sketchseg.data.synth.captions import object_caption

    ext = {
        "fence": (float(rng.uniform(2.5, 5.0)), 1.0),
        "mountain": (float(rng.uniform(2.0, 4.0)), 1.0),
        "road": (2.2, 1.0),
        "grass": (float(rng.uniform(6, 10)), float(rng.uniform(2, 4))),
        "water": (float(rng.uniform(14, 24)), float(rng.uniform(4, 9))),
    }.get(category, (1.0, 1.0))
    paths = draw_object(category, rng, style, ext)
    flip = bool(CATEGORIES[category].flip and rng.random() < 0.5)
    x0, y0, x1, y1 = _bbox(_transform(paths, (0.0, 0.0), 1.0, flip, style.slant))
    target = float(rng.uniform(140, 215)) * min(style.scale, 1.1)
    unit = target / max(x1 - x0, y1 - y0, 1e-6)
    cx = CANVAS / 2 + float(rng.uniform(-12, 12)) - unit * (x0 + x1) / 2
    cy = CANVAS / 2 + float(rng.uniform(-12, 12)) - unit * (y0 + y1) / 2
    canvas_paths = _transform(paths, (cx, cy), unit, flip, style.slant)
    strokes = hand_draw(canvas_paths, max(unit, 12.0), style, rng)
    obj = PlacedObject(category, CATEGORIES[category].zone, _bbox(canvas_paths), 1.0, cy)
    return SynthSketch(tuple(strokes), (category,) * len(strokes), object_caption(category, rng), (obj,))


def make_scene(
    seed: int,
    participant: int,
    index: int,
    allowed: list[str] | tuple[str, ...] = CATEGORY_NAMES,
    forced: list[str] | tuple[str, ...] = (),
    people_variants: bool = False,
) -> SynthSketch:
    """Scene number ``index`` of participant ``participant`` for generator seed ``seed`` (deterministic).

    ``people_variants`` mixes in the object variants people draw; off, the scene is the same as without it.
    """
    rng = make_rng(seed, SCENE_TAG, participant, index)
    return compose_scene(rng, participant_style(seed, participant, people_variants), allowed, forced)


def make_object(seed: int, participant: int, category: str, index: int, people_variants: bool = False) -> SynthSketch:
    """Isolated drawing number ``index`` of ``category`` in the style of ``participant`` (deterministic).

    ``people_variants`` as for :func:`make_scene`.
    """
    rng = make_rng(seed, OBJECT_TAG, participant, CATEGORY_NAMES.index(category), index)
    return object_sketch(rng, participant_style(seed, participant, people_variants), category)
