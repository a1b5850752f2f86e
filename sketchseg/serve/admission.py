"""Admission by memory: a request runs once its estimated working memory (:mod:`sketchseg.serve.memory`) fits
the process's budget next to the requests already running; until then it waits, and it is refused with 503 and a
Retry-After when it has waited ``queue_timeout`` seconds or when ``max_waiting`` requests already wait. A request
whose estimate alone exceeds the per-request budget is refused at once (413).

Large requests (estimate over ``large_bytes``: big images) also need one of ``large_slots`` slots, so that they
take turns on the CPU instead of all decoding and encoding at once; small requests never wait behind them (each
kind waits in its own first-come-first-served line, and a small request is admitted whenever its memory fits).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sketchseg.data.sketch import InputTooLarge

MIB = 1 << 20


class Overloaded(Exception):
    """No room for a request now: answered 503 with ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Waiter:
    need: int
    large: bool
    future: asyncio.Future[None] = field(repr=False)


@dataclass(frozen=True)
class AdmissionStats:
    budget_bytes: int
    request_budget_bytes: int
    in_use_bytes: int
    admitted: int
    waiting: int
    large_running: int
    large_slots: int
    large_bytes: int
    queue_timeout_s: float
    max_waiting: int
    refused: int


class Admission:
    """Admits requests by their memory estimate (module doc). Use on one event loop."""

    def __init__(
        self,
        budget: int,
        request_budget: int | None = None,
        large_bytes: int = 64 * MIB,
        large_slots: int = 1,
        queue_timeout: float = 120.0,
        max_waiting: int = 64,
    ) -> None:
        if budget < 1 or large_slots < 1 or max_waiting < 0 or queue_timeout < 0:
            raise ValueError("budget and large_slots must be >= 1, max_waiting and queue_timeout >= 0")
        self.budget = budget
        self.request_budget = min(budget, request_budget or budget)
        self.large_bytes = large_bytes
        self.large_slots = large_slots
        self.queue_timeout = queue_timeout
        self.max_waiting = max_waiting
        self._in_use = 0
        self._admitted = 0
        self._large_running = 0
        self._small: deque[_Waiter] = deque()
        self._large: deque[_Waiter] = deque()
        self._refused = 0
        self._large_seconds: deque[float] = deque(maxlen=32)  # how long recent large requests held their slot

    def check(self, need: int, what: str) -> None:
        """InputTooLarge (413) when ``need`` bytes are over the per-request budget."""
        if need > self.request_budget:
            raise InputTooLarge(
                f"{what} needs about {math.ceil(need / MIB)} MiB of working memory, over the limit of "
                f"{self.request_budget // MIB} MiB per request; send a smaller image, fewer categories or no threshold"
            )

    def is_large(self, need: int) -> bool:
        return need > self.large_bytes

    def stats(self) -> AdmissionStats:
        return AdmissionStats(
            budget_bytes=self.budget,
            request_budget_bytes=self.request_budget,
            in_use_bytes=self._in_use,
            admitted=self._admitted,
            waiting=len(self._small) + len(self._large),
            large_running=self._large_running,
            large_slots=self.large_slots,
            large_bytes=self.large_bytes,
            queue_timeout_s=self.queue_timeout,
            max_waiting=self.max_waiting,
            refused=self._refused,
        )

    def _fits(self, waiter: _Waiter) -> bool:
        if waiter.large and self._large_running >= self.large_slots:
            return False
        return self._in_use + waiter.need <= self.budget  # need <= request_budget <= budget: fits when alone

    def _take(self, waiter: _Waiter) -> None:
        self._in_use += waiter.need
        self._admitted += 1
        self._large_running += waiter.large

    def _wake(self) -> None:
        """Admit the waiters at the head of each line while they fit (small ones first)."""
        for line in (self._small, self._large):
            while line and (line[0].future.done() or self._fits(line[0])):
                waiter = line.popleft()
                if not waiter.future.done():
                    self._take(waiter)
                    waiter.future.set_result(None)

    def _retry_after(self, large: bool) -> int:
        if not large:
            return 1
        recent = sum(self._large_seconds) / len(self._large_seconds) if self._large_seconds else 2.0
        return max(1, min(120, math.ceil(recent * (len(self._large) + 1) / self.large_slots)))

    def _refuse(self, large: bool, reason: str) -> Overloaded:
        self._refused += 1
        retry = self._retry_after(large)
        return Overloaded(f"server busy: {reason}; retry in {retry} s", retry)

    @contextlib.asynccontextmanager
    async def admit(self, need: int, what: str = "this request") -> AsyncIterator[None]:
        """Hold ``need`` bytes of the budget (and a large slot) for the block; wait for them first (module doc)."""
        self.check(need, what)
        large = self.is_large(need)
        line = self._large if large else self._small
        waiter = _Waiter(need=need, large=large, future=asyncio.get_running_loop().create_future())
        if not line and self._fits(waiter):
            self._take(waiter)
        else:
            if len(self._small) + len(self._large) >= self.max_waiting:
                raise self._refuse(large, f"{self.max_waiting} requests already wait for memory")
            line.append(waiter)
            try:
                await asyncio.wait_for(asyncio.shield(waiter.future), self.queue_timeout)
            except TimeoutError:
                if not waiter.future.done():
                    waiter.future.cancel()
                    self._wake()  # the line moves on without it
                    raise self._refuse(large, f"no memory free for {self.queue_timeout:g} s") from None
            except BaseException:  # cancelled while waiting: give back what was taken meanwhile
                if waiter.future.done() and not waiter.future.cancelled():
                    self._release(waiter, 0.0)
                else:
                    waiter.future.cancel()
                    self._wake()
                raise
        start = time.monotonic()
        try:
            yield
        finally:
            self._release(waiter, time.monotonic() - start)

    def _release(self, waiter: _Waiter, seconds: float) -> None:
        self._in_use -= waiter.need
        self._admitted -= 1
        if waiter.large:
            self._large_running -= 1
            self._large_seconds.append(seconds)
        self._wake()
