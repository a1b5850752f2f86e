"""How uvicorn runs the app: its own limits (``timeout_keep_alive`` for idle keep-alive connections, h11's header
size limit, ``limit_concurrency`` for open connections) plus a read deadline uvicorn lacks.

uvicorn times out a connection only while it is idle between two requests: a client that connects and sends
nothing, or sends a request one byte per second, holds its connection (and its buffers) for as long as it likes.
:func:`protocol_with_read_deadline` gives uvicorn's h11 protocol a deadline: a request's headers and body must
arrive within ``read_timeout`` seconds of its first byte (of the connection, for the first request); otherwise the
server answers 408 when the client had started a request, and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this many seconds (uvicorn's timeout_keep_alive)
READ_TIMEOUT_S = 15.0  # a request's headers and body must arrive within this many seconds
MAX_HEADER_BYTES = 16 * 1024  # request line and headers (h11's max_incomplete_event_size; 400 above)
MAX_CONNECTIONS = 256  # open connections and requests; more get uvicorn's 503 (limit_concurrency)
_UNFINISHED = (h11.IDLE, h11.SEND_BODY)  # the client's side of a request not received completely


def _closing_answer(status: str, detail: str) -> bytes:
    """A complete HTTP/1.1 answer with a JSON ``detail`` that closes the connection, as bytes."""
    body = json.dumps({"detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class ReadDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a read deadline (module doc); ``read_timeout`` is set by
    :func:`protocol_with_read_deadline`."""

    read_timeout: float = READ_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._read_deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of the next request on a keep-alive connection
        super().data_received(data)
        if self.conn.their_state not in _UNFINISHED:
            self._disarm()  # received completely: the app has it

    def on_response_complete(self) -> None:
        self._disarm()  # idle from here: uvicorn's keep-alive timeout applies
        super().on_response_complete()
        state = self.conn.their_state
        if not self.transport.is_closing() and (
            state is h11.SEND_BODY or (state is h11.IDLE and self.conn.trailing_data[0])
        ):
            self._arm()  # a body still arriving after an early answer, or a pipelined request begun

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _expired(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing() or self.conn.their_state not in _UNFINISHED:
            return
        if self.flow.read_paused and self.conn.their_state is h11.SEND_BODY:
            self._arm()  # the app has not asked for more of the body yet (it waits for memory): not the client's fault
            return
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        begun = self.conn.their_state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() reports a disconnect, its answer is dropped
            cycle.message_event.set()
        if begun and not answering and self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            detail = f"request not received within {self.read_timeout:g} s (headers and body); send it at once"
            self.transport.write(_closing_answer("408 Request Timeout", detail))  # h11 cannot answer an unread request
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse (or a head over the size limit), with a JSON detail."""
        detail = f"invalid HTTP request (malformed, or its request line and headers over {MAX_HEADER_BYTES} bytes)"
        self.transport.write(_closing_answer("400 Bad Request", detail))
        self.transport.close()


def protocol_with_read_deadline(read_timeout: float = READ_TIMEOUT_S) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with a read deadline of ``read_timeout`` seconds (pass as ``http=``)."""
    if read_timeout <= 0:
        raise ValueError(f"read_timeout {read_timeout}: must be > 0")
    return type("ReadDeadlineH11Protocol", (ReadDeadlineH11Protocol,), {"read_timeout": float(read_timeout)})


def uvicorn_options(
    read_timeout: float = READ_TIMEOUT_S,
    keep_alive: int = KEEP_ALIVE_S,
    max_connections: int = MAX_CONNECTIONS,
) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config``: the protocol with the read deadline, the keep-alive
    timeout, h11's header size limit and the connection limit."""
    return {
        "http": protocol_with_read_deadline(read_timeout),
        "timeout_keep_alive": keep_alive,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": max_connections,
        "proxy_headers": False,  # the client address and scheme are the socket's: no proxy is trusted by default
    }
