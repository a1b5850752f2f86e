"""`sketchseg serve` under hostile or heavy input (issue 21), against real servers on free loopback ports: every case
answered with its 4xx (or served) and the next request served; 500s without internals; memory admission (413 over
the per-request budget, waiting, 503 with Retry-After), large images at a working resolution, small requests not
held behind large ones; category limits on every path; the bounded, private text cache; read deadlines and
keep-alive timeouts; trusted hosts. The admission queue, the batcher's lanes and the LRU cache also in-process."""

from __future__ import annotations

import asyncio
import base64
import http.client
import io
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchseg.data.captions import parse_categories
from sketchseg.data.sketch import InputTooLarge
from sketchseg.errors import InputError
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.segmenter import Segmenter
from sketchseg.render.labels import decode_labels
from sketchseg.serve import memory
from sketchseg.serve.admission import Admission, Overloaded
from sketchseg.serve.batching import Batcher
from sketchseg.tracking.pyfunc import parse_input
from tests.servers import free_port
from tests.test_serve import SCENE, get, perturbed_model, png_b64, post, sketchseg_server

MIB = 1 << 20
BODY_BUDGET_MB = 40  # server B's --body-memory-mb: one body of 800 kB (38 MiB parsed) at a time
READ_TIMEOUT = 2.0  # server A's --timeout-request-s
KEEP_ALIVE = 1  # server A's --timeout-keep-alive-s
TEXT_CACHE = 8  # server A's --text-cache
WORDS = (
    "cat dog tree house car bus bicycle horse sheep cow elephant bear zebra giraffe bird boat train airplane truck "
    "bench umbrella kite chair couch bed table clock vase scissors book bottle cup fork knife spoon bowl banana apple"
).split()


def big_png(side: int) -> str:
    """The scene's raster resized (nearest) to side x side, as base64 PNG (a few tens of kB)."""
    return png_b64(np.asarray(Image.fromarray(SCENE.raster()).resize((side, side), Image.Resampling.NEAREST)))


def good_strokes() -> dict:
    return {"strokes": [p.tolist() for p in SCENE.strokes], "width": 256, "height": 256, "categories": ["house", "dog"]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(perturbed_model(), tmp_path_factory.mktemp("limits") / "perturbed.pt")


@pytest.fixture(scope="module")
def server(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Server A: short read deadline and keep-alive, a small text cache; default body, pixel and memory limits."""
    log = tmp_path_factory.mktemp("limits-log") / "server.log"
    args = ["--checkpoint", str(checkpoint), "--timeout-request-s", str(READ_TIMEOUT), "--timeout-keep-alive-s",
            str(KEEP_ALIVE), "--text-cache", str(TEXT_CACHE)]  # fmt: skip
    with sketchseg_server(args, log=log) as url:
        yield url


def connection(url: str, timeout: float = 60) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def exchange(conn: http.client.HTTPConnection, body: dict) -> tuple[int, dict]:
    """POST /v1/segment on a kept-alive connection; (status, JSON)."""
    conn.request("POST", "/v1/segment", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def raw_socket(url: str, timeout: float = 10) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (socket.timeout if it does not)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


# ---------------------------------------------------------------------------- 6: coordinates that overflow float64

OVERFLOW = {
    "strokes": {"strokes": [[[-1e308, -1e308], [1e308, 1e308]]]},
    "stroke3": {"stroke3": [[1e308, 1e308, 0], [1e308, 1e308, 1]]},
    "stroke3 offsets summed": {"stroke3": [[9e8, 0, 0], [9e8, 0, 0], [9e8, 0, 1]]},
    "svg line": {"svg": '<svg xmlns="http://www.w3.org/2000/svg"><line x1="-1e308" y1="0" x2="1e308" y2="1"/></svg>'},
    "svg curve": {"svg": '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 C 1e308 1e308 -1e308 -1e308 1 1"/>'
                  "</svg>"},
    "canvas": {"strokes": [[[0, 0], [5, 5]]], "width": 1e308, "height": 10},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(OVERFLOW))
def test_overflowing_coordinates_get_422_on_a_connection_that_stays_open(server: str, case: str) -> None:
    conn = connection(server)
    status, answer = exchange(conn, {**OVERFLOW[case], "categories": ["tree"]})
    assert status == 422, answer
    assert "over the limit of 1e+09" in answer["detail"] or "beyond +-1e+09" in answer["detail"] or (
        "overflows" in answer["detail"]
    ), answer["detail"]
    status, answer = exchange(conn, good_strokes())  # the same keep-alive connection: not reset
    assert status == 200, answer
    conn.close()


# ------------------------------------------------------------- 7: a lone surrogate; 500s name no internals

SURROGATE = {
    "category": {"image": "eA==", "categories": ["a\ud800b"]},
    "caption": {"image": "eA==", "caption": "a dog and a \ud800 tree"},
    "svg": {"svg": '<svg xmlns="http://www.w3.org/2000/svg"><text>\ud800</text><line x1="0" y1="0" x2="1" y2="1"/>'
            "</svg>", "categories": ["tree"]},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SURROGATE))
def test_lone_surrogate_gets_422_and_the_model_card_keeps_answering(server: str, case: str) -> None:
    status, answer = post(f"{server}/v1/segment", SURROGATE[case])  # json.dumps writes the \ud800 escape
    assert status == 422, answer
    detail = answer["detail"]
    assert "not valid Unicode text" in detail and "\\ud800" in detail or "unable to parse raw data as a unicode " \
        "string" in detail, detail  # pydantic's own words for a field with a length limit (the caption)
    card = get(f"{server}/v1/model")
    assert card["weights"] and get(f"{server}/healthz")["weights"] == card["weights"]
    status, answer = post(f"{server}/v1/segment", good_strokes())
    assert status == 200, answer


def test_internal_error_is_a_500_without_internals_on_a_connection_that_stays_open(tmp_path: Path) -> None:
    """A real uvicorn serving an app (with the server's middleware) whose route fails: the 500 carries a reference,
    not the exception, and the same connection then serves the next request."""
    import uvicorn
    from fastapi import FastAPI

    from sketchseg.serve.app import InternalErrors
    from sketchseg.serve.protocol import uvicorn_options

    app = FastAPI()

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("secret internals: /etc/passwd")

    @app.get("/ok")
    def ok() -> dict:
        return {"ok": True}

    app.add_middleware(InternalErrors)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", **uvicorn_options())
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if srv.started:
                break
            time.sleep(0.05)
        conn = connection(f"http://127.0.0.1:{port}")
        conn.request("GET", "/boom")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 500
        assert body["detail"].startswith("internal error (reference ") and "log" in body["detail"]
        assert "secret" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)
        conn.request("GET", "/ok")  # the same connection
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"ok": True}
        conn.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


# ------------------------------------------------------------------ 9: the category limit on every path (captions)


def test_caption_is_held_to_the_category_limit(server: str) -> None:
    caption = ", ".join(f"a {w}" for w in WORDS)
    n = len(parse_categories(caption))
    assert n > 32  # the parser finds more than the limit
    status, answer = post(f"{server}/v1/segment", {**good_strokes(), "categories": None, "caption": caption})
    assert status == 422, answer
    assert f"the caption names {n} categories, over the limit of 32" in answer["detail"], answer["detail"]
    status, answer = post(f"{server}/v1/segment", {**good_strokes(), "categories": None, "caption": "a dog in a house"})
    assert status == 200 and answer["categories"] == ["dog", "house"], answer


def test_pyfunc_model_shares_the_category_limit() -> None:
    import pandas as pd

    frame = pd.DataFrame([{"image": png_b64(SCENE.raster(64)), "categories": [f"c{i}" for i in range(33)]}])
    with pytest.raises(InputError, match="row 0: got 33 categories, over the limit of 32"):
        parse_input(frame)
    frame = pd.DataFrame([{"image": png_b64(SCENE.raster(64)), "categories": ", ".join(f"c{i}" for i in range(32))}])
    assert len(parse_input(frame)) == 1


# ----------------------------------------------------------------------- 10: the text cache, bounded and private


def test_text_cache_is_bounded_and_the_model_card_lists_no_clients_words(server: str) -> None:
    secrets = [f"secret word {i}" for i in range(3 * TEXT_CACHE)]
    for start in range(0, len(secrets), 4):
        status, answer = post(f"{server}/v1/segment", {**good_strokes(), "categories": secrets[start : start + 4]})
        assert status == 200, answer
    with urllib_open(f"{server}/v1/model") as raw:
        text = raw.decode()
    card = json.loads(text)
    assert card["text_cache"] == {"entries": TEXT_CACHE, "capacity": TEXT_CACHE}
    assert "secret" not in text and len(text) < 4000


def urllib_open(url: str):
    import contextlib
    import urllib.request

    @contextlib.contextmanager
    def opened() -> Iterator[bytes]:
        with urllib.request.urlopen(url, timeout=30) as resp:
            yield resp.read()

    return opened()


def test_text_encoder_cache_is_lru() -> None:
    model = perturbed_model()
    text = model.text
    text.max_cached = 3
    first = text.encode_categories(["a", "b", "c"])
    calls = text.calls
    text.encode_categories(["a"])  # a is now the most recent: b is the oldest
    text.encode_categories(["d"])  # evicts b
    assert text.cached == 3 and text.cached_categories() == ["a", "c", "d"]
    assert text.calls == calls + 1  # "a" came from the cache
    again = text.encode_categories(["b"])  # recomputed, the same embedding
    assert np.allclose(again.numpy(), first[1:2].numpy(), atol=1e-6)
    assert text.cached_categories() == ["a", "b", "d"]


# ---------------------------------------------------------------------- 11: connection timeouts, trusted hosts


def test_idle_and_slow_connections_are_timed_out_and_the_server_serves_on(server: str) -> None:
    # a connection that sends nothing is closed after the read deadline
    sock = raw_socket(server)
    t0 = time.monotonic()
    assert read_all(sock) == b""
    assert time.monotonic() - t0 < READ_TIMEOUT + 5
    sock.close()
    # headers at one byte per 0.2 s (the whole request would take about 40 s): 408, then closed
    host = server.removeprefix("http://")
    head = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slowloris-test\r\nX-Pad: {'p' * 100}\r\n\r\n"
    sock = raw_socket(server)
    sock.settimeout(0.2)
    answer, t0 = b"", time.monotonic()
    for byte in head.encode():
        try:
            sock.send(bytes([byte]))
            time.sleep(0.2)
            answer += sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if answer and answer.endswith(b"}"):
            break
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"not received within" in answer
    assert time.monotonic() - t0 < READ_TIMEOUT + 5
    sock.close()
    # a body trickling in after complete headers: 408 and closed
    sock = raw_socket(server)
    sock.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1000\r\n\r\n{".encode())  # fmt: skip
    sock.settimeout(READ_TIMEOUT + 5)
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    sock.close()
    # a kept-alive connection left idle is closed after --timeout-keep-alive-s
    sock = raw_socket(server)
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    answer = read_all(sock)  # the answer, then the close
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"}")
    sock.close()
    assert_serves(server)


def assert_serves(url: str) -> None:
    status, answer = post(f"{url}/v1/segment", good_strokes())
    assert status == 200, answer


def test_request_head_over_the_limit_gets_400_as_json(server: str) -> None:
    sock = raw_socket(server)
    host = server.removeprefix("http://")
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Pad: {'p' * 40_000}".encode())  # unfinished
    time.sleep(0.5)
    try:
        sock.sendall(b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # already answered and closed
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    detail = json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]
    assert "over 16384 bytes" in detail
    sock.close()
    assert_serves(server)


def test_host_header_must_name_this_server(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    for path in ("/healthz", "/static", "/v1/model"):
        conn = connection(server)
        conn.request("GET", path, headers={"Host": "evil.example"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 400 and resp.getheader("location") is None
        assert "'evil.example' names no host this server answers to" in body["detail"]
        assert "--allowed-hosts" in body["detail"]
        conn.close()
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        conn = connection(server)
        conn.request("GET", "/static", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (301, 307) and resp.getheader("location") == f"http://{host}/static/"
        conn.close()
    assert_serves(server)


# ------------------------------------------------------------- 12: pixel and body limits answered as documented


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk announcing ``width`` x ``height`` 8-bit grayscale pixels, then IEND: enough
    for a reader to learn its size, no pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [5000, 14000])  # 25 M pixels (PIL warns), 196 M (PIL refuses to open it)
def test_image_over_the_pixel_limit_gets_413_whatever_its_size(server: str, side: int) -> None:
    body = {"image": base64.b64encode(png_header_only(side, side)).decode(), "categories": ["tree"]}
    status, answer = post(f"{server}/v1/segment", body)
    assert status == 413, answer
    assert f"over the limit of {4096 * 4096} pixels" in answer["detail"], answer["detail"]
    assert_serves(server)


def test_oversized_body_is_refused_before_it_is_read(server: str) -> None:
    sock = raw_socket(server, timeout=READ_TIMEOUT + 8)
    host = server.removeprefix("http://")
    sock.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {64 * MIB}\r\n\r\n".encode())  # fmt: skip
    sock.settimeout(1.5)  # less than the drain's idle wait: the answer comes before any body is sent
    head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head
    while not head.endswith(b"}"):
        head += sock.recv(65536)
    assert b"over the limit of 16777216 bytes" in head and b"connection: close" in head.lower()
    sock.close()
    assert_serves(server)


def test_vector_path_length_is_limited(server: str) -> None:
    zigzag = [[0, 0] if i % 2 == 0 else [1000, 1000] for i in range(50_000)]  # 50,000 diagonals across the raster
    status, answer = post(f"{server}/v1/segment", {"strokes": [zigzag], "categories": ["tree"]})
    assert status == 413, answer
    assert "raster pixels long together, over the limit of 1000000" in answer["detail"], answer["detail"]
    assert_serves(server)


def test_svg_sampling_more_points_than_allowed_is_refused_while_sampling(server: str) -> None:
    """Long curves are sampled every raster pixel: 8,000 of them would give 5.6 M points (about 0.5 GB) before the
    point limit was checked; sampling stops once it passes the limit."""
    curve = "C1000 0 0 1000 1000 1000 "
    svg = f'<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 {curve * 8000}"/></svg>'
    status, answer = post(f"{server}/v1/segment", {"svg": svg, "categories": ["tree"]})
    assert status == 413, answer
    assert "SVG samples more than 100000 points" in answer["detail"], answer["detail"]
    assert_serves(server)


# ------------------------------------------------------------------------ 8: memory, working resolution, starvation


def test_large_image_is_segmented_at_a_working_resolution(server: str, checkpoint: Path) -> None:
    side = 2048
    body = {"image": big_png(side), "categories": SCENE.categories}
    status, answer = post(f"{server}/v1/segment", body)
    assert status == 200, answer
    assert (answer["width"], answer["height"]) == (side, side)
    labels = decode_labels(answer["labels_png"])
    gray = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"]))))
    expected = Segmenter.from_checkpoint(checkpoint).segment(gray, categories=SCENE.categories)  # full resolution
    ink = expected.labels >= 0
    assert np.array_equal(labels >= 0, ink)
    assert len(np.unique(expected.labels[ink])) >= 2 and (labels[ink] == expected.labels[ink]).mean() >= 0.99
    assert get(f"{server}/v1/model")["memory"]["work_pixels"] == 1024 * 1024


def test_working_resolution_equals_full_resolution_when_it_holds_the_whole_sketch() -> None:
    """An image 600 x 1500: its padded square (2.25 M pixels) is over work_pixels, the image itself (0.9 M) is not,
    so the maps are sampled at every pixel: the same labels, maps and masks as upsampling the whole square."""
    model = perturbed_model()
    image = np.asarray(Image.fromarray(SCENE.raster()).resize((1500, 600)))
    full = Segmenter(model).segment(image, categories=SCENE.categories, threshold=0.6)
    work = Segmenter(model, work_pixels=1024 * 1024).segment(image, categories=SCENE.categories, threshold=0.6)
    assert work.work_size == (600, 1500) and full.work_size is None
    assert np.array_equal(work.labels, full.labels) and np.array_equal(work.masks, full.masks)
    assert np.allclose(work.similarity, full.similarity, atol=1e-5)
    assert work.shares == full.shares


@pytest.fixture(scope="module")
def small_server(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Server B: a memory budget of 1.5 large requests (2048 x 2048, 2 categories), 4 large-request slots (memory,
    not slots, is what holds them), at most 2 waiting; bodies parsed within 40 MiB."""
    need = memory.image_need(2048, 2048, 1, 2, False, 1024 * 1024, 200_000)
    budget_mb = 1.5 * need / MIB
    log = tmp_path_factory.mktemp("limits-small-log") / "server.log"
    args = ["--checkpoint", str(checkpoint), "--memory-mb", f"{budget_mb:.1f}", "--large-slots", "4",
            "--max-waiting", "2", "--queue-timeout-s", "120", "--body-memory-mb", str(BODY_BUDGET_MB)]  # fmt: skip
    with sketchseg_server(args, log=log) as url:
        yield url


def test_request_over_the_per_request_budget_gets_413(small_server: str) -> None:
    status, answer = post(f"{small_server}/v1/segment", {"image": big_png(4096), "categories": ["house", "dog"]})
    assert status == 413, answer
    assert "a 4096x4096 image with 2 categories needs about" in answer["detail"], answer["detail"]
    assert "MiB per request" in answer["detail"]
    assert_serves(small_server)


def test_large_requests_wait_for_memory_and_small_ones_are_not_held_behind_them(small_server: str) -> None:
    large = {"image": big_png(2048), "categories": ["house", "dog"]}
    before = get(f"{small_server}/v1/model")["memory"]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(post, f"{small_server}/v1/segment", large) for _ in range(3)]
        seen_waiting = 0
        for _ in range(400):  # the second and third wait for memory
            seen_waiting = max(seen_waiting, get(f"{small_server}/healthz")["waiting"])
            if seen_waiting >= 1:
                break
            time.sleep(0.01)
        small = [post(f"{small_server}/v1/segment", good_strokes()) for _ in range(3)]
        large_left = sum(not f.done() for f in futures)
        answers = [f.result() for f in futures]
    assert seen_waiting >= 1, "no large request ever waited for memory"
    assert all(status == 200 for status, _ in small), small
    assert large_left >= 1, "the small requests were held until every large one was answered"
    assert all(status == 200 for status, _ in answers), [a for _, a in answers]
    after = get(f"{small_server}/v1/model")["memory"]
    assert after["in_use_bytes"] == 0 and after["admitted"] == 0 and after["waiting"] == 0
    assert after["peak_rss_bytes"] - before["rss_bytes"] <= after["budget_bytes"]  # admitted work stayed in budget


def test_more_waiting_than_allowed_get_503_with_retry_after(small_server: str) -> None:
    large = json.dumps({"image": big_png(2048), "categories": ["house", "dog"]}).encode()

    def send() -> tuple[int, str | None, dict]:
        conn = connection(small_server, timeout=300)
        conn.request("POST", "/v1/segment", body=large, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out = (resp.status, resp.getheader("retry-after"), json.loads(resp.read()))
        conn.close()
        return out

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: send(), range(6)))
    refused = [(retry, a) for status, retry, a in answers if status == 503]
    assert refused and len(refused) + sum(status == 200 for status, _, _ in answers) == 6, answers
    for retry, answer in refused:
        assert retry is not None and int(retry) >= 1
        assert answer["detail"].startswith("server busy: 2 requests already wait for memory; retry in")
    assert get(f"{small_server}/v1/model")["memory"]["refused"] >= len(refused)
    assert_serves(small_server)


def test_request_bodies_wait_for_their_parsing_memory(small_server: str) -> None:
    """800 kB of point lists parse into about 38 MiB of Python objects (48 bytes per body byte): with 40 MiB for
    bodies one is read at a time, two wait, the others get an early 503 (before their bodies are read)."""
    strokes = [[[round(100 + 80 * np.cos(t / 300 + k), 2), round(100 + 80 * np.sin(t / 300 + k), 2)]
                for t in range(1000)] for k in range(50)]  # fmt: skip
    body = json.dumps({"strokes": strokes, "width": 256, "height": 256, "categories": ["tree"]}).encode()
    assert 48 * len(body) <= BODY_BUDGET_MB * MIB < 2 * 48 * len(body)

    def send() -> tuple[int, dict[str, str], dict]:
        conn = connection(small_server, timeout=300)
        conn.request("POST", "/v1/segment", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read()))
        conn.close()
        return out

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: send(), range(6)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(200) >= 3 and set(statuses) <= {200, 503}, [a for _, _, a in answers]
    for status, headers, answer in answers:
        if status == 503:
            assert headers.get("connection") == "close" and int(headers["retry-after"]) >= 1
            assert answer["detail"].startswith("server busy: 2 requests already wait for memory")
    card = get(f"{small_server}/v1/model")["memory"]
    assert card["body_budget_bytes"] == BODY_BUDGET_MB * MIB and card["body_in_use_bytes"] == 0
    assert_serves(small_server)


# ---------------------------------------------------------------------------------------------------- in-process


def test_admission_waits_refuses_and_lets_small_requests_pass() -> None:
    async def main() -> None:
        gate = Admission(budget=100, large_bytes=50, large_slots=2, queue_timeout=0.2, max_waiting=2)
        with pytest.raises(InputTooLarge, match="needs about 1 MiB of working memory, over the limit of 0 MiB"):
            gate.check(101, "a thing")
        order: list[str] = []

        async def hold(name: str, need: int, seconds: float) -> None:
            async with gate.admit(need, name):
                order.append(name)
                await asyncio.sleep(seconds)

        first = asyncio.create_task(hold("large 1", 60, 0.1))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(hold("large 2", 60, 0.0))  # waits: 60 + 60 > 100
        await asyncio.sleep(0.01)
        await hold("small", 30, 0.0)  # fits beside large 1: not held behind large 2
        assert order == ["large 1", "small"] and gate.stats().waiting == 1
        await asyncio.gather(first, second)
        assert order == ["large 1", "small", "large 2"] and gate.stats().in_use_bytes == 0
        # a request that waits longer than queue_timeout: 503 with Retry-After
        blocker = asyncio.create_task(hold("large 3", 90, 0.5))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="no memory free for 0.2 s") as refused:
            await hold("large 4", 60, 0.0)
        assert refused.value.retry_after >= 1
        await blocker
        assert gate.stats().refused == 1 and gate.stats().in_use_bytes == gate.stats().admitted == 0

    asyncio.run(main())


def test_batcher_runs_small_items_before_a_waiting_large_one() -> None:
    calls: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        calls.append(list(items))
        time.sleep(0.05)
        return items

    async def main() -> None:
        batcher: Batcher[str, str] = Batcher(run, max_batch=8, window=0.01)
        await batcher.start()
        try:
            running = asyncio.create_task(batcher.submit("L1", large=True))
            await asyncio.sleep(0.02)  # L1 is in the worker thread
            rest = [batcher.submit("L2", large=True), batcher.submit("s1"), batcher.submit("s2")]
            await asyncio.gather(running, *rest)
        finally:
            await batcher.stop()

    asyncio.run(main())
    assert calls == [["L1"], ["s1", "s2"], ["L2"]]


def test_default_allowed_hosts_follow_the_bound_address() -> None:
    from sketchseg.serve.app import default_allowed_hosts

    assert default_allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert default_allowed_hosts("192.168.1.5")[-1] == "192.168.1.5"
    assert default_allowed_hosts("fd00::5")[-1] == "[fd00::5]"
    everywhere = default_allowed_hosts("0.0.0.0")
    assert everywhere[:3] == ["127.0.0.1", "localhost", "[::1]"] and socket.gethostname().lower() in everywhere
