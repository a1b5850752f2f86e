"""Inference recipes: how patch features and category names become maps, labels and isolated strokes (SPEC §3.4).

A recipe is a small explicit object the :class:`~sketchseg.model.segmenter.Segmenter` consults; it works with any
model (a sketchseg checkpoint, the authors' converted one, an open_clip backbone):

- ``sketchseg`` (default): the model's own templates and redundancy removal (``model.templates``,
  ``model.redundancy_removal``), cosine maps, the model's upsampling (bicubic by default); every stroke pixel takes
  the argmax category; a threshold only isolates each category's strokes (min-max normalised maps above it).
- ``authors``: the authors' demo (shared/authors_checkpoint.md): 85 templates (open_clip's 80
  ``OPENAI_IMAGENET_TEMPLATES`` and their 5 scene templates), the empty category's embedding (same 85 templates)
  subtracted from every category's and not renormalised, L2-normalised patch features, per-category min-max
  normalisation over the patch grid, bilinear upsampling, threshold 0.6: map values below it count as 0, so a stroke
  pixel whose every value fell below it is left unlabelled (``UNLABELLED`` in ``Segmentation.labels``). Threshold 0
  gives their evaluation (test.py: no threshold; argmax is unchanged by it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sketchseg.errors import InputError
from sketchseg.model.config import REDUNDANCY_MODES
from sketchseg.model.encoder import SketchFeatures
from sketchseg.model.similarity import minmax_normalise, similarity_maps

# The five templates the authors append to open_clip's 80 ImageNet templates (demo.py, app.py, test.py).
AUTHORS_SCENE_TEMPLATES = (
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "this is the {} in the scene.",
    "this is one {} in the scene.",
)
NORMALISE_MODES = ("none", "minmax")


def authors_templates() -> tuple[str, ...]:
    """The authors' 85 prompt templates: open_clip's 80 ``OPENAI_IMAGENET_TEMPLATES``, then their 5."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES) + AUTHORS_SCENE_TEMPLATES


@dataclass(frozen=True)
class InferenceRecipe:
    """What the Segmenter does between the encoder and the labels. ``None`` fields defer to the model's config.

    ``templates``: prompt templates averaged per category (None: ``model.templates``).
    ``removal``: ``none`` | ``empty`` (subtract the empty category's embedding, built from the same templates) |
    ``mean`` (subtract the mean over the vocabulary); the difference is not renormalised (None: the model's own
    ``model.redundancy_removal``, computed as :meth:`SketchSegModel.grid_similarity` does).
    ``normalise``: ``none`` (cosine maps) | ``minmax`` (per category over the patch grid, before upsampling).
    ``upsample``: ``bicubic`` | ``bilinear`` (None: ``model.upsample``).
    ``threshold``: the default threshold when the caller gives none (None: no threshold, no isolated masks).
    ``unlabel_below_threshold``: a stroke pixel whose every map value is below the threshold gets no category.
    """

    name: str
    templates: tuple[str, ...] | None = None
    removal: str | None = None
    normalise: str = "none"
    upsample: str | None = None
    threshold: float | None = None
    unlabel_below_threshold: bool = False

    def __post_init__(self) -> None:
        if self.removal is not None and self.removal not in REDUNDANCY_MODES:
            raise InputError(f"recipe {self.name}: removal {self.removal!r}, choose one of {REDUNDANCY_MODES}")
        if self.normalise not in NORMALISE_MODES:
            raise InputError(f"recipe {self.name}: normalise {self.normalise!r}, choose one of {NORMALISE_MODES}")
        if self.upsample not in (None, "bicubic", "bilinear"):
            raise InputError(f"recipe {self.name}: upsample {self.upsample!r}, choose bicubic or bilinear")
        if self.templates is not None and (not self.templates or any("{}" not in t for t in self.templates)):
            raise InputError(f"recipe {self.name}: every template needs a '{{}}' placeholder")

    @property
    def model_text(self) -> bool:
        """True when the category vectors are the model's own (templates and removal of its config)."""
        return self.templates is None and self.removal is None

    def text(self, model: torch.nn.Module, names: Sequence[str]) -> torch.Tensor:
        """Category vectors [C, D] the patch features are compared with (cached per templates and category)."""
        names = list(names)
        if self.model_text:
            return model.encode_categories(names)
        templates = self.templates or model.cfg.templates
        emb = model.text.encode_categories(names, templates)  # [C, D], unit norm
        removal = self.removal or model.cfg.redundancy_removal
        if removal == "empty":
            emb = emb - model.text.encode_categories([""], templates)  # [C, D] - [1, D]
        elif removal == "mean":
            emb = emb - emb.mean(dim=0, keepdim=True)
        return emb

    def grid_maps(self, model: torch.nn.Module, features: SketchFeatures, text: torch.Tensor) -> torch.Tensor:
        """Maps on the patch grid [B, C, rows, cols] from :meth:`text`'s vectors ([C, D] or [B, C, D])."""
        if self.model_text:
            maps = model.grid_similarity(features, text)
        else:
            maps = similarity_maps(features.patches, text, features.grid, normalise_text=False, shifts=features.shifts,
                                   mode=self.upsample_mode(model))  # fmt: skip
        return minmax_normalise(maps) if self.normalise == "minmax" else maps

    def upsample_mode(self, model: torch.nn.Module) -> str:
        return self.upsample or model.cfg.upsample

    def isolate(self, maps: torch.Tensor, threshold: float) -> torch.Tensor:
        """[C, H, W] upsampled maps -> bool [C, H, W]: where each category's (min-max normalised) map passes
        ``threshold`` (strictly above it; at or above it when values below it are dropped, as the authors do)."""
        norm = maps if self.normalise == "minmax" else minmax_normalise(maps[None])[0]
        return norm >= threshold if self.unlabel_below_threshold else norm > threshold


SKETCHSEG = InferenceRecipe("sketchseg")
RECIPE_NAMES = ("sketchseg", "authors")


def authors_recipe() -> InferenceRecipe:
    """The authors' demo recipe (module docstring)."""
    return InferenceRecipe(
        "authors",
        templates=authors_templates(),
        removal="empty",
        normalise="minmax",
        upsample="bilinear",
        threshold=0.6,
        unlabel_below_threshold=True,
    )


def get_recipe(recipe: str | InferenceRecipe) -> InferenceRecipe:
    """A recipe by name (``sketchseg`` | ``authors``), or the given recipe object itself."""
    if isinstance(recipe, InferenceRecipe):
        return recipe
    if recipe == "sketchseg":
        return SKETCHSEG
    if recipe == "authors":
        return authors_recipe()
    raise InputError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPE_NAMES)}")
