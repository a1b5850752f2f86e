"""Request and response bodies of the REST API (their descriptions make the OpenAPI document at ``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from sketchseg.data.sketch import INPUT_KINDS, canvas_kinds, check_text, given_kinds, kinds_text
from sketchseg.errors import InputError
from sketchseg.serve.vocabulary import MAX_CAPTION_CHARS, MAX_CATEGORIES, MAX_CATEGORY_CHARS

# one optional field per input kind (sketchseg.data.sketch.INPUT_KINDS), in its order
_SketchFields = create_model(
    "_SketchFields",
    **{k.name: (k.wire_type | None, Field(None, description=k.description)) for k in INPUT_KINDS.values()},
)
_CANVAS = kinds_text(canvas_kinds())
Point = tuple[float, float]


class SegmentBody(_SketchFields):
    """One sketch (exactly one of ``image``, ``strokes``, ``stroke3``, ``svg``) and its vocabulary (exactly one of
    ``categories`` and ``caption``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"strokes": [[[10, 10], [60, 60]], [[60, 10], [10, 60]]], "width": 64, "height": 64,
                 "categories": ["tree", "house"]},
                {"image": "iVBORw0KGgo...", "caption": "a giraffe eating leaves from a tree", "threshold": 0.7},
            ]
        },
    )  # fmt: skip

    width: float | None = Field(None, gt=0, description=f"With {_CANVAS}: the canvas width the points use.")
    height: float | None = Field(None, gt=0, description=f"With {_CANVAS}: the canvas height the points use.")
    categories: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CATEGORIES,
        description=f"Category names (at most {MAX_CATEGORIES}, each at most {MAX_CATEGORY_CHARS} characters); "
        "trimmed, case-insensitive duplicates dropped.",
    )
    caption: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CAPTION_CHARS,
        description=f"A caption; the categories are its object nouns, in caption order (at most {MAX_CATEGORIES}).",
    )
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Also isolate each category's strokes: stroke pixels whose min-max normalised similarity "
        "exceeds it.",
    )

    @field_validator("categories")
    @classmethod
    def _valid_names(cls, value: list[str] | None) -> list[str] | None:
        for i, name in enumerate(value or ()):
            _unicode(name, f"category {i}")
        return value

    @field_validator("caption", "svg")
    @classmethod
    def _valid_text(cls, value: str | None) -> str | None:
        if value is not None:
            _unicode(value, "text")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SegmentBody:
        kinds = given_kinds(**self.sketch_fields())
        if len(kinds) != 1:
            got = f"got {' and '.join(kinds)}" if kinds else "got none"
            raise ValueError(f"give exactly one of {', '.join(INPUT_KINDS)} ({got})")
        if (self.categories is None) == (self.caption is None):
            got = "got both" if self.categories is not None else "got neither"
            raise ValueError(f"give exactly one of categories and caption ({got})")
        long = [c[:20] for c in self.categories or () if len(c) > MAX_CATEGORY_CHARS]
        if long:
            raise ValueError(f"category names are limited to {MAX_CATEGORY_CHARS} characters ({long[0]!r}...)")
        return self

    def sketch_fields(self) -> dict[str, object]:
        """The input-kind fields: name -> value (None when not given)."""
        return {name: getattr(self, name) for name in INPUT_KINDS}

    @property
    def kind(self) -> str:
        """The one input kind given."""
        return given_kinds(**self.sketch_fields())[0]


def _unicode(value: str, what: str) -> None:
    try:
        check_text(value, what)
    except InputError as exc:
        raise ValueError(str(exc)) from None


class StrokeLabel(BaseModel):
    """The label of one input stroke: the majority category of its pixels."""

    label: str | None = Field(
        description="Category name; null when the stroke has no pixel on the canvas or most of its pixels got none."
    )
    index: int = Field(
        description="0-based index into categories (its pixels' value in labels_png is index + 1); -1: the stroke "
        "has no pixel on the canvas, -2: most of its pixels have no category."
    )
    confidence: float = Field(description="Share of the stroke's pixels that voted for the label (ties: lower index).")
    pixels: int = Field(description="The stroke's pixels in the rasterised sketch.")


class LegendItem(BaseModel):
    """One legend line of the result: a colour and what it means."""

    text: str = Field(
        description="Category and the share of stroke pixels labelled with it; for vector input the share of the "
        "strokes' pixels in strokes labelled with it and how many strokes those are (0 strokes: 0%)."
    )
    colour: str = Field(description="#rrggbb")


class Isolated(BaseModel):
    """The strokes a threshold isolates for one category."""

    stroke_share: float = Field(description="Fraction of the sketch's stroke pixels isolated for this category.")
    mask_png: str = Field(description="Base64 8-bit PNG the size of the sketch: isolated strokes black (0) on white.")


class SegmentResponse(BaseModel):
    """The segmentation of one sketch."""

    categories: list[str] = Field(
        description="The cleaned category list, which stroke_labels' index and labels_png's values (minus 1) index."
    )
    width: int = Field(description="Width of labels_png (the image's, or the rasterised strokes').")
    height: int = Field(description="Height of labels_png.")
    labels_png: str = Field(
        description="Base64 8-bit palette PNG whose pixel values are 0 on background, index + 1 on stroke pixels "
        "labelled categories[index] (k: categories[k-1]), 255 on a stroke pixel left without a category; its "
        "palette shows the categories' colours. Decode: sketchseg.render.labels.decode_labels."
    )
    shares: dict[str, float] = Field(description="Category -> fraction of the sketch's stroke pixels labelled with it.")
    stroke_labels: list[StrokeLabel] | None = Field(
        None, description="Vector input: one label per input stroke, in input order; null for images."
    )
    colours: list[str] = Field(description="#rrggbb colour of each category (as in labels_png's palette).")
    unlabelled_colour: str = Field(description="#rrggbb colour of strokes left without a category.")
    legend: list[LegendItem] = Field(description="Legend lines: each category's share, then any unlabelled share.")
    strokes_svg: str | None = Field(
        None, description="Vector input: the strokes as an SVG document, each coloured by its label."
    )
    isolated: dict[str, Isolated] | None = Field(
        None, description="With a threshold: each category's isolated strokes."
    )
    threshold: float | None = Field(None, description="The threshold applied, if any.")
    input: str = Field(description=f"Which input was segmented: {kinds_text()}.")
    weights: str = Field(description="The weights that produced this answer.")
    untrained: bool = Field(
        False, description="The weights are a random initialisation: the labels are meaningless (strokes_svg and the "
        "drawing page say UNTRAINED)."
    )
    notes: list[str] = Field(description="Anything worth knowing: duplicates dropped, an inverted image, ...")


class Health(BaseModel):
    """Liveness, answered even while the model works."""

    status: str = Field(description="ok")
    weights: str
    in_flight: int = Field(description="Segment requests accepted and not answered yet.")
    segmenting: int = Field(
        description="Sketches being segmented right now (queued for or in the model's thread, or being finished)."
    )
    waiting: int = Field(0, description="Requests waiting for memory (admission).")


class Limits(BaseModel):
    """What one request may hold; over a limit the answer is 413 (body, pixels, strokes, points, path length,
    memory) or 422 (categories)."""

    max_body_bytes: int
    max_pixels: int
    max_strokes: int
    max_points: int
    max_path_pixels: int = Field(description="Length of all strokes together in pixels of the 512 x 512 raster.")
    max_categories: int = MAX_CATEGORIES
    max_category_chars: int = MAX_CATEGORY_CHARS
    max_caption_chars: int = MAX_CAPTION_CHARS
    request_memory_bytes: int = Field(description="Estimated working memory one request may need (413 above).")


class MemoryInfo(BaseModel):
    """Admission: requests are admitted while their estimated working memory fits the budget; the others wait
    (503 with Retry-After after ``queue_timeout_s``, or at once when ``max_waiting`` already wait)."""

    budget_bytes: int = Field(description="Estimated working memory of all admitted requests together, at most.")
    in_use_bytes: int = Field(description="Estimated working memory of the requests admitted now.")
    admitted: int = Field(description="Requests admitted now.")
    waiting: int = Field(description="Requests waiting for memory or a large-request slot now.")
    large_running: int = Field(description="Large requests (estimate over large_bytes) admitted now.")
    large_slots: int = Field(description="Large requests admitted at a time (small ones are not held behind them).")
    large_bytes: int = Field(description="A request whose estimate exceeds this is large.")
    queue_timeout_s: float
    max_waiting: int
    refused: int = Field(description="Requests answered 503 so far (queue full or waited too long).")
    work_pixels: int = Field(description="Images padded to a square of more pixels are segmented at a working "
                             "resolution of at most this many pixels.")  # fmt: skip
    body_budget_bytes: int = Field(description="Memory of the request bodies read and parsed at a time (48 bytes per "
                                   "body byte: JSON numbers become Python objects); the others wait.")  # fmt: skip
    body_in_use_bytes: int
    bodies_waiting: int
    rss_bytes: int | None = Field(description="Resident memory of the server process now (Linux).")
    peak_rss_bytes: int | None = Field(description="Peak resident memory of the server process (Linux).")


class TextCache(BaseModel):
    """The category-embedding cache: bounded (least recently used dropped first) and private to the process; the
    names in it are not listed."""

    entries: int
    capacity: int


class BatchInfo(BaseModel):
    """How concurrent requests were batched so far."""

    max_batch: int = Field(description="Most sketches per model call.")
    window_ms: float = Field(description="How long the first request of a batch waits for others.")
    batches: int = Field(description="Model calls so far.")
    items: int = Field(description="Sketches segmented so far.")
    recent: list[int] = Field(description="Sizes of the latest batches, newest last.")
    pending: int = Field(description="Sketches queued or being segmented now.")
    running: int = Field(description="Sketches in the model's worker thread right now.")


class ModelCard(BaseModel):
    """The model being served."""

    weights: str = Field(description="Where the weights come from.")
    image_size: list[int] = Field(description="The model's input size [H, W]; sketches are padded and resized to it.")
    recipe: str
    text_cache: TextCache
    limits: Limits
    memory: MemoryInfo
    batching: BatchInfo


class Example(BaseModel):
    """A generated scene sketch to load on the drawing page."""

    name: str
    caption: str
    categories: list[str] = Field(description="Its categories in order of first stroke.")
    width: int
    height: int
    strokes: list[list[Point]]
    stroke_categories: list[str] = Field(description="The generator's category of each stroke (ground truth).")
