"""Procedural drawings of object categories as ideal paths, before the participant's hand is applied.

Every category is a function drawing with a :class:`Pen` in local units (y grows downwards, like the canvas).
Ground objects have their anchor (0, 0) at the bottom centre and are about one unit tall; sky objects have it at
their centre. The scene decides how many pixels a unit is. Extended categories (road, grass, water, fence,
mountain, train) read the extent they must cover from ``pen.ext`` (width, depth in units).

Every drawing has variants (round / pine / bare tree ...) chosen with the participant's preferences, and optional
details (windows, spots, rays ...) drawn with the participant's ``detail`` probability.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sketchseg.data.synth.style import Style

Path = tuple[np.ndarray, bool]  # points [n, 2] in local units, closed?
TAU = 2.0 * math.pi


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
    CATEGORIES[category].draw(pen)
    return pen.paths
