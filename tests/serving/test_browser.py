"""The page at `/` in a real browser (Debian's headless Chromium via Playwright) against a real server.

Skipped where Chromium or Playwright is missing, unless ``GAN_TRANSLATE_REQUIRE_BROWSER=1`` (CI): then it fails.
Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.artifacts.test_checkpoint_safety import write_checkpoint
from tests.helpers import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium waits on a closed network for minutes.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = 60_000

LiveServer = Callable[..., str]


def _browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"the playwright package is not importable ({error}); it is in the dev extra"
    for modules in (("fastapi",), ("uvicorn",), ("python_multipart", "multipart")):  # python-multipart < 0.0.13: multipart
        if all(importlib.util.find_spec(module) is None for module in modules):
            return f"the serve extra is not installed ({modules[0]} is missing)"
    return None


pytestmark = pytest.mark.browser  # one xdist worker runs the multi-process tests, one at a time (tests/conftest.py)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _browser_missing()
    if reason:
        if os.environ.get("GAN_TRANSLATE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GAN_TRANSLATE_REQUIRE_BROWSER=1 but the browser test cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


class _Console:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: self.errors.append(f"console.{message.type}: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))


@pytest.fixture()
def open_page(browser: Any) -> Iterator[Callable[..., tuple[Any, _Console]]]:
    """``open_page(url, **context_options) -> (page, console)``: a fresh browser context each, closed afterwards."""
    contexts = []

    def open_(url: str, **options: Any) -> tuple[Any, _Console]:
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        console = _Console(page)
        page.goto(url)
        page.wait_for_selector("#model[data-loaded]")  # the model list arrived and filled the picker
        page.wait_for_selector('#status[data-state="ready"]')
        return page, console

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture()
def server(live_server: LiveServer, tmp_path: Path) -> str:
    return live_server([write_checkpoint(tmp_path / "tiny.ckpt")])


def _photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A smooth colourful picture, ``width`` x ``height`` (non-square, so a transposed result shows)."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    low.resize((width, height), Image.BICUBIC).save(path)
    return path


def _page_width(page: Any) -> int:
    """The width the page lays out to: more than the viewport's means it scrolls sideways (or zooms out on a phone)."""
    return page.evaluate("document.documentElement.scrollWidth")


def _screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ (kept for people to look at), written under a name of this process
    and renamed into place: two pytest processes (xdist workers, or two runs in one checkout) never leave a torn file."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    partial = ARTIFACTS / f".partial-{os.getpid()}-{name}"  # same suffix: Playwright picks the format from it
    page.screenshot(path=str(partial), full_page=True)
    os.replace(partial, path)
    return path


def test_the_page_translates_an_upload_at_its_size_with_a_download(server: str, open_page, tmp_path: Path) -> None:
    page, console = open_page(server)
    assert page.title() == "gan-translate"
    assert page.locator("#model option").all_inner_texts() == ["tiny — CycleGAN"]
    assert page.locator("#direction option").evaluate_all("options => options.map(o => o.value)") == ["AtoB", "BtoA"]
    assert "1 model loaded" in page.inner_text("#status")
    assert page.is_visible("#translate-options") and not page.is_visible("#generate-options")

    page.select_option("#direction", "BtoA")
    page.set_input_files("#file-input", str(_photo(tmp_path / "street view.png", 72, 56)))
    output = page.wait_for_selector('#results .result img.output[data-width][data-height]')
    assert (output.get_attribute("data-width"), output.get_attribute("data-height")) == ("72", "56")
    card = page.locator("#results .result")
    assert card.count() == 1
    assert card.locator(".error").is_hidden()
    assert output.get_attribute("alt") == "street view.png translated B to A by tiny"
    assert card.locator("img.input").get_attribute("alt")
    download = card.locator("a.download")
    assert download.get_attribute("download") == "street-view_tiny.png"
    assert download.get_attribute("href").startswith("blob:")
    timing = card.locator(".timing").inner_text()
    assert "server" in timing and "round trip" in timing and "ms" in timing
    assert card.locator("figcaption").all_inner_texts() == ["Input · 72 × 56", "Result · 72 × 56"]
    with page.expect_download() as caught:
        download.click()
    assert caught.value.suggested_filename == "street-view_tiny.png"
    saved = tmp_path / "downloaded.png"
    caught.value.save_as(saved)
    assert Image.open(saved).size == (72, 56)

    assert _page_width(page) == 1280
    _screenshot(page, "serve_page_translate.png")
    assert console.errors == []


def test_several_uploads_each_get_their_own_result(server: str, open_page, tmp_path: Path) -> None:
    page, console = open_page(server)
    sizes = [(72, 56), (40, 64), (48, 48), (96, 32), (32, 80), (60, 44)]  # more than the 4 requests in flight
    paths = [str(_photo(tmp_path / f"{i}_{w}x{h}.png", w, h, seed=i)) for i, (w, h) in enumerate(sizes)]
    page.set_input_files("#file-input", paths)
    from playwright.sync_api import expect  # page.wait_for_function would eval a string: the page's CSP forbids it

    expect(page.locator("#results img.output[data-width]")).to_have_count(len(sizes))
    found = page.locator("#results .result").evaluate_all(
        """cards => cards.map(card => [card.querySelector('.result-title').textContent,
                                        card.querySelector('img.output').dataset.width,
                                        card.querySelector('img.output').dataset.height])""")
    assert sorted(found) == sorted([f"{i}_{w}x{h}.png", str(w), str(h)] for i, (w, h) in enumerate(sizes))
    assert console.errors == []


def test_a_non_image_gets_an_error_card_with_the_servers_message(server: str, open_page, tmp_path: Path) -> None:
    page, console = open_page(server)
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture\n")
    page.set_input_files("#file-input", str(fake))
    error = page.wait_for_selector("#results .result .error:not([hidden])")
    assert "not a PNG, JPEG, WebP, BMP or TIFF image" in error.inner_text()
    assert "415" in error.inner_text()
    card = page.locator("#results .result")
    assert card.get_attribute("data-state") == "error"
    assert card.locator("img.output").count() == 0 and card.locator("a.download").is_hidden()
    _screenshot(page, "serve_page_error.png")
    # Chromium logs the refused request itself ("Failed to load resource ... 415"); nothing else may be logged
    assert [e for e in console.errors if "status of 415" not in e] == []

    page.set_input_files("#file-input", str(_photo(tmp_path / "fine.png", 72, 56)))  # the page keeps working
    page.wait_for_selector('img.output[data-width="72"][data-height="56"]')


def test_on_a_phone_the_images_stack_and_nothing_scrolls_sideways(server: str, open_page, tmp_path: Path) -> None:
    page, console = open_page(server, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page.set_input_files("#file-input", str(_photo(tmp_path / "phone.png", 72, 56)))
    page.wait_for_selector('img.output[data-width="72"]')
    before = page.locator("#results img.input").bounding_box()
    after = page.locator("#results img.output").bounding_box()
    assert after["y"] >= before["y"] + before["height"] - 1  # the result below the input, not beside it
    assert _page_width(page) == 390
    for target in ("#model", "#direction", "#drop-zone"):
        assert page.locator(target).bounding_box()["height"] >= 44, f"{target} is too small to tap"
    _screenshot(page, "serve_page_phone.png")
    assert console.errors == []


def test_the_page_needs_nothing_but_its_own_static_files(server: str) -> None:
    import httpx

    page = httpx.get(f"{server}/", timeout=30)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "<style" not in page.text and "style=" not in page.text
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        assert httpx.get(f"{server}{asset}", timeout=30).status_code == 200, asset


def test_each_kind_of_model_gets_its_controls_and_results(live_server: LiveServer, open_page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from gan_translate.serving.app import ServeSettings
    from gan_translate.style.gatys import GatysConfig
    from gan_translate.style.pipeline import build_stylizer
    from tests.serving.model_files import adain_checkpoint, dcgan_checkpoint

    gatys = build_stylizer(GatysConfig(steps=2), (32,), weights="random", device="cpu")
    base = live_server([write_checkpoint(tmp_path / "tiny.ckpt"), dcgan_checkpoint(tmp_path / "faces.ckpt"),
                        adain_checkpoint(tmp_path / "paint.ckpt")],
                       settings=ServeSettings(gatys=gatys, gatys_max_steps=3, gatys_max_size=32, max_generate=9))
    page, console = open_page(base)
    groups = page.locator("#model optgroup").evaluate_all("groups => groups.map(g => [g.label, g.children.length])")
    assert groups == [["Translate", 1], ["Stylize", 2], ["Generate", 1]]
    assert page.locator('#model option[value="gatys"]').inner_text() == "Gatys (optimisation)"
    assert "3 models loaded" in page.inner_text("#status")

    # generate: seed and count, no upload; a 2x2 grid of 32 px images with 2 px gaps
    page.select_option("#model", "faces")
    expect(page.locator("#generate-options")).to_be_visible()
    expect(page.locator("#drop-zone")).to_be_hidden()
    expect(page.locator("#translate-options")).to_be_hidden()
    page.fill("#seed", "7")
    page.fill("#count", "4")
    page.click("#generate")
    grid = page.wait_for_selector("img.output[data-width]")
    assert (grid.get_attribute("data-width"), grid.get_attribute("data-height")) == ("70", "70")
    assert page.locator("a.download").first.get_attribute("download") == "faces_seed7_x4.png"
    page.fill("#count", "10")  # over the server's --max-generate: the page keeps it within
    page.click("#generate")
    expect(page.locator("#results .result")).to_have_count(2)
    expect(page.locator("#results .result").first).to_have_attribute("data-state", "done")
    assert page.input_value("#count") == "9"

    # stylize with AdaIN: a style image and the strength slider; the result has the content's size
    page.select_option("#model", "paint")
    expect(page.locator("#style-input")).to_be_visible()
    expect(page.locator("#alpha")).to_be_visible()
    expect(page.locator("#steps")).to_be_hidden()
    page.set_input_files("#style-input", str(_photo(tmp_path / "style.png", 40, 40, seed=5)))
    page.fill("#alpha", "0.5")
    page.set_input_files("#file-input", str(_photo(tmp_path / "content.png", 44, 36, seed=6)))
    styled = page.wait_for_selector('.result:has-text("content.png") img.output[data-width]')
    assert (styled.get_attribute("data-width"), styled.get_attribute("data-height")) == ("44", "36")

    # Gatys: steps and size (within the server's limits) instead of the slider
    page.select_option("#model", "gatys")
    expect(page.locator("#steps")).to_be_visible()
    expect(page.locator("#alpha")).to_be_hidden()
    assert page.get_attribute("#steps", "max") == "3"
    page.fill("#steps", "2")
    page.set_input_files("#file-input", str(_photo(tmp_path / "gatys.png", 40, 32, seed=7)))
    result = page.wait_for_selector('.result:has-text("gatys.png") img.output[data-width]')
    assert (result.get_attribute("data-width"), result.get_attribute("data-height")) == ("40", "32")
    assert page.locator('.result:has-text("gatys.png") a.download').get_attribute("download") == "gatys_gatys.png"
    _screenshot(page, "serve_page_kinds.png")
    assert console.errors == []
