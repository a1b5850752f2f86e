"""The MLflow pyfunc model ``sketchseg``: :class:`SketchsegPyfunc`, whose artifact ``checkpoint`` is a sketchseg
checkpoint file, and what it is logged with (signature, input example, pinned requirements, bundled code).

Input: a DataFrame with ``categories`` (a comma-separated string, or a list of strings) and, per row, exactly one sketch
column, the input kinds `sketchseg serve` accepts (:data:`sketchseg.data.sketch.INPUT_KINDS`: ``image``, a PNG or JPEG
file as a base64 string, ``strokes``, absolute ``[x, y]`` point lists per stroke, ``stroke3``, ``[dx, dy, pen]`` rows,
or ``svg``, an SVG document), with ``width``/``height`` optional for strokes and stroke-3; :func:`parse_input` reads it
through the server's decoder (:func:`sketchseg.data.sketch.decode_sketch`), categories held to the server's limits (at
most :data:`sketchseg.serve.vocabulary.MAX_CATEGORIES`). Output, one row per input row, as the server answers:
``labels_png`` (base64 string of the label PNG, :mod:`sketchseg.render.labels`: 0 on background pixels, ``index + 1`` on
stroke pixels labelled ``categories[index]``, 255 on stroke pixels without a category; :func:`decode_labels` turns it
back into the int16 map of :class:`sketchseg.model.segmenter.Segmentation`), ``categories`` (the cleaned list the labels
index), ``shares`` (category -> fraction of stroke pixels) and ``stroke_labels`` (vector input: ``{label, index,
confidence, pixels}`` per stroke in input order, ``index`` 0-based into ``categories``, -1 for a stroke without pixels,
-2 for one without a category, as in :class:`~sketchseg.model.stroke_labels.StrokeLabel`; None for an image).

The model carries a copy of the sketchseg package (:func:`code_paths`), so it loads and serves
(`mlflow models serve`) where sketchseg is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from sketchseg.data.sketch import INPUT_KINDS, as_sketch, decode_sketch
from sketchseg.errors import InputError
from sketchseg.io_utils import png_base64
from sketchseg.render.labels import decode_labels as decode_labels  # re-exported: the codec's home is render.labels
from sketchseg.render.labels import encode_labels

if TYPE_CHECKING:
    from sketchseg.data.sketch import Sketch

SKETCH_COLUMNS = tuple(INPUT_KINDS)  # exactly one per row
INPUT_COLUMNS = (*SKETCH_COLUMNS, "width", "height", "categories")
OUTPUT_COLUMNS = ("labels_png", "categories", "shares", "stroke_labels")


def encode_png(gray: np.ndarray) -> str:
    """uint8 [H, W] -> base64 string of a grayscale PNG."""
    from PIL import Image

    return png_base64(Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), mode="L"))


def _cell(value: Any) -> Any:
    """A DataFrame cell, None for a missing one (None or NaN); arrays as lists."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.tolist() if isinstance(value, np.ndarray) else value


def _decode_sketch(row: dict[str, Any], index: int) -> Sketch:
    """One row's sketch column(s) -> :class:`Sketch` (rasterised for vector input), through the server's decoder."""
    fields = {k: _cell(row.get(k)) for k in (*SKETCH_COLUMNS, "width", "height")}
    return as_sketch(decode_sketch(**fields, where=f"row {index}"))


def _decode_categories(value: Any, row: int) -> str | list[str]:
    """One ``categories`` cell (comma-separated string, list or array of strings) -> what Segmenter.segment takes,
    held to the server's category limits (:func:`sketchseg.serve.vocabulary.check_vocabulary`)."""
    from sketchseg.model.segmenter import normalise_categories
    from sketchseg.serve.vocabulary import check_vocabulary

    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        value = [str(v) for v in value]
    elif not isinstance(value, str):
        raise InputError(f"row {row}: 'categories' must be a comma-separated string or a list of strings")
    names, _ = normalise_categories(value)
    check_vocabulary(names, where=f"row {row}")
    return value


def parse_input(model_input: Any) -> list[tuple[Sketch, str | list[str]]]:
    """The model's input (a DataFrame, or what ``pd.DataFrame`` accepts) -> one (sketch, categories) per row.

    Raises InputError naming the row and the column at fault."""
    if not isinstance(model_input, pd.DataFrame):
        model_input = pd.DataFrame(model_input)
    columns = set(model_input.columns)
    if "categories" not in columns or not columns & set(SKETCH_COLUMNS):
        raise InputError(
            f"input has the column(s) {sorted(map(str, columns))}; expected 'categories' and one of "
            f"{', '.join(SKETCH_COLUMNS)}"
        )
    rows = model_input.to_dict(orient="records")
    return [(_decode_sketch(row, i), _decode_categories(row["categories"], i)) for i, row in enumerate(rows)]


class SketchsegPyfunc(mlflow.pyfunc.PythonModel):
    """Segments sketches with the sketchseg checkpoint stored as the model's artifact ``checkpoint``
    (input and output: see the module docstring)."""

    def __init__(self) -> None:
        self._segmenter = None

    @property
    def segmenter(self):
        """The loaded :class:`~sketchseg.model.segmenter.Segmenter` (after ``load_context``)."""
        if self._segmenter is None:
            raise RuntimeError("the model's context is not loaded yet (mlflow.pyfunc.load_model loads it)")
        return self._segmenter

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from sketchseg.weights import WeightsChoice, load_segmenter

        self._segmenter, _ = load_segmenter(WeightsChoice(checkpoint=Path(context.artifacts["checkpoint"])))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """DataFrame (a sketch column, categories) -> DataFrame (labels_png, categories, shares, stroke_labels), one
        row per sketch."""
        if self._segmenter is None:
            self.load_context(context)
        rows = []
        for sketch, categories in parse_input(model_input):
            seg = self._segmenter.segment(sketch, categories=categories)
            strokes = None if seg.stroke_labels is None else [s.to_dict() for s in seg.stroke_labels]
            rows.append(
                {
                    "labels_png": encode_labels(seg),
                    "categories": seg.categories,
                    "shares": seg.shares,
                    "stroke_labels": strokes,
                }
            )
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def model_signature():
    """The model's signature: (one input kind: image | strokes | stroke3 | svg, optional width and height,
    categories) -> (labels_png: string, categories: [string], shares: {string: double}, stroke_labels: any)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, Array, ColSpec, DataType, Map, Schema

    inputs = Schema(
        [
            *(ColSpec(DataType.string if k.wire_type is str else AnyType(), k.name, required=False)
              for k in INPUT_KINDS.values()),
            ColSpec(AnyType(), "width", required=False),  # ints or floats
            ColSpec(AnyType(), "height", required=False),
            ColSpec(AnyType(), "categories"),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "labels_png"),
            ColSpec(Array(DataType.string), "categories"),
            ColSpec(Map(DataType.double), "shares"),
            ColSpec(AnyType(), "stroke_labels", required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def example_sketch(size: int = 64) -> np.ndarray:
    """A small hand-made sketch (uint8 [size, size], black strokes on white) for the model's input example."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    s = size
    draw.rectangle((s // 8, s // 2, s // 2, 7 * s // 8), outline=0, width=2)  # a house
    draw.line((s // 8, s // 2, 5 * s // 16, s // 4, s // 2, s // 2), fill=0, width=2)
    draw.line((3 * s // 4, 7 * s // 8, 3 * s // 4, s // 2), fill=0, width=2)  # a tree
    draw.ellipse((5 * s // 8, s // 4, 7 * s // 8, s // 2), outline=0, width=2)
    return np.asarray(img, dtype=np.uint8)


def input_example() -> pd.DataFrame:
    """The model's input example: one row with the hand-made sketch and two categories."""
    return pd.DataFrame({"image": [encode_png(example_sketch())], "categories": ["house, tree"]})


def pip_requirements() -> list[str]:
    """Pinned requirements of the pyfunc model (explicit, so logging does not infer them). sketchseg itself travels
    with the model (:func:`code_paths`)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    dists = ("mlflow", "torch", "torchvision", "open_clip_torch", "numpy", "pandas", "pillow", "safetensors", "tqdm",
             "pyyaml")  # fmt: skip
    for dist in dists:
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            reqs.append(dist)
    return reqs


def model_code() -> str:
    """The file MLflow runs to build the model when it loads it (:mod:`sketchseg.tracking.pyfunc_code`)."""
    return str(Path(__file__).resolve().with_name("pyfunc_code.py"))


def code_paths() -> list[str]:
    """The sketchseg package folder, bundled with the model so that it loads and serves where sketchseg is not
    installed."""
    import sketchseg

    return [str(Path(sketchseg.__file__).resolve().parent)]
