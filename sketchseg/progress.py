"""Progress bars a person can read, for every loop of sketchseg that reports progress.

In a terminal, :func:`progress` is a live tqdm bar. In a log (stderr not a terminal: DVC, CI, Prefect, a file) a bar
that redraws on every update would write one line per update, so there it is a :class:`LineProgress`: one line about
every ``interval`` seconds (10 by default) with the count, the real total, the elapsed time and an estimate of the
time left, and a closing line (always for bars that stay, ``leave=True``; for transient ones only when they ran long
enough to print a line at all). Both offer the part of tqdm's interface the project uses: iteration, ``update``,
``set_postfix``, a settable ``total``, ``refresh`` and ``close``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

INTERVAL = 10.0  # seconds between two lines in a log


def duration(seconds: float) -> str:
    """``42`` -> "42 s", ``185`` -> "3 min 05 s", ``3720`` -> "1 h 02 min"."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "sh", "ch", "x")) else "s")


class LineProgress:
    """A progress report for logs: a line at most every ``interval`` seconds of ``clock``, and a closing line."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        leave: bool = True,
        interval: float = INTERVAL,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit, self.leave = iterable, total, desc, unit, leave
        self.interval, self.stream, self.clock = interval, stream or sys.stderr, clock
        self.n = 0
        self.lines = 0  # lines written so far
        self.postfix = ""
        self.start = self._last = clock()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable or ():
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self._last >= self.interval and not (self.total and self.n >= self.total):  # done: close() tells
            self._last = now
            self._write(self._status(now, final=False))

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k} {v}" for k, v in items.items())

    def refresh(self) -> None:
        """Nothing to redraw in a log (tqdm's interface)."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.leave or self.lines:
            self._write(self._status(self.clock(), final=True))

    def _status(self, now: float, final: bool) -> str:
        elapsed = now - self.start
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{self.desc}: {count} {plural(self.unit)}" if self.desc else f"{count} {plural(self.unit)}"]
        if self.total and not final:
            parts[0] += f" ({100 * self.n / self.total:.0f} %)"
        parts.append(f"{duration(elapsed)}")
        if final:
            if elapsed > 0 and self.n:
                parts[-1] += f" ({self.n / elapsed:.3g} {plural(self.unit)}/s)"
        elif self.total and self.n and self.n < self.total:
            left = (self.total - self.n) * elapsed / self.n
            parts[-1] += f", about {duration(left)} left"
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self.lines += 1


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    leave: bool = True,
    interval: float = INTERVAL,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """A progress bar over ``iterable`` (or updated by hand): tqdm in a terminal, :class:`LineProgress` in a log,
    a silent tqdm when ``enabled`` is false."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True)
    return LineProgress(
        iterable, total=total, desc=desc, unit=unit, leave=leave, interval=interval, stream=stream, clock=clock
    )
