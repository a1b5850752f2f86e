"""`sketchseg serve`: the REST API and the drawing page on http://HOST:PORT/."""

from __future__ import annotations

import argparse

from sketchseg.weights import add_weights_arguments

HELP = "serve the REST API (POST /v1/segment) and the drawing page (GET /) with FastAPI + uvicorn"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=16, help="most sketches per model call (default: %(default)s)")
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=10.0,
        help="how long the first request of a batch waits for concurrent ones (default: %(default)s ms)",
    )
    p.add_argument("--max-body-mb", type=float, default=16.0, help="request body limit (default: %(default)s MiB)")
    p.add_argument("--max-pixels", type=int, default=None, help="image pixel limit (default: 4096 x 4096)")
    p.add_argument(
        "--work-pixels",
        type=int,
        default=1024 * 1024,
        help="images padded to a square of more pixels are segmented at a working resolution of at most this many "
        "pixels (default: %(default)s; 0: always at their own)",
    )
    p.add_argument(
        "--memory-mb",
        type=float,
        default=2048.0,
        help="estimated working memory of all requests admitted at a time; the others wait (default: %(default)s MiB)",
    )
    p.add_argument(
        "--body-memory-mb",
        type=float,
        default=1024.0,
        help="memory of request bodies read and parsed at a time, 48 bytes per body byte (default: %(default)s MiB)",
    )
    p.add_argument(
        "--request-memory-mb",
        type=float,
        default=None,
        help="estimated working memory one request may need, 413 above it (default: --memory-mb)",
    )
    p.add_argument(
        "--large-slots",
        type=int,
        default=1,
        help="large requests (estimated over 64 MiB: big images) processed at a time (default: %(default)s)",
    )
    p.add_argument(
        "--large-nice",
        type=int,
        default=10,
        help="lower the CPU priority of large requests' decoding and encoding by this nice value, so that small "
        "requests keep the CPU (default: %(default)s; 0: equal; on a machine busy with other work large requests "
        "then get little CPU)",
    )
    p.add_argument(
        "--queue-timeout-s",
        type=float,
        default=120.0,
        help="seconds a request waits for memory before a 503 with Retry-After (default: %(default)s)",
    )
    p.add_argument("--max-waiting", type=int, default=64, help="requests waiting for memory at most; more get 503")
    p.add_argument(
        "--timeout-request-s",
        type=float,
        default=15.0,
        help="a request's headers and body must arrive within this many seconds of its first byte, else 408 "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--timeout-keep-alive-s", type=int, default=5, help="idle keep-alive connections close after (default: 5)"
    )
    p.add_argument("--max-connections", type=int, default=256, help="open connections at most; more get 503")
    p.add_argument(
        "--allowed-hosts",
        default=None,
        help="comma-separated Host header values the server answers to, '*' for any (default: the loopback names "
        "and the --host address; for 0.0.0.0 also this machine's name and addresses)",
    )
    p.add_argument(
        "--text-cache", type=int, default=4096, help="category embeddings cached (default: %(default)s, LRU)"
    )
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from sketchseg.data.sketch import InputLimits
    from sketchseg.errors import InputError
    from sketchseg.serve.app import create_app, default_allowed_hosts
    from sketchseg.serve.protocol import uvicorn_options
    from sketchseg.serve.service import MIB, SegmentService, ServeSettings
    from sketchseg.weights import load_segmenter, weights_choice

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be >= 1")
    if args.batch_window_ms < 0:
        raise InputError(f"--batch-window-ms {args.batch_window_ms}: must be >= 0")
    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: must lie in 1-65535")
    positive = {"--memory-mb": args.memory_mb, "--body-memory-mb": args.body_memory_mb,
                "--large-slots": args.large_slots, "--text-cache": args.text_cache,
                "--timeout-request-s": args.timeout_request_s, "--timeout-keep-alive-s": args.timeout_keep_alive_s,
                "--max-connections": args.max_connections}  # fmt: skip
    for name, value in positive.items():
        if value <= 0:
            raise InputError(f"{name} {value}: must be > 0")
    at_least_0 = {"--work-pixels": args.work_pixels, "--max-waiting": args.max_waiting,
                  "--queue-timeout-s": args.queue_timeout_s, "--large-nice": args.large_nice}  # fmt: skip
    for name, value in at_least_0.items():
        if value < 0:
            raise InputError(f"{name} {value}: must be >= 0")
    if args.request_memory_mb is not None and args.request_memory_mb <= 0:
        raise InputError(f"--request-memory-mb {args.request_memory_mb}: must be > 0")
    allowed = default_allowed_hosts(args.host)
    if args.allowed_hosts:
        allowed = [h.strip().lower() for h in args.allowed_hosts.split(",") if h.strip()]
    segmenter, weights = load_segmenter(weights_choice(args), device=args.device, batch_size=args.batch_size)
    settings = ServeSettings(
        max_batch=args.batch_size,
        window=args.batch_window_ms / 1000.0,
        max_body_bytes=int(args.max_body_mb * MIB),
        limits=InputLimits() if args.max_pixels is None else InputLimits(max_pixels=args.max_pixels),
        work_pixels=args.work_pixels or None,
        memory_budget=int(args.memory_mb * MIB),
        request_memory=None if args.request_memory_mb is None else int(args.request_memory_mb * MIB),
        large_slots=args.large_slots,
        queue_timeout=args.queue_timeout_s,
        max_waiting=args.max_waiting,
        text_cache=args.text_cache,
        body_budget=int(args.body_memory_mb * MIB),
        large_nice=args.large_nice,
    )
    app = create_app(SegmentService(segmenter, weights, settings), allowed_hosts=allowed)
    print(f"weights: {weights}", flush=True)
    print(f"starting on http://{args.host}:{args.port}/ (drawing page; API docs at /docs); answering Host "
          f"{', '.join(allowed)}", flush=True)  # fmt: skip
    options = uvicorn_options(args.timeout_request_s, args.timeout_keep_alive_s, args.max_connections)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", **options)
    return 0
