"""Procedural drawings of object categories as ideal paths, before the participant's hand is applied.

Every category is a function drawing with a :class:`Pen` in local units (y grows downwards, like the canvas).
Ground objects have their anchor (0, 0) at the bottom centre and are about one unit tall; sky objects have it at
their centre. The scene decides how many pixels a unit is. Extended categories (road, grass, water, fence,
mountain, train) read the extent they must cover from ``pen.ext`` (width, depth in units).

Every drawing has variants (round / pine / bare tree ...) chosen with the participant's preferences, and optional
details (windows, spots, rays ...) drawn with the participant's ``detail`` probability.

People variants: with the generator's parameter ``people_variants`` (``Style.people_variants``, params.yaml
``data.synth.people_variants``, ``sketchseg data synth --people-variants``) an object is drawn, with probability
:data:`PEOPLE_RATE`, as one of the forms people use in FrISS and CBSC that the classic drawings lack (ponds,
rivers and shorelines, rounded mountains, tall and flat-roofed buildings, big-headed flowers, canoes and barges,
irregular and receding fences, closed and dome umbrellas, side-view birds, benches in perspective, ground lines
and straight grass blades, big-headed stick figures, pickups and 3/4 cars, trains in perspective, one-stroke and
palm trees); :data:`PEOPLE_VARIANTS` lists them. They keep the classic anchors and sizes. With the parameter
off not a single random number is drawn for them: the drawings are the classic ones, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sketchseg.data.synth.style import Style

Path = tuple[np.ndarray, bool]  # points [n, 2] in local units, closed?
TAU = 2.0 * math.pi
PEOPLE_RATE = 0.55  # with people variants on: share of objects drawn with one of them (the rest stay classic)


def catmull(points: np.ndarray, per: int = 8, closed: bool = False) -> np.ndarray:
    """A smooth curve ``[m, 2]`` through ``points [n, 2]`` (uniform Catmull-Rom); a closed one returns to the start."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        return p
    if closed:
        ext = np.vstack([p[-1:], p, p[:2]])
        p = np.vstack([p, p[:1]])
    else:
        ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0.0, 1.0, per, endpoint=False)[:, None, None]  # [per, 1, 1]
    p0, p1, p2, p3 = ext[:-3], ext[1:-2], ext[2:-1], ext[3:]  # [n-1, 2]
    seg = 0.5 * (
        2 * p1
        + (-p0 + p2) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
    )  # [per, n-1, 2]
    return np.vstack([seg.transpose(1, 0, 2).reshape(-1, 2), p[-1:]])


class Pen:
    """Collects the ideal paths of one object drawing."""

    def __init__(self, rng: np.random.Generator, style: Style, category: str, ext: tuple[float, float] = (1.0, 1.0)):
        self.rng = rng
        self.style = style
        self.category = category
        self.ext = ext
        self.paths: list[Path] = []

    # random helpers
    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def i(self, a: int, b: int) -> int:
        """Integer in ``[a, b]`` inclusive."""
        return int(self.rng.integers(a, b + 1))

    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def detail(self, weight: float = 1.0) -> bool:
        """Whether to draw an optional detail (participant's detail level times ``weight``)."""
        return self.p(min(1.0, self.style.detail * weight))

    def variant(self, base: tuple[float, ...]) -> int:
        """Index of the drawing variant, with the participant's preferences over ``base`` weights."""
        w = self.style.variant_weights(self.category, base)
        return int(self.rng.choice(len(base), p=w))

    def people(self, base: tuple[float, ...]) -> int | None:
        """Index of the people variant to draw (participant's preferences over ``base``), or None for a classic
        drawing; None without drawing a random number when the style's ``people_variants`` is off."""
        if not self.style.people_variants or not self.p(PEOPLE_RATE):
            return None
        w = self.style.variant_weights(self.category + "/people", base)
        return int(self.rng.choice(len(base), p=w))

    # drawing
    def line(self, *pts: tuple[float, float]) -> None:
        self.paths.append((np.asarray(pts, dtype=np.float64), False))

    def loop(self, *pts: tuple[float, float]) -> None:
        self.paths.append((np.asarray(pts, dtype=np.float64), True))

    def curve(self, *pts: tuple[float, float], closed: bool = False) -> None:
        c = catmull(np.asarray(pts, dtype=np.float64), closed=closed)
        self.paths.append((c[:-1] if closed else c, closed))

    def add(self, pts: np.ndarray, closed: bool = False) -> None:
        self.paths.append((np.asarray(pts, dtype=np.float64), closed))

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        a0: float | None = None,
        sweep: float = TAU,
        rot: float = 0.0,
        n: int = 28,
    ) -> None:
        """An ellipse (closed when ``sweep`` is a full turn), starting at a random angle unless ``a0`` is given."""
        if a0 is None:
            a0 = self.u(0, TAU)
        full = abs(sweep) >= TAU - 1e-9
        t = a0 + np.linspace(0.0, sweep, n, endpoint=not full)
        x, y = rx * np.cos(t), ry * np.sin(t)
        c, s = math.cos(rot), math.sin(rot)
        self.paths.append((np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1), full))

    def turn(self, start: int, angle: float) -> None:
        """Rotate the paths drawn since path number ``start`` by ``angle`` radians about the origin."""
        c, s = math.cos(angle), math.sin(angle)
        m = np.array([[c, s], [-s, c]])
        self.paths[start:] = [(pts @ m, closed) for pts, closed in self.paths[start:]]

    def height(self) -> float:
        """Height of the drawing so far."""
        ys = np.concatenate([p[:, 1] for p, _ in self.paths])
        return float(ys.max() - ys.min())

    def scale(self, factor: float) -> None:
        """Scale the drawing about the origin (after :meth:`settle`, its ground anchor)."""
        self.paths = [(p * factor, closed) for p, closed in self.paths]

    def settle(self) -> None:
        """Move the drawing so that it stands on y = 0 centred on x = 0 (the ground anchor)."""
        pts = np.vstack([p for p, _ in self.paths])
        shift = np.array([(pts[:, 0].min() + pts[:, 0].max()) / 2, pts[:, 1].max()])
        self.paths = [(p - shift, closed) for p, closed in self.paths]

    def scallop(self, cx: float, cy: float, rx: float, ry: float, bumps: int, depth: float,
                a0: float = 0.0, sweep: float = TAU, n: int = 90) -> np.ndarray:
        """Points of a bumpy (cloud-like) outline; returns them without adding a path."""
        t = a0 + np.linspace(0.0, sweep, n, endpoint=abs(sweep) < TAU - 1e-9)
        phase = self.u(0, math.pi)
        r = 1.0 + depth * np.abs(np.sin(bumps * (t - a0) / 2 * (TAU / abs(sweep)) + phase))
        return np.stack([cx + rx * r * np.cos(t), cy + ry * r * np.sin(t)], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# categories


def house(pen: Pen) -> None:
    w, hb = pen.u(0.8, 1.35), pen.u(0.45, 0.62)
    roof = pen.variant((0.65, 0.35))
    if pen.p(0.6):
        pen.loop((-w / 2, -hb), (-w / 2, 0), (w / 2, 0), (w / 2, -hb))
    else:  # walls and floor in one go, the roof line closes the box
        pen.line((-w / 2, -hb), (-w / 2, 0), (w / 2, 0), (w / 2, -hb))
        pen.line((-w / 2, -hb), (w / 2, -hb))
    e = pen.u(0.0, 0.1)
    if roof == 0:
        pen.line((-w / 2 - e, -hb + 0.02), (pen.u(-0.05, 0.05), -1.0), (w / 2 + e, -hb + 0.02))

        def roof_y(x: float) -> float:
            return -hb - (1.0 - hb) * (1.0 - abs(x) / (w / 2 + e))
    else:
        r = pen.u(0.12, 0.25) * w
        pen.line((-w / 2 - e, -hb), (-w / 2 + r, -1.0), (w / 2 - r, -1.0), (w / 2 + e, -hb))

        def roof_y(x: float) -> float:
            edge = w / 2 - r
            return -1.0 if abs(x) <= edge else -1.0 + (1.0 - hb) * (abs(x) - edge) / (r + e)
    dw, dh = pen.u(0.14, 0.22) * w, hb * pen.u(0.45, 0.65)
    dx = pen.u(-0.25, 0.25) * w
    pen.line((dx - dw / 2, 0), (dx - dw / 2, -dh), (dx + dw / 2, -dh), (dx + dw / 2, 0))
    if pen.detail(0.4):
        pen.ellipse(dx + dw * 0.3, -dh * 0.5, 0.015, 0.015, n=8)
    ws = pen.u(0.11, 0.17) * min(w, 1.1)
    spots = [x for x in (-w * 0.3, w * 0.3) if abs(x - dx) > dw / 2 + ws / 2 + 0.03]
    for x in spots:
        if pen.detail(1.2):
            y = -hb * pen.u(0.55, 0.7)
            h = ws / 2
            pen.loop((x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h))
            if pen.detail(0.7):
                pen.line((x, y - ws / 2), (x, y + ws / 2))
                pen.line((x - ws / 2, y), (x + ws / 2, y))
    if pen.detail(0.5):  # chimney on the roof
        x0 = pen.u(0.15, 0.3) * w * (1 if pen.p(0.5) else -1)
        cw = 0.1 * w
        top = roof_y(x0 + cw / 2) - pen.u(0.08, 0.16)
        pen.line((x0, roof_y(x0)), (x0, top), (x0 + cw, top), (x0 + cw, roof_y(x0 + cw)))
    if pen.detail(0.15):  # window in the gable
        pen.ellipse(0.0, -hb - (1 - hb) * 0.4, 0.05, 0.05, n=14)


def tree(pen: Pen) -> None:
    v = pen.variant((0.55, 0.32, 0.13))
    if v == 0:  # round canopy on a trunk
        th, tw = pen.u(0.28, 0.45), pen.u(0.04, 0.08)
        if pen.p(0.5):
            pen.line((-tw * 0.8, -th - 0.04), (-tw, 0), (tw, 0), (tw * 0.8, -th - 0.04))
        else:
            pen.line((-tw * 0.8, -th - 0.04), (-tw * 1.1, 0))
            pen.line((tw * 0.8, -th - 0.04), (tw * 1.1, 0))
        ry = (1.0 - th) / 2 + 0.03
        rx, cy = ry * pen.u(0.75, 1.15), -(1.0 + th) / 2 - 0.01
        bumps, depth = pen.i(5, 11), pen.u(0.02, 0.16)
        pen.add(pen.scallop(0.0, cy, rx, ry / (1 + depth * 0.6), bumps, depth, a0=pen.u(0, TAU)), True)
        if pen.detail(0.4):
            for side in (-1, 1):
                pen.line((0, -th - 0.02), (side * rx * 0.4, cy + ry * 0.1))
        if pen.detail(0.2):  # fruit
            for _ in range(pen.i(2, 5)):
                pen.ellipse(pen.u(-0.6, 0.6) * rx, cy + pen.u(-0.5, 0.5) * ry, 0.03, 0.03, n=10)
    elif v == 1:  # pine: stacked triangles
        th, tw = pen.u(0.1, 0.18), pen.u(0.04, 0.07)
        pen.line((-tw, -th - 0.03), (-tw, 0), (tw, 0), (tw, -th - 0.03))
        tiers = pen.i(2, 4)
        half = pen.u(0.28, 0.38)
        if pen.p(0.35):  # one outline: up the left side notch by notch, down the right side
            ys = [-th - (1.0 - th) * k / tiers for k in range(tiers)]
            ws = [half * (1.0 - k / (tiers + 0.5)) for k in range(tiers)]
            left: list[tuple[float, float]] = [(-ws[0], ys[0])]
            for k in range(1, tiers):
                left += [(-ws[k] * 0.45, ys[k]), (-ws[k], ys[k])]
            right = [(-x, y) for x, y in reversed(left)]
            pen.loop(*left, (0.0, -1.0), *right)
        else:
            for k in range(tiers):
                base = -th - (1.0 - th) * k / (tiers + 0.6)
                wk = half * (1.0 - 0.55 * k / tiers)
                apex = base - (1.0 - th) * 1.6 / (tiers + 0.6)
                apex = max(apex, -1.0)
                if pen.p(0.6):
                    pen.loop((-wk, base), (0, apex), (wk, base))
                else:
                    pen.line((-wk, base), (0, apex), (wk, base))
    else:  # bare branches
        th = pen.u(0.4, 0.55)
        tw = pen.u(0.05, 0.08)
        pen.line((-tw * 0.5, -th), (-tw * 0.8, -0.1), (-tw * 1.6, 0.0))
        pen.line((tw * 0.5, -th), (tw * 0.8, -0.1), (tw * 1.6, 0.0))
        n = pen.i(3, 5)
        for k in range(n):
            a = -0.9 + 1.8 * k / (n - 1) + pen.u(-0.15, 0.15)
            length = pen.u(0.35, 0.5) * (1.0 - 0.3 * abs(a))
            ex, ey = math.sin(a) * length, -th - math.cos(a) * length
            pen.line((0, -th + 0.02), (ex, ey))
            for f in (0.45, 0.75):
                if pen.detail(0.9):
                    b = a + pen.u(0.4, 0.8) * (1 if pen.p(0.5) else -1)
                    mx, my = ex * f, -th + (ey + th) * f
                    tl = length * pen.u(0.25, 0.4)
                    pen.line((mx, my), (mx + math.sin(b) * tl, my - math.cos(b) * tl))


def sun(pen: Pen) -> None:
    v = pen.variant((0.6, 0.25, 0.15))
    pen.ellipse(0, 0, 1.0, 1.0, n=30)
    if v == 0:
        n = pen.i(6, 12)
        a0 = pen.u(0, TAU)
        r0, r1 = pen.u(1.2, 1.4), pen.u(1.7, 2.2)
        for k in range(n):
            a = a0 + TAU * k / n + pen.u(-0.1, 0.1)
            pen.line((r0 * math.cos(a), r0 * math.sin(a)), (r1 * math.cos(a), r1 * math.sin(a)))
    elif v == 2:  # zig-zag crown of rays in one stroke
        n = pen.i(8, 14)
        t = np.linspace(0, TAU, 2 * n + 1)
        r = np.where(np.arange(2 * n + 1) % 2 == 0, 1.25, 1.75)
        pen.add(np.stack([r * np.cos(t), r * np.sin(t)], axis=1), False)
    if pen.detail(0.15):  # a face
        pen.ellipse(-0.35, -0.25, 0.08, 0.08, n=8)
        pen.ellipse(0.35, -0.25, 0.08, 0.08, n=8)
        pen.ellipse(0, 0.1, 0.45, 0.35, a0=0.4, sweep=math.pi - 0.8, n=12)


def cloud(pen: Pen) -> None:
    rx, ry = pen.u(1.6, 2.6), 1.0
    if pen.variant((0.6, 0.4)) == 0:
        bumps = pen.i(5, 9)
        pen.add(pen.scallop(0, 0, rx * 0.8, ry * 0.75, bumps, pen.u(0.15, 0.35), a0=pen.u(0, TAU)), True)
    else:  # bumpy top, flat bottom
        top = pen.scallop(0, 0.3, rx * 0.85, ry * 0.85, pen.i(3, 6), pen.u(0.2, 0.4), a0=math.pi, sweep=math.pi)
        pen.add(np.vstack([top, top[:1]]), False)


def bird(pen: Pen) -> None:
    if pen.variant((0.8, 0.2)) == 0:  # the classic "m" of a flying bird
        lift = pen.u(0.2, 0.45)
        left = catmull(np.array([(-1.0, 0.15), (-0.55, -lift), (0.0, 0.05)]), per=6)
        right = catmull(np.array([(0.0, 0.05), (0.55, -lift * pen.u(0.8, 1.2)), (1.0, 0.15)]), per=6)
        if pen.p(0.7):
            pen.add(np.vstack([left, right[1:]]))
        else:
            pen.add(left)
            pen.add(right)
    else:
        pen.ellipse(0, 0, 0.55, 0.22)
        pen.ellipse(0.62, -0.15, 0.18, 0.16)
        pen.line((0.78, -0.2), (1.0, -0.1), (0.79, -0.07))
        pen.curve((-0.25, -0.15), (-0.45, -0.7), (-0.1, -1.0), (0.2, -0.18))  # raised wing
        if pen.detail(0.7):
            pen.curve((-0.2, 0.05), (-0.55, 0.45), (0.1, 0.2))  # lower wing
        pen.line((-0.5, -0.05), (-0.9, -0.25), (-0.9, 0.15), (-0.5, 0.06))


def kite(pen: Pen) -> None:
    rot = pen.u(-0.45, 0.45)
    start = len(pen.paths)
    pen.loop((0, -1.0), (0.65, -0.15), (0, 1.0), (-0.65, -0.15))
    if pen.detail(1.2):
        pen.line((0, -1.0), (0, 1.0))
        pen.line((-0.65, -0.15), (0.65, -0.15))
    length = pen.u(1.6, 3.0)
    t = np.linspace(0, 1, 30)
    side = pen.u(-0.6, 0.6)
    tail = np.stack([side * t + 0.25 * np.sin(t * TAU * pen.u(1.0, 2.0)), 1.0 + length * t], axis=1)
    pen.add(tail)
    if pen.detail(0.9):  # bows on the tail
        for f in (0.35, 0.7):
            k = int(f * 29)
            x, y = tail[k]
            pen.line((x - 0.2, y - 0.12), (x + 0.2, y + 0.12), (x + 0.2, y - 0.12), (x - 0.2, y + 0.12),
                     (x - 0.2, y - 0.12))
    if pen.p(0.7):  # the string goes down towards the ground
        sx = pen.u(1.0, 3.0) * (1 if pen.p(0.5) else -1)
        sy = pen.u(3.0, 5.5)
        pen.curve((0, 0.0), (sx * 0.5, sy * 0.5 - 0.2), (sx, sy))
    c, s = math.cos(rot), math.sin(rot)
    m = np.array([[c, s], [-s, c]])
    pen.paths[start:] = [(pts @ m, closed) for pts, closed in pen.paths[start:]]


def airplane(pen: Pen) -> None:
    if pen.variant((0.7, 0.3)) == 0:  # side view
        nose = [(0.85 + 0.15 * math.cos(a), 0.12 * math.sin(a)) for a in np.linspace(-math.pi / 2, math.pi / 2, 7)]
        top_fin = [(-0.72, -0.12), (-0.92, -0.55), (-1.02, -0.55), (-1.0, -0.02)]
        body = [(0.85, -0.12), *top_fin, (-0.95, 0.05), (-0.7, 0.12), *nose[::-1][:-1]]
        pen.loop(*body[::-1])
        pen.line((0.2, 0.08), (-0.2, 0.7), (-0.38, 0.7), (-0.18, 0.11))
        if pen.detail(1.0):
            pen.line((0.12, -0.12), (-0.12, -0.45), (-0.28, -0.45), (-0.15, -0.12))
        pen.line((-0.8, 0.03), (-1.0, 0.25), (-1.08, 0.25), (-0.96, 0.04))
        if pen.detail(0.9):
            for x in np.linspace(0.55, -0.5, pen.i(4, 8)):
                pen.ellipse(float(x), -0.02, 0.035, 0.035, n=8)
        if pen.detail(0.5):
            pen.line((0.78, -0.11), (0.9, -0.02), (0.98, -0.04))
    else:  # seen from below: a cross
        pen.ellipse(0, 0, 1.0, 0.13, a0=0.0)
        pen.loop((0.25, -0.1), (-0.15, -1.0), (-0.35, -1.0), (-0.15, -0.1))
        pen.loop((0.25, 0.1), (-0.15, 1.0), (-0.35, 1.0), (-0.15, 0.1))
        pen.line((-0.8, -0.08), (-0.98, -0.38), (-1.05, -0.38), (-0.95, -0.05))
        pen.line((-0.8, 0.08), (-0.98, 0.38), (-1.05, 0.38), (-0.95, 0.05))


def boat(pen: Pen) -> None:
    v = pen.variant((0.6, 0.28, 0.12))
    if v == 2:  # rowing boat: crescent hull with its rim, oars
        pen.curve((-1.0, -0.4), (-0.5, -0.02), (0.5, -0.02), (1.0, -0.4), (-1.0, -0.4), closed=False)
        pen.line((-0.85, -0.3), (0.85, -0.3))
        pen.line((-0.35, -0.45), (-1.35, 0.1))
        pen.line((0.35, -0.45), (1.35, 0.1))
        if pen.detail(0.6):  # a seat
            pen.line((-0.1, -0.3), (-0.1, -0.12))
            pen.line((0.1, -0.3), (0.1, -0.12))
        return
    pen.loop((-1.0, -0.35), (1.0, -0.42), (0.7, 0.0), (-0.72, 0.0))
    if v == 0:  # sailing boat
        top = pen.u(1.6, 2.0)
        pen.line((0.0, -0.38), (0.0, -top))
        pen.loop((0.06, -top + 0.1), (0.06, -0.5), (pen.u(0.7, 0.95), -0.5))
        if pen.detail(0.8):
            pen.loop((-0.06, -top + 0.2), (-0.06, -0.5), (-pen.u(0.5, 0.75), -0.5))
        if pen.detail(0.4):
            pen.line((0.0, -top), (0.3, -top + 0.08), (0.0, -top + 0.16))
    else:  # motor boat with a cabin
        pen.line((-0.55, -0.37), (-0.5, -0.8), (0.3, -0.8), (0.45, -0.4))
        if pen.detail(1.0):
            for x in (-0.3, 0.05):
                pen.loop((x, -0.72), (x + 0.2, -0.72), (x + 0.2, -0.55), (x, -0.55))
        if pen.detail(0.6):
            for x in (-0.5, 0.0, 0.5):
                pen.ellipse(x, -0.18, 0.06, 0.06, n=10)
        if pen.detail(0.4):
            pen.line((-0.2, -0.8), (-0.2, -1.05), (0.0, -1.05), (0.0, -0.8))


def fence(pen: Pen) -> None:
    width = pen.ext[0]
    v = pen.variant((0.55, 0.45))
    left, right = -width / 2, width / 2
    if v == 0:  # pickets with pointed tops
        n = max(3, int(width / pen.u(0.3, 0.45)))
        xs = np.linspace(left + 0.1, right - 0.1, n)
        hw = min(0.1, (xs[1] - xs[0]) * 0.35)
        for x in xs:
            pen.line((x - hw, 0.0), (x - hw, -0.8), (x, -1.0), (x + hw, -0.8), (x + hw, 0.0))
        rails = (-0.3, -0.62)
    else:  # posts and rails
        n = max(2, int(width / pen.u(0.7, 1.2)) + 1)
        for x in np.linspace(left, right, n):
            pen.line((x, 0.0), (x, -1.0))
        rails = (-0.25, -0.6, -0.92)[: pen.i(2, 3)]
    for y in rails:
        pen.line((left - 0.05, y), (right + 0.05, y + pen.u(-0.04, 0.04)))


def mountain(pen: Pen) -> None:
    width = pen.ext[0]
    peaks = pen.i(1, max(1, min(3, int(width / 1.1))))
    v = pen.variant((0.6, 0.4))
    xs = np.linspace(-width / 2 + 0.6, width / 2 - 0.6, peaks) if peaks > 1 else np.zeros(1)
    xs = xs + pen.rng.uniform(-0.15, 0.15, peaks) * (width / peaks)
    hs = [pen.u(0.6, 1.0) for _ in range(peaks)]
    hs[int(pen.rng.integers(peaks))] = 1.0
    slopes: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = []  # left foot, top, right
    if v == 0 or peaks == 1:  # one ridge line
        pts: list[tuple[float, float]] = [(-width / 2, 0.0)]
        for k in range(peaks):
            pts.append((float(xs[k]), -hs[k]))
            if k < peaks - 1:
                mx = (xs[k] + xs[k + 1]) / 2 + pen.u(-0.1, 0.1)
                pts.append((float(mx), -pen.u(0.2, 0.5) * min(hs[k], hs[k + 1])))
        pts.append((width / 2, 0.0))
        pen.line(*pts)
        slopes = [(pts[2 * k], pts[2 * k + 1], pts[2 * k + 2]) for k in range(peaks)]
    else:  # overlapping triangles
        for k in range(peaks):
            half = hs[k] * pen.u(0.8, 1.3)
            tri = ((float(xs[k]) - half, 0.0), (float(xs[k]), -hs[k]), (float(xs[k]) + half, 0.0))
            pen.line(*tri)
            slopes.append(tri)
    for left, top, right in slopes:
        if pen.detail(0.6):  # snow cap: a zig-zag across both slopes a quarter of the way down
            f = pen.u(0.2, 0.32)
            a = (top[0] + (left[0] - top[0]) * f, top[1] + (left[1] - top[1]) * f)
            b = (top[0] + (right[0] - top[0]) * f, top[1] + (right[1] - top[1]) * f)
            dip = 0.25 * (b[0] - a[0])
            pen.line(a, (a[0] + (b[0] - a[0]) / 3, a[1] + dip * 0.5), (top[0], a[1] - dip * 0.2),
                     (a[0] + 2 * (b[0] - a[0]) / 3, b[1] + dip * 0.5), b)


def road(pen: Pen) -> None:
    width, _ = pen.ext
    if pen.variant((0.65, 0.35)) == 0:  # perspective road from the bottom edge to the horizon
        wb, wt = pen.u(0.9, min(2.2, width)), pen.u(0.04, 0.2)
        vx = pen.u(-0.4, 0.4)
        bend = pen.u(-0.25, 0.25)
        for side in (-1, 1):
            pen.curve((side * wb / 2, 0.0), (vx * 0.5 + side * (wb + wt) / 4 + bend, -0.5), (vx + side * wt / 2, -1.0))
        if pen.detail(1.2):  # dashes along the middle line, shorter with distance
            mid = catmull(np.array([(0.0, 0.0), (vx * 0.5 + bend, -0.5), (vx, -1.0)]), per=40)  # [81, 2]
            for t in np.linspace(0.05, 0.8, pen.i(3, 6)):
                a = int(t * 80)
                b = min(80, a + max(2, int(12 * (1.1 - t))))
                pen.add(mid[a:b])
    else:  # a band across the picture, somewhere between the bottom edge and the horizon
        left, right = -width / 2, width / 2
        thick = pen.u(0.2, 0.4)
        off = pen.u(0.0, 1.0 - thick)
        pen.line((left, -off - thick), (right, -off - thick + pen.u(-0.05, 0.05)))
        pen.line((left, -off), (right, -off + pen.u(-0.05, 0.05)))
        if pen.detail(1.2):
            n = pen.i(4, 8)
            for x in np.linspace(left + 0.1, right - 0.1, n):
                pen.line((x - 0.05, -off - thick / 2), (x + 0.05, -off - thick / 2))


def grass(pen: Pen) -> None:
    width, depth = pen.ext
    v = pen.variant((0.55, 0.25, 0.2))
    if v == 1:  # a ground line with grass along it
        n = max(6, int(width / pen.u(1.0, 1.6)))
        xs = np.linspace(-width / 2, width / 2, 2 * n + 1)
        ys = np.where(np.arange(2 * n + 1) % 2 == 0, 0.0, -pen.u(0.6, 0.9))
        ys = ys + pen.rng.uniform(-0.15, 0.15, len(ys)) - depth * pen.u(0.6, 1.0)
        pen.add(np.stack([xs, ys], axis=1))
        return
    for _ in range(pen.i(4, 10)):
        x0, y0 = pen.u(-width / 2, width / 2 - 1.0), -pen.u(0.0, max(depth - 1.0, 0.0))
        blades = pen.i(3, 5)
        if v == 0:  # a zig-zag tuft in one stroke
            pts = [(x0 + 0.22 * k, y0 - (pen.u(0.7, 1.1) if k % 2 else 0.0)) for k in range(2 * blades - 1)]
            pen.line(*pts)
        else:  # single curved blades
            for k in range(blades):
                bx = x0 + 0.2 * k
                lean = pen.u(-0.3, 0.3)
                pen.curve((bx, y0), (bx + lean * 0.3, y0 - 0.5), (bx + lean, y0 - pen.u(0.8, 1.2)))


def water(pen: Pen) -> None:
    width, depth = pen.ext
    if pen.variant((0.6, 0.4)) == 0:  # long wavy lines
        n = int(np.clip(depth / 2.0, 2, 5))
        for k in range(n):
            y = -depth * (k + 0.5) / n
            x0 = -width / 2 + pen.u(0.0, width * 0.25)
            x1 = width / 2 - pen.u(0.0, width * 0.25)
            x = np.linspace(x0, x1, max(int((x1 - x0) * 6), 8))
            wl = pen.u(1.8, 3.0)
            pen.add(np.stack([x, y + 0.35 * np.sin(TAU * x / wl + pen.u(0, TAU))], axis=1))
    else:  # short ripples
        for _ in range(pen.i(6, 14)):
            x0, y = pen.u(-width / 2, width / 2 - 3.0), -pen.u(0.2, depth)
            x = np.linspace(x0, x0 + pen.u(2.0, 4.0), 14)
            pen.add(np.stack([x, y + 0.3 * np.sin(TAU * (x - x0) / 2.0)], axis=1))


def flower(pen: Pen) -> None:
    hx, hy = pen.u(-0.05, 0.05), -0.8
    pen.curve((0, 0), (pen.u(-0.05, 0.05), -0.35), (hx, hy + 0.1))
    v = pen.variant((0.45, 0.35, 0.2))
    if v == 0:  # petals as one looping outline
        k = pen.i(5, 8)
        t = np.linspace(0, TAU, 72, endpoint=False)
        r = 0.07 + 0.13 * np.abs(np.sin(k * t / 2))
        pen.add(np.stack([hx + r * np.cos(t), hy + r * np.sin(t)], axis=1), True)
        if pen.detail(0.8):
            pen.ellipse(hx, hy, 0.05, 0.05, n=10)
    elif v == 1:  # separate petals around a centre
        pen.ellipse(hx, hy, 0.06, 0.06, n=12)
        k = pen.i(5, 7)
        for j in range(k):
            a = TAU * j / k
            pen.ellipse(hx + 0.13 * math.cos(a), hy + 0.13 * math.sin(a), 0.075, 0.04, rot=a, n=14)
    else:  # tulip cup
        pen.loop((hx - 0.12, hy - 0.1), (hx - 0.12, hy + 0.05), (hx, hy + 0.12), (hx + 0.12, hy + 0.05),
                 (hx + 0.12, hy - 0.1), (hx + 0.06, hy - 0.02), (hx, hy - 0.12), (hx - 0.06, hy - 0.02))
    if pen.detail(0.8):
        s = 1 if pen.p(0.5) else -1
        pen.curve((0.0, -0.3), (s * 0.12, -0.42), (s * 0.26, -0.4), (s * 0.14, -0.3), (0.0, -0.3))


def bench(pen: Pen) -> None:
    width = pen.u(2.0, 3.0)
    left, right = -width / 2, width / 2
    if pen.variant((0.6, 0.4)) == 0:  # front view
        pen.loop((left, -0.45), (right, -0.45), (right, -0.55), (left, -0.55))
        pen.line((left + 0.05, -0.78), (right - 0.05, -0.78))
        pen.line((left + 0.05, -1.0), (right - 0.05, -1.0))
        for x in (left + 0.2, right - 0.2):
            pen.line((x, -1.02), (x, -0.55))
            pen.line((x, -0.45), (x, 0.0))
        if pen.detail(0.6):
            for x in (left + 0.35, right - 0.35):
                pen.line((x, -0.45), (x + (0.05 if x > 0 else -0.05), -0.05))
    else:  # three-quarter view
        d = 0.25
        pen.loop((left, -0.45), (right, -0.45), (right - d, -0.62), (left - d, -0.62))
        pen.loop((left - d, -0.62), (right - d, -0.62), (right - d, -1.0), (left - d, -1.0))
        for x, y in ((left, -0.45), (right, -0.45), (left - d, -0.62), (right - d, -0.62)):
            pen.line((x, y), (x, y + (0.45 if y > -0.5 else 0.45)))


def train(pen: Pen) -> None:
    cars = pen.i(1, 3)
    if pen.variant((0.55, 0.45)) == 0:  # steam locomotive facing right, carriages behind
        pen.loop((0.0, -0.2), (0.0, -1.0), (0.75, -1.0), (0.75, -0.2))
        if pen.detail(1.0):
            pen.loop((0.15, -0.85), (0.55, -0.85), (0.55, -0.55), (0.15, -0.55))
        pen.line((0.75, -0.65), (2.0, -0.65), (2.0, -0.2), (0.0, -0.2))
        pen.line((1.55, -0.65), (1.5, -0.95), (1.8, -0.95), (1.75, -0.65))
        if pen.detail(0.5):
            pen.line((2.0, -0.4), (2.25, -0.02), (2.0, -0.05))
        for x in (0.3, 1.0, 1.6):
            pen.ellipse(x, -0.17, 0.17, 0.17, n=18)
        x = 0.0
        for _ in range(cars):
            x1, x0 = x - 0.15, x - 1.45
            pen.line((x, -0.35), (x1, -0.35))
            pen.loop((x0, -0.2), (x0, -0.85), (x1, -0.85), (x1, -0.2))
            if pen.detail(1.0):
                for k in range(3):
                    wx = x0 + 0.15 + 0.4 * k
                    pen.loop((wx, -0.72), (wx + 0.25, -0.72), (wx + 0.25, -0.5), (wx, -0.5))
            for wx in (x0 + 0.3, x1 - 0.3):
                pen.ellipse(wx, -0.14, 0.14, 0.14, n=16)
            x = x0
        left, right = x, 2.25
    else:  # modern train: long body, sloped nose, window row
        length = 1.6 * (cars + 1)
        pen.loop((0.0, -0.15), (length, -0.15), (length + 0.55, -0.3), (length + 0.3, -0.85), (0.0, -0.85))
        if pen.detail(1.0):
            n = int(length / 0.35)
            for k in range(n):
                wx = 0.12 + k * 0.35
                pen.loop((wx, -0.7), (wx + 0.22, -0.7), (wx + 0.22, -0.5), (wx, -0.5))
        for k in range(1, cars + 1):
            pen.line((1.6 * k, -0.85), (1.6 * k, -0.15))
        pen.line((length + 0.05, -0.7), (length + 0.3, -0.75), (length + 0.45, -0.45))
        for k in range(cars + 1):
            for wx in (1.6 * k + 0.3, 1.6 * k + 1.3):
                pen.ellipse(wx, -0.1, 0.1, 0.1, n=12)
        left, right = 0.0, length + 0.55
    if pen.detail(0.6):  # rails
        pen.line((left - 0.3, 0.02), (right + 0.3, 0.02))
    shift = (left + right) / 2
    pen.paths = [(pts - np.array([shift, 0.0]), closed) for pts, closed in pen.paths]


def bicycle(pen: Pen) -> None:
    r = pen.u(0.34, 0.4)
    rear, front = (-0.65, -r), (0.65, -r)
    crank, seat, head = (-0.05, -r), (-0.28, -0.92), (0.45, -0.92)
    for cx, cy in (rear, front):
        pen.ellipse(cx, cy, r, r, n=26)
        if pen.detail(0.35):
            for a in (0.3, 1.35, 2.4):
                pen.line((cx + r * 0.9 * math.cos(a), cy + r * 0.9 * math.sin(a)),
                         (cx - r * 0.9 * math.cos(a), cy - r * 0.9 * math.sin(a)))
    pen.line(rear, crank, seat, rear)
    pen.line(seat, head, crank)
    pen.line(head, front)
    pen.line(head, (0.42, -1.05), (0.58, -1.08))
    pen.line((-0.4, -0.98), (-0.16, -0.98))
    if pen.detail(0.6):
        pen.line((crank[0] - 0.1, crank[1] + 0.08), (crank[0] + 0.1, crank[1] - 0.08))


def umbrella(pen: Pen) -> None:
    hw, top = pen.u(0.5, 0.7), pen.u(0.25, 0.35)
    t = np.linspace(math.pi, TAU, 20)
    arc = np.stack([hw * np.cos(t), -0.7 + top * np.sin(t)], axis=1)
    k = pen.i(3, 5)
    xs = np.linspace(hw, -hw, 6 * k + 1)
    ph = (xs - hw) / (2 * hw) * k * math.pi
    scallops = np.stack([xs, -0.7 - 0.07 * np.abs(np.sin(ph))], axis=1)
    pen.add(np.vstack([arc, scallops[1:]]), False)
    curl = [(-0.08 + 0.08 * math.cos(a), -0.1 + 0.08 * math.sin(a)) for a in np.linspace(0, math.pi, 6)]
    hook = [(0.0, -0.72), (0.0, -0.1), *curl]
    pen.line(*hook)
    if pen.detail(0.7):
        for j in range(1, k):
            x = hw - 2 * hw * j / k
            pen.curve((0.0, -0.7 - top), (x * 0.6, -0.7 - top * 0.7), (x, -0.7))
    if pen.detail(0.5):
        pen.line((0.0, -0.7 - top), (0.0, -0.78 - top))


def person(pen: Pen) -> None:
    hr = pen.u(0.085, 0.11)
    hy = -1.0 + hr
    pen.ellipse(0.0, hy, hr * pen.u(0.85, 1.0), hr, n=20)
    shoulder, hip = hy + hr + 0.1, -0.4
    pose = pen.i(0, 3)
    ly = {0: 0.25, 1: -0.2, 2: 0.25, 3: 0.05}[pose]
    ry = {0: 0.25, 1: -0.2, 2: -0.22, 3: 0.05}[pose]
    if pen.variant((0.6, 0.4)) == 0:  # stick figure
        pen.line((0.0, hy + hr), (0.0, hip))
        pen.line((-0.24, shoulder + ly), (0.0, shoulder), (0.24, shoulder + ry))
        spread = pen.u(0.08, 0.16)
        pen.line((-spread, 0.0), (0.0, hip), (spread, 0.0))
        if pen.detail(0.3):
            pen.line((-spread, 0.0), (-spread - 0.06, 0.0))
            pen.line((spread, 0.0), (spread + 0.06, 0.0))
    else:  # body with a dress or a shirt
        if pen.p(0.5):
            pen.loop((0.0, hy + hr), (-0.16, hip), (0.16, hip))
        else:
            pen.loop((-0.1, hy + hr + 0.02), (0.1, hy + hr + 0.02), (0.11, hip), (-0.11, hip))
        pen.line((-0.1, shoulder), (-0.26, shoulder + ly))
        pen.line((0.1, shoulder), (0.26, shoulder + ry))
        pen.line((-0.06, hip), (-0.08, 0.0))
        pen.line((0.06, hip), (0.08, 0.0))
        if pen.detail(0.4):
            pen.line((-0.08, 0.0), (-0.15, 0.0))
            pen.line((0.08, 0.0), (0.15, 0.0))
    if pen.detail(0.3):  # hair
        pen.ellipse(0.0, hy, hr * 1.05, hr * 1.05, a0=math.pi * 1.05, sweep=math.pi * 0.9, n=12)
    if pen.detail(0.25):  # face
        pen.line((-hr * 0.35, hy - hr * 0.2), (-hr * 0.3, hy - hr * 0.1))
        pen.line((hr * 0.35, hy - hr * 0.2), (hr * 0.3, hy - hr * 0.1))
        pen.ellipse(0.0, hy + hr * 0.2, hr * 0.4, hr * 0.3, a0=0.3, sweep=math.pi - 0.6, n=8)


def dog(pen: Pen) -> None:
    if pen.variant((0.6, 0.4)) == 0:
        pen.ellipse(0.0, -0.55, 0.45, 0.17)
    else:  # sausage body
        pen.curve((-0.45, -0.68), (0.35, -0.7), (0.47, -0.55), (0.35, -0.4), (-0.45, -0.4), (-0.52, -0.55),
                  closed=True)
    pen.ellipse(0.52, -0.8, 0.16, 0.15, n=22)
    pen.line((0.64, -0.86), (0.82, -0.78), (0.8, -0.7), (0.64, -0.72))
    pen.loop((0.42, -0.92), (0.33, -0.72), (0.45, -0.78))
    legs = (-0.33, -0.2, 0.2, 0.33) if pen.p(0.7) else (-0.3, 0.28)
    for x in legs:
        lean = pen.u(-0.05, 0.05)
        pen.line((x, -0.44), (x + lean, 0.0))
    pen.curve((-0.43, -0.6), (-0.58, -0.75), (-0.62, -0.92))
    if pen.detail(0.5):
        pen.ellipse(0.55, -0.86, 0.02, 0.02, n=6)
    if pen.detail(0.3):
        pen.line((0.38, -0.66), (0.5, -0.6))


def horse(pen: Pen) -> None:
    pen.ellipse(0.0, -0.58, 0.42, 0.16)
    pen.line((0.28, -0.7), (0.5, -0.98))
    pen.line((0.4, -0.58), (0.62, -0.88))
    pen.ellipse(0.66, -0.93, 0.16, 0.065, rot=0.6, n=20)
    pen.line((0.5, -1.0), (0.52, -1.1), (0.56, -1.01))
    for x in (-0.32, -0.22, 0.2, 0.3):
        knee = pen.u(-0.04, 0.04)
        pen.line((x, -0.46), (x + knee, -0.22), (x + pen.u(-0.03, 0.03), 0.0))
    pen.curve((-0.42, -0.62), (-0.55, -0.5), (-0.54, -0.28))
    if pen.detail(0.7):  # mane
        pts = [(0.28 + 0.22 * t - (0.04 if k % 2 else 0), -0.7 - 0.28 * t - (0.03 if k % 2 else 0))
               for k, t in enumerate(np.linspace(0, 1, 7))]
        pen.line(*pts)
    if pen.detail(0.3):
        pen.ellipse(0.62, -0.98, 0.02, 0.02, n=6)


def giraffe(pen: Pen) -> None:
    pen.ellipse(-0.05, -0.5, 0.26, 0.11, rot=-0.15)
    pen.line((0.1, -0.58), (0.26, -0.93))
    pen.line((0.19, -0.5), (0.34, -0.9))
    pen.ellipse(0.35, -0.95, 0.09, 0.045, rot=0.35, n=18)
    pen.line((0.28, -0.98), (0.27, -1.06))
    pen.line((0.32, -0.99), (0.33, -1.07))
    for x in (-0.24, -0.16, 0.08, 0.15):
        pen.line((x, -0.44), (x + pen.u(-0.02, 0.02), 0.0))
    pen.line((-0.3, -0.53), (-0.37, -0.34))
    if pen.detail(1.3):  # spots
        for _ in range(pen.i(4, 10)):
            if pen.p(0.6):
                x, y = pen.u(-0.22, 0.15), -0.5 + pen.u(-0.05, 0.05)
            else:
                t = pen.u(0.1, 0.85)
                x, y = 0.14 + 0.15 * t, -0.55 - 0.35 * t
            pen.ellipse(x, y, pen.u(0.02, 0.035), pen.u(0.018, 0.03), n=9)


def elephant(pen: Pen) -> None:
    pen.ellipse(-0.1, -0.55, 0.5, 0.3)
    pen.ellipse(0.42, -0.68, 0.2, 0.2, n=24)
    pen.ellipse(0.33, -0.66, 0.12, 0.2, n=20)
    if pen.p(0.5):
        pen.curve((0.58, -0.6), (0.68, -0.35), (0.7, -0.12), (0.8, -0.08), (0.82, -0.15))
    else:
        pen.curve((0.56, -0.55), (0.62, -0.3), (0.64, -0.08), (0.74, -0.06))
        pen.curve((0.62, -0.64), (0.73, -0.35), (0.76, -0.12))
    for x in (-0.48, -0.3, 0.05, 0.22):
        pen.line((x, -0.32), (x, 0.0), (x + 0.12, 0.0), (x + 0.12, -0.3))
    pen.line((-0.6, -0.6), (-0.68, -0.38))
    if pen.detail(0.5):
        pen.ellipse(0.5, -0.75, 0.02, 0.02, n=6)
    if pen.detail(0.4):
        pen.curve((0.56, -0.55), (0.66, -0.5), (0.72, -0.55))


def car(pen: Pen) -> None:
    if pen.variant((0.6, 0.4)) == 0:  # sedan outline
        pen.loop((-1.1, -0.2), (-1.1, -0.5), (-0.6, -0.55), (-0.35, -0.92), (0.4, -0.92), (0.65, -0.55),
                 (1.1, -0.5), (1.1, -0.2))
        if pen.detail(1.1):
            pen.loop((-0.52, -0.58), (-0.3, -0.85), (-0.04, -0.85), (-0.04, -0.58))
            pen.loop((0.04, -0.58), (0.04, -0.85), (0.35, -0.85), (0.55, -0.58))
    else:  # two boxes
        pen.loop((-1.0, -0.2), (-1.0, -0.55), (1.0, -0.55), (1.0, -0.2))
        pen.line((-0.55, -0.55), (-0.45, -0.95), (0.35, -0.95), (0.5, -0.55))
        if pen.detail(1.1):
            pen.loop((-0.4, -0.62), (-0.35, -0.87), (-0.05, -0.87), (-0.05, -0.62))
            pen.loop((0.05, -0.62), (0.05, -0.87), (0.3, -0.87), (0.38, -0.62))
    for x in (-0.62, 0.62):
        pen.ellipse(x, -0.2, 0.2, 0.2, n=22)
        if pen.detail(0.4):
            pen.ellipse(x, -0.2, 0.07, 0.07, n=10)
    if pen.detail(0.5):
        pen.line((0.0, -0.55), (0.0, -0.25))
    if pen.detail(0.4):
        pen.ellipse(1.0, -0.42, 0.05, 0.04, n=8)


# ---------------------------------------------------------------------------------------------------------------
# people variants: forms people draw (FrISS, CBSC) that the classic drawings above lack; only drawn with the
# generator's ``people_variants`` on (see the module docstring and PEOPLE_VARIANTS below)


def _wavy(pen: Pen, x0: float, x1: float, y: float, amp: float, n: int = 4) -> np.ndarray:
    """Points of a gentle curve from ``x0`` to ``x1`` around height ``y`` (``n`` random control points)."""
    xs = np.linspace(x0, x1, n)
    ys = y + pen.rng.uniform(-amp, amp, n)
    return catmull(np.stack([xs, ys], axis=1), per=10)


def _square(pen: Pen, x: float, y: float, size: float) -> None:
    """A square window of side ``size`` centred on (x, y)."""
    h = size / 2
    pen.loop((x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h))


def water_pond(pen: Pen) -> None:
    """A pond or lake: one blob outline, closed or almost, sometimes with a ripple or two inside."""
    width, depth = pen.ext
    rx, ry = width * pen.u(0.18, 0.38), depth * pen.u(0.3, 0.42)
    cx, cy = pen.u(-width / 2 + rx * 1.2, width / 2 - rx * 1.2), -depth / 2 + pen.u(-0.05, 0.05) * depth
    k = pen.i(6, 10)
    a = pen.u(0, TAU) + np.linspace(0, TAU, k, endpoint=False) + pen.rng.uniform(-0.2, 0.2, k)
    r = 1.0 + pen.rng.uniform(-0.18, 0.18, k)
    ring = np.stack([cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)], axis=1)
    if pen.p(0.6):
        pen.curve(*map(tuple, ring), closed=True)
    else:  # almost closed: the last stretch is left out
        pts = catmull(ring, closed=True)[:-1]
        pen.add(pts[: int(len(pts) * pen.u(0.85, 0.95))])
    if pen.detail(0.5):
        for _ in range(pen.i(1, 3)):
            x, y = cx + pen.u(-0.5, 0.5) * rx, cy + pen.u(-0.4, 0.4) * ry
            pen.add(_wavy(pen, x - rx * 0.15, x + rx * 0.15, y, ry * 0.04, 3))


def water_shore(pen: Pen) -> None:
    """A long gentle shoreline across the picture, sometimes the far shore too."""
    width, depth = pen.ext
    ys = [-depth * pen.u(0.55, 0.95)]
    if pen.p(0.4):
        ys.append(ys[0] + depth * pen.u(0.35, 0.5))
    for y in ys:
        x0, x1 = -width / 2 + pen.u(0.0, 0.1) * width, width / 2 - pen.u(0.0, 0.1) * width
        pen.add(_wavy(pen, x0, x1, y, depth * 0.05, pen.i(3, 5)))
    if pen.detail(0.5):  # a few ripples on the water
        for _ in range(pen.i(1, 4)):
            x, y = pen.u(-0.4, 0.4) * width, ys[0] + pen.u(0.1, 0.9) * (-ys[0])
            pen.add(_wavy(pen, x - width * 0.04, x + width * 0.04, y, depth * 0.02, 3))


def water_river(pen: Pen) -> None:
    """A river: two roughly parallel long banks from the far (narrow) end to the near (wide) end."""
    width, depth = pen.ext
    top, bottom = pen.u(-0.3, 0.3) * width, pen.u(-0.3, 0.3) * width
    bend = pen.u(-0.12, 0.12) * width
    w_far, w_near = pen.u(0.03, 0.08) * width, pen.u(0.1, 0.25) * width
    for side in (-1, 1):
        pts = []
        for t in np.linspace(0.0, 1.0, 5):
            x = top + (bottom - top) * t + bend * math.sin(math.pi * t) + side * (w_far + (w_near - w_far) * t) / 2
            pts.append((float(np.clip(x, -width / 2, width / 2)), -depth + depth * t))
        pen.curve(*pts)
    if pen.detail(0.4):  # a wave in the stream
        t = pen.u(0.4, 0.8)
        x = top + (bottom - top) * t + bend * math.sin(math.pi * t)
        pen.add(_wavy(pen, x - w_near * 0.2, x + w_near * 0.2, -depth * (1 - t), depth * 0.02, 3))


def water_marks(pen: Pen) -> None:
    """A few short "v", "~" or arc marks scattered over the water."""
    width, depth = pen.ext
    size = pen.u(0.6, 1.4)
    for _ in range(pen.i(3, 9)):
        x, y = pen.u(-width / 2 + size, width / 2 - size), -pen.u(0.3, max(depth - 0.3, 0.4))
        kind = pen.i(0, 2)
        if kind == 0:  # a "v"
            pen.line((x - size / 2, y - size * 0.3), (x, y), (x + size / 2, y - size * 0.3))
        elif kind == 1:  # a tilde
            t = np.linspace(0.0, 1.0, 12)
            pen.add(np.stack([x + size * (t - 0.5), y - size * 0.15 * np.sin(TAU * t)], axis=1))
        else:  # a shallow arc
            pen.curve((x - size / 2, y - size * 0.15), (x, y), (x + size / 2, y - size * 0.15))


def mountain_humps(pen: Pen) -> None:
    """Rounded mountains: one smooth curve over one to three humps."""
    width = pen.ext[0]
    humps = pen.i(1, max(1, min(3, int(width / 1.3))))
    xs = np.linspace(-width / 2, width / 2, 2 * humps + 1)
    pts: list[tuple[float, float]] = [(-width / 2, 0.0)]
    hs = [pen.u(0.45, 0.95) for _ in range(humps)]
    hs[int(pen.rng.integers(humps))] = 0.95
    for k in range(humps):
        x, half = float(xs[2 * k + 1]), width / (2 * humps)
        top = (x + pen.u(-0.1, 0.1) * half, -hs[k])
        pts += [(x - half * 0.55, -hs[k] * 0.78), top, (x + half * 0.55, -hs[k] * 0.78)]
        if k < humps - 1:
            pts.append((float(xs[2 * k + 2]), -pen.u(0.25, 0.5) * min(hs[k], hs[k + 1])))
    pts.append((width / 2, 0.0))
    pen.curve(*pts)


def mountain_peak(pen: Pen) -> None:
    """A single tall peak with slightly curved sides, in one stroke."""
    half = min(pen.ext[0] / 2, pen.u(0.5, 0.95))
    top = pen.u(-0.1, 0.1) * half
    bow = pen.u(-0.12, 0.12) * half
    pen.curve((-half, 0.0), (-half * 0.5 + top * 0.5 - bow, -0.55), (top, -0.97),
              (half * 0.5 + top * 0.5 + bow, -0.55), (half, 0.0))
    if pen.detail(0.25):  # snow line
        pen.curve((top - half * 0.22, -0.72), (top, -0.68), (top + half * 0.22, -0.72))


def house_tower(pen: Pen) -> None:
    """A tall building: a tall rectangle (often without its floor line) with a grid of windows."""
    w = pen.u(0.38, 0.62)
    if pen.p(0.6):
        pen.line((-w / 2, 0.0), (-w / 2, -1.0), (w / 2, -1.0), (w / 2, 0.0))
    else:
        pen.loop((-w / 2, 0.0), (-w / 2, -1.0), (w / 2, -1.0), (w / 2, 0.0))
    if pen.detail(1.4):
        cols, rows = pen.i(2, 3), pen.i(3, 6)
        if pen.p(0.3):  # the windows as a grid of lines
            for k in range(1, rows + 1):
                pen.line((-w / 2, -1.0 + k * 0.8 / (rows + 1)), (w / 2, -1.0 + k * 0.8 / (rows + 1)))
            for k in range(1, cols):
                pen.line((-w / 2 + k * w / cols, -1.0), (-w / 2 + k * w / cols, -1.0 + 0.8 * rows / (rows + 1)))
        else:
            ws = min(w / cols * 0.55, 0.75 / rows * 0.6)
            for r in range(rows):
                for c in range(cols):
                    x, y = -w / 2 + (c + 0.5) * w / cols, -0.92 + (r + 0.5) * 0.72 / rows
                    _square(pen, x, y, ws)
    if pen.detail(0.5):
        dw = w * 0.3
        pen.line((-dw / 2, 0.0), (-dw / 2, -0.15), (dw / 2, -0.15), (dw / 2, 0.0))


def house_flat(pen: Pen) -> None:
    """A flat-roofed box with a door and a few windows."""
    w, h = pen.u(0.8, 1.3), pen.u(0.55, 0.85)
    pen.loop((-w / 2, 0.0), (-w / 2, -h), (w / 2, -h), (w / 2, 0.0))
    if pen.detail(0.4):  # the roof's edge
        pen.line((-w / 2 - 0.04, -h), (-w / 2 - 0.04, -h - 0.06), (w / 2 + 0.04, -h - 0.06), (w / 2 + 0.04, -h))
    dx, dw = pen.u(-0.25, 0.25) * w, pen.u(0.14, 0.2) * w
    pen.line((dx - dw / 2, 0.0), (dx - dw / 2, -h * 0.45), (dx + dw / 2, -h * 0.45), (dx + dw / 2, 0.0))
    ws = pen.u(0.1, 0.15)
    for x in np.linspace(-w / 2 + 0.15, w / 2 - 0.15, pen.i(2, 4)):
        if abs(x - dx) > dw / 2 + ws / 2 + 0.02 and pen.detail(1.2):
            y = -h * pen.u(0.6, 0.75)
            _square(pen, float(x), y, ws)


def house_rounded(pen: Pen) -> None:
    """A bare tall rounded rectangle, open at the bottom, sometimes with an oval window."""
    w, r = pen.u(0.3, 0.5), pen.u(0.25, 0.5)
    pen.curve((-w / 2, 0.0), (-w / 2, -0.5), (-w / 2, -1.0 + w * r), (-w / 2 + w * r * 0.3, -1.0 + w * r * 0.3),
              (0.0, -1.0), (w / 2 - w * r * 0.3, -1.0 + w * r * 0.3), (w / 2, -1.0 + w * r), (w / 2, -0.5),
              (w / 2, 0.0))
    if pen.detail(0.6):
        for _ in range(pen.i(1, 2)):
            pen.ellipse(pen.u(-0.15, 0.15) * w, -pen.u(0.35, 0.75), w * 0.15, pen.u(0.06, 0.12), n=16)


def house_perspective(pen: Pen) -> None:
    """A gabled house in a three-quarter view: front wall and gable, the side wall and the roof going back."""
    fw, sw, dy, hb = pen.u(0.45, 0.6), pen.u(0.4, 0.65), pen.u(0.08, 0.15), pen.u(0.45, 0.6)
    left = -(fw + sw) / 2
    x0, right = left + fw, left + fw + sw
    apex = (left + fw / 2, -1.0 + dy)
    pen.loop((left, 0.0), (left, -hb), (x0, -hb), (x0, 0.0))
    pen.line((left - 0.03, -hb), apex, (x0 + 0.03, -hb))
    pen.line((x0, 0.0), (right, -dy), (right, -hb - dy))
    pen.line(apex, (apex[0] + sw, -1.0), (right + 0.03, -hb - dy), (x0 + 0.03, -hb))
    if pen.detail(0.9):  # door in the front wall
        dw = fw * 0.28
        pen.line((apex[0] - dw / 2, 0.0), (apex[0] - dw / 2, -hb * 0.55), (apex[0] + dw / 2, -hb * 0.55),
                 (apex[0] + dw / 2, 0.0))
    if pen.detail(0.8):  # window in the side wall, slanted with it
        a, b = x0 + sw * 0.3, x0 + sw * 0.7
        ya, yb = -dy * 0.3, -dy * 0.7
        pen.loop((a, ya - hb * 0.35), (b, yb - hb * 0.35), (b, yb - hb * 0.7), (a, ya - hb * 0.7))


def flower_big(pen: Pen, head: Callable[[Pen, float, float, float], None]) -> None:
    """A flower whose head is a large part of the drawing: a short stem, ``head`` of radius R on top."""
    rad = pen.u(0.28, 0.38)
    hx, hy = pen.u(-0.05, 0.05), -1.0 + rad
    pen.curve((0.0, 0.0), (pen.u(-0.05, 0.05), (hy + rad) * 0.5), (hx, hy + rad * 0.8))
    head(pen, hx, hy, rad)
    if pen.detail(0.7):  # a leaf
        s = 1 if pen.p(0.5) else -1
        y = (hy + rad) * pen.u(0.3, 0.6)
        pen.curve((0.0, y), (s * 0.12, y - 0.1), (s * 0.24, y - 0.1), (s * 0.12, y), (0.0, y))


def _petals(pen: Pen, hx: float, hy: float, rad: float) -> None:
    """Large petals around a centre: one looping outline or separate petal loops."""
    rc = rad * pen.u(0.22, 0.38)
    k = pen.i(5, 8)
    if pen.p(0.5):
        t = np.linspace(0, TAU, 96, endpoint=False)
        r = rc + (rad - rc) * np.abs(np.sin(k * t / 2))
        pen.add(np.stack([hx + r * np.cos(t), hy + r * np.sin(t)], axis=1), True)
    else:
        a0 = pen.u(0, TAU)
        for j in range(k):
            a = a0 + TAU * j / k
            pen.ellipse(hx + (rc + rad) / 2 * math.cos(a), hy + (rc + rad) / 2 * math.sin(a), (rad - rc) / 2,
                        min(rad * math.sin(math.pi / k), (rad - rc) / 2) * 0.95, rot=a, n=16)
    if pen.detail(1.2):
        pen.ellipse(hx, hy, rc, rc, n=14)


def _crown(pen: Pen, hx: float, hy: float, rad: float) -> None:
    """A tulip or crown: a round cup with two or three points on top."""
    a = rad * pen.u(0.65, 0.9)
    t = np.linspace(0.0, math.pi, 12)
    cup = np.stack([hx + a * np.cos(t), hy + rad * 0.95 * np.sin(t)], axis=1)  # right, bottom, left
    points = pen.i(2, 3)
    xs = np.linspace(hx - a, hx + a, 2 * points - 1)
    top = [(float(x), hy - rad * (0.95 if k % 2 == 0 else pen.u(0.1, 0.5))) for k, x in enumerate(xs)]
    pen.add(np.vstack([cup, np.array(top)]), True)


def _scribble(pen: Pen, hx: float, hy: float, rad: float) -> None:
    """A scribbled blob: a few uneven turns around the centre in one stroke."""
    turns = pen.u(1.5, 3.5)
    t = np.linspace(0.0, turns * TAU, int(turns * 30))
    r = rad * (0.7 + 0.25 * np.sin(t * pen.u(0.3, 0.6) + pen.u(0, TAU)) + 0.05 * np.sin(5 * t))
    pen.add(np.stack([hx + r * np.cos(t), hy + r * np.sin(t)], axis=1))


def flower_petals(pen: Pen) -> None:
    flower_big(pen, _petals)


def flower_crown(pen: Pen) -> None:
    flower_big(pen, _crown)


def flower_scribble(pen: Pen) -> None:
    flower_big(pen, _scribble)


def _lens(pen: Pen, half: float, belly: float, top: float, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The two edges of a canoe-like lens from (-half, 0) to (half, 0): ``belly`` below, ``top`` above (y down)."""
    x = np.linspace(-half, half, n)
    f = 1.0 - (x / half) ** 2
    return np.stack([x, belly * f], axis=1), np.stack([x[::-1], -top * f[::-1]], axis=1)


def boat_canoe(pen: Pen) -> None:
    """A canoe or rowing boat seen from the side: a crescent, two curves meeting at both pointed ends."""
    half, h = pen.u(0.95, 1.3), pen.u(0.3, 0.45)
    bottom, rim = _lens(pen, half, h, -pen.u(0.0, 0.12) * h)  # the rim sags a little between the raised ends
    bottom[:, 1] -= h
    rim[:, 1] -= h
    if pen.p(0.6):
        pen.add(np.vstack([bottom, rim[1:]]))
    else:
        pen.add(bottom)
        pen.add(rim)
    if pen.detail(0.5):  # the inner side of the far rim
        pen.add(rim[2:-2] + np.array([0.0, -0.06]))
    if pen.detail(0.4):  # an oar
        x = pen.u(-0.3, 0.3)
        pen.line((x - 0.3, -h - 0.35), (x + 0.5, -h * 0.3))
        pen.ellipse(x + 0.6, -h * 0.2, 0.14, 0.05, rot=0.6, n=12)


def boat_above(pen: Pen) -> None:
    """A canoe seen from above: a lens with seats across, horizontal, diagonal or upright."""
    half, w = pen.u(0.8, 1.1), pen.u(0.2, 0.32)
    left, right = _lens(pen, half, w, w)
    pen.add(np.vstack([left, right[1:]]), False)
    if pen.detail(0.9):
        for x in (-half * 0.35, half * 0.35):
            ww = w * (1 - (x / half) ** 2)
            pen.line((x, -ww), (x, ww))
    if pen.detail(0.3):
        pen.add(np.vstack([left, right[1:]])[2:-2] * np.array([0.85, 0.7]))  # the inner rim
    pen.turn(0, pen.u(-0.3, 0.3) + (math.pi / 2 if pen.p(0.35) else pen.u(-0.9, 0.9) if pen.p(0.4) else 0.0))
    pen.settle()


def boat_barge(pen: Pen) -> None:
    """A flat barge or ferry: a long low hull, sometimes a box or a cabin on deck."""
    half, h = pen.u(1.1, 1.5), pen.u(0.22, 0.38)
    bow = pen.u(0.05, 0.3)
    pen.loop((-half, -h), (half, -h), (half - bow, 0.0), (-half + bow * 0.5, 0.0))
    if pen.detail(0.8):
        x0 = pen.u(-0.6, 0.1) * half
        cw, ch = pen.u(0.4, 0.8), pen.u(0.2, 0.4)
        pen.line((x0, -h), (x0, -h - ch), (x0 + cw, -h - ch), (x0 + cw, -h))
        if pen.detail(0.6):
            for k in range(pen.i(2, 4)):
                pen.ellipse(x0 + cw * (k + 0.7) / 5, -h - ch * 0.5, 0.04, 0.04, n=8)
    if pen.detail(0.4):  # portholes along the hull
        for x in np.linspace(-half * 0.6, half * 0.6, pen.i(3, 5)):
            pen.ellipse(float(x), -h * 0.5, 0.04, 0.04, n=8)


def fence_rustic(pen: Pen) -> None:
    """Few irregular posts with one or two sagging rails."""
    width = pen.ext[0]
    n = max(2, int(width / pen.u(0.6, 1.1))) + 1
    xs = np.linspace(-width / 2, width / 2, n)
    xs[1:-1] += pen.rng.uniform(-0.2, 0.2, n - 2) * (xs[1] - xs[0])
    for x in xs:
        lean = pen.u(-0.05, 0.05)
        pen.line((float(x), -pen.u(0.0, 0.05)), (float(x) + lean, -pen.u(0.7, 1.0)))
    for y in (-0.35, -0.72)[: pen.i(1, 2)]:
        y += pen.u(-0.08, 0.08)
        pen.curve((-width / 2 - 0.05, y), (0.0, y + pen.u(-0.06, 0.1)), (width / 2 + 0.05, y + pen.u(-0.06, 0.06)))


def fence_receding(pen: Pen) -> None:
    """A fence running away in perspective (posts shorter and closer with distance), straight or curving."""
    width = pen.ext[0]
    side = 1 if pen.p(0.5) else -1  # which end is near
    rise, bend, far = pen.u(0.15, 0.45), pen.u(-0.3, 0.3) if pen.p(0.5) else 0.0, pen.u(0.35, 0.6)
    n = pen.i(5, 9)
    ts = np.concatenate([[0.0], np.cumsum(pen.u(0.7, 0.9) ** np.arange(n - 1))])  # each gap shorter than the last
    ts /= ts[-1]
    base = [(side * (-width / 2 + width * t), -rise * t + bend * math.sin(math.pi * t)) for t in ts]
    height = [1.0 - (1.0 - far) * t for t in ts]
    for (x, y), h in zip(base, height, strict=True):
        pen.line((x, y), (x, y - h))
    for f in (0.3, 0.75) if pen.p(0.6) else (0.6,):
        pen.curve(*[(x, y - h * f) for (x, y), h in zip(base, height, strict=True)])
    pen.settle()


def fence_ticks(pen: Pen) -> None:
    """A line with a row of short vertical ticks along it."""
    width = pen.ext[0]
    tick, at = pen.u(0.5, 0.8), pen.u(0.2, 0.75)
    line = _wavy(pen, -width / 2, width / 2, -tick * at, 0.04, 4)
    pen.add(line)
    step = pen.u(0.12, 0.28)
    for x in np.arange(-width / 2 + step / 2, width / 2, step):
        y = float(np.interp(x, line[:, 0], line[:, 1]))
        length = tick * pen.u(0.8, 1.1)
        pen.line((float(x), y + length * at), (float(x) + pen.u(-0.03, 0.03), y - length * (1 - at)))
    pen.settle()


def _umbrella_handle(pen: Pen, top: float) -> None:
    """The stick from ``top`` down to the ground: with a hook or straight."""
    if pen.p(0.4):
        curl = [(-0.08 + 0.08 * math.cos(a), -0.1 + 0.08 * math.sin(a)) for a in np.linspace(0, math.pi, 6)]
        pen.line((0.0, top), (0.0, -0.1), *curl)
    else:
        pen.line((0.0, top), (0.0, 0.0))


def umbrella_closed(pen: Pen) -> None:
    """A closed umbrella: a long thin pointed shape on its stick, often held slanted."""
    w, low = pen.u(0.07, 0.13), pen.u(0.28, 0.38)
    pen.loop((0.0, -1.0), (w, -low - 0.15), (w * 0.5, -low), (-w * 0.5, -low), (-w, -low - 0.15))
    if pen.detail(0.6):  # a fold
        pen.line((0.0, -0.95), (w * 0.3, -low - 0.05))
    if pen.detail(0.4):  # the strap
        pen.line((-w * 0.8, -low - 0.25), (w * 0.8, -low - 0.2))
    _umbrella_handle(pen, -low)
    pen.turn(0, pen.u(-0.6, 0.6))
    pen.settle()


def umbrella_dome(pen: Pen) -> None:
    """An open umbrella as a plain dome on a straight stick (no scallops), sometimes with ribs."""
    hw, top, y0 = pen.u(0.45, 0.7), pen.u(0.25, 0.4), -0.68
    t = np.linspace(math.pi, TAU, 20)
    dome = np.stack([hw * np.cos(t), y0 + top * np.sin(t)], axis=1)
    if pen.p(0.6):
        pen.add(np.vstack([dome, dome[:1]]))
    else:
        pen.add(dome)
        pen.line((hw, y0), (0.0, y0 + pen.u(-0.05, 0.05)), (-hw, y0))
    if pen.detail(0.6):
        for x in np.linspace(-hw * 0.6, hw * 0.6, pen.i(2, 4)):
            pen.line((float(x) * 0.4, y0 - top * 0.9), (float(x), y0))
    pen.line((0.0, y0 - top), (0.0, 0.0))


def umbrella_cone(pen: Pen) -> None:
    """A simple triangle on a stick, its lower edge straight or zig-zag."""
    hw, y0 = pen.u(0.3, 0.5), -0.62
    if pen.p(0.4):
        k = pen.i(2, 4)
        xs = np.linspace(hw, -hw, 2 * k + 1)
        edge = [(float(x), y0 - (0.08 if j % 2 else 0.0)) for j, x in enumerate(xs)]
        pen.line((-hw, y0), (0.0, -1.0), *edge)
    else:
        pen.loop((-hw, y0), (0.0, -1.0), (hw, y0))
    _umbrella_handle(pen, y0)


def bird_perched(pen: Pen) -> None:
    """A side-view bird: body, head, beak, eye, a wing on the body, tail and legs."""
    pen.ellipse(0.0, 0.0, 0.55, 0.33, rot=pen.u(-0.2, 0.1))
    pen.ellipse(0.55, -0.42, 0.22, 0.2, n=20)
    pen.line((0.74, -0.5), (1.0, -0.42), (0.75, -0.35))
    if pen.detail(1.0):
        pen.ellipse(0.6, -0.47, 0.035, 0.035, n=8)
    if pen.detail(1.0):
        pen.curve((-0.35, -0.08), (-0.05, 0.15), (0.3, -0.02))
    pen.line((-0.5, -0.08), (-0.95, -0.3), (-0.92, 0.05), (-0.52, 0.1))
    for x in (-0.1, 0.12):
        pen.line((x, 0.31), (x - 0.03, 0.75))
        if pen.detail(0.5):
            pen.line((x - 0.15, 0.78), (x - 0.03, 0.75), (x + 0.1, 0.8))


def bird_outline(pen: Pen) -> None:
    """A plump bird drawn as one outline (body and head together), a beak, an eye and a wing, maybe legs."""
    pen.curve((0.6, -0.72), (0.8, -0.5), (0.62, -0.25), (0.55, 0.05), (0.15, 0.32), (-0.45, 0.22), (-0.95, -0.15),
              (-0.4, -0.12), (0.2, -0.3), (0.38, -0.62), closed=True)
    pen.line((0.79, -0.55), (1.02, -0.47), (0.78, -0.4))
    if pen.detail(1.0):
        pen.ellipse(0.6, -0.52, 0.035, 0.035, n=8)
    if pen.detail(1.0):  # the wing: a pointed lens or a "v"
        if pen.p(0.5):
            pen.curve((-0.4, -0.02), (-0.05, 0.12), (0.28, -0.1), (-0.05, -0.05), (-0.4, -0.02))
        else:
            pen.line((-0.35, -0.05), (0.05, 0.15), (0.3, -0.12))
    if pen.detail(0.6):
        for x in (-0.05, 0.15):
            pen.line((x, 0.28), (x, 0.7))


def bench_perspective(pen: Pen) -> None:
    """A bench seen from above the front: seat and back as parallelograms, legs below."""
    width = pen.u(1.8, 2.6)
    left, right = -width / 2, width / 2
    d, e, lean = pen.u(0.2, 0.45), pen.u(0.12, 0.22), pen.u(0.0, 0.15)
    seat = -0.45
    pen.loop((left, seat), (right, seat), (right + d, seat - e), (left + d, seat - e))
    back = seat - e - 0.02
    pen.loop((left + d, back), (right + d, back), (right + d + lean, -1.0), (left + d + lean, -1.0))
    if pen.detail(0.5):  # slats of the back
        for f in (0.35, 0.65):
            y = seat - e + (-1.0 - seat + e) * f
            pen.line((left + d + lean * f, y), (right + d + lean * f, y))
    for x in (left + 0.12, right - 0.12):
        pen.line((x, seat), (x, 0.0))
    if pen.detail(0.8):  # back legs, partly hidden
        for x in (left + d + 0.12, right + d - 0.12):
            pen.line((x, seat - e), (x, -e))
    pen.settle()


def bench_side(pen: Pen) -> None:
    """A bench seen from its end: a slanted back, the seat and two legs, like a chair in profile."""
    depth = pen.u(0.55, 0.8)
    back = (-depth / 2 - pen.u(0.05, 0.2), -1.0)
    seat0, seat1 = (-depth / 2, -0.45), (depth / 2, -0.45)
    if pen.p(0.6):
        pen.line(back, seat0, seat1)
    else:
        pen.line(back, seat0)
        pen.line(seat0, seat1)
    if pen.detail(0.5):  # the thickness of the seat
        pen.line((-depth / 2, -0.4), (depth / 2, -0.4))
    pen.line((seat0[0] + 0.05, -0.45), (seat0[0] + pen.u(0.0, 0.1), 0.0))
    pen.line((seat1[0] - 0.05, -0.45), (seat1[0] - pen.u(0.0, 0.1), 0.0))
    if pen.detail(0.5):  # arm rest
        pen.line((seat0[0] - 0.02, -0.72), (seat1[0] - 0.1, -0.7), (seat1[0] - 0.1, -0.45))


def bench_slab(pen: Pen) -> None:
    """A backless bench: a thick seat in perspective on two slab legs."""
    width = pen.u(1.8, 2.6)
    left, right = -width / 2, width / 2
    d, e, t = pen.u(0.15, 0.35), pen.u(0.1, 0.2), pen.u(0.08, 0.14)
    top = -0.62
    pen.loop((left, top), (right, top), (right + d, top - e), (left + d, top - e))
    pen.line((left, top), (left, top + t), (right, top + t), (right, top))
    for x in (left + 0.2, right - 0.35):
        pen.line((x, top + t), (x, 0.0), (x + 0.15, 0.0), (x + 0.15, top + t))
    pen.settle()


def grass_scribble(pen: Pen) -> None:
    """Dense scribbled strips: a long stroke of tiny tight zig-zags along the ground."""
    width, depth = pen.ext
    for _ in range(pen.i(1, 3)):
        x0 = pen.u(-width / 2, 0.0)
        x1 = min(width / 2, x0 + width * pen.u(0.3, 1.0))
        step, amp = pen.u(0.08, 0.16), pen.u(0.3, 0.7)
        xs = np.arange(x0, x1, step / 2)
        y = -pen.u(0.0, max(depth - amp, 0.0))
        ys = y - np.where(np.arange(len(xs)) % 2 == 1, amp * pen.rng.uniform(0.6, 1.0, len(xs)), 0.0)
        if len(xs) >= 2:
            pen.add(np.stack([xs, ys], axis=1))


def grass_ground(pen: Pen) -> None:
    """A wavy ground line or two across the picture, sometimes with a few blades on it."""
    width, depth = pen.ext
    lines = pen.i(1, 3)
    for k in range(lines):
        y = -depth * (k + pen.u(0.2, 0.8)) / lines
        wl = pen.u(2.0, 5.0)
        x = np.linspace(-width / 2, width / 2, max(int(width * 4), 8))
        amp = pen.u(0.1, 0.4)
        pen.add(np.stack([x, np.minimum(y + amp * np.sin(TAU * x / wl + pen.u(0, TAU)), 0.0)], axis=1))
    if pen.detail(0.4):
        for _ in range(pen.i(2, 6)):
            x = pen.u(-width / 2, width / 2)
            pen.line((x, -depth * 0.5), (x + pen.u(-0.2, 0.2), -depth * 0.5 - pen.u(0.4, 0.8)))


def grass_blades(pen: Pen) -> None:
    """A few straight blades, alone or in small clumps."""
    width, depth = pen.ext
    for _ in range(pen.i(4, 12)):
        x, y = pen.u(-width / 2 + 0.3, width / 2 - 0.6), -pen.u(0.0, max(depth - 1.2, 0.0))
        for k in range(pen.i(1, 3)):
            lean = pen.u(-0.3, 0.3)
            pen.line((x + 0.15 * k, y), (x + 0.15 * k + lean, y - pen.u(0.6, 1.1)))


def person_bighead(pen: Pen) -> None:
    """A stick figure with a big head (often a face and scribbled hair), arms raised, out, down or waving."""
    hr = pen.u(0.13, 0.19)
    hy = -1.0 + hr
    pen.ellipse(0.0, hy, hr * pen.u(0.85, 1.0), hr, n=22)
    neck, hip = hy + hr, pen.u(-0.45, -0.35)
    shoulder = neck + 0.08
    pose = pen.i(0, 3)  # raised, out, down, one raised
    hands = {0: (-0.28, -0.25, 0.28, -0.25), 1: (-0.3, 0.0, 0.3, 0.0), 2: (-0.2, 0.25, 0.2, 0.25),
             3: (-0.3, 0.02, 0.24, -0.28)}[pose]
    pen.line((0.0, neck), (0.0, hip))
    pen.line((hands[0], shoulder + hands[1]), (0.0, shoulder), (hands[2], shoulder + hands[3]))
    spread = pen.u(0.1, 0.2)
    pen.line((-spread, 0.0), (0.0, hip), (spread, 0.0))
    if pen.detail(1.2):  # a face
        for s in (-1, 1):
            pen.ellipse(s * hr * 0.38, hy - hr * 0.15, hr * 0.08, hr * 0.08, n=6)
        pen.ellipse(0.0, hy + hr * 0.2, hr * 0.45, hr * 0.35, a0=0.3, sweep=math.pi - 0.6, n=10)
    if pen.detail(0.6):  # scribbled hair over the top of the head
        k = pen.i(4, 8)
        t = np.linspace(math.pi * 1.1, math.pi * 1.9, 2 * k + 1)
        r = np.where(np.arange(2 * k + 1) % 2 == 0, hr * 1.0, hr * pen.u(1.15, 1.35))
        pen.add(np.stack([r * np.cos(t), hy + r * np.sin(t)], axis=1))


def person_oval(pen: Pen) -> None:
    """A figure with an oval body, stick arms and legs."""
    hr = pen.u(0.1, 0.15)
    hy = -1.0 + hr
    pen.ellipse(0.0, hy, hr, hr, n=20)
    top, hip = hy + hr, pen.u(-0.42, -0.35)
    bw = pen.u(0.1, 0.16)
    pen.ellipse(0.0, (top + hip) / 2, bw, (hip - top) / 2, a0=-math.pi / 2, n=22)
    ay = top + (hip - top) * 0.25
    up = pen.p(0.3)
    pen.line((-bw * 0.9, ay), (-0.3, ay + (-0.2 if up else 0.2)))
    pen.line((bw * 0.9, ay), (0.3, ay + (-0.2 if up else 0.2)))
    for s in (-1, 1):
        pen.line((s * bw * 0.4, hip - 0.02), (s * pen.u(0.08, 0.16), 0.0))


def car_pickup(pen: Pen) -> None:
    """A boxy pickup truck: a cab at the front, a low open bed behind."""
    cab = pen.u(-0.15, 0.05)
    pen.loop((-1.1, -0.2), (-1.1, -0.55), (cab, -0.55), (cab, -0.95), (0.5, -0.95), (0.65, -0.58), (1.1, -0.52),
             (1.1, -0.2))
    if pen.detail(1.0):
        pen.loop((cab + 0.08, -0.6), (cab + 0.08, -0.87), (0.45, -0.87), (0.56, -0.6))
    for x in (-0.62, 0.62):
        pen.ellipse(x, -0.2, 0.2, 0.2, n=22)


def car_perspective(pen: Pen) -> None:
    """A car in a three-quarter view: front face, the side going back, cabin on top, visible wheels."""
    f0, f1 = 0.55, 1.1  # front face
    pen.loop((f0, -0.12), (f0, -0.55), (f1, -0.5), (f1, -0.12))
    pen.line((f0, -0.12), (-1.0, -0.3), (-1.0, -0.62), (f0, -0.55))
    pen.line((f0 + 0.02, -0.55), (0.35, -0.9), (-0.55, -0.95), (-0.8, -0.61))
    pen.line((f1, -0.5), (0.85, -0.87), (0.35, -0.9))
    if pen.detail(1.0):  # windows along the side
        pen.loop((0.3, -0.62), (0.22, -0.85), (-0.15, -0.87), (-0.15, -0.63))
        pen.loop((-0.25, -0.64), (-0.25, -0.88), (-0.5, -0.9), (-0.65, -0.66))
    if pen.detail(0.6):  # headlights
        for x in (f0 + 0.1, f1 - 0.1):
            pen.ellipse(x, -0.3, 0.05, 0.05, n=8)
    for x, y in ((0.25, -0.14), (-0.7, -0.3)):
        pen.ellipse(x, y, 0.13, 0.17, n=18)


def car_dome(pen: Pen) -> None:
    """A beetle: a dome on wheels, a window arc inside."""
    t = np.linspace(math.pi, TAU, 24)
    dome = np.stack([1.05 * np.cos(t), -0.22 + 0.75 * np.sin(t)], axis=1)
    pen.add(np.vstack([dome, dome[:1]]))
    if pen.detail(1.0):
        w = np.linspace(math.pi * 1.2, math.pi * 1.8, 12)
        pen.add(np.stack([0.75 * np.cos(w), -0.35 + 0.45 * np.sin(w)], axis=1), False)
        pen.line((0.75 * math.cos(math.pi * 1.2), -0.35 + 0.45 * math.sin(math.pi * 1.2)),
                 (0.75 * math.cos(math.pi * 1.8), -0.35 + 0.45 * math.sin(math.pi * 1.8)))
    for x in (-0.6, 0.6):
        pen.ellipse(x, -0.2, 0.2, 0.2, n=22)


def train_perspective(pen: Pen) -> None:
    """A train coming towards the viewer: a tall front face, the side receding to a small far end."""
    length, fw = pen.u(2.5, 5.0), pen.u(0.4, 0.6)
    far_top, far_bottom = pen.u(-0.7, -0.5), pen.u(-0.35, -0.25)
    x0 = 0.0  # the front face spans [x0, x0 + fw], the far end is at -length

    def side(t: float, frac: float) -> tuple[float, float]:
        """Point at ``t`` along the side (0 front, 1 far end), ``frac`` of its height from the bottom."""
        bottom, top = -0.05 + (far_bottom + 0.05) * t, -0.95 + (far_top + 0.95) * t
        return (x0 - length * t, bottom + (top - bottom) * frac)

    pen.loop((x0, -0.05), (x0, -0.95), (x0 + fw, -0.9), (x0 + fw, -0.08))
    pen.line((x0, -0.05), side(1.0, 0.0), side(1.0, 1.0), (x0, -0.95))
    pen.line((x0 + fw, -0.9), (x0 + fw * 0.6, -1.0), (side(1.0, 1.0)[0] + 0.15, far_top - 0.06), side(1.0, 1.0))
    if pen.detail(1.0):  # windscreen
        pen.loop((x0 + 0.08, -0.85), (x0 + fw - 0.08, -0.82), (x0 + fw - 0.08, -0.6), (x0 + 0.08, -0.6))
    cars = pen.i(1, 3)
    for k in range(1, cars + 1):
        t = 1.0 - (1.0 - k / (cars + 1)) ** 1.4
        pen.line(side(t, 0.0), side(t, 1.0))
    if pen.detail(0.9):  # a row of windows shrinking with distance
        for t in np.linspace(0.08, 0.85, pen.i(4, 8)):
            dt = 0.05 * (1.0 - float(t) * 0.5)
            pen.loop(side(float(t), 0.55), side(float(t), 0.8), side(float(t) + dt, 0.8), side(float(t) + dt, 0.55))
    if pen.detail(0.5):  # rails
        pen.line((x0 + fw + 0.2, 0.02), (-length, far_bottom + 0.02))
    if pen.p(0.5):  # running diagonally up towards the horizon
        pen.turn(0, pen.u(0.1, 0.4))
    pen.settle()
    pen.scale(min(1.0, 1.6 / pen.height()))  # a diagonal train no taller than a house


def tree_outline(pen: Pen) -> None:
    """A tree in one stroke: up the trunk, round a canopy of a few big lobes, down the trunk."""
    th, tw = pen.u(0.28, 0.45), pen.u(0.05, 0.1)
    ry = (1.0 - th) / 2 + 0.02
    rx, cy = ry * pen.u(0.9, 1.3), -(1.0 + th) / 2
    bumps, depth = pen.i(3, 6), pen.u(0.08, 0.25)
    gap = pen.u(0.12, 0.3)
    canopy = pen.scallop(0.0, cy, rx / (1 + depth), ry / (1 + depth), bumps, depth, a0=math.pi / 2 + gap,
                         sweep=TAU - 2 * gap, n=80)
    canopy[:, 1] = np.minimum(canopy[:, 1], -th)
    foot = pen.u(0.0, 0.04)
    path = np.vstack([[(-tw - foot, 0.0), (canopy[0, 0], -th)], canopy, [(canopy[-1, 0], -th), (tw + foot, 0.0)]])
    if pen.p(0.65):
        pen.add(path)
    else:  # canopy and trunk lines as separate strokes
        pen.add(canopy)
        pen.line((-tw - foot, 0.0), (canopy[0, 0], -th + 0.02))
        pen.line((tw + foot, 0.0), (canopy[-1, 0], -th + 0.02))
    if pen.detail(0.2):
        pen.line((0.0, -th - 0.03), (pen.u(-0.2, 0.2) * rx, cy + ry * 0.2))


def tree_open(pen: Pen) -> None:
    """A lumpy canopy left open at the bottom, the trunk's two lines reaching up into it."""
    th, tw = pen.u(0.3, 0.45), pen.u(0.05, 0.09)
    ry = (1.0 - th) / 2 + 0.03
    rx, cy = ry * pen.u(0.85, 1.25), -(1.0 + th) / 2
    bumps, depth = pen.i(4, 8), pen.u(0.05, 0.2)
    gap = pen.u(0.2, 0.5)
    pen.add(pen.scallop(0.0, cy, rx / (1 + depth), ry / (1 + depth), bumps, depth, a0=math.pi / 2 + gap,
                        sweep=TAU - 2 * gap, n=80))
    up = pen.u(0.0, 0.12)
    for s in (-1, 1):
        pen.line((s * tw * 1.2, 0.0), (s * tw, -th - up))


def tree_palm(pen: Pen) -> None:
    """A palm tree: a curved trunk, fronds drooping from its top."""
    bend = pen.u(-0.25, 0.25)
    tw = pen.u(0.04, 0.07)
    tx, ty = bend, -pen.u(0.7, 0.8)
    for s in (-1, 1):
        pen.curve((s * tw * 1.4, 0.0), (bend * 0.3 + s * tw, ty * 0.5), (tx + s * tw * 0.6, ty))
    if pen.detail(0.5):  # rings on the trunk
        for f in (0.3, 0.55, 0.8):
            x = bend * (0.3 * f / 0.5 if f < 0.5 else 0.3 + 0.7 * (f - 0.5) / 0.5)
            pen.line((x - tw, ty * f), (x + tw, ty * f + 0.02))
    n = pen.i(4, 7)
    for k in range(n):
        a = math.pi + math.pi * (k + 0.5) / n + pen.u(-0.15, 0.15)  # upper half, left to right
        reach = pen.u(0.3, 0.45)
        ex, ey = tx + reach * math.cos(a), ty + reach * 0.8 * math.sin(a) + 0.15
        mid = (tx + reach * 0.6 * math.cos(a), ty + reach * 0.9 * math.sin(a) - 0.05)
        pen.curve((tx, ty), mid, (ex, max(ey, -1.0)))
    pen.settle()
    pen.scale(1.0 / pen.height())  # as tall as the classic trees


PEOPLE_VARIANTS: dict[str, tuple[tuple[Callable[[Pen], None], float], ...]] = {
    # category: (drawing, base weight) of the people variants; the participant's preferences apply as for variant()
    "tree": ((tree_outline, 0.45), (tree_open, 0.35), (tree_palm, 0.2)),
    "person": ((person_bighead, 0.7), (person_oval, 0.3)),
    "water": ((water_pond, 0.35), (water_shore, 0.25), (water_river, 0.2), (water_marks, 0.2)),
    "flower": ((flower_petals, 0.45), (flower_crown, 0.3), (flower_scribble, 0.25)),
    "car": ((car_pickup, 0.4), (car_perspective, 0.3), (car_dome, 0.3)),
    "house": ((house_tower, 0.35), (house_flat, 0.25), (house_rounded, 0.15), (house_perspective, 0.25)),
    "fence": ((fence_rustic, 0.45), (fence_receding, 0.35), (fence_ticks, 0.2)),
    "grass": ((grass_scribble, 0.4), (grass_ground, 0.3), (grass_blades, 0.3)),
    "mountain": ((mountain_humps, 0.6), (mountain_peak, 0.4)),
    "boat": ((boat_canoe, 0.4), (boat_above, 0.3), (boat_barge, 0.3)),
    "umbrella": ((umbrella_closed, 0.35), (umbrella_dome, 0.4), (umbrella_cone, 0.25)),
    "train": ((train_perspective, 1.0),),
    "bird": ((bird_perched, 0.55), (bird_outline, 0.45)),
    "bench": ((bench_perspective, 0.5), (bench_side, 0.25), (bench_slab, 0.25)),
}


# ---------------------------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Category:
    """How a category is drawn and placed.

    ``zone``: ``sky`` (centre anchor, upper picture), ``ground`` (bottom anchor, on the ground, perspective
    scaled), ``backdrop`` (bottom anchor on the horizon) or ``surface`` (covers a band of ground).
    ``unit``: pixels per local unit at full size (before perspective and the participant's scale).
    ``weight``: relative frequency in scenes; ``max_count``: most instances per scene.
    """

    name: str
    draw: Callable[[Pen], None]
    zone: str
    unit: tuple[float, float]
    weight: float
    max_count: int = 1
    flip: bool = True


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("house", house, "ground", (80, 120), 1.2, 2),
        Category("tree", tree, "ground", (90, 150), 1.6, 3),
        Category("sun", sun, "sky", (11, 18), 1.0, 1, flip=False),
        Category("cloud", cloud, "sky", (12, 20), 1.1, 3, flip=False),
        Category("car", car, "ground", (35, 50), 0.9, 2),
        Category("person", person, "ground", (70, 110), 1.5, 3),
        Category("dog", dog, "ground", (30, 45), 0.8, 2),
        Category("bird", bird, "sky", (7, 13), 0.8, 4),
        Category("boat", boat, "ground", (30, 45), 0.6, 2),
        Category("fence", fence, "ground", (22, 35), 0.6, 1, flip=False),
        Category("mountain", mountain, "backdrop", (45, 90), 0.8, 1, flip=False),
        Category("road", road, "surface", (1, 1), 0.6, 1, flip=False),
        Category("grass", grass, "surface", (9, 15), 1.0, 1, flip=False),
        Category("water", water, "surface", (6, 9), 0.6, 1, flip=False),
        Category("flower", flower, "ground", (25, 40), 0.7, 4),
        Category("kite", kite, "sky", (10, 16), 0.5, 1, flip=False),
        Category("bench", bench, "ground", (30, 45), 0.6, 1),
        Category("horse", horse, "ground", (70, 100), 0.6, 2),
        Category("train", train, "ground", (35, 50), 0.5, 1),
        Category("airplane", airplane, "sky", (28, 45), 0.5, 1),
        Category("giraffe", giraffe, "ground", (110, 160), 0.5, 2),
        Category("elephant", elephant, "ground", (80, 110), 0.5, 2),
        Category("bicycle", bicycle, "ground", (40, 55), 0.5, 1),
        Category("umbrella", umbrella, "ground", (60, 85), 0.5, 1),
    )
}

CATEGORY_NAMES: tuple[str, ...] = tuple(sorted(CATEGORIES))
DEFAULT_UNSEEN: tuple[str, ...] = ("bicycle", "giraffe", "kite")


def draw_object(
    category: str, rng: np.random.Generator, style: Style, ext: tuple[float, float] = (1.0, 1.0)
) -> list[Path]:
    """The ideal paths of one drawing of ``category`` in local units (see the module docstring)."""
    pen = Pen(rng, style, category, ext)
    draw = CATEGORIES[category].draw
    if category in PEOPLE_VARIANTS:
        k = pen.people(tuple(w for _, w in PEOPLE_VARIANTS[category]))  # no random number when the style has them off
        if k is not None:
            draw = PEOPLE_VARIANTS[category][k][0]
    draw(pen)
    return pen.paths
