"""Serving benchmark (issue 14 §6): `sketchseg serve` under 1, 4 and 16 concurrent clients against the same sketches
through ``Segmenter.segment_many`` in one process. Prints JSON.

For each model (default: the untrained ``sketchseg-tiny`` and ``ViT-B-16`` with random weights) and each input kind
(``png``: a base64 PNG of the 512x512 raster; ``strokes``: the scene's absolute point lists on its 256x256 canvas):
- in-process: ``segment_many`` over ``--requests`` sketches, decoding included (PNG bytes -> image, point lists ->
  VectorSketch), batch size 16, one 4-category vocabulary (cached), measured before and after the server runs, from
  the main thread and from a worker thread;
- server: ``sketchseg serve`` in its own process on a free loopback port; ``--requests`` POST /v1/segment requests
  from ``c`` concurrent httpx clients (request bodies prepared beforehand), after a warm-up; requests per second and
  p50/p95 latency per concurrency level.
Target: at 16 concurrent clients the server reaches >= 0.8x the in-process throughput (``ratio_at_16``). The
reference is the faster of the in-process calls from the main thread and from a worker thread, each the mean of its
two measurements (before and after the server). The machine's load (``os.getloadavg``) is recorded before and
after each model: figures from a busy machine are not comparable.

Usage: python bench/serve.py [--models sketchseg-tiny ViT-B-16] [--requests 48] [--concurrency 1 4 16]
                             [--inputs png strokes] [--batch-window-ms 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from sketchseg.data.strokes import CANVAS
from sketchseg.data.synth import make_scene
from sketchseg.data.vector import from_points
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.segmenter import Segmenter

CATEGORIES = ["tree", "house", "dog", "grass"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"sketchseg serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s")


def scenes(n: int) -> list:
    return [make_scene(11, i % 8, i // 8) for i in range(n)]


def png_bytes(gray: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG")
    return buf.getvalue()


def bodies(kind: str, sketches: list) -> list[bytes]:
    """Request bodies, JSON-encoded beforehand (the client's own work stays out of the server's figures)."""
    out = []
    for s in sketches:
        if kind == "png":
            body = {"image": base64.b64encode(png_bytes(s.raster())).decode("ascii")}
        else:
            body = {"strokes": [p.round(2).tolist() for p in s.strokes], "width": CANVAS, "height": CANVAS}
        out.append(json.dumps({**body, "categories": CATEGORIES}).encode())
    return out


def in_process(segmenter: Segmenter, kind: str, sketches: list) -> dict[str, float]:
    """Sketches per second through segment_many, decoding included, called from the main thread and from a worker
    thread (as the server calls the model; on a loaded machine the two differ by up to 3x)."""
    with ThreadPoolExecutor(1) as pool:
        worker = pool.submit(_in_process, segmenter, kind, sketches).result()
    return {"main_thread": _in_process(segmenter, kind, sketches), "worker_thread": worker}


def _in_process(segmenter: Segmenter, kind: str, sketches: list) -> float:
    pngs = [png_bytes(s.raster()) for s in sketches]
    points = [[p.round(2).tolist() for p in s.strokes] for s in sketches]

    def inputs():
        if kind == "png":
            for data in pngs:
                yield Image.open(io.BytesIO(data))
        else:
            for strokes in points:
                yield from_points(strokes, CANVAS, CANVAS)

    t0 = time.perf_counter()
    n = sum(1 for _ in segmenter.segment_many(inputs(), categories=CATEGORIES))
    return n / (time.perf_counter() - t0)


async def load(url: str, payloads: list[bytes], clients: int) -> dict:
    """``clients`` concurrent clients send every payload once; returns requests/s and latency percentiles (s)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    payload = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                resp = await client.post("/v1/segment", content=payload, headers={"Content-Type": "application/json"})
                latencies.append(time.perf_counter() - t0)
                errors += resp.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    q = np.percentile(latencies, [50, 95])
    return {"clients": clients, "requests": len(payloads), "errors": errors, "requests_per_s": len(payloads) / wall,
            "p50_s": float(q[0]), "p95_s": float(q[1])}  # fmt: skip


def batching(url: str) -> dict:
    card = httpx.get(f"{url}/v1/model", timeout=60).json()
    return {k: card["batching"][k] for k in ("batches", "items")}


def bench_model(model: str, args: argparse.Namespace, log_dir: Path) -> dict:
    """In-process throughput before and after, and the server's at each concurrency level, for each input kind."""
    sketches = scenes(args.requests)
    cfg = ModelConfig(backbone=BackboneConfig(name=model))
    segmenter = Segmenter.from_config(cfg, device=args.device, batch_size=16)
    payloads = {kind: bodies(kind, sketches) for kind in args.inputs}
    out: dict = {"model": model, "load_before": os.getloadavg(), "inputs": {}}
    for kind in args.inputs:
        list(segmenter.segment_many([sketches[0].raster()] * 2, categories=CATEGORIES))  # warm-up, text cache
        out["inputs"][kind] = {"in_process_before": in_process(segmenter, kind, sketches)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_dir / f"serve-{model}.log"
    cmd = [sys.executable, "-m", "sketchseg", "serve", "--model", model, "--port", str(port), "--batch-size", "16",
           "--batch-window-ms", str(args.batch_window_ms), "--device", args.device]  # fmt: skip
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(url, proc)
        for kind in args.inputs:
            asyncio.run(load(url, payloads[kind][:4], 4))  # warm-up
            levels = []
            for clients in args.concurrency:
                before = batching(url)
                result = asyncio.run(load(url, payloads[kind], clients))
                after = batching(url)
                result["model_calls"] = after["batches"] - before["batches"]
                levels.append(result)
            out["inputs"][kind]["server"] = levels
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    for kind in args.inputs:
        entry = out["inputs"][kind]
        entry["in_process_after"] = in_process(segmenter, kind, sketches)
        runs = [entry["in_process_before"], entry["in_process_after"]]
        reference = max(statistics.mean(r[where] for r in runs) for where in ("main_thread", "worker_thread"))
        entry["in_process_sketches_per_s"] = reference
        top = max(entry["server"], key=lambda r: r["clients"])
        entry["ratio_at_16"] = top["requests_per_s"] / reference if top["clients"] == 16 else None
    out["load_after"] = os.getloadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["sketchseg-tiny", "ViT-B-16"])
    ap.add_argument("--requests", type=int, default=48, help="sketches per measurement (default: %(default)s)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--inputs", nargs="+", choices=("png", "strokes"), default=["png", "strokes"])
    ap.add_argument("--batch-window-ms", type=float, default=10.0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        for model in args.models:
            results.append(bench_model(model, args, Path(tmp)))
    report = {
        "benchmark": "serve",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "device": args.device},
        "settings": {"requests": args.requests, "concurrency": args.concurrency, "categories": CATEGORIES,
                     "batch_size": 16, "batch_window_ms": args.batch_window_ms},
        "target": "server requests/s at 16 clients >= 0.8x in-process segment_many sketches/s",
        "results": results,
        "summary": {f"{r['model']}/{kind}": round(e["ratio_at_16"], 3) if e["ratio_at_16"] else None
                    for r in results for kind, e in r["inputs"].items()},
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
