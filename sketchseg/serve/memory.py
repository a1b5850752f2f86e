"""The server process's memory: what a request is expected to need (:func:`image_need`, :func:`vector_need`, used
for admission), glibc's allocator tuned to give freed memory back to the system (:func:`tune_allocator`,
:func:`trim`), the resident size now and at its peak (:func:`rss`, Linux); and :func:`lower_priority` for the
threads of large requests.

The estimates are upper bounds of the working memory one request adds to the process while it is decoded,
segmented and answered, measured with ``bench/serve.py``'s per-request probe (``--probe-memory``) on the shapes
the API accepts; they err on the high side, so that admitted requests together stay within the budget.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1 << 20
BASE_BYTES = 8 * MIB  # per request: the parsed body's objects, the answer's PNGs and JSON, Python objects
RASTER_SIDE = 512  # vector sketches are rasterised on a 512 x 512 canvas


def _maps_bytes(categories: int, pixels: int, threshold: bool) -> int:
    """Similarity maps of ``categories`` over ``pixels``: float32 maps and the argmax's int64 indices; with a
    threshold the min-max normalisation's two float32 temporaries and three boolean masks."""
    per_pixel = 4 * categories + 8 + ((8 + 3) * categories if threshold else 0)
    return per_pixel * pixels


def image_need(
    height: int,
    width: int,
    bands: int,
    categories: int,
    threshold: bool,
    work_pixels: int | None,
    body_bytes: int = 0,
) -> int:
    """Bytes one image request needs at most: decoding (``bands`` channels, composited over white when 4),
    the sketch (gray, strokes), the padded square and its resizing, the maps (at the working resolution when the
    padded square holds more than ``work_pixels`` pixels), labels and, with a threshold, one mask per category at
    the image's size, the label PNG's encoding; plus the request body."""
    pixels = height * width
    square = max(height, width) ** 2
    decode = pixels * (bands * (3 if bands == 4 else 1) + 2)  # PIL image (+ RGBA composite), gray, median copy
    kept = pixels * 6  # gray, strokes, int16 labels and their expansion
    answer = pixels * 8  # label values (bool, int16 x 2, uint8), the palette image, the PNG buffer
    ink = pixels * 16  # stroke pixels' indices and working pixels (int64; at most half the pixels are strokes)
    if work_pixels is not None and square > work_pixels:
        maps = _maps_bytes(categories, min(pixels, work_pixels), threshold)
        masks = categories * pixels if threshold else 0
    else:  # maps upsampled to the padded square, cropped to the image; their values on the stroke pixels
        maps = _maps_bytes(categories, square, threshold)
        masks = 2 * categories * pixels  # the maps on half the pixels (float32)
    return BASE_BYTES + 3 * body_bytes + square * 2 + decode + kept + answer + ink + maps + masks


def svg_parse_need(chars: int, body_bytes: int = 0) -> int:
    """Bytes parsing an SVG of ``chars`` characters needs at most (svgelements' objects: about 350 bytes per
    character of path data), before its strokes are known."""
    return BASE_BYTES + 3 * body_bytes + 400 * chars


def vector_need(path_pixels: int, longest_path: int, categories: int, threshold: bool, body_bytes: int = 0) -> int:
    """Bytes one vector request needs at most: rasterising (about 300 bytes per pixel along the longest stroke,
    40 per pixel of all strokes' pixel sets), the 512 x 512 sketch and its maps, the answer; plus the body."""
    pixels = RASTER_SIDE * RASTER_SIDE
    raster = 300 * longest_path + 40 * path_pixels
    return BASE_BYTES + 3 * body_bytes + raster + pixels * 24 + _maps_bytes(categories, pixels, threshold)


# ------------------------------------------------------------------------------------------------ the process itself

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # glibc


def tune_allocator(mmap_threshold: int = 1 * MIB, arenas: int = 2) -> bool:
    """glibc only: allocations from ``mmap_threshold`` bytes up are mapped (and unmapped when freed) instead of
    kept in the heap, whose dynamic threshold otherwise grows to 32 MiB after the first large free, so that freed
    image buffers stay in the process; at most ``arenas`` malloc arenas (threads otherwise get up to 8 per core,
    each keeping its freed memory). Returns whether it applied."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 4 * mmap_threshold) == 1
    ok &= libc.mallopt(_M_ARENA_MAX, arenas) == 1
    if not ok:
        log.warning("mallopt refused a setting; freed memory may stay in the process")
    return bool(ok)


def lower_priority(nice: int = 10) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux schedules threads alone; elsewhere, or with 0,
    nothing)."""
    if nice <= 0:
        return
    import os
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


def trim() -> None:
    """glibc only: give the heap's free memory back to the system (after a large request)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def rss() -> tuple[int | None, int | None]:
    """(resident bytes now, peak resident bytes) of this process, from /proc/self/status; (None, None) elsewhere."""
    return process_rss("self")


def process_rss(pid: int | str) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) of process ``pid`` in bytes, from /proc/PID/status (Linux); (None, None) elsewhere."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # kB
    return values.get("VmRSS"), values.get("VmHWM")
