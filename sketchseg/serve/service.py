"""The serving work behind the routes: decode a request, batch it with concurrent ones through
:meth:`Segmenter.segment_batch` in the model's worker thread, and turn the :class:`Segmentation` into the response."""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass, field

from PIL import Image
from starlette.concurrency import run_in_threadpool

from sketchseg.model.segmenter import Segmentation, Segmenter, SegmentRequest, as_sketch, check_threshold
from sketchseg.render import (
    UNLABELLED_COLOUR,
    colour,
    hex_colour,
    isolated_png,
    label_png,
    legend_entries,
    strokes_svg,
)
from sketchseg.serve.batching import Batcher
from sketchseg.serve.examples import example_sketches
from sketchseg.serve.inputs import InputLimits, decode_sketch
from sketchseg.serve.schemas import (
    BatchInfo,
    Example,
    Health,
    Isolated,
    LegendItem,
    Limits,
    ModelCard,
    SegmentBody,
    SegmentResponse,
    StrokeLabel,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and what it accepts. ``window``: seconds the first request of a batch waits for
    others; ``max_batch``: sketches per model call; ``max_body_bytes``: request body limit (413 above it)."""

    max_batch: int = 16
    window: float = 0.01
    max_body_bytes: int = MAX_BODY_BYTES
    limits: InputLimits = field(default_factory=InputLimits)


@dataclass
class Prepared:
    """A decoded request: what the Segmenter gets, and the notes that cleaning its vocabulary produced."""

    request: SegmentRequest
    kind: str
    notes: list[str]


def _png(img: Image.Image) -> str:
    """A PIL image -> base64 PNG file (fast compression: half the encoding time, label maps compress well anyway)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _stroke_labels(seg: Segmentation) -> list[StrokeLabel] | None:
    if seg.stroke_labels is None:
        return None
    return [
        StrokeLabel(label=s.label, index=s.index + 1 if s.index >= 0 else 0, confidence=s.confidence, pixels=s.pixels)
        for s in seg.stroke_labels
    ]


class SegmentService:
    """One model behind the API: its Segmenter, the weights line, the batcher and the example sketches."""

    def __init__(self, segmenter: Segmenter, weights: str, settings: ServeSettings = ServeSettings()) -> None:
        self.segmenter = segmenter
        self.segmenter.batch_size = settings.max_batch
        self.weights = weights
        self.settings = settings
        self.batcher: Batcher[SegmentRequest, Segmentation] = Batcher(
            self.segmenter.segment_batch, max_batch=settings.max_batch, window=settings.window
        )
        self._examples: list[Example] | None = None
        self._in_flight = 0

    async def start(self) -> None:
        """Start the batcher and warm up (the caption tagger's first use and the model's first call are slow)."""
        await self.batcher.start()
        await run_in_threadpool(self.warm_up)

    async def stop(self) -> None:
        await self.batcher.stop()

    def warm_up(self) -> None:
        self.segmenter.resolve_categories(None, "a tree next to a house")
        first = self.examples()[0]
        sketch = as_sketch(decode_sketch(strokes=first.strokes, width=first.width, height=first.height))
        self.segmenter.segment_batch([SegmentRequest(sketch, categories=first.categories)])

    @property
    def limits(self) -> InputLimits:
        return self.settings.limits

    def prepare(self, body: SegmentBody) -> Prepared:
        """Decode the sketch and clean the vocabulary (InputError on anything unusable)."""
        check_threshold(body.threshold)
        names, notes = self.segmenter.resolve_categories(body.categories, body.caption)
        sketch = decode_sketch(
            image=body.image,
            strokes=body.strokes,
            stroke3=body.stroke3,
            svg=body.svg,
            width=body.width,
            height=body.height,
            limits=self.limits,
        )
        request = SegmentRequest(as_sketch(sketch), categories=names, threshold=body.threshold)  # rasterised here
        return Prepared(request=request, kind=body.kind, notes=notes)

    async def segment(self, body: SegmentBody) -> SegmentResponse:
        """Decode (a worker thread of the pool), segment (batched, in the model's thread), encode the answer."""
        self._in_flight += 1
        try:
            prepared = await run_in_threadpool(self.prepare, body)
            seg = await self.batcher.submit(prepared.request)
            return await run_in_threadpool(self.respond, seg, prepared)
        finally:
            self._in_flight -= 1

    def respond(self, seg: Segmentation, prepared: Prepared) -> SegmentResponse:
        h, w = seg.labels.shape
        isolated = None
        if seg.masks is not None:
            ink = max(int(seg.strokes.sum()), 1)
            isolated = {
                name: Isolated(stroke_share=float(mask.sum()) / ink, mask_png=_png(isolated_png(mask)))
                for name, mask in zip(seg.categories, seg.masks, strict=True)
            }
        return SegmentResponse(
            categories=seg.categories,
            width=w,
            height=h,
            labels_png=_png(label_png(seg)),
            shares=seg.shares,
            stroke_labels=_stroke_labels(seg),
            colours=[hex_colour(colour(k)) for k in range(len(seg.categories))],
            unlabelled_colour=hex_colour(UNLABELLED_COLOUR),
            legend=[LegendItem(text=e.text, colour=hex_colour(e.rgb)) for e in legend_entries(seg)],
            strokes_svg=strokes_svg(seg) if seg.stroke_labels is not None else None,
            isolated=isolated,
            threshold=seg.threshold,
            input=prepared.kind,
            weights=self.weights,
            notes=prepared.notes + seg.notes,
        )

    def health(self) -> Health:
        running = self.batcher.stats().running
        return Health(status="ok", weights=self.weights, in_flight=self._in_flight, segmenting=running)

    def examples(self) -> list[Example]:
        if self._examples is None:
            self._examples = example_sketches()
        return self._examples

    def model_card(self) -> ModelCard:
        stats = self.batcher.stats()
        limits = self.limits
        return ModelCard(
            weights=self.weights,
            image_size=list(self.segmenter.model.image_size),
            recipe=self.segmenter.recipe.name,
            cached_categories=cached_categories(self.segmenter),
            limits=Limits(
                max_body_bytes=self.settings.max_body_bytes,
                max_pixels=limits.max_pixels,
                max_strokes=limits.max_strokes,
                max_points=limits.max_points,
            ),
            batching=BatchInfo(**{k: getattr(stats, k) for k in BatchInfo.model_fields}),
        )


def cached_categories(segmenter: Segmenter) -> list[str]:
    """The categories whose embeddings the model's text encoder holds."""
    return segmenter.model.text.cached_categories()
