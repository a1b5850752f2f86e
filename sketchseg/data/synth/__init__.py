"""Procedural freehand scene sketches in the FSCOCO-Seg layout: the project's embedded default dataset (SPEC §6.2).

Public API:

- :func:`generate` writes a whole dataset (``sketchseg data synth``) and returns its metadata;
- :func:`make_scene` / :func:`make_object` draw one scene / one isolated object in memory, deterministically;
- :func:`participant_style` is a participant's drawing style; :data:`CATEGORY_NAMES` the drawable categories.
"""

from sketchseg.data.synth.scene import PlacedObject, SynthSketch, compose_scene, make_object, make_scene
from sketchseg.data.synth.shapes import CATEGORY_NAMES, DEFAULT_UNSEEN
from sketchseg.data.synth.style import Style, participant_style
from sketchseg.data.synth.writer import generate, participant_names, plan

__all__ = [
    "CATEGORY_NAMES",
    "DEFAULT_UNSEEN",
    "PlacedObject",
    "Style",
    "SynthSketch",
    "compose_scene",
    "generate",
    "make_object",
    "make_scene",
    "participant_names",
    "participant_style",
    "plan",
]
