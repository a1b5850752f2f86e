"""The serving work behind the routes: check a request and estimate its memory (:meth:`SegmentService.plan`),
admit it when that memory fits (:mod:`sketchseg.serve.admission`), decode it, batch it with concurrent ones through
:meth:`Segmenter.encode_batch` in the model's worker thread, then finish its Segmentation (:meth:`Segmenter.finish`:
maps at the sketch's resolution, labels, masks) and the response in the thread pool, outside the model's thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from sketchseg.data.sketch import (
    INPUT_KINDS,
    ImageHeader,
    InputLimits,
    InputTooLarge,
    as_sketch,
    canvas_kinds,
    decode_image,
    decode_sketch,
    kinds_text,
    path_pixels,
    read_image_header,
)
from sketchseg.data.vector import VectorSketch
from sketchseg.errors import InputError
from sketchseg.io_utils import png_base64
from sketchseg.model.segmenter import (
    EncodedSketch,
    Segmentation,
    Segmenter,
    SegmentRequest,
    check_threshold,
)
from sketchseg.render import (
    UNLABELLED_COLOUR,
    colour,
    encode_labels,
    hex_colour,
    isolated_png,
    legend_entries,
    strokes_svg,
)
from sketchseg.serve import memory
from sketchseg.serve.admission import Admission
from sketchseg.serve.batching import Batcher
from sketchseg.serve.examples import example_sketches
from sketchseg.serve.schemas import (
    BatchInfo,
    Example,
    Health,
    Isolated,
    LegendItem,
    Limits,
    MemoryInfo,
    ModelCard,
    SegmentBody,
    SegmentResponse,
    StrokeLabel,
    TextCache,
)
from sketchseg.serve.vocabulary import check_vocabulary

log = logging.getLogger(__name__)
T = TypeVar("T")

MIB = 1 << 20
MAX_BODY_BYTES = 16 * MIB
WORK_PIXELS = 1024 * 1024  # larger images are segmented at a working resolution of at most this many pixels
MEMORY_BUDGET = 2048 * MIB  # estimated working memory of all admitted requests together
LARGE_BYTES = 64 * MIB  # a request whose estimate is over this is large (takes a large-request slot)
BODY_BUDGET = 1024 * MIB  # request bodies being read and parsed together (48 bytes per body byte)


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches, what it accepts and how much memory it gives requests. ``window``: seconds the first
    request of a batch waits for others; ``max_batch``: sketches per model call; ``max_body_bytes``: request body
    limit (413 above it); ``work_pixels``: larger images are segmented at a working resolution of at most that many
    pixels (None: at their own); ``memory_budget``: estimated working memory of all admitted requests together;
    ``request_memory``: of one request (413 above it; None: the whole budget); ``large_bytes``, ``large_slots``:
    requests estimated over ``large_bytes`` run at most ``large_slots`` at a time; ``queue_timeout``: seconds a
    request waits for memory before a 503; ``max_waiting``: requests waiting at most (more: 503 at once);
    ``text_cache``: category embeddings cached (least recently used dropped); ``body_budget``: memory of the
    request bodies read and parsed at a time (:class:`~sketchseg.serve.app.BodyLimit`); ``large_nice``: how much
    lower the CPU priority of the large-request threads is (Linux nice; on a machine shared with other work it lowers
    them against everything else too)."""

    max_batch: int = 16
    window: float = 0.01
    max_body_bytes: int = MAX_BODY_BYTES
    limits: InputLimits = field(default_factory=InputLimits)
    work_pixels: int | None = WORK_PIXELS
    memory_budget: int = MEMORY_BUDGET
    request_memory: int | None = None
    large_bytes: int = LARGE_BYTES
    large_slots: int = 1
    queue_timeout: float = 120.0
    max_waiting: int = 64
    text_cache: int = 4096
    body_budget: int = BODY_BUDGET
    large_nice: int = 10


@dataclass
class Plan:
    """A checked request before its pixels are decoded: its vocabulary, its sketch so far (an image's header, a
    vector sketch), the working memory it needs and what to call it in messages."""

    body: SegmentBody
    names: list[str]
    notes: list[str]
    source: ImageHeader | VectorSketch | None  # None: an SVG not parsed yet
    need: int
    what: str
    body_bytes: int = 0
    masks: bool = False  # a threshold applies (given, or the recipe's default): masks per category are made


@dataclass
class Prepared:
    """A decoded request: what the Segmenter gets, and the notes that cleaning its vocabulary produced."""

    request: SegmentRequest
    kind: str
    notes: list[str]


def _mask_png(mask: np.ndarray) -> str:
    """bool [H, W] isolated strokes -> base64 PNG, black (0) on white (255) (fast compression)."""
    return png_base64(isolated_png(mask), compress_level=1)


def _stroke_labels(seg: Segmentation) -> list[StrokeLabel] | None:
    if seg.stroke_labels is None:
        return None
    return [StrokeLabel(**s.to_dict()) for s in seg.stroke_labels]


class SegmentService:
    """One model behind the API: its Segmenter, the weights line, the batcher and the example sketches."""

    def __init__(self, segmenter: Segmenter, weights: str, settings: ServeSettings = ServeSettings()) -> None:
        self.segmenter = segmenter
        self.segmenter.batch_size = settings.max_batch
        self.segmenter.work_pixels = settings.work_pixels
        self.segmenter.model.text.max_cached = settings.text_cache
        self.weights = weights
        self.settings = settings
        self.batcher: Batcher[SegmentRequest, EncodedSketch] = Batcher(
            self.segmenter.encode_batch, max_batch=settings.max_batch, window=settings.window
        )
        self.admission = Admission(
            budget=settings.memory_budget,
            request_budget=settings.request_memory,
            large_bytes=settings.large_bytes,
            large_slots=settings.large_slots,
            queue_timeout=settings.queue_timeout,
            max_waiting=settings.max_waiting,
        )
        self.body_admission = Admission(
            budget=settings.body_budget,
            large_bytes=settings.body_budget,  # no large slots: bodies only take turns by their memory
            queue_timeout=settings.queue_timeout,
            max_waiting=settings.max_waiting,
        )
        self._large_pool = ThreadPoolExecutor(
            max_workers=settings.large_slots,
            thread_name_prefix="sketchseg-large",
            initializer=memory.lower_priority,
            initargs=(settings.large_nice,),
        )
        self._examples: list[Example] | None = None
        self._in_flight = 0
        self._segmenting = 0

    async def start(self) -> None:
        """Start the batcher and warm up (the caption tagger's first use and the model's first call are slow)."""
        memory.tune_allocator()
        await self.batcher.start()
        await run_in_threadpool(self.warm_up)

    async def stop(self) -> None:
        await self.batcher.stop()
        self._large_pool.shutdown(wait=False, cancel_futures=True)

    async def _large_work(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a large-request thread (running at a lower CPU priority than the model's thread and
        the small requests' threads, so that a big image's decoding and encoding take the CPU they leave)."""
        return await asyncio.get_running_loop().run_in_executor(self._large_pool, functools.partial(fn, *args))

    def warm_up(self) -> None:
        self.segmenter.resolve_categories(None, "a tree next to a house")
        first = self.examples()[0]
        sketch = as_sketch(decode_sketch(strokes=first.strokes, width=first.width, height=first.height))
        self.segmenter.segment_batch([SegmentRequest(sketch, categories=first.categories)])

    @property
    def limits(self) -> InputLimits:
        return self.settings.limits

    def plan(self, body: SegmentBody, body_bytes: int = 0) -> Plan:
        """Check the request and estimate its working memory before any pixel is decoded: the vocabulary (the
        category limits, whether given or parsed from a caption), the image's header (pixel limit) or the vector
        sketch (stroke, point and path limits); InputError (422) or InputTooLarge (413) on anything unusable. An SVG
        is not parsed yet (``source`` None): the plan's need is its parsing's, :meth:`plan_svg` parses it."""
        check_threshold(body.threshold)
        names, notes = self.segmenter.resolve_categories(body.categories, body.caption)
        check_vocabulary(names, caption=body.caption is not None)
        masks = body.threshold is not None or self.segmenter.recipe.threshold is not None
        plan = Plan(body=body, names=names, notes=notes, source=None, need=0, what="", body_bytes=body_bytes,
                    masks=masks)  # fmt: skip
        kind = body.kind
        if (body.width is not None or body.height is not None) and not INPUT_KINDS[kind].canvas:
            raise InputError(f"width and height go with {kinds_text(canvas_kinds())}, not with {kind}")
        if kind == "image":
            header = read_image_header(body.image, self.limits)
            plan.source = header
            plan.need = memory.image_need(header.height, header.width, header.bands, len(names), plan.masks,
                                          self.settings.work_pixels, body_bytes)  # fmt: skip
            plan.what = f"a {header.width}x{header.height} image with {len(names)} categories"
        elif kind == "svg":
            if len(body.svg) > self.limits.max_svg_chars:
                raise InputTooLarge(f"svg: {len(body.svg)} characters is over the limit of {self.limits.max_svg_chars}")
            plan.need = memory.svg_parse_need(len(body.svg), body_bytes)
            plan.what = f"an SVG of {len(body.svg)} characters"
        else:
            vector = decode_sketch(**{kind: getattr(body, kind)}, width=body.width, height=body.height,
                                   limits=self.limits)  # fmt: skip
            self._plan_vector(plan, vector)
        if body.threshold is not None:
            plan.what += " and a threshold"
        self.admission.check(plan.need, plan.what)
        return plan

    def plan_svg(self, plan: Plan) -> Plan:
        """Parse the plan's SVG (under an admission of its parsing's memory) and estimate the rest like any vector
        sketch's."""
        vector = decode_sketch(svg=plan.body.svg, limits=self.limits)
        self._plan_vector(plan, vector)
        if plan.body.threshold is not None:
            plan.what += " and a threshold"
        self.admission.check(plan.need, plan.what)
        return plan

    def _plan_vector(self, plan: Plan, vector: VectorSketch) -> None:
        total, longest = path_pixels(vector)
        plan.source = vector
        plan.need = memory.vector_need(total, longest, len(plan.names), plan.masks, plan.body_bytes)
        plan.what = f"a sketch of {len(vector)} strokes ({total} raster pixels long) with {len(plan.names)} categories"

    def prepare(self, plan: Plan) -> Prepared:
        """Decode the planned sketch (an image's pixels; a vector sketch rasterised) and its model input."""
        assert plan.source is not None, "an SVG is parsed by plan_svg first"
        sketch = as_sketch(decode_image(plan.source, self.limits) if isinstance(plan.source, ImageHeader) else
                           plan.source)  # fmt: skip
        request = SegmentRequest(sketch, categories=plan.names, threshold=plan.body.threshold,
                                 model_input=self.segmenter.model_input(sketch))  # fmt: skip
        return Prepared(request=request, kind=plan.body.kind, notes=plan.notes)

    async def segment(self, body: SegmentBody, body_bytes: int = 0) -> SegmentResponse:
        """Check and estimate (a worker thread of the pool), wait for memory (admission), decode (the pool),
        segment (batched, in the model's thread), encode the answer (the pool)."""
        self._in_flight += 1
        try:
            plan = await run_in_threadpool(self.plan, body, body_bytes)
            if plan.source is None:  # an SVG: parsing it takes memory of its own (svgelements' objects)
                work = self._large_work if self.admission.is_large(plan.need) else run_in_threadpool
                async with self.admission.admit(plan.need, plan.what):
                    plan = await work(self.plan_svg, plan)
            large = self.admission.is_large(plan.need)
            work = self._large_work if large else run_in_threadpool
            async with self.admission.admit(plan.need, plan.what):
                prepared = await work(self.prepare, plan)
                self._segmenting += 1
                try:
                    encoded = await self.batcher.submit(prepared.request, large=large)
                    kind, notes = prepared.kind, prepared.notes
                    del prepared, plan  # the model input, the decoded file: the encoded sketch carries the rest
                    response = await work(self.finish, encoded, kind, notes)
                finally:
                    self._segmenting -= 1
                del encoded
                if large:
                    await work(memory.trim)
            return response
        finally:
            self._in_flight -= 1

    def finish(self, encoded: EncodedSketch, kind: str, notes: list[str]) -> SegmentResponse:
        """The encoded sketch's Segmentation, then the response."""
        return self.respond(self.segmenter.finish(encoded), kind, notes)

    def respond(self, seg: Segmentation, kind: str, notes: list[str]) -> SegmentResponse:
        h, w = seg.labels.shape
        isolated = None
        if seg.masks is not None:
            ink = max(int(seg.strokes.sum()), 1)
            isolated = {
                name: Isolated(stroke_share=float(mask.sum()) / ink, mask_png=_mask_png(mask))
                for name, mask in zip(seg.categories, seg.masks, strict=True)
            }
        return SegmentResponse(
            categories=seg.categories,
            width=w,
            height=h,
            labels_png=encode_labels(seg),
            shares=seg.shares,
            stroke_labels=_stroke_labels(seg),
            colours=[hex_colour(colour(k)) for k in range(len(seg.categories))],
            unlabelled_colour=hex_colour(UNLABELLED_COLOUR),
            legend=[LegendItem(text=e.text, colour=hex_colour(e.rgb)) for e in legend_entries(seg)],
            strokes_svg=strokes_svg(seg) if seg.stroke_labels is not None else None,
            isolated=isolated,
            threshold=seg.threshold,
            input=kind,
            weights=self.weights,
            untrained=seg.untrained,
            notes=notes + seg.notes,
        )

    def health(self) -> Health:
        waiting = self.admission.stats().waiting
        return Health(status="ok", weights=self.weights, in_flight=self._in_flight, segmenting=self._segmenting,
                      waiting=waiting)  # fmt: skip

    def examples(self) -> list[Example]:
        if self._examples is None:
            self._examples = example_sketches()
        return self._examples

    def model_card(self) -> ModelCard:
        stats = self.batcher.stats()
        admission = self.admission.stats()
        bodies = self.body_admission.stats()
        limits = self.limits
        text = self.segmenter.model.text
        rss, peak = memory.rss()
        fields: dict[str, Any] = {k: getattr(admission, k) for k in MemoryInfo.model_fields if hasattr(admission, k)}
        return ModelCard(
            weights=self.weights,
            image_size=list(self.segmenter.model.image_size),
            recipe=self.segmenter.recipe.name,
            text_cache=TextCache(entries=text.cached, capacity=text.max_cached),
            limits=Limits(
                max_body_bytes=self.settings.max_body_bytes,
                max_pixels=limits.max_pixels,
                max_strokes=limits.max_strokes,
                max_points=limits.max_points,
                max_path_pixels=limits.max_path_pixels,
                request_memory_bytes=admission.request_budget_bytes,
            ),
            memory=MemoryInfo(**fields, work_pixels=self.settings.work_pixels or 0, rss_bytes=rss, peak_rss_bytes=peak,
                              body_budget_bytes=bodies.budget_bytes, body_in_use_bytes=bodies.in_use_bytes,
                              bodies_waiting=bodies.waiting),  # fmt: skip
            batching=BatchInfo(**{k: getattr(stats, k) for k in BatchInfo.model_fields}),
        )
