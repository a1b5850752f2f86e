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

Mixed load (issue 21; ``--mode mixed`` or ``both``): ``--mixed-clients`` (16) clients for ``--mixed-seconds`` (60)
against one server: ``--large-clients`` (14) of them send 4096 x 4096 PNG sketches (the scene's raster resized,
nearest), the others small requests (the scene's strokes, and a one-stroke sketch every third time), each client
sending its next request when its last is answered. Before it, the small clients alone for ``--small-alone-seconds``
(20) on the same server, and one small sketch through ``Segmenter.segment`` in this process before and after (the
machine's speed at the time). Reported: errors (any status but 200), p50/p95 latency of the small and of the large
requests, requests per second, the server's peak RSS (VmHWM) and its RSS after the run. Target: 0 errors, peak RSS
under 4 GB, small-request p95 under 1 s with ViT-B-16 on 2 cores. Two small clients, not more: closed-loop small
clients load the model themselves (4 of them make batches of 4, about 1 s of ViT-B-16 on 2 idle cores, whatever
the large requests do).

Usage: python bench/serve.py [--models sketchseg-tiny ViT-B-16] [--requests 48] [--concurrency 1 4 16]
                             [--inputs png strokes] [--batch-window-ms 10] [--device cpu]
                             [--mode throughput|mixed|both] [--mixed-seconds 60] [--mixed-clients 16]
                             [--large-clients 14] [--large-side 4096] [--small-alone-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import shlex
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


def rss_of(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) of process ``pid`` in bytes (Linux)."""
    from sketchseg.serve.memory import process_rss

    return process_rss(pid)


def mixed_payloads(side: int) -> dict[str, bytes]:
    """The mixed run's request bodies: a side x side PNG sketch (large), a scene's strokes and a one-stroke sketch."""
    scene = make_scene(11, 0, 0)
    big = np.asarray(Image.fromarray(scene.raster()).resize((side, side), Image.Resampling.NEAREST))
    large = {"image": base64.b64encode(png_bytes(big)).decode("ascii"), "categories": CATEGORIES}
    strokes = {"strokes": [p.round(2).tolist() for p in scene.strokes], "width": CANVAS, "height": CANVAS,
               "categories": CATEGORIES}  # fmt: skip
    one = {"strokes": [[[20, 20], [120, 140], [200, 60]]], "width": CANVAS, "height": CANVAS, "categories": CATEGORIES}
    return {k: json.dumps(v).encode() for k, v in {"large": large, "strokes": strokes, "one_stroke": one}.items()}


async def mixed_load(url: str, pid: int, args: argparse.Namespace, clients: int, large_clients: int,
                     seconds: float) -> dict:  # fmt: skip
    """``clients`` clients for ``seconds`` s, ``large_clients`` of them sending large PNGs, the others small
    requests; latencies per kind, errors, the server's RSS sampled every 0.25 s."""
    payloads = mixed_payloads(args.large_side)
    latencies: dict[str, list[float]] = {"small": [], "large": []}
    statuses: dict[str, int] = {}
    rss_samples: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def worker(i: int) -> None:
            large = i < large_clients
            n = 0
            while time.perf_counter() < deadline:
                kind = "large" if large else ("one_stroke" if n % 3 == 2 else "strokes")
                n += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post("/v1/segment", content=payloads[kind],
                                             headers={"Content-Type": "application/json"})  # fmt: skip
                    status = str(resp.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies["large" if large else "small"].append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

        async def sampler() -> None:
            while time.perf_counter() < deadline:
                now, _ = rss_of(pid)
                if now is not None:
                    rss_samples.append(now)
                await asyncio.sleep(0.25)

        t0 = time.perf_counter()
        await asyncio.gather(sampler(), *(worker(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    await asyncio.sleep(2.0)  # the last answers' memory given back
    rss_after, peak = rss_of(pid)

    def summary(values: list[float]) -> dict:
        if not values:
            return {"requests": 0}
        q = np.percentile(values, [50, 95])
        return {"requests": len(values), "p50_s": round(float(q[0]), 3), "p95_s": round(float(q[1]), 3),
                "max_s": round(max(values), 3)}  # fmt: skip

    errors = sum(n for status, n in statuses.items() if status != "200")
    card = httpx.get(f"{url}/v1/model", timeout=60).json()
    return {
        "clients": clients, "large_clients": large_clients, "large_side": args.large_side,
        "seconds": round(wall, 1), "statuses": statuses, "errors": errors,
        "requests_per_s": round(sum(len(v) for v in latencies.values()) / wall, 2),
        "small": summary(latencies["small"]), "large": summary(latencies["large"]),
        "peak_rss_bytes": peak, "peak_rss_sampled_bytes": max(rss_samples, default=None), "rss_after_bytes": rss_after,
        "peak_rss_gib": round(peak / 2**30, 2) if peak else None,
        "admission": {k: card["memory"][k] for k in ("budget_bytes", "large_slots", "refused")},
        "batching": {k: card["batching"][k] for k in ("batches", "items")},
    }  # fmt: skip


def batching(url: str) -> dict:
    card = httpx.get(f"{url}/v1/model", timeout=60).json()
    return {k: card["batching"][k] for k in ("batches", "items")}


def start_server(model: str, args: argparse.Namespace, log_dir: Path, *extra: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_dir / f"serve-{model}-{port}.log"
    cmd = [sys.executable, "-m", "sketchseg", "serve", "--model", model, "--port", str(port), "--batch-size", "16",
           "--batch-window-ms", str(args.batch_window_ms), "--device", args.device, *extra]  # fmt: skip
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    wait_ready(url, proc)
    return url, proc


def single_sketch_s(model: str, args: argparse.Namespace) -> float:
    """Median seconds of one small sketch (the mixed run's strokes) through Segmenter.segment in this process: the
    machine's speed at the time, to read the mixed run's latencies against (a busy shared machine is slower)."""
    scene = make_scene(11, 0, 0)
    segmenter = Segmenter.from_config(ModelConfig(backbone=BackboneConfig(name=model)), device=args.device)
    sketch = from_points([p.round(2).tolist() for p in scene.strokes], CANVAS, CANVAS)
    segmenter.segment(sketch, categories=CATEGORIES)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        segmenter.segment(sketch, categories=CATEGORIES)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def bench_mixed(model: str, args: argparse.Namespace, log_dir: Path) -> dict:
    """The mixed run (module doc) against a fresh server, after a run of its small clients alone (the same
    server, ``--small-alone-seconds``), with one small sketch's in-process time before and after."""
    out: dict = {"model": model, "load_before": os.getloadavg()}
    out["in_process_single_s_before"] = single_sketch_s(model, args)
    url, proc = start_server(model, args, log_dir, *shlex.split(args.serve_args))
    out["serve_args"] = args.serve_args
    small_clients = args.mixed_clients - args.large_clients
    try:
        out["rss_ready_bytes"] = rss_of(proc.pid)[0]
        if args.small_alone_seconds > 0 and small_clients > 0:
            alone = asyncio.run(mixed_load(url, proc.pid, args, small_clients, 0, args.small_alone_seconds))
            out["small_alone"] = {k: alone[k] for k in ("clients", "errors", "small", "requests_per_s")}
        out["mixed"] = asyncio.run(mixed_load(url, proc.pid, args, args.mixed_clients, args.large_clients,
                                              args.mixed_seconds))  # fmt: skip
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    out["in_process_single_s_after"] = single_sketch_s(model, args)
    out["load_after"] = os.getloadavg()
    return out


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
    url, proc = start_server(model, args, log_dir)
    try:
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
    ap.add_argument("--mode", choices=("throughput", "mixed", "both"), default="both")
    ap.add_argument("--mixed-seconds", type=float, default=60.0)
    ap.add_argument("--mixed-clients", type=int, default=16)
    ap.add_argument("--large-clients", type=int, default=14, help="of the mixed clients, those sending large PNGs")
    ap.add_argument("--large-side", type=int, default=4096)
    ap.add_argument("--serve-args", default="", help="more `sketchseg serve` options for the mixed run, one string")
    ap.add_argument("--small-alone-seconds", type=float, default=20.0,
                    help="the small clients alone first, on the same server (0: skip)")  # fmt: skip
    args = ap.parse_args()
    results = []
    mixed = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        for model in args.models:
            if args.mode in ("throughput", "both"):
                results.append(bench_model(model, args, Path(tmp)))
            if args.mode in ("mixed", "both"):
                mixed.append(bench_mixed(model, args, Path(tmp)))
    report = {
        "benchmark": "serve",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "device": args.device},
        "settings": {"requests": args.requests, "concurrency": args.concurrency, "categories": CATEGORIES,
                     "mode": args.mode, "mixed_seconds": args.mixed_seconds, "mixed_clients": args.mixed_clients,
                     "large_clients": args.large_clients, "large_side": args.large_side,
                     "batch_size": 16, "batch_window_ms": args.batch_window_ms},
        "target": "server requests/s at 16 clients >= 0.8x in-process segment_many sketches/s; mixed: 0 errors, "
                  "peak RSS < 4 GB, small-request p95 < 1 s (ViT-B-16)",
        "results": results,
        "mixed": mixed,
        "summary": {f"{r['model']}/{kind}": round(e["ratio_at_16"], 3) if e["ratio_at_16"] else None
                    for r in results for kind, e in r["inputs"].items()},
        "mixed_summary": {m["model"]: {"errors": m["mixed"]["errors"], "small_p95_s": m["mixed"]["small"].get("p95_s"),
                                       "small_alone_p95_s": m.get("small_alone", {}).get("small", {}).get("p95_s"),
                                       "in_process_single_s": [m["in_process_single_s_before"],
                                                               m["in_process_single_s_after"]],
                                       "peak_rss_gib": m["mixed"]["peak_rss_gib"], "load": [m["load_before"][0],
                                                                                          m["load_after"][0]]}
                          for m in mixed},
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
