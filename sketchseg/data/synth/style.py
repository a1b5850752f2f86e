"""Per-participant drawing style and the "humanising" of ideal paths into freehand strokes.

A participant's style is a deterministic function of ``(seed, participant)``. The FS-COCO vector format has no
stroke width, so styles differ in what the format can carry: point spacing, hand tremor, low-frequency wobble,
bowing of straight lines, per-stroke misplacement, overshoot / unclosed shapes, drawing scale, the amount of
optional detail, whether connected lines are drawn in one stroke or several, and which variant of an object
(round or pine tree, stick or dressed person ...) the participant prefers. ``people_variants`` (the generator's
parameter, not a trait of the participant) adds the object variants people draw (see :mod:`.shapes`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

# Stream tags of the random generators, so that every random quantity has its own independent stream.
STYLE_TAG = 1
SCENE_TAG = 2
OBJECT_TAG = 3
VARIANT_TAG = 4


def make_rng(*key: int) -> np.random.Generator:
    """An independent generator for a tuple of non-negative integers (seed, tag, participant, index, ...)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in key])))


@dataclass(frozen=True)
class Style:
    """How one participant draws. Lengths are canvas pixels (256x256 canvas) unless stated otherwise."""

    seed: int
    participant: int
    spacing: float  # mean distance between recorded points
    jitter: float  # hand tremor, px (smoothed noise across the stroke)
    wobble: float  # low-frequency deviation, px per sqrt(px) of stroke length
    bow: float  # std of the bulge of straight lines, fraction of their length
    sloppy: float  # per-stroke misplacement, fraction of the object's unit size
    overshoot: float  # mean extension of line ends past their target, fraction (0..~0.25)
    gap: float  # probability of leaving a closed shape open instead of overlapping its start
    scale: float  # object size multiplier
    detail: float  # probability of drawing optional details (windows, spots, rays ...)
    merge: float  # probability of drawing two connected lines in one stroke
    split: float  # probability of lifting the pen in the middle of a long line
    slant: float  # consistent shear of every drawing, x += slant * (-y)
    corner: float  # rounding of corners (0 sharp .. 1 round), via smoothing before resampling
    retrace: float  # probability of going over a line a second time (a "sketchy" hand)
    people_variants: bool = False  # also draw the variants people use (ponds, humps, tall buildings ...)

    def variant_weights(self, category: str, base: tuple[float, ...]) -> np.ndarray:
        """Participant-specific preference over ``len(base)`` drawing variants of ``category`` (sums to 1)."""
        rng = make_rng(self.seed, VARIANT_TAG, self.participant, zlib.crc32(category.encode()), len(base))
        w = np.asarray(base, dtype=np.float64) * np.exp(rng.normal(0.0, 1.2, len(base)))
        return w / w.sum()


def participant_style(seed: int, participant: int, people_variants: bool = False) -> Style:
    """The drawing style of participant number ``participant`` (0-based) for generator seed ``seed``.

    ``people_variants`` adds the object variants people draw; it draws no random number here.
    """
    r = make_rng(seed, STYLE_TAG, participant)
    return Style(
        seed=int(seed),
        participant=int(participant),
        spacing=float(r.uniform(1.6, 5.0)),
        jitter=float(r.uniform(0.05, 0.55)),
        wobble=float(r.uniform(0.04, 0.18)),
        bow=float(r.uniform(0.0, 0.045)),
        sloppy=float(r.uniform(0.0, 1.0)),
        overshoot=float(r.uniform(0.0, 0.22)),
        gap=float(r.uniform(0.05, 0.6)),
        scale=float(r.uniform(0.85, 1.2)),
        detail=float(r.uniform(0.25, 1.0)),
        merge=float(r.uniform(0.0, 0.8)),
        split=float(r.uniform(0.0, 0.35)),
        slant=float(r.normal(0.0, 0.06)),
        corner=float(r.uniform(0.0, 1.0)),
        retrace=float(r.uniform(0.0, 0.25)) if r.random() < 0.35 else 0.0,
        people_variants=bool(people_variants),
    )


# ---------------------------------------------------------------------------------------------------------------
# geometry helpers on polylines [n, 2]


def arclength(p: np.ndarray) -> np.ndarray:
    """Cumulative arc length ``[n]`` of a polyline ``[n, 2]`` (starts at 0)."""
    d = p[1:] - p[:-1]
    out = np.empty(len(p))
    out[0] = 0.0
    np.cumsum(np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2), out=out[1:])
    return out


def resample_at(p: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points ``[m, 2]`` at arc-length positions ``t`` along polyline ``p`` with cumulative length ``s``."""
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def _smooth(v: np.ndarray, k: int) -> np.ndarray:
    """Moving average of a 1-D array with window ``2k+1`` (edges padded)."""
    if k <= 0 or len(v) < 3:
        return v
    pad = np.concatenate([np.full(k, v[0]), v, np.full(k, v[-1])])
    c = np.cumsum(np.concatenate([[0.0], pad]))
    return (c[2 * k + 1 :] - c[: -2 * k - 1]) / (2 * k + 1)


def humanise(
    path: np.ndarray, closed: bool, unit: float, style: Style, rng: np.random.Generator
) -> np.ndarray:
    """Turn an ideal path ``[n, 2]`` (canvas px) into a freehand stroke ``[m, 2]``.

    ``unit`` is the object's size in pixels; it bounds how far a stroke may be displaced. The result keeps the
    drawing direction of ``path``; closed paths end near (before or past) their start.
    """
    p = np.asarray(path, dtype=np.float64)
    if closed:
        p = np.concatenate([p, p[:1]])
    s = arclength(p)
    length = float(s[-1])
    z = rng.standard_normal(7)  # bow, wobble x2, shift x2, rotation, spare
    r = rng.random(9)  # gap?, gap size, overlap size, overshoot x2, frequency x2, phase x2
    if length < 1e-6:
        return p[:1] + 0.3 * z[:4].reshape(2, 2)
    # dense copy at ~1.5 px so that displacement fields are smooth
    n = max(int(length / 1.5), 4)
    t = np.arange(n) * (length / (n - 1))
    if closed:  # close imperfectly: overlap the start or leave a gap
        if r[0] < style.gap:
            t = t[: max(3, int(n * (1.0 - 0.06 * r[1])))]
        else:
            extra = length * 0.12 * r[2] * (0.3 + style.overshoot * 3)
            k = max(int(extra / 1.5), 1)
            t = np.concatenate([t, np.arange(1, k + 1) * (extra / k)])  # wraps onto the start of the path
    q = resample_at(p, s, t)
    if style.corner > 0.05 and len(q) > 6:  # rounded corners
        k = int(round(style.corner * min(3.0, 0.02 * length)))
        if k > 0:
            q = np.stack([_smooth(q[:, 0], k), _smooth(q[:, 1], k)], axis=1)
    if not closed and style.overshoot > 0:  # overshoot both ends along the end tangents
        cap = min(length * 0.25, 8.0) * style.overshoot
        d0, d1 = q[0] - q[min(3, len(q) - 1)], q[-1] - q[max(-4, -len(q))]
        e0, e1 = cap * (2.0 * r[3] - 0.4), cap * (2.0 * r[4] - 0.4)
        n0, n1 = math.hypot(d0[0], d0[1]), math.hypot(d1[0], d1[1])
        head = [q[:1] + d0 / n0 * e0] if e0 > 0.2 and n0 > 1e-6 else []
        tail = [q[-1:] + d1 / n1 * e1] if e1 > 0.2 and n1 > 1e-6 else []
        if head or tail:
            q = np.concatenate([*head, q, *tail])
    # normal field from central differences
    tan = np.empty_like(q)
    tan[1:-1] = q[2:] - q[:-2]
    tan[0], tan[-1] = q[1] - q[0], q[-1] - q[-2]
    tn = np.maximum(np.sqrt(tan[:, 0] ** 2 + tan[:, 1] ** 2), 1e-9)
    u = np.arange(len(q)) * (1.0 / max(len(q) - 1, 1))
    # bow (one bulge), wobble (two low-frequency waves) and tremor (smoothed noise), all along the normal;
    # bowing only makes sense for straight-ish lines: on a bent path it would fold the offset curve at corners
    straight = 0.0 if closed else (math.hypot(*(p[-1] - p[0])) / length) ** 4
    amp = style.wobble * math.sqrt(min(length, 150.0)) * 0.6
    f = (0.5 + 1.5 * r[5:7]) * max(1.0, length / 200.0)
    off = (z[0] * style.bow * min(length, 120.0) * straight) * np.sin(np.pi * u)
    off += amp * z[1] * np.sin(2 * np.pi * f[0] * u + 2 * np.pi * r[7])
    off += amp * z[2] * np.sin(2 * np.pi * f[1] * u + 2 * np.pi * r[8])
    if style.jitter > 0:
        off += _smooth(rng.standard_normal(len(q)) * (style.jitter * 2.0), 2)
    off /= tn
    # misplacement of the whole stroke: small rotation about its centre and a shift
    shift = np.clip(z[3:5] * (style.sloppy * 0.025 * unit), -4.0, 4.0)
    ang = z[5] * style.sloppy * 0.035
    x = q[:, 0] - tan[:, 1] * off
    y = q[:, 1] + tan[:, 0] * off
    cx, cy = x.mean(), y.mean()
    ca, sa = math.cos(ang), math.sin(ang)
    q = np.stack([(x - cx) * ca - (y - cy) * sa + cx + shift[0], (x - cx) * sa + (y - cy) * ca + cy + shift[1]], 1)
    # record points at the participant's spacing (uneven, denser near the ends)
    s2 = arclength(q)
    total = float(s2[-1])
    spacing = min(style.spacing, max(total / 6.0, 0.8))
    m = max(int(total / spacing), 1)
    if m > 1:
        steps = spacing * (0.6 + 0.8 * rng.random(m))
        steps[:2] *= 0.6
        steps[-2:] *= 0.6
        tt = np.empty(m + 1)
        tt[0] = 0.0
        np.cumsum(steps, out=tt[1:])
        tt *= total / tt[-1]
    else:
        tt = np.array([0.0, total])
    return resample_at(q, s2, tt)
