"""Make docs/images/serve_page.png (the README's picture of ``gan-translate serve``): serve a trained checkpoint on
127.0.0.1, translate two test images on the page in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright as tests/serving/test_browser.py does) and screenshot the window.

Train the quickstart first, as the README says, so the results are translations (an untrained model gives noise):

    gan-translate fit --config configs/cyclegan/quickstart.yaml
    python docs/make_serve_screenshot.py --checkpoint runs/cyclegan_quickstart
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Until ``/readyz`` answers 200 (the checkpoint is loaded), or the server died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: gan-translate serve exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"error: {url} was not ready after {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="runs/cyclegan_quickstart", help="a trained translator's .ckpt or run folder")
    parser.add_argument("--name", default="cyclegan-quickstart", help="the model's name on the page")
    parser.add_argument("--images", nargs="+", default=None,
                        help="images to translate on the page (default: the first two of data/synthetic/testA)")
    parser.add_argument("--output", default=str(REPO / "docs" / "images" / "serve_page.png"))
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    images = [Path(p) for p in args.images] if args.images else sorted((REPO / "data" / "synthetic" / "testA").glob("*.png"))[:2]
    if not images:
        raise SystemExit("error: no images to translate: give --images or train the quickstart (data/synthetic/testA)")

    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "gan_translate", "serve", "--checkpoint", f"{args.name}={args.checkpoint}",
                               "--host", "127.0.0.1", "--port", str(args.port), "--gatys", "off"], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait_ready(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("#model option", state="attached")  # options are never "visible" themselves
            page.set_input_files("#file-input", [str(p) for p in images])
            # The page's CSP forbids evaluated scripts: wait with a locator for the last result.
            page.locator("#results img.output[data-width]").nth(len(images) - 1).wait_for()
            page.wait_for_timeout(300)  # the last result's image decoded and laid out
            page.screenshot(path=args.output)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
