"""Example sketches for the drawing page: scenes from the project's synthetic generator (deterministic)."""

from __future__ import annotations

from sketchseg.data.strokes import CANVAS
from sketchseg.data.synth import make_scene
from sketchseg.serve.schemas import Example

EXAMPLE_SEED = 7
EXAMPLE_SCENES = (1, 3, 4, 6)  # scene indices of participant 0: 2-4 categories each


def example_sketches(seed: int = EXAMPLE_SEED, scenes: tuple[int, ...] = EXAMPLE_SCENES) -> list[Example]:
    """Generated scenes (strokes on the 256x256 canvas, rounded to 0.1 px) with their captions and categories."""
    out = []
    for index in scenes:
        scene = make_scene(seed, 0, index)
        strokes = [[(round(float(x), 1), round(float(y), 1)) for x, y in stroke] for stroke in scene.strokes]
        out.append(
            Example(
                name=f"scene {index}: {', '.join(scene.categories)}",
                caption=scene.caption,
                categories=scene.categories,
                width=CANVAS,
                height=CANVAS,
                strokes=strokes,
                stroke_categories=list(scene.labels),
            )
        )
    return out
