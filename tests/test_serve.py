"""`sketchseg serve` against a real uvicorn on a free loopback port: every input kind, every bad request with its
status code (and a good request answered after each), labels equal to the in-process Segmenter's, /healthz while a
slow request is in flight, concurrent requests batched; the batcher, the weights choice and the decoder in-process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import io
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sketchseg.data.sketch import InputLimits, InputTooLarge, decode_sketch
from sketchseg.data.synth import make_scene
from sketchseg.errors import InputError
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.segmenter import Segmenter
from sketchseg.render import legend_entries
from sketchseg.render.labels import decode_labels
from sketchseg.serve.batching import Batcher
from sketchseg.weights import WeightsChoice, load_segmenter
from tests.conftest import load_champion
from tests.servers import background, base_env, free_port, wait_http

SCENE = make_scene(7, 0, 3)  # house, dog, grass: 16 strokes
MAX_BODY = 1024 * 1024  # the test server's --max-body-mb 1
MAX_PIXELS = 1024 * 1024
WINDOW_MS = 50


def perturbed_model(seed: int = 0, scale: float = 1.0) -> SketchSegModel:
    """An untrained sketchseg-test model whose LayerNorms are perturbed with ``seed``, so that its label maps mix
    several categories (an untrained model's maps mostly name one category everywhere)."""
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=1), seed=1))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) and module.weight is not None:
                module.weight.add_(torch.randn(module.weight.shape, generator=gen) * scale)
                module.bias.add_(torch.randn(module.bias.shape, generator=gen) * scale)
    return model


def png_b64(gray: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@contextlib.contextmanager
def sketchseg_server(args: list[str], *, log: Path, cwd: Path | None = None, timeout: float = 240) -> Iterator[str]:
    """``sketchseg serve ARGS`` on a free loopback port, stopped when the block ends; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "sketchseg", "serve", *args, "--port", str(port)]
    with background(cmd, log=log, env=base_env(), cwd=cwd, grace=10) as proc:
        wait_http(f"{url}/healthz", proc, log, timeout)
        yield url


def post(url: str, body: object | bytes, headers: dict[str, str] | None = None, timeout: float = 120):
    """POST JSON (or raw bytes); returns (status, decoded JSON answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url: str, timeout: float = 30) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(perturbed_model(), tmp_path_factory.mktemp("serve") / "perturbed.pt")


@pytest.fixture(scope="module")
def reference(checkpoint: Path) -> Segmenter:
    return Segmenter.from_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def server(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    args = ["--checkpoint", str(checkpoint), "--batch-window-ms", str(WINDOW_MS), "--max-body-mb", "1",
            "--max-pixels", str(MAX_PIXELS)]  # fmt: skip
    with sketchseg_server(args, log=log) as url:
        yield url


def good_body() -> dict:
    """A small request that must always succeed."""
    return {"image": png_b64(SCENE.raster(128)), "categories": ["house", "dog"]}


def assert_serves(server: str) -> None:
    status, answer = post(f"{server}/v1/segment", good_body())
    assert status == 200, answer
    assert answer["categories"] == ["house", "dog"]


# ------------------------------------------------------------------------------------------------------ good requests


def test_png_labels_equal_the_segmenters(server: str, reference: Segmenter, checkpoint: Path) -> None:
    raster = SCENE.raster()
    status, answer = post(f"{server}/v1/segment", {"image": png_b64(raster), "categories": SCENE.categories})
    assert status == 200, answer
    expected = reference.segment(raster, categories=SCENE.categories)
    assert len(np.unique(expected.labels[expected.labels >= 0])) >= 2  # a label map worth comparing
    labels = decode_labels(answer["labels_png"])
    assert np.array_equal(labels, expected.labels)
    assert answer["categories"] == expected.categories == SCENE.categories
    assert answer["shares"] == pytest.approx(expected.shares)
    assert (answer["width"], answer["height"]) == (512, 512)
    assert answer["input"] == "image" and answer["stroke_labels"] is None and answer["isolated"] is None
    assert answer["weights"] == reference.weights and str(checkpoint) in answer["weights"]


def test_jpeg_caption_and_threshold(server: str, reference: Segmenter) -> None:
    raster = SCENE.raster(256)
    body = {"image": "data:image/jpeg;base64," + png_b64(raster, "JPEG"), "caption": SCENE.caption, "threshold": 0.6}
    status, answer = post(f"{server}/v1/segment", body)
    assert status == 200, answer
    jpeg = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"].split(",", 1)[1]))).convert("L"))
    expected = reference.segment(jpeg, caption=SCENE.caption, threshold=0.6)
    assert answer["categories"] == expected.categories == ["puppy", "house"]
    assert np.array_equal(decode_labels(answer["labels_png"]), expected.labels)
    assert answer["threshold"] == 0.6
    assert set(answer["isolated"]) == set(expected.categories)
    for k, name in enumerate(expected.categories):
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["isolated"][name]["mask_png"])))) == 0
        assert np.array_equal(mask, expected.masks[k])
        assert answer["isolated"][name]["stroke_share"] == pytest.approx(mask.sum() / expected.strokes.sum())


def scene_stroke3(strokes) -> list[list[float]]:
    """Absolute strokes -> stroke-3 rows (first point absolute, then offsets, pen = 1 at each stroke's end)."""
    rows, previous = [], np.zeros(2)
    for stroke in strokes:
        for j, point in enumerate(stroke):
            rows.append([*(point - previous).tolist(), 1.0 if j == len(stroke) - 1 else 0.0])
            previous = point
    return rows


def scene_svg(strokes, size: int = 256) -> str:
    lines = "".join(
        f'<polyline fill="none" stroke="black" points="{" ".join(f"{x:.3f},{y:.3f}" for x, y in s)}"/>' for s in strokes
    )
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">{lines}</svg>'


VECTOR_BODIES = {
    "strokes": lambda s: {"strokes": [p.tolist() for p in s], "width": 256, "height": 256},
    "stroke3": lambda s: {"stroke3": scene_stroke3(s), "width": 256, "height": 256},
    "svg": lambda s: {"svg": scene_svg(s)},
}


@pytest.mark.parametrize("kind", sorted(VECTOR_BODIES))
def test_vector_input_labels_every_stroke_as_the_segmenter_does(server: str, reference: Segmenter, kind: str) -> None:
    from sketchseg.data import vector

    body = {**VECTOR_BODIES[kind](SCENE.strokes), "categories": SCENE.categories}
    status, answer = post(f"{server}/v1/segment", body)
    assert status == 200, answer
    sketch = {
        "strokes": lambda: vector.from_points(body["strokes"], 256, 256),
        "stroke3": lambda: vector.from_stroke3(body["stroke3"], 256, 256),
        "svg": lambda: vector.from_svg(body["svg"]),
    }[kind]()
    expected = reference.segment(sketch, categories=SCENE.categories)
    assert len({s.index for s in expected.stroke_labels}) >= 2  # strokes of several categories
    assert np.array_equal(decode_labels(answer["labels_png"]), expected.labels)
    assert answer["input"] == kind and len(answer["stroke_labels"]) == len(SCENE.strokes)
    for got, want in zip(answer["stroke_labels"], expected.stroke_labels, strict=True):
        # one convention: index 0-based into categories, as StrokeLabel and the segment command's JSON have it
        assert got == {"label": want.label, "index": want.index, "confidence": pytest.approx(want.confidence),
                       "pixels": want.pixels}  # fmt: skip
        if want.index >= 0:
            assert got["label"] == answer["categories"][got["index"]]
    svg = answer["strokes_svg"]
    assert svg.count("<polyline") + svg.count("<circle") == len(SCENE.strokes)
    assert answer["untrained"] is False and "UNTRAINED" not in svg  # a checkpoint's weights (issue 22)
    assert f'data-label="{expected.stroke_labels[0].label}"' in svg
    assert answer["colours"][0] == "#e6194b" and len(answer["legend"]) >= len(SCENE.categories)
    assert answer["legend"][0]["text"].startswith(f"{SCENE.categories[0]}  ")
    assert [item["text"] for item in answer["legend"]] == [e.text for e in legend_entries(expected)]


def test_duplicate_categories_are_noted_and_cached(server: str) -> None:
    before = get(f"{server}/v1/model")["text_cache"]
    body = {**good_body(), "categories": [" house ", "Dog", "dog", "zebra crossing"]}
    status, answer = post(f"{server}/v1/segment", body)
    assert status == 200, answer
    assert answer["categories"] == ["house", "Dog", "zebra crossing"]
    assert "duplicate categories ignored: dog" in answer["notes"]
    card = get(f"{server}/v1/model")
    assert card["text_cache"]["entries"] >= before["entries"] and card["text_cache"]["capacity"] == 4096
    assert "zebra crossing" not in json.dumps(card)  # the card names no client's words
    assert card["image_size"] == [64, 64] and card["limits"]["max_categories"] == 32


# ------------------------------------------------------------------------------------------------------- bad requests

TINY_WHITE = np.full((32, 32), 255, dtype=np.uint8)
BIG = np.full((1100, 1000), 255, dtype=np.uint8)
BIG[500, 100:900] = 0
PNG = base64.b64decode(png_b64(SCENE.raster(128)))
CATS = ["house", "dog"]

BAD_REQUESTS = {
    # name: (body (dict, or raw bytes), content type, status, words the detail must contain)
    "not json": (b"{image: nope", "application/json", 400, "not valid JSON"),
    "not a json object": ([1, 2], "application/json", 422, "valid dictionary"),
    "form content type": (b"image=x&categories=a", "application/x-www-form-urlencoded", 415, "application/json"),
    "empty body": (b"", "application/json", 422, "empty body"),
    "no sketch": ({"categories": CATS}, None, 422, "exactly one of image, strokes, stroke3, svg (got none)"),
    "two sketches": ({"image": "eA==", "svg": "<svg/>", "categories": CATS}, None, 422, "got image and svg"),
    "no vocabulary": ({"image": "eA=="}, None, 422, "exactly one of categories and caption (got neither)"),
    "two vocabularies": ({"image": "eA==", "categories": CATS, "caption": "a dog"}, None, 422, "got both"),
    "unknown field": ({"image": "eA==", "categories": CATS, "colour": "red"}, None, 422, "colour: Extra inputs"),
    "undecodable base64": ({"image": "@@not base64@@", "categories": CATS}, None, 422, "image: not valid base64"),
    "not an image": ({"image": base64.b64encode(b"hello world").decode(), "categories": CATS}, None, 422,
                     "image: not an image file"),
    "truncated png": ({"image": base64.b64encode(PNG[:120]).decode(), "categories": CATS}, None, 422,
                      "unreadable or truncated"),
    "blank image": ({"image": png_b64(TINY_WHITE), "categories": CATS}, None, 422, "no strokes found"),
    "empty strokes": ({"strokes": [], "categories": CATS}, None, 422, "strokes: empty"),
    "empty stroke": ({"strokes": [[]], "categories": CATS}, None, 422, "strokes: empty"),
    "bad point": ({"strokes": [[[1, 2, 3]]], "categories": CATS}, None, 422, "strokes.0.0"),
    "empty stroke3": ({"stroke3": [], "categories": CATS}, None, 422, "stroke3: empty"),
    "bad pen value": ({"stroke3": [[1, 2, 0], [3, 4, 2]], "categories": CATS}, None, 422, "pen values must be 0 or 1"),
    "not svg": ({"svg": "hello", "categories": CATS}, None, 422, "not a readable SVG document"),
    "svg without strokes": ({"svg": '<svg xmlns="http://www.w3.org/2000/svg"/>', "categories": CATS}, None, 422,
                            "SVG without drawable elements"),
    "half a canvas size": ({"strokes": [[[1, 2]]], "width": 10, "categories": CATS}, None, 422,
                           "give both width and height"),
    "size with an image": ({"image": "eA==", "width": 10, "categories": CATS}, None, 422, "width and height go"),
    "no categories": ({"image": "eA==", "categories": []}, None, 422, "categories: List should have at least 1"),
    "blank categories": ({"image": png_b64(SCENE.raster(128)), "categories": ["", "  "]}, None, 422,
                         "empty category list"),
    "too many categories": ({"image": "eA==", "categories": [f"c{i}" for i in range(33)]}, None, 422,
                            "at most 32 items"),
    "long category": ({"image": "eA==", "categories": ["x" * 101]}, None, 422, "limited to 100 characters"),
    "caption without nouns": ({"image": png_b64(SCENE.raster(128)), "caption": "and of the"}, None, 422,
                              "no object nouns"),
    "threshold above 1": ({"image": "eA==", "categories": CATS, "threshold": 1.5}, None, 422,
                          "threshold: Input should be less than or equal to 1"),
    "threshold below 0": ({"image": "eA==", "categories": CATS, "threshold": -0.1}, None, 422, "greater than or eq"),
    "threshold not a number": ({"image": "eA==", "categories": CATS, "threshold": "high"}, None, 422, "threshold"),
    "image over the pixel limit": ({"image": png_b64(BIG), "categories": CATS}, None, 413,
                                   f"1000x1100 pixels is over the limit of {MAX_PIXELS}"),
    "too many strokes": ({"strokes": [[[i % 50, i // 50]] for i in range(2001)], "categories": CATS}, None, 413,
                         "2001 strokes is over the limit of 2000"),
    "too many points": ({"strokes": [[[0, 0]] * 100_001], "categories": CATS}, None, 413,
                        "100001 points is over the limit of 100000"),
    "body over the limit": ({"image": "A" * (MAX_BODY + 8), "categories": CATS}, None, 413,
                            f"over the limit of {MAX_BODY} bytes"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_its_status_and_the_next_request_succeeds(server: str, case: str) -> None:
    body, content_type, status, words = BAD_REQUESTS[case]
    headers = {"Content-Type": content_type} if content_type else {}
    got, answer = post(f"{server}/v1/segment", body, headers=headers)
    assert got == status, answer
    assert isinstance(answer["detail"], str) and words in answer["detail"], answer["detail"]
    assert_serves(server)


def test_body_limit_is_enforced_before_the_body_is_read(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    # Content-Length over the limit: the answer comes though only 100 bytes of the body were ever sent
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/segment")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(50 * MAX_BODY))
    conn.endheaders()
    conn.send(b"{" + b" " * 99)
    resp = conn.getresponse()
    assert resp.status == 413
    assert "over the limit" in json.loads(resp.read())["detail"]
    conn.close()
    # a chunked body (no Content-Length) is cut off once it passes the limit
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = (b'{"image": "' + b"A" * 65536 for _ in range(40))  # 2.6 MB, more than 2x the limit
    conn.request("POST", "/v1/segment", body=chunks, headers={"Content-Type": "application/json"},
                 encode_chunked=True)  # fmt: skip
    resp = conn.getresponse()
    assert resp.status == 413
    assert "over the limit" in json.loads(resp.read())["detail"]
    conn.close()
    assert_serves(server)


# -------------------------------------------------------------------------------------------- concurrency and batching


def test_healthz_answers_while_a_slow_request_is_in_flight(server: str) -> None:
    big = np.asarray(Image.fromarray(SCENE.raster()).resize((1024, 1024)))  # 1 Mpx, 32 maps upsampled to it
    body = {"image": png_b64(big), "categories": [f"thing {i}" for i in range(32)], "threshold": 0.5}
    done = threading.Event()
    result: dict = {}

    def slow() -> None:
        result["answer"] = post(f"{server}/v1/segment", body, timeout=300)
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    seen_busy = None
    while not done.is_set():
        health = get(f"{server}/healthz")
        if health["segmenting"] >= 1 and not done.is_set():  # answered while the model works on the request
            seen_busy = health
            break
        time.sleep(0.005)
    thread.join()
    assert result["answer"][0] == 200, result["answer"]
    assert seen_busy is not None, "/healthz never answered while the model was segmenting the slow request"
    assert seen_busy["status"] == "ok" and seen_busy["in_flight"] >= 1
    assert get(f"{server}/healthz")["in_flight"] == get(f"{server}/healthz")["segmenting"] == 0


def test_concurrent_requests_are_batched(server: str, reference: Segmenter) -> None:
    before = get(f"{server}/v1/model")["batching"]
    scenes = [make_scene(7, 1, i) for i in range(8)]
    bodies = [{"image": png_b64(s.raster(256)), "categories": s.categories} for s in scenes]
    barrier = threading.Barrier(len(bodies))

    def send(body: dict):
        barrier.wait()
        return post(f"{server}/v1/segment", body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, bodies))
    after = get(f"{server}/v1/model")["batching"]
    assert all(status == 200 for status, _ in answers)
    assert after["items"] - before["items"] == len(bodies)
    calls = after["batches"] - before["batches"]
    assert calls < len(bodies), after  # fewer model calls than requests
    assert max(after["recent"][-calls:]) >= 2
    # each answer is its own sketch's: the same strokes, and labels agreeing with a single call on at least 99 % of
    # them (a batch sums its floats in another order than one image does, which may flip a near-tie pixel; another
    # sketch's labels would agree on a fraction)
    for scene, (_, answer) in zip(scenes, answers, strict=True):
        expected = reference.segment(scene.raster(256), categories=scene.categories)
        assert answer["categories"] == expected.categories
        labels = decode_labels(answer["labels_png"])
        ink = expected.labels >= 0
        assert np.array_equal(labels >= 0, ink)
        assert (labels[ink] == expected.labels[ink]).mean() >= 0.99


# ------------------------------------------------------------------------------------------------- schema and pages


def test_openapi_document_describes_the_api(server: str) -> None:
    doc = get(f"{server}/openapi.json")
    assert {"/v1/segment", "/v1/model", "/v1/examples", "/healthz"} <= set(doc["paths"])
    body = doc["components"]["schemas"]["SegmentBody"]["properties"]
    assert {"image", "strokes", "stroke3", "svg", "width", "height", "categories", "caption", "threshold"} == set(body)
    assert "base64" in body["image"]["description"]
    assert {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 32} in body["categories"]["anyOf"]
    answer = doc["components"]["schemas"]["SegmentResponse"]["properties"]
    assert {"categories", "labels_png", "shares", "stroke_labels", "isolated", "weights", "notes"} <= set(answer)
    assert set(doc["paths"]["/v1/segment"]["post"]["responses"]) >= {"200", "400", "413", "415", "422"}
    with urllib.request.urlopen(f"{server}/docs", timeout=30) as resp:
        page = resp.read().decode()
    assert resp.status == 200 and "swagger" in page.lower()
    # the docs page works offline: its script and style come from this server, not from a CDN
    assets = re.findall(r"(?:src|href)=['\"]([^'\"]+\.(?:js|css))['\"]", page)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        with urllib.request.urlopen(f"{server}{asset}", timeout=30) as resp:
            assert resp.status == 200 and len(resp.read()) > 10_000, asset


def test_page_and_examples_are_served(server: str) -> None:
    with urllib.request.urlopen(f"{server}/", timeout=30) as resp:
        page = resp.read().decode()
        assert resp.headers["content-type"].startswith("text/html")
    assert "<canvas" in page and "/static/app.js" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    with urllib.request.urlopen(f"{server}/static/app.js", timeout=30) as resp:
        script = resp.read().decode()
    assert "pointerdown" in script and "/v1/segment" in script
    examples = get(f"{server}/v1/examples")
    assert len(examples) >= 3
    again = get(f"{server}/v1/examples")
    assert examples == again  # deterministic
    first = examples[0]
    scene = make_scene(7, 0, 1)
    assert first["categories"] == scene.categories and first["caption"] == scene.caption
    assert len(first["strokes"]) == len(scene.strokes) == len(first["stroke_categories"])
    assert np.allclose(first["strokes"][0], scene.strokes[0], atol=0.05)


# --------------------------------------------------------------------------------------------------------- in-process


def test_batcher_groups_concurrent_items_and_isolates_failures() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise ValueError("13 is unlucky")
        time.sleep(0.05)
        return [i * 10 for i in items]

    async def main() -> tuple[list, list]:
        batcher: Batcher[int, int] = Batcher(run, max_batch=4, window=0.05)
        await batcher.start()
        try:
            first = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
            second = await asyncio.gather(*(batcher.submit(i) for i in (1, 13, 2)), return_exceptions=True)
            return first, second, batcher.stats()
        finally:
            await batcher.stop()

    first, second, stats = asyncio.run(main())
    assert first == [i * 10 for i in range(10)]
    assert [len(c) for c in calls[:3]] == [4, 4, 2]  # 10 concurrent items: 3 calls of at most 4
    assert second[0] == 10 and second[2] == 20 and isinstance(second[1], ValueError)
    assert calls[3] == [1, 13, 2] and calls[4:] == [[1], [13], [2]]  # the failed batch retried item by item
    assert stats.batches == 4 and stats.items == 13 and stats.pending == stats.running == 0


def test_decoder_limits_and_errors() -> None:
    limits = InputLimits(max_pixels=100, max_strokes=2, max_points=5)
    with pytest.raises(InputTooLarge, match="11x10 pixels is over the limit of 100"):
        decode_sketch(image=png_b64(np.zeros((10, 11), np.uint8)), limits=limits)
    with pytest.raises(InputError, match="row 3: give exactly one of image, strokes, stroke3, svg"):
        decode_sketch(where="row 3")
    sketch = decode_sketch(image=png_b64(SCENE.raster(64)))
    assert np.array_equal(sketch.gray, SCENE.raster(64))


def test_default_weights_are_the_pipelines_checkpoint_when_present(tmp_path: Path, checkpoint: Path) -> None:
    missing = tmp_path / "data/train/models/optimal.pt"
    segmenter, weights = load_segmenter(WeightsChoice(default_checkpoint=missing))
    assert weights.startswith(f"untrained sketchseg-tiny ({missing} not found)")
    assert segmenter.model.cfg.backbone.name == "sketchseg-tiny"
    segmenter, weights = load_segmenter(WeightsChoice(default_checkpoint=checkpoint))
    assert weights == segmenter.weights and weights.startswith(f"checkpoint {checkpoint}")
    _, weights = load_segmenter(WeightsChoice(model="sketchseg-test", seed=3), batch_size=4)
    assert "sketchseg-test (seed 3" in weights
    with pytest.raises(InputError, match="at most one of --checkpoint, --model, --registry"):
        WeightsChoice(checkpoint=checkpoint, model="sketchseg-test")
    with pytest.raises(InputError, match="--pretrained goes with --model"):
        WeightsChoice(pretrained=str(tmp_path / "open_clip_model.safetensors"))  # a local file: nothing is fetched


def test_pyfunc_model_takes_the_servers_inputs_and_agrees_with_it(
    server: str, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from sketchseg.tracking import registry, store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.client_for(uri)
    run = client.create_run(store.ensure_experiment(client, "serve"))
    client.set_terminated(run.info.run_id)
    registry.register_checkpoint(checkpoint, run_id=run.info.run_id, test_miou=0.3, uri=uri)
    bodies = [
        {"image": png_b64(SCENE.raster(256))},
        *(VECTOR_BODIES[kind](SCENE.strokes) for kind in ("strokes", "stroke3", "svg")),
    ]
    frame = pd.DataFrame([{**body, "categories": SCENE.categories} for body in bodies])
    model = load_champion(uri=uri)  # the pyfunc model, as `mlflow models serve` runs it
    out = model.predict(frame)
    for body, (_, row) in zip(bodies, out.iterrows(), strict=True):
        status, answer = post(f"{server}/v1/segment", {**body, "categories": SCENE.categories})
        assert status == 200, answer
        assert row["labels_png"] == answer["labels_png"]  # one codec: the same PNG file, byte for byte
        assert list(row["categories"]) == answer["categories"] and row["shares"] == pytest.approx(answer["shares"])
        if answer["stroke_labels"] is None:
            assert row["stroke_labels"] is None
        else:
            assert row["stroke_labels"] == [{**s, "confidence": pytest.approx(s["confidence"])}
                                            for s in answer["stroke_labels"]]  # fmt: skip
    with pytest.raises(InputError, match="row 0: give exactly one of image, strokes, stroke3, svg"):
        model.predict(pd.DataFrame([{**bodies[1], "svg": bodies[3]["svg"], "categories": "a"}]))

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # sketchseg serve --registry models:/sketchseg@champion
    segmenter, weights = load_segmenter(WeightsChoice(registry="models:/sketchseg@champion"), batch_size=4)
    assert weights.startswith("models:/sketchseg@champion: checkpoint ") and segmenter.batch_size == 4
    expected = Segmenter.from_checkpoint(checkpoint).segment(SCENE.raster(256), categories=SCENE.categories)
    assert np.array_equal(segmenter.segment(SCENE.raster(256), categories=SCENE.categories).labels, expected.labels)
    with pytest.raises(InputError, match="models:/sketchseg@nobody: cannot load it"):
        load_segmenter(WeightsChoice(registry="models:/sketchseg@nobody"))


def test_serve_binds_loopback_by_default() -> None:
    from sketchseg.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.checkpoint, args.model, args.registry) == ("127.0.0.1", 8000, None, None, None)
