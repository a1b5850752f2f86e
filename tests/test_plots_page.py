"""`dvc plots show` offline: the repository's page template (vendor/vega/dvc_plots.html, named by .dvc/config) carries
Vega, Vega-Lite and Vega-Embed inline, unchanged from their npm builds; dvc.yaml declares every plot once. The page
DVC writes for the pipeline's plot files is opened in headless Chromium (Debian's, as tests/test_page.py drives it)
with the network off: no request leaves the page, each of the 4 Vega-Lite plots is drawn once and each of the 3 PNG
figures is shown once."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from sketchseg.eval.tables import write_plot_tables
from tests.conftest import REPO
from tests.test_dvc import sh
from tests.test_training_tables import write_training_folder

VENDOR = REPO / "vendor" / "vega"
PACKAGES = ["vega@5.20.2", "vega-lite@5.2.0", "vega-embed@6.18.2"]
VEGA_PLOTS = ["threshold_curve", "per_category", "training", "tau"]  # dvc.yaml's plots section
PNG_PLOTS = ["threshold_curves.png", "per_category.png", "overlays_test.png"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing can be fetched from elsewhere
)  # fmt: skip


def inlined_scripts(html: str) -> list[tuple[str, str]]:
    """(package@version, code) of every inline script of the template, in order."""
    return re.findall(r'<script data-package="([^"]+)">(.*?)</script>', html, re.S)


def test_the_template_inlines_the_npm_builds_unchanged_and_loads_nothing() -> None:
    from dvc_render.vega import VegaRenderer

    html = (VENDOR / "dvc_plots.html").read_text(encoding="utf-8")
    scripts = inlined_scripts(html)
    assert [package for package, _ in scripts] == PACKAGES
    assert re.findall(r"npm/([\w-]+@[\d.]+)", VegaRenderer.SCRIPTS) == PACKAGES  # what DVC's own page loads
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    for package, code in scripts:
        name, version = package.split("@")
        digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
        assert f"| {name} | {version} | `build/{name}.min.js` | `{digest}` |" in readme, package
        licence = (VENDOR / f"LICENSE-{name}").read_text(encoding="utf-8")
        assert "Redistribution and use in source and binary forms" in licence and "Neither the name" in licence
    assert "{plot_divs}" in html and "{scripts}" not in html  # DVC adds no CDN script tags
    assert not re.search(r"<script[^>]*\bsrc=", html) and "<link" not in html
    config = (REPO / ".dvc" / "config").read_text()
    assert re.search(r"\[plots\]\s+html_template = \.\./vendor/vega/dvc_plots\.html", config)


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository with this one's dvc.yaml, params.yaml and .dvc/config, and the train stage's plot files
    in data/eval (the tables as the pipeline writes them, three PNG figures)."""
    repo = tmp_path_factory.mktemp("plots")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, repo / name)
    shutil.copytree(VENDOR, repo / "vendor" / "vega")
    sh("git", "init", "-q", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    eval_dir = repo / "data" / "eval"
    write_training_folder(repo / "train")
    write_plot_tables(repo / "train", eval_dir)
    curve = [{"tau": round(0.3 + 0.05 * i, 2), "val": 0.5 + 0.02 * i, "test": 0.48 + 0.02 * i} for i in range(13)]
    (eval_dir / "threshold_curve.json").write_text(json.dumps(curve))
    categories = [{"category": c, "acc_p": a, "pixels": 100 * i + 50, "train_frequency": 10 * i}
                  for i, (c, a) in enumerate([("tree", 0.8), ("house", 0.6), ("cloud", 0.4)])]  # fmt: skip
    (eval_dir / "per_category.json").write_text(json.dumps(categories))
    for i, name in enumerate(PNG_PLOTS):
        Image.new("RGB", (120 + 10 * i, 80), (40 * i, 120, 200)).save(eval_dir / name)
    return repo


def test_dvc_yaml_declares_each_plot_once(plots_repo: Path) -> None:
    shown = json.loads(sh("dvc", "plots", "show", "--json", cwd=plots_repo).stdout)["data"]
    assert sorted(shown) == sorted([*VEGA_PLOTS, *(f"data/eval/{name}" for name in PNG_PLOTS)])
    assert [len(v) for v in shown.values()] == [1] * 7
    assert sorted(v[0]["type"] for v in shown.values()) == ["image"] * 3 + ["vega"] * 4


@pytest.mark.slow
def test_the_plots_page_renders_offline_each_plot_once(plots_repo: Path, tmp_path: Path) -> None:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("Chromium and ChromeDriver not installed; as root: make browser")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: make setup")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    sh("dvc", "plots", "show", "-o", str(tmp_path / "page"), cwd=plots_repo)
    page = tmp_path / "page" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" not in html and not re.search(r"<script[^>]*\bsrc=", html)

    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        driver.get(page.as_uri())
        drawn = (
            "return [...document.querySelectorAll('.vega-embed')].map(e => [e.id, e.querySelectorAll('canvas.marks,"
            " svg.marks').length, (e.querySelector('canvas.marks') || {}).width || 0]);"
        )
        WebDriverWait(driver, 60).until(lambda d: len(d.execute_script(drawn)) == len(VEGA_PLOTS)
                                        and all(w > 0 for _, _, w in d.execute_script(drawn)))  # fmt: skip
        views = driver.execute_script(drawn)
        assert sorted(view_id for view_id, _, _ in views) == sorted(VEGA_PLOTS)
        assert all(count == 1 for _, count, _ in views), views  # each drawn once
        # something drawn: each canvas differs from a blank one of its size
        inked = driver.execute_script(
            "return [...document.querySelectorAll('canvas.marks')].map(c => {"
            "const b = document.createElement('canvas'); b.width = c.width; b.height = c.height;"
            "return c.toDataURL() !== b.toDataURL(); });"
        )
        assert inked == [True] * len(VEGA_PLOTS)
        images = driver.execute_script(
            "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);"
        )
        assert sorted(Path(src).name for src, _ in images) == sorted(f"workspace_data_eval_{n}" for n in PNG_PLOTS)
        assert all(loaded for _, loaded in images), images
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
        assert all(name.startswith(("file:", "data:", "blob:")) for name in resources), resources
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
