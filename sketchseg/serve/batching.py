"""Micro-batching: requests that arrive together share one blocking model call in a worker thread.

:class:`Batcher` collects items submitted from the event loop: the first item opens a batch, which closes when
``max_batch`` items are in or ``window`` seconds have passed; items that arrive while the worker thread runs a batch
wait for the next one, so under load batches fill up without waiting. The model runs in one worker thread, never on
the event loop, so other endpoints answer while it works.

Items are submitted as small or large (a big image): small items go first, batched together; a large item runs
in a call of its own when no small item waits, so that a small request waits for at most one large item's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchStats:
    """What a :class:`Batcher` did: ``batches`` calls of the batch function over ``items`` items; ``recent``:
    the sizes of the last batches (newest last); ``pending``: items submitted and not answered yet; ``running``: items
    of the batch the worker thread is computing now."""

    batches: int
    items: int
    recent: list[int]
    pending: int
    running: int
    max_batch: int
    window_ms: float


class Batcher(Generic[T, R]):
    """Runs ``run(items) -> results`` (one result per item, in order) on batches of concurrently submitted items,
    in one worker thread. When a batch call raises, its items are retried one by one, so that one failing item
    answers with its own exception and the others with their results."""

    def __init__(self, run: Callable[[list[T]], Sequence[R]], max_batch: int = 16, window: float = 0.01) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch {max_batch}: must be >= 1")
        if window < 0:
            raise ValueError(f"window {window}: must be >= 0")
        self._run = run
        self.max_batch = max_batch
        self.window = window
        self._small: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._large: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batches = 0
        self._items = 0
        self._recent: deque[int] = deque(maxlen=256)
        self._pending = 0
        self._running = 0

    async def start(self) -> None:
        """Start collecting (call on the event loop that will submit)."""
        self._ready = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sketchseg-model")
        self._task = asyncio.create_task(self._loop(), name="sketchseg-batcher")

    async def stop(self) -> None:
        """Stop collecting; pending items are cancelled, a batch being computed finishes in its thread."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for line in (self._small, self._large):
            while line:
                _, future = line.popleft()
                future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, item: T, large: bool = False) -> R:
        """Queue ``item`` for the next batch (``large``: a call of its own, after the waiting small items) and
        wait for its result (or its exception)."""
        if self._ready is None:
            raise RuntimeError("Batcher.start() was not called")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending += 1
        try:
            (self._large if large else self._small).append((item, future))
            self._ready.set()
            return await future
        finally:
            self._pending -= 1

    def stats(self) -> BatchStats:
        return BatchStats(
            batches=self._batches,
            items=self._items,
            recent=list(self._recent),
            pending=self._pending,
            running=self._running,
            max_batch=self.max_batch,
            window_ms=self.window * 1000.0,
        )

    async def _collect(self) -> list[tuple[T, asyncio.Future[R]]]:
        """Wait for one item; a large one (no small one waiting) is a batch alone; else take small items until the
        batch is full or the window has passed."""
        assert self._ready is not None
        loop = asyncio.get_running_loop()
        while not self._small and not self._large:
            self._ready.clear()
            await self._ready.wait()
        if not self._small:
            batch = [self._large.popleft()]
        else:
            batch = []
            deadline = loop.time() + self.window
            while len(batch) < self.max_batch:
                while self._small and len(batch) < self.max_batch:
                    batch.append(self._small.popleft())
                left = deadline - loop.time()
                if len(batch) >= self.max_batch or left <= 0:
                    break
                self._ready.clear()
                try:
                    await asyncio.wait_for(self._ready.wait(), left)
                except TimeoutError:
                    break
        return [(item, future) for item, future in batch if not future.done()]  # a client that left is dropped

    def _run_safely(self, items: list[T]) -> list[R | BaseException]:
        try:
            results = list(self._run(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            return results
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.debug("batch of %d failed (%s); retrying its items one by one", len(items), exc)
            return [self._run_safely([item])[0] for item in items]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            self._batches += 1
            self._items += len(batch)
            self._recent.append(len(batch))
            self._running = len(batch)
            try:
                results = await loop.run_in_executor(self._executor, self._run_safely, [item for item, _ in batch])
            except Exception as exc:  # the executor itself failed (shut down): answer, keep the loop alive
                results = [exc] * len(batch)
            finally:
                self._running = 0
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
