"""Training data of the offline foundation CLIP: training scene sketches with their captions and the generator's
isolated single-object sketches with their category names (SPEC §6.2). Stroke and pixel labels are never read.

Every image is decoded (or rendered) once, resized to the model's input size exactly as the evaluation feeds the
model (PIL bicubic from the 512 raster, :func:`sketchseg.eval.evaluate.model_input`) and kept in memory as uint8,
so a training step costs no I/O and no decoding.

Isolated objects are drawn filling their canvas, whereas objects in scenes are small. So that concepts are learned
at scene scale too, objects are re-rendered from their vector strokes (:func:`render_pools`), which keeps the
benchmark's stroke width whatever the size (shrinking a raster would thin and break the lines):

* **placed objects**: one object shrunk by a random factor and put at a random place of the canvas;
* **mosaics**: four objects of four different categories, one in each quadrant of the patch grid
  (:class:`MosaicLayout`); the training pairs each quadrant's patch embeddings with its object's name, the
  region-text contrast of CLIM (Wu et al., "CLIM: Contrastive Language-Image Mosaic for Region Representation",
  AAAI 2024), which teaches patch embeddings what they show. The quadrants' positions are known because the
  mosaic is composed here; no label of a scene is used.

Objects and mosaics are drawn in one of two visual domains (``render``): ``sketch``, the benchmark's own
rasterisation (1-pixel lines dilated by a 3x3 cross at 512 px), or ``clipart`` (:func:`render_clipart`): thick
dark outlines with every closed stroke filled in a shade of gray, solid shapes rather than thin lines. A foundation
trained on clip art only (``objects_fraction: 1``, so that no scene sketch is seen) stands where real CLIP stands
in the paper: it learned its concepts in another domain than the freehand sketches it is then fine-tuned on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sketchseg.config import FoundationConfig, check_render
from sketchseg.data.strokes import CANVAS, RASTER, rasterise, split_strokes
from sketchseg.errors import DataError

# Captions of isolated objects. "a sketch of {}" is the segmentation prompt (SPEC §3.4); the others add variety
# so that the text tower also maps the category name in other contexts close to the same point. "{a}" becomes
# the name's indefinite article.
OBJECT_TEMPLATES: tuple[str, ...] = ("a sketch of {}", "a sketch of {a} {}", "a drawing of {a} {}", "{a} {}")


def object_caption(template: str, category: str) -> str:
    """``template`` filled with ``category`` ("{a} {}" + "elephant" -> "an elephant")."""
    article = "an" if category[:1].lower() in "aeiou" else "a"
    return template.replace("{a}", article).format(category)


@dataclass(frozen=True)
class MosaicLayout:
    """Four square cells on a ``grid`` x ``grid`` patch grid, one per quadrant, ``block`` patches wide, separated
    by a gutter of ``grid - 2 * block`` patches so that no patch straddles two cells (7x7 grid: 3x3 cells)."""

    grid: int

    def __post_init__(self) -> None:
        if self.grid < 3:
            raise ValueError(f"a mosaic needs a patch grid of at least 3x3, got {self.grid}x{self.grid}")

    @property
    def block(self) -> int:
        return (self.grid - 1) // 2

    def cells(self) -> list[tuple[int, int]]:
        """(first row, first column) of each cell, in patches, row-major: top-left, top-right, bottom-left, ..."""
        starts = (0, self.grid - self.block)
        return [(r, c) for r in starts for c in starts]

    def region_index(self) -> torch.Tensor:
        """int64 [4, block * block]: flat (row-major) patch indices of each cell."""
        b = self.block
        rows = [[(r + i) * self.grid + (c + j) for i in range(b) for j in range(b)] for r, c in self.cells()]
        return torch.tensor(rows, dtype=torch.int64)

    def canvas_boxes(self, margin: float = 2.0) -> list[tuple[float, float, float]]:
        """(x0, y0, side) of each cell on the 256 vector canvas, shrunk by ``margin`` canvas px on every side."""
        patch = CANVAS / self.grid
        return [(c * patch + margin, r * patch + margin, self.block * patch - 2 * margin) for r, c in self.cells()]


@dataclass
class ContrastiveData:
    """In-memory training set.

    ``scene_images``: uint8 [Ns, S, S] (black strokes on white) with ``scene_captions`` (Ns strings);
    ``object_images``: uint8 [No, S, S] with ``object_labels`` [No] int64 indices into ``categories``;
    ``mosaic_images``: uint8 [Nm, S, S] with ``mosaic_labels`` [Nm, 4] (the category of each cell of ``layout``).
    """

    scene_images: torch.Tensor
    scene_captions: list[str]
    object_images: torch.Tensor
    object_labels: torch.Tensor
    categories: list[str]
    mosaic_images: torch.Tensor | None = None
    mosaic_labels: torch.Tensor | None = None
    layout: MosaicLayout | None = None

    @property
    def image_size(self) -> int:
        images = self.scene_images if len(self.scene_images) else self.object_images
        return int(images.shape[-1])

    def object_captions(self) -> list[str]:
        """Every caption of an isolated object or mosaic cell, category-major: ``OBJECT_TEMPLATES`` of each of
        ``categories`` in turn ([C * T])."""
        return [object_caption(t, c) for c in self.categories for t in OBJECT_TEMPLATES]

    def texts(self) -> list[str]:
        """Every text training can pair with an image: the scene captions, then :meth:`object_captions`."""
        return [*self.scene_captions, *self.object_captions()]

    def summary(self) -> dict[str, int]:
        mosaics = 0 if self.mosaic_labels is None else len(self.mosaic_labels)
        return {"scenes": len(self.scene_captions), "object_images": len(self.object_labels),
                "mosaics": mosaics, "categories": len(self.categories)}  # fmt: skip


def _load_resized(job: tuple[str, int]) -> np.ndarray:
    path, size = job
    try:
        with Image.open(path) as img:
            out = img.convert("L").resize((size, size), Image.Resampling.BICUBIC)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the image ({exc}); regenerate or remove it") from None
    return np.asarray(out, dtype=np.uint8)


def _map_images(
    fn: Callable[[Any], np.ndarray], jobs: list, size: int, workers: int, progress: bool, desc: str
) -> torch.Tensor:
    """``fn`` over ``jobs`` (in ``workers`` processes for large lists), stacked: uint8 [N, size, size]."""
    from sketchseg.progress import progress as progress_bar

    if workers > 1 and len(jobs) > 512:
        with ProcessPoolExecutor(workers) as pool:
            arrays = list(progress_bar(pool.map(fn, jobs, chunksize=64), total=len(jobs), desc=desc, unit="img",
                                       enabled=progress, leave=False))  # fmt: skip
    else:
        arrays = [fn(j) for j in progress_bar(jobs, desc=desc, unit="img", enabled=progress, leave=False)]
    if not arrays:
        return torch.zeros(0, size, size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))  # [N, size, size]


def load_images(paths: list[Path], size: int, workers: int = 1, progress: bool = False) -> torch.Tensor:
    """Decode every image once and resize it (bicubic) to ``size``: uint8 [N, size, size]."""
    return _map_images(_load_resized, [(str(p), size) for p in paths], size, workers, progress, "decode")


def read_objects(root: Path) -> tuple[list[np.ndarray], list[str]]:
    """Vector strokes ``(n, 3)`` and category of every isolated object under ``root/objects``, sorted by id."""
    labels_file = root / "objects" / "labels.json"
    fix = ("the offline foundation needs the synthetic generator's objects part (sketchseg data synth "
           "--objects-per-category K), or set foundation.mode: pretrained with open_clip weights")  # fmt: skip
    if not labels_file.is_file():
        raise DataError(f"{labels_file}: missing; {fix}")
    try:
        labels = json.loads(labels_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{labels_file}: unreadable ({exc}); {fix}") from None
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v.strip() for v in labels.values()):
        raise DataError(f"{labels_file}: expected a JSON object {{id: category name}}; {fix}")
    if not labels:
        raise DataError(f"{labels_file}: lists no object; {fix}")
    vectors, names = [], []
    for sid in sorted(labels):
        path = root / "objects" / "vector_sketches" / f"{sid}.npy"
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            msg = f"{path}: cannot read the object's vector strokes ({exc}); regenerate the dataset"
            raise DataError(msg) from None
        split_strokes(vector, source=str(path))  # validates the (n, 3) [x, y, pen] form
        vectors.append(np.asarray(vector, dtype=np.float32))
        names.append(labels[sid].strip())
    return vectors, names


def fit_into(vector: np.ndarray, box: tuple[float, float, float], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``vector`` [n, 3] scaled so that the longer side of its bounding box is ``scale`` x the box side
    and moved to a uniformly random place inside the square ``box`` = (x0, y0, side) of the canvas."""
    out = np.array(vector, dtype=np.float32, copy=True)
    pts = out[:, :2]  # [n, 2] x, y
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    k = box[2] * scale / max(float((hi - lo).max()), 1.0)
    span = (hi - lo) * k
    offset = np.array(box[:2], dtype=np.float64) + rng.random(2) * np.maximum(box[2] - span, 0.0)
    out[:, :2] = (pts - lo) * k + offset
    return out


# Clip-art drawing, in pixels of the 512 raster: outline width and gray, the range of fill shades, and when a stroke
# counts as closed (its ends nearer than CLOSED_PX or than CLOSED_FRACTION of its bounding-box diagonal).
CLIPART_LINE_WIDTH = 7
CLIPART_LINE_GRAY = 40
CLIPART_FILL_GRAYS = (110, 200)
CLOSED_PX = 12.0
CLOSED_FRACTION = 0.25


def render_clipart(vector: np.ndarray, seed: int, size: int = RASTER) -> np.ndarray:
    """A vector sketch [n, 3] drawn as clip art at ``size`` px: every closed stroke filled with a random shade of
    gray (drawn from ``seed``), then every stroke outlined thickly on top. uint8 [size, size], white background."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    strokes = [s * (size / CANVAS) for s in split_strokes(vector)]  # [n_i, 2] pixels
    for pts in strokes:
        if len(pts) < 3:
            continue
        diagonal = float(np.hypot(*(pts.max(axis=0) - pts.min(axis=0))))
        if float(np.hypot(*(pts[0] - pts[-1]))) < max(CLOSED_PX, CLOSED_FRACTION * diagonal):
            draw.polygon([tuple(p) for p in pts.tolist()], fill=int(rng.integers(*CLIPART_FILL_GRAYS)))
    width = max(1, round(CLIPART_LINE_WIDTH * size / RASTER))
    for pts in strokes:
        if len(pts) >= 2:
            draw.line([tuple(p) for p in pts.tolist()], fill=CLIPART_LINE_GRAY, width=width, joint="curve")
    return np.asarray(image, dtype=np.uint8)


def _render(job: tuple[np.ndarray, int, str, int]) -> np.ndarray:
    """A vector sketch drawn at 512 px in style ``render`` and resized (bicubic) to ``size``: uint8 [size, size]."""
    vector, size, render, seed = job
    if render == "clipart":
        image = render_clipart(vector, seed)
    else:
        image = rasterise(split_strokes(vector), size=RASTER).image()
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


def _render_all(
    vectors: list[np.ndarray], size: int, render: str, seeds: np.ndarray, workers: int, progress: bool, desc: str
) -> torch.Tensor:
    jobs = [(v, size, render, int(seed)) for v, seed in zip(vectors, seeds, strict=True)]
    return _map_images(_render, jobs, size, workers, progress, desc)


def render_pools(
    vectors: list[np.ndarray],
    labels: np.ndarray,
    size: int,
    layout: MosaicLayout,
    *,
    variants: int,
    mosaics: int,
    min_scale: float,
    mosaic_min_scale: float,
    seed: int,
    render: str = "sketch",
    workers: int = 1,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Placed objects and mosaics rendered once in style ``render`` (deterministic for ``seed``, whatever
    ``workers``).

    ``variants`` renderings of every object, each shrunk to a uniform random scale in [``min_scale``, 1] of the
    canvas and placed at random; ``mosaics`` images of four objects of four different categories, one per cell of
    ``layout``, each at a random scale in [``mosaic_min_scale``, 1] of its cell. ``labels``: [No] category indices.
    Returns (object images uint8 [variants * No, S, S], their labels [variants * No],
    mosaic images uint8 [mosaics, S, S], their cell labels [mosaics, 4]).
    """
    check_render(render)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int64)
    full = (2.0, 2.0, CANVAS - 4.0)
    placed = [
        fit_into(v, full, min_scale + (1.0 - min_scale) * rng.random(), rng) for _ in range(variants) for v in vectors
    ]
    placed_labels = np.tile(labels, variants)
    by_category = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1 if len(labels) else 0)]
    present = [c for c, members in enumerate(by_category) if len(members)]
    boxes = layout.canvas_boxes()
    composed, cell_labels = [], []
    if mosaics and len(present) < len(boxes):
        raise DataError(
            f"mosaics need objects of at least {len(boxes)} categories, the objects part has {len(present)}"
        )
    for _ in range(mosaics):
        chosen = rng.permutation(present)[: len(boxes)]
        parts = []
        for category, box in zip(chosen, boxes, strict=True):
            members = by_category[category]
            vector = vectors[int(members[rng.integers(len(members))])]
            parts.append(fit_into(vector, box, mosaic_min_scale + (1.0 - mosaic_min_scale) * rng.random(), rng))
        composed.append(np.concatenate(parts))
        cell_labels.append(chosen)
    seeds = rng.integers(0, 2**31, size=len(placed) + len(composed))  # the clip-art fills' shades
    object_images = _render_all(placed, size, render, seeds[: len(placed)], workers, progress, "render objects")
    mosaic_images = _render_all(composed, size, render, seeds[len(placed) :], workers, progress, "render mosaics")
    mosaic_labels = torch.from_numpy(np.asarray(cell_labels, dtype=np.int64).reshape(-1, len(boxes)))
    return object_images, torch.from_numpy(placed_labels), mosaic_images, mosaic_labels


def load_contrastive_data(
    root: str | Path,
    size: int,
    grid: int,
    *,
    object_variants: int = FoundationConfig.object_variants,
    mosaics: int = FoundationConfig.mosaics,
    object_min_scale: float = FoundationConfig.object_min_scale,
    mosaic_min_scale: float = FoundationConfig.mosaic_min_scale,
    render: str = FoundationConfig.render,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
) -> ContrastiveData:
    """The train split's scenes with their captions, plus placed objects and mosaics rendered in style ``render``
    from ``root/objects`` (see :func:`render_pools`), all at ``size`` px for a ``grid`` x ``grid`` patch grid."""
    from sketchseg.data.fscoco import read_split

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; generate one with sketchseg data synth --out {root}")
    vectors, names = read_objects(root)
    scenes = read_split(root, "train", on_error="skip", verify_images=False)
    categories = sorted(set(names))
    index = {c: i for i, c in enumerate(categories)}
    layout = MosaicLayout(grid)
    objects, object_labels, mosaic_images, mosaic_labels = render_pools(
        vectors, np.array([index[n] for n in names]), size, layout, variants=object_variants, mosaics=mosaics,
        min_scale=object_min_scale, mosaic_min_scale=mosaic_min_scale, seed=seed, render=render, workers=workers,
        progress=progress,
    )  # fmt: skip
    return ContrastiveData(
        scene_images=load_images([r.image_path for r in scenes], size, workers, progress),
        scene_captions=[r.caption for r in scenes],
        object_images=objects,
        object_labels=object_labels,
        categories=categories,
        mosaic_images=mosaic_images,
        mosaic_labels=mosaic_labels,
        layout=layout,
    )
