"""The FastAPI application: :func:`create_app` wires a :class:`SegmentService` to the routes, the body-size limit,
the static drawing page and the error answers (a JSON ``detail`` naming the problem, never a 500 for bad input)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sketchseg.errors import SketchsegError
from sketchseg.serve.inputs import InputTooLarge
from sketchseg.serve.routes import STATIC, router
from sketchseg.serve.service import SegmentService

log = logging.getLogger(__name__)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, from its Content-Length before any of it is read, or
    as soon as a streamed (chunked) body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self, size: str) -> str:
        return f"request body of {size} is over the limit of {self.max_bytes} bytes"

    async def _drain(self, receive: Receive, idle_s: float = 10.0) -> None:
        """Discard the body of a request that gets a 413 (at most 4x the limit, until the client pauses for
        ``idle_s``): closing a connection with unread data resets it, and the client loses the answer it has not
        read yet. A stalled client costs only an idle connection for ``idle_s``."""
        budget = 4 * self.max_bytes
        while budget > 0:
            try:
                message = await asyncio.wait_for(receive(), timeout=idle_s)
            except TimeoutError:
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            # read what the client sends first, then answer: once the answer is complete, uvicorn's receive() says
            # the client disconnected, and closing with unread data resets the connection before the client,
            # still sending, reads the 413 (a broken pipe on a busy machine)
            await self._drain(receive)
            response = JSONResponse({"detail": self._detail(f"{int(length)} bytes")}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail(f"more than {received - 1} bytes"))
            return message

        await self.app(scope, limited, send)


def _location(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def _message(error: dict) -> str:
    msg = str(error.get("msg", ""))
    return msg.removeprefix("Value error, ")


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    invalid_json = [e for e in errors if e.get("type") == "json_invalid"]
    if invalid_json:
        reason = invalid_json[0].get("ctx", {}).get("error", "")
        return JSONResponse({"detail": f"request body is not valid JSON ({reason})"}, status_code=400)
    compact = [{"loc": list(e.get("loc", ())), "msg": _message(e), "type": e.get("type", "")} for e in errors]
    content_type = request.headers.get("content-type", "")
    if any(e["loc"] == ["body"] for e in compact) and "json" not in content_type:
        detail = f"send the body as JSON with Content-Type: application/json (got {content_type or 'none'})"
        return JSONResponse({"detail": detail, "errors": compact}, status_code=415)
    if any(e["type"] == "missing" and e["loc"] == ["body"] for e in compact):
        detail = "empty body: send a JSON object with a sketch (image, strokes, stroke3 or svg) and categories"
    else:
        detail = "; ".join(f"{_location(tuple(e['loc']))}: {e['msg']}" for e in compact[:5])
    return JSONResponse({"detail": detail, "errors": compact}, status_code=422)


async def _input_error(request: Request, exc: SketchsegError) -> JSONResponse:
    status = 413 if isinstance(exc, InputTooLarge) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}: {exc})"}, status_code=500)


def create_app(service: SegmentService) -> FastAPI:
    """The REST API and drawing page around ``service`` (started and stopped with the app)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        log.info("ready; serving weights: %s", service.weights)
        try:
            yield
        finally:
            await service.stop()

    # the /docs and /redoc pages with their scripts served by the app itself (FastAPI's own fetch them from a CDN)
    app = FastAPIOffline(
        title="sketchseg",
        summary="Label the strokes of scene sketches with open-vocabulary categories.",
        description="POST a sketch (PNG/JPEG, strokes, stroke-3 rows or SVG) with categories or a caption to "
        "/v1/segment. The drawing page is at /.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(SketchsegError, _input_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(BodyLimit, max_bytes=service.settings.max_body_bytes)
    return app
