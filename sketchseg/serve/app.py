"""The FastAPI application: :func:`create_app` wires a :class:`SegmentService` to the routes, the body-size limit,
the trusted hosts, the static drawing page and the error answers (a JSON ``detail`` naming the problem, never a
500 for bad input; a 500 names no internals)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sketchseg.data.sketch import InputTooLarge, kinds_text
from sketchseg.errors import SketchsegError
from sketchseg.serve.admission import Admission, Overloaded
from sketchseg.serve.routes import STATIC, router
from sketchseg.serve.service import SegmentService

log = logging.getLogger(__name__)


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> tuple[dict, bytes]:
    """An ``http.response.start`` message and the JSON body ``{"detail": ...}`` of a complete answer."""
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return {"type": "http.response.start", "status": status, "headers": head}, body


BODY_BYTES_PER_BYTE = 48  # parsed JSON of numbers: 16 MiB of point lists become 650 MB of Python objects


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, answered from its Content-Length before any of it is
    read, or as soon as a streamed (chunked) body passes the limit; with ``admission``, a body is read and parsed
    only once ``BODY_BYTES_PER_BYTE`` bytes per body byte (from its Content-Length, else the limit; at most the
    whole budget) fit that budget (503 with Retry-After when they do not in time).

    An early answer goes out at once, complete; the body the client may still be sending is then read and
    discarded (at most 4x the limit, until the client pauses for ``idle_s``) before the connection closes, because
    closing a socket with unread data resets it, and the client, still busy sending, would lose the answer it has not
    read. A client that waits for 100-continue, or sends only headers, gets the answer without sending the body."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, admission: Admission | None = None, idle_s: float = 2.0
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.admission = admission
        self.idle_s = idle_s

    def _detail(self, size: str) -> str:
        return f"request body of {size} is over the limit of {self.max_bytes} bytes; send a smaller image or sketch"

    async def _answer_early(
        self, send: Send, receive: Receive, status: int, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        """The complete answer first, then the drain, then the end of the answer (which closes the connection)."""
        start, body = _json(status, detail, {**(headers or {}), "Connection": "close"})
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": True})  # all of it, on the wire now
        budget = 4 * self.max_bytes
        while budget > 0:
            try:
                message = await asyncio.wait_for(receive(), timeout=self.idle_s)
            except TimeoutError:
                break
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
            budget -= len(message.get("body", b""))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._answer_early(send, receive, 413, self._detail(f"{int(length)} bytes"))
            return
        received = 0
        refused = False
        started = False

        async def limited() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    refused = True  # the app gets a disconnect; its answer is dropped for the 413
                    await self._answer_early(send, receive, 413, self._detail(f"more than {received - 1} bytes"))
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = True
            await send(message)

        if self.admission is None or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, limited, guarded)
            return
        size = int(length) if length is not None and length.isdigit() else self.max_bytes
        need = min(BODY_BYTES_PER_BYTE * size, self.admission.budget)
        admitted = False
        try:
            async with self.admission.admit(need, f"a request body of {size} bytes"):
                admitted = True
                await self.app(scope, limited, guarded)
        except Overloaded as exc:
            if admitted:
                raise
            await self._answer_early(send, receive, 503, str(exc), {"Retry-After": str(exc.retry_after)})


class TrustedHosts:
    """starlette's :class:`TrustedHostMiddleware` (the Host header must name one of ``allowed_hosts``, else 400),
    its refusal answered as JSON naming the host and the option that admits it."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed_hosts = list(allowed_hosts)
        self.check = TrustedHostMiddleware(self._passed, allowed_hosts=self.allowed_hosts, www_redirect=False)

    async def _passed(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["sketchseg.trusted_host"] = True
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def answer(message: Message) -> None:
            if scope.get("sketchseg.trusted_host"):
                await send(message)
            elif message["type"] == "http.response.start":  # the middleware's plain-text refusal: ours instead
                host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")[:100]
                start, body = _json(
                    400,
                    f"Host header {host!r} names no host this server answers to ({', '.join(self.allowed_hosts)}); "
                    "start it with --allowed-hosts to add one",
                )
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.check(scope, receive, answer)


class InternalErrors:
    """ASGI middleware: an unexpected exception becomes a 500 whose JSON ``detail`` carries a reference to the
    logged traceback and nothing of the exception; the connection stays usable for the next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("internal error %s on %s %s", reference, scope.get("method"), scope.get("path"))
            if started:
                raise  # half an answer is out: uvicorn closes the connection
            start, body = _json(500, f"internal error (reference {reference}); the server's log has the details")
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})


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
        detail = f"empty body: send a JSON object with a sketch ({kinds_text()}) and categories"
    else:
        detail = "; ".join(f"{_location(tuple(e['loc']))}: {e['msg']}" for e in compact[:5])
    return JSONResponse({"detail": detail, "errors": compact}, status_code=422)


async def _input_error(request: Request, exc: SketchsegError) -> JSONResponse:
    status = 413 if isinstance(exc, InputTooLarge) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def default_allowed_hosts(bind: str) -> list[str]:
    """The Host header values a server bound to ``bind`` answers to: the loopback names, the bound address; for
    every interface (0.0.0.0, ::) also this machine's name and the addresses it resolves to."""
    hosts = list(LOOPBACK_HOSTS)
    if bind in ("0.0.0.0", "::", ""):
        names = {socket.gethostname(), socket.getfqdn()}
        for name in sorted(names):
            hosts.append(name)
            with contextlib.suppress(OSError):
                hosts += sorted({info[4][0] for info in socket.getaddrinfo(name, None)})
    else:
        hosts.append(f"[{bind}]" if ":" in bind else bind)
    hosts = [f"[{h}]" if ":" in h and not h.startswith("[") else h for h in hosts]
    return list(dict.fromkeys(h.lower() for h in hosts))


def create_app(service: SegmentService, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> FastAPI:
    """The REST API and drawing page around ``service`` (started and stopped with the app), answering requests
    whose Host header names one of ``allowed_hosts`` (``"*"``: any)."""

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
    app.add_exception_handler(Overloaded, _overloaded)
    # innermost first: the body limit, the 500s, the Host check (outermost: a wrong Host is answered before all)
    app.add_middleware(BodyLimit, max_bytes=service.settings.max_body_bytes, admission=service.body_admission)
    app.add_middleware(InternalErrors)
    app.add_middleware(TrustedHosts, allowed_hosts=list(allowed_hosts))
    return app
