"""The drawing page in a real browser: Debian's Chromium driven headless by Selenium through /usr/bin/chromedriver
(never a downloaded driver) against a real `sketchseg serve`. Two strokes drawn with pointer events (a mouse and a
pen), two categories typed, Segment pressed: the strokes are recoloured by their labels and the legend lists both
categories; a screenshot is saved under tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sketchseg.model.checkpoint import save_checkpoint
from tests.test_serve import perturbed_model, sketchseg_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
)  # fmt: skip

pytestmark = pytest.mark.slow

if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(f"Chromium and ChromeDriver not installed; as root: {INSTALL}", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: pip install -r requirements.lock")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("page")
    checkpoint = save_checkpoint(perturbed_model(), folder / "perturbed.pt")
    with sketchseg_server(["--checkpoint", str(checkpoint)], log=folder / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser, server: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/")
    WebDriverWait(browser, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#examples option[value='0']")))
    return browser.find_element(By.ID, "board")


def wait_for(browser, script: str, timeout: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda d: d.execute_script(script))


def pixel(browser, x: float, y: float) -> list[int]:
    """RGB of the canvas pixel at (x, y) in canvas coordinates."""
    script = (
        "const c = document.getElementById('board').getContext('2d');"
        "return Array.from(c.getImageData(Math.round(arguments[0]), Math.round(arguments[1]), 1, 1).data).slice(0, 3);"
    )
    return browser.execute_script(script, x, y)


def hex_rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def test_draw_two_strokes_segment_and_see_them_recoloured(browser, server: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    canvas = open_page(browser, server)
    # stroke 1 with the mouse: a roof-like zigzag in the upper left (offsets from the canvas centre)
    mouse = ActionChains(browser).move_to_element_with_offset(canvas, -180, -60).click_and_hold()
    for dx, dy in ((30, -40), (30, 40), (30, -40), (30, 40), (20, 0)):
        mouse = mouse.move_by_offset(dx, dy)
    mouse.release().perform()
    # stroke 2 with a pen: a long wavy line in the lower half
    pen = ActionBuilder(browser, mouse=PointerInput(interaction.POINTER_PEN, "pen"))
    pen.pointer_action.move_to(canvas, -200, 120).pointer_down()
    for i in range(1, 9):
        pen.pointer_action.move_to(canvas, -200 + 45 * i, 120 + (25 if i % 2 else -5))
    pen.pointer_action.pointer_up()
    pen.perform()
    assert canvas.get_attribute("data-strokes") == "2"
    strokes = browser.execute_script("return window.sketchseg.strokes")
    assert len(strokes) == 2 and all(len(s) >= 5 for s in strokes)
    for stroke in strokes:  # drawn in black ink before segmenting
        assert pixel(browser, *stroke[len(stroke) // 2]) == [0, 0, 0]

    browser.find_element(By.ID, "categories").send_keys("house, grass")
    browser.find_element(By.ID, "segment").click()
    wait_for(browser, "return document.getElementById('board').dataset.segmented === 'true'")

    result = browser.execute_script("return window.sketchseg.result")
    assert result["categories"] == ["house", "grass"] and len(result["stroke_labels"]) == 2
    for stroke, label in zip(strokes, result["stroke_labels"], strict=True):
        assert label["index"] in (0, 1) and label["label"] == result["categories"][label["index"]]  # 0-based
        expected = hex_rgb(result["colours"][label["index"]])
        got = pixel(browser, *stroke[len(stroke) // 2])
        assert got != [0, 0, 0] and max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 2, (got, expected)
    legend = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#legend li")]
    assert [t.split()[0] for t in legend[:2]] == ["house", "grass"], legend
    assert all("%" in t for t in legend[:2])
    for k, text in enumerate(legend[:2]):  # each category's strokes, and 0 % for a category without strokes
        n = sum(label["index"] == k for label in result["stroke_labels"])
        assert text.endswith(f"({n} stroke{'s' if n != 1 else ''})"), legend
        assert n or " 0.0% " in f" {text} ", legend
    assert "Segmented 2 strokes" in browser.find_element(By.ID, "status").text

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "page_segmented.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    print(f"screenshot: {shot}")


def test_examples_undo_clear_and_an_error_shown(browser, server: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    canvas = open_page(browser, server)
    Select(browser.find_element(By.ID, "examples")).select_by_value("1")
    example = browser.execute_script("return fetch('/v1/examples').then(r => r.json()).then(e => e[1])")
    n = len(example["strokes"])
    assert canvas.get_attribute("data-strokes") == str(n)
    assert browser.find_element(By.ID, "categories").get_attribute("value") == ", ".join(example["categories"])
    # the caption instead of the categories, with a threshold
    browser.find_element(By.ID, "use-caption").click()
    browser.find_element(By.ID, "isolate").click()
    browser.find_element(By.ID, "segment").click()
    wait_for(browser, "return document.getElementById('board').dataset.segmented === 'true'")
    result = browser.execute_script("return window.sketchseg.result")
    assert result["threshold"] == 0.7 and len(result["stroke_labels"]) == n and result["isolated"]
    browser.find_element(By.ID, "undo").click()
    assert canvas.get_attribute("data-strokes") == str(n - 1)
    assert canvas.get_attribute("data-segmented") == "false"  # an edit forgets the result
    assert browser.find_elements(By.CSS_SELECTOR, "#legend li") == []
    # the server's 4xx detail is shown
    browser.find_element(By.ID, "use-categories").click()
    browser.find_element(By.ID, "categories").clear()
    browser.find_element(By.ID, "segment").click()
    wait_for(browser, "return document.getElementById('status').className === 'error'")
    assert "Error 422" in browser.find_element(By.ID, "status").text
    browser.find_element(By.ID, "clear").click()
    assert canvas.get_attribute("data-strokes") == "0"



def test_weights_line_survives_a_bad_request(browser, server: str) -> None:
    """Issue 21 case 7: a category with a lone surrogate once broke /v1/model and the page showed 'weights:
    undefined'; the page now takes the line from /healthz and says why when it cannot."""
    import json
    import urllib.error
    import urllib.request

    from selenium.webdriver.common.by import By

    body = json.dumps({"strokes": [[[1, 2], [30, 40]]], "categories": ["a\ud800b"]}).encode()
    request = urllib.request.Request(f"{server}/v1/segment", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 422
    with urllib.request.urlopen(f"{server}/healthz", timeout=30) as resp:
        weights = json.loads(resp.read())["weights"]
    open_page(browser, server)
    wait_for(browser, "return document.getElementById('weights').textContent.length > 0")
    line = browser.find_element(By.ID, "weights").text
    assert line == f"weights: {weights}" and "undefined" not in line


def test_an_untrained_models_answer_says_so_on_the_drawing(browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 22: the answer of random weights says UNTRAINED on the page's drawing (in red, top left) and in its
    strokes SVG, as `segment`'s overlay and SVG do; the trained server's drawing does not (the test above)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    folder = tmp_path_factory.mktemp("page-untrained")
    with sketchseg_server(["--model", "sketchseg-test", "--seed", "1"], log=folder / "server.log", cwd=folder) as url:
        canvas = open_page(browser, url)
        mouse = ActionChains(browser).move_to_element_with_offset(canvas, -100, 100).click_and_hold()
        mouse.move_by_offset(150, -50).move_by_offset(50, 60).release().perform()
        browser.find_element(By.ID, "categories").send_keys("house, grass")
        browser.find_element(By.ID, "segment").click()
        wait_for(browser, "return document.getElementById('board').dataset.segmented === 'true'")
        result = browser.execute_script("return window.sketchseg.result")
        assert result["untrained"] is True and "UNTRAINED" in result["weights"]
        assert "UNTRAINED weights: results are meaningless</text>" in result["strokes_svg"]
        assert canvas.get_attribute("data-untrained") == "true"
        red = browser.execute_script(
            "const d = document.getElementById('board').getContext('2d').getImageData(0, 0, 400, 30).data;"
            "let n = 0;"
            "for (let i = 0; i < d.length; i += 4) if (d[i] === 200 && d[i + 1] === 0 && d[i + 2] === 0) n++;"
            "return n;"
        )
        assert red > 20, red
