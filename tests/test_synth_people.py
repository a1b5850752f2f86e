"""The generator's people variants (``data.synth.people_variants``, sketchseg.data.synth.shapes.PEOPLE_VARIANTS).

Off, the generator draws exactly what it drew before the parameter existed (same random streams); on, every
people variant is drawn, mixed with the classic drawings, in isolated objects and in scenes. That the sketches
stay valid with the parameter on is also checked by tests/test_synth.py, whose content tests run both ways.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sketchseg.cli import main
from sketchseg.config import SynthConfig, load_config
from sketchseg.data.synth import CATEGORY_NAMES, make_object, make_scene, participant_style, shapes
from sketchseg.data.synth.shapes import PEOPLE_RATE, PEOPLE_VARIANTS, Pen, draw_object
from sketchseg.data.synth.shapes import Path as Stroke
from sketchseg.data.synth.style import make_rng

# _digest() computed with the generator as it was before people variants existed (commit d382c7f, where
# make_scene / make_object took no people_variants argument): `.venv/bin/python -c "from tests.test_synth_people
# import _digest; print(_digest())"` printed this value there.
DIGEST_BEFORE = "fe2c57caded3efebb5951ba6da99d8c653b4427d2c0c1599284eecfd1abd3471"


def _digest(**kwargs: bool) -> str:
    """SHA-256 of 48 scenes and 144 isolated objects (vectors, labels, captions), all categories, two seeds."""
    h = hashlib.sha256()
    sketches = [make_scene(s, p, i, **kwargs) for s in (0, 3) for p in range(4) for i in range(6)]
    sketches += [make_object(s, p, c, i, **kwargs) for s in (0, 3) for c in CATEGORY_NAMES
                 for p, i in ((0, 0), (5, 1), (11, 7))]
    for sk in sketches:
        h.update(sk.vector().tobytes())
        h.update("|".join(sk.labels).encode())
        h.update(sk.caption.encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ off: unchanged


def test_off_draws_what_the_generator_drew_before_bit_for_bit() -> None:
    assert _digest() == DIGEST_BEFORE
    assert _digest(people_variants=False) == DIGEST_BEFORE


def test_off_a_pen_draws_no_random_number_for_people_variants() -> None:
    pen = Pen(make_rng(1, 2), participant_style(0, 3), "water")
    before = pen.rng.bit_generator.state
    assert all(pen.people((0.5, 0.5)) is None for _ in range(20))
    assert pen.rng.bit_generator.state == before


def test_on_only_the_flag_of_the_style_changes() -> None:
    off, on = participant_style(4, 2), participant_style(4, 2, people_variants=True)
    assert not off.people_variants and on.people_variants
    assert replace(on, people_variants=False) == off
    assert _digest(people_variants=True) != DIGEST_BEFORE


# ------------------------------------------------------------------------------------------------ on: variants appear

EXT = {"water": (20.0, 6.0), "mountain": (3.0, 1.0), "fence": (4.0, 1.0), "grass": (8.0, 3.0)}
N = 60  # drawings per category and setting


def _drawings(category: str, on: bool) -> list[list[Stroke]]:
    out = []
    for i in range(N):
        style = participant_style(0, i % 12, people_variants=on)
        out.append(draw_object(category, make_rng(9, i, CATEGORY_NAMES.index(category)), style,
                               EXT.get(category, (1.0, 1.0))))
    return out


def _box(paths: list[Stroke]) -> tuple[float, float, float, float]:
    pts = np.vstack([p for p, _ in paths])
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _length(p: np.ndarray) -> float:
    return float(np.hypot(*np.diff(p, axis=0).T).sum())


def _pond(paths: list[Stroke]) -> bool:  # a closed or almost closed outline (classic water: open lines)
    return any(c or (_length(p) > 5 and np.hypot(*(p[-1] - p[0])) < 0.2 * _length(p)) for p, c in paths)


def _smooth_ridge(paths: list[Stroke]) -> bool:  # a rounded ridge (classic: straight zig-zags of a few points)
    return any(len(p) >= 20 for p, _ in paths)


def _tall(paths: list[Stroke]) -> bool:  # a tall building (classic houses are about as wide as tall)
    x0, y0, x1, y1 = _box(paths)
    return y1 - y0 > 1.5 * (x1 - x0)


def _big_head(paths: list[Stroke]) -> bool:  # a flower wider than the classic small heads on their stem
    x0, _, x1, _ = _box(paths)
    return x1 - x0 > 0.56


def _canoe(paths: list[Stroke]) -> bool:  # a lens in one stroke, its raised tips its highest points
    return any(not c and len(p) >= 20 and np.allclose(p[0], p[-1]) and p[:, 1].min() >= p[0, 1] - 1e-9
               for p, c in paths)


def _uneven_posts(paths: list[Stroke]) -> bool:  # upright posts of different heights (classic: all the same)
    posts = [_length(p) for p, _ in paths if len(p) == 2 and abs(p[1, 0] - p[0, 0]) < 0.1]
    return len(posts) >= 2 and max(posts) - min(posts) > 0.1


def _straight_stick(paths: list[Stroke]) -> bool:  # a straight stick down to the ground (classic: a hook)
    return any(len(p) == 2 and p[:, 1].max() > -1e-6 and abs(p[1, 0] - p[0, 0]) < 1e-6 and _length(p) > 0.5
               for p, _ in paths)


def _legs(paths: list[Stroke]) -> bool:  # something well below the body (classic birds fly)
    return _box(paths)[3] > 0.6


def _seat_going_back(paths: list[Stroke]) -> bool:  # a seat in perspective, its far edge to the right
    return any(c and len(p) == 4 and p[2, 0] > p[1, 0] + 0.1 for p, c in paths)


def _straight_blade(paths: list[Stroke]) -> bool:  # a single straight blade (classic: tufts and curved blades)
    return any(len(p) == 2 and _length(p) > 0.5 for p, _ in paths)


def _big_head_figure(paths: list[Stroke]) -> bool:  # the head (first path) larger than classic heads
    head = paths[0][0]
    return float(np.ptp(head[:, 1])) > 0.25


def _pickup(paths: list[Stroke]) -> bool:  # an outline with the cab's back wall rising from the bed
    return any(c and len(p) == 8 and any(abs(a[0] - b[0]) < 1e-9 and a[1] == -0.55 and b[1] == -0.95
                                         for a, b in zip(p[:-1], p[1:], strict=True)) for p, c in paths)


def _no_round_wheels(paths: list[Stroke]) -> bool:  # a train in perspective (classic trains roll on circles)
    return not any(c and len(p) >= 10 for p, c in paths)


def _open_canopy(paths: list[Stroke]) -> bool:  # a lumpy canopy left open (classic canopies are closed)
    return any(not c and len(p) >= 40 for p, c in paths)


PROPERTIES: dict[str, Callable[[list[Stroke]], bool]] = {
    "water": _pond, "mountain": _smooth_ridge, "house": _tall, "flower": _big_head, "boat": _canoe,
    "fence": _uneven_posts, "umbrella": _straight_stick, "bird": _legs, "bench": _seat_going_back,
    "grass": _straight_blade, "person": _big_head_figure, "car": _pickup, "train": _no_round_wheels,
    "tree": _open_canopy,
}


def test_every_changed_category_has_a_telling_property() -> None:
    assert set(PROPERTIES) == set(PEOPLE_VARIANTS)


@pytest.mark.parametrize("category", sorted(PEOPLE_VARIANTS))
def test_on_people_variants_appear_off_never(category: str) -> None:
    prop = PROPERTIES[category]
    off = sum(prop(d) for d in _drawings(category, False))
    on = sum(prop(d) for d in _drawings(category, True))
    assert off == 0, f"{category}: the property also holds for {off} classic drawings"
    assert 1 <= on < N, f"{category}: {on} of {N} drawings with people variants on show it"


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None]]:
    """Record (category, people variant or None) of every Pen.people call."""
    calls: list[tuple[str, int | None]] = []
    real = Pen.people

    def people(self: Pen, base: tuple[float, ...]) -> int | None:
        k = real(self, base)
        calls.append((self.category, k))
        return k

    monkeypatch.setattr(shapes.Pen, "people", people)
    return calls


def test_on_every_people_variant_is_drawn_mixed_with_classic_drawings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(monkeypatch)
    for category in PEOPLE_VARIANTS:
        _drawings(category, True)
    seen = Counter(calls)
    for category, variants in PEOPLE_VARIANTS.items():
        for k in range(len(variants)):
            assert seen[(category, k)] >= 1, f"{category}: {variants[k][0].__name__} never drawn"
    share = sum(k is not None for _, k in calls) / len(calls)
    assert abs(share - PEOPLE_RATE) < 0.08, share  # people variants mixed with the classic drawings


def test_on_the_flag_reaches_the_pen_in_scenes_and_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(monkeypatch)
    for i in range(12):
        make_scene(2, i % 4, i, people_variants=True)
    assert any(k is not None for _, k in calls)
    calls.clear()
    for i in range(6):
        make_object(2, i, "water", i, people_variants=True)
    assert any(k is not None for _, k in calls)
    calls.clear()
    for i in range(12):
        make_scene(2, i % 4, i)
        make_object(2, i, "water", i)
    assert calls and all(k is None for _, k in calls)


@pytest.mark.parametrize("category", sorted(PEOPLE_VARIANTS))
def test_people_variants_keep_the_anchor_and_size_the_scene_expects(category: str) -> None:
    zone = shapes.CATEGORIES[category].zone
    for draw, _ in PEOPLE_VARIANTS[category]:
        for i in range(N // 2):
            for ext in [EXT.get(category, (1.0, 1.0))] + ([(2.5, 1.0), (6.0, 1.0)] if category == "fence" else []):
                pen = Pen(make_rng(5, i), participant_style(0, i % 12, people_variants=True), category, ext)
                draw(pen)
                assert pen.paths and all(len(p) >= 1 and np.isfinite(p).all() for p, _ in pen.paths)
                x0, y0, x1, y1 = where = (*_box(pen.paths), draw.__name__)[:4]
                if category in ("water", "grass", "mountain"):  # within the extent (width, depth) given
                    width, depth = ext
                    assert -width / 2 - 0.01 <= x0 and x1 <= width / 2 + 0.01, (draw.__name__, where)
                    assert y1 <= 0.01 and y0 >= -depth - 0.25, (draw.__name__, where)
                    if category == "mountain":  # standing on the horizon
                        assert abs(y1) <= 0.01 and 0.3 <= y1 - y0 <= 1.05, (draw.__name__, where)
                elif zone == "ground":  # standing on y = 0, at most about two units tall, centred
                    assert abs(y1) <= 0.1 and 0.2 <= y1 - y0 <= 2.3, (draw.__name__, where)
                    assert abs(x0 + x1) / 2 <= 0.25 * (x1 - x0) + 0.05, (draw.__name__, where)
                    if category == "fence":
                        assert x1 - x0 <= ext[0] + 0.3, (draw.__name__, where)
                else:  # sky: centred, about as large as the classic drawings
                    assert abs(x0 + x1) / 2 < 0.3 and abs(y0 + y1) / 2 < 0.3 and x1 - x0 < 2.5, (draw.__name__, where)


def test_on_sketches_are_valid_and_inside_the_canvas() -> None:
    sketches = [make_scene(1, i % 9, i, people_variants=True) for i in range(40)]
    sketches += [make_object(2, i % 9, c, i, people_variants=True) for c in CATEGORY_NAMES for i in range(4)]
    for sk in sketches:
        assert len(sk.strokes) == len(sk.labels) >= 1
        for s in sk.strokes:
            assert s.ndim == 2 and s.shape[1] == 2 and len(s) >= 1 and np.isfinite(s).all()
            assert s.min() >= 0 and s.max() < 256


# ------------------------------------------------------------------------------------------------ plumbing


def test_parameter_in_config_cli_and_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert SynthConfig().people_variants is False
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    assert load_config(params).data.synth.people_variants is False
    assert load_config(params, ["data.synth.people_variants=true"]).data.synth.people_variants is True
    args = ["data", "synth", "--participants", "3", "--per-participant", "2", "--objects-per-category", "1",
            "--test-participants", "1", "--val-per-participant", "1", "--seed", "4"]
    assert main([*args, "--out", str(tmp_path / "on"), "--people-variants"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["people_variants"] is True
    assert json.loads((tmp_path / "on" / "synth.json").read_text(encoding="utf-8"))["people_variants"] is True
    assert main([*args, "--out", str(tmp_path / "off")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["people_variants"] is False
    # off: synth.json keeps the bytes it had before the parameter (no key)
    assert "people_variants" not in json.loads((tmp_path / "off" / "synth.json").read_text(encoding="utf-8"))
    # the pipeline's synth stage passes the parameter on
    import sketchseg.data.synth as synth
    from sketchseg.pipeline import stage_synth

    seen: dict[str, object] = {}
    monkeypatch.setattr(synth, "generate", lambda out, **kw: seen.update(kw))
    stage_synth(load_config(params, ["data.synth.people_variants=true"]), params, ["data.synth.people_variants=true"])
    assert seen["people_variants"] is True
