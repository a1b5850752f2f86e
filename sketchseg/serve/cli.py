"""`sketchseg serve`: the REST API and the drawing page on http://HOST:PORT/."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchseg.serve.weights import DEFAULT_CHECKPOINT

HELP = "serve the REST API (POST /v1/segment) and the drawing page (GET /) with FastAPI + uvicorn"


def add_arguments(p: argparse.ArgumentParser) -> None:
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", type=Path, help="a sketchseg checkpoint file")
    weights.add_argument("--model", help="an open_clip model name (random weights unless --pretrained)")
    weights.add_argument("--registry", help="a registered model, e.g. models:/sketchseg@champion")
    p.add_argument("--pretrained", help="with --model: an open_clip tag (openai) or a local weights file")
    p.add_argument("--seed", type=int, default=0, help="with --model: seed of the new weights")
    p.add_argument(
        "--default-checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help="served when no weights option is given and the file exists (default: %(default)s); else the "
        "untrained sketchseg-tiny",
    )
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
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from sketchseg.errors import InputError
    from sketchseg.serve.app import create_app
    from sketchseg.serve.inputs import InputLimits
    from sketchseg.serve.service import SegmentService, ServeSettings
    from sketchseg.serve.weights import WeightsChoice, load_segmenter

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be >= 1")
    if args.batch_window_ms < 0:
        raise InputError(f"--batch-window-ms {args.batch_window_ms}: must be >= 0")
    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: must lie in 1-65535")
    choice = WeightsChoice(
        checkpoint=args.checkpoint,
        model=args.model,
        pretrained=args.pretrained,
        registry=args.registry,
        seed=args.seed,
        default_checkpoint=args.default_checkpoint,
    )
    segmenter, weights = load_segmenter(choice, device=args.device, batch_size=args.batch_size)
    settings = ServeSettings(
        max_batch=args.batch_size,
        window=args.batch_window_ms / 1000.0,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        limits=InputLimits() if args.max_pixels is None else InputLimits(max_pixels=args.max_pixels),
    )
    app = create_app(SegmentService(segmenter, weights, settings))
    print(f"weights: {weights}", flush=True)
    print(f"starting on http://{args.host}:{args.port}/ (drawing page; API docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
