"""Progress in a log: a line about every 10 s of a (simulated) clock, the real total and an estimate, not a line per
update; a live tqdm bar in a terminal."""

from __future__ import annotations

import io

from tqdm import tqdm

from sketchseg.progress import LineProgress, duration, progress


class Clock:
    """A clock that advances only when told: 1/8 s per update, exact in binary floating point."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_every_ten_seconds_not_one_per_update() -> None:
    clock, log = Clock(), io.StringIO()
    bar = progress(total=800, desc="foundation", unit="step", stream=log, clock=clock)
    assert isinstance(bar, LineProgress)
    for step in range(800):  # 800 updates over 100 simulated seconds
        clock.now += 0.125
        bar.update(1)
        if step == 400:
            bar.set_postfix({"loss": "2.310"})
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10  # at 10, 20, ..., 90 s, and the closing line (at 100 s, all done)
    assert lines[0] == "foundation: 80/800 steps (10 %), 10 s, about 1 min 30 s left"
    assert lines[5] == "foundation: 480/800 steps (60 %), 1 min 00 s, about 40 s left, loss 2.310"
    assert lines[-1] == "foundation: 800/800 steps, 1 min 40 s (8 steps/s), loss 2.310"


def test_short_transient_bars_stay_silent_and_iteration_counts() -> None:
    clock, log = Clock(), io.StringIO()
    seen = []
    for item in progress(range(50), desc="evaluate", unit="sketch", leave=False, stream=log, clock=clock):
        clock.now += 0.1  # 5 s in all: less than one interval
        seen.append(item)
    assert seen == list(range(50)) and log.getvalue() == ""
    # the same loop, long enough: its lines, then a closing line that gives the real total
    clock, log = Clock(), io.StringIO()
    for _ in progress(range(50), desc="evaluate", unit="sketch", leave=False, stream=log, clock=clock):
        clock.now += 0.5
    lines = log.getvalue().splitlines()
    assert lines == [
        "evaluate: 20/50 sketches (40 %), 10 s, about 15 s left",
        "evaluate: 40/50 sketches (80 %), 20 s, about 5 s left",
        "evaluate: 50/50 sketches, 25 s (2 sketches/s)",
    ]


def test_unknown_total_and_a_total_set_later() -> None:
    clock, log = Clock(), io.StringIO()
    bar = progress(desc="shards", unit="sketch", stream=log, clock=clock)
    clock.now = 12.0
    bar.update(30)
    bar.total = 60
    bar.refresh()
    clock.now = 24.0
    bar.update(15)
    bar.close()
    bar.close()  # twice: one closing line
    assert log.getvalue().splitlines() == [
        "shards: 30 sketches, 12 s",
        "shards: 45/60 sketches (75 %), 24 s, about 8 s left",
        "shards: 45/60 sketches, 24 s (1.88 sketches/s)",
    ]


def test_a_terminal_gets_tqdm_and_disabled_bars_print_nothing() -> None:
    tty = TTY()
    bar = progress(total=3, desc="epoch 1/2", stream=tty)
    assert isinstance(bar, tqdm)
    bar.update(3)
    bar.close()
    assert "epoch 1/2" in tty.getvalue() and "3/3" in tty.getvalue()
    log = io.StringIO()
    quiet = progress(range(3), total=3, desc="x", enabled=False, stream=log)
    assert list(quiet) == [0, 1, 2] and log.getvalue() == ""


def test_durations_read_as_a_person_writes_them() -> None:
    assert [duration(s) for s in (0, 42.4, 60, 185, 3599, 3720, 32400)] == [
        "0 s", "42 s", "1 min 00 s", "3 min 05 s", "59 min 59 s", "1 h 02 min", "9 h 00 min",
    ]  # fmt: skip
