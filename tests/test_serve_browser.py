"""The web page of ``lpmatte serve`` in a real headless Chromium (the system's, driven by
Playwright; no browser is downloaded), with the shipped model behind it.

The screenshot goes to $LPMATTE_SCREENSHOT_DIR (default: the system temp folder), outside
the repository.
"""

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the test extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                                             "(pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.png"
CHROMIUM = os.environ.get("LPMATTE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# root in a container, loopback only: no sandbox, nothing that phones home
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    """``lpmatte serve`` with the shipped model, as a user would start it."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "lpmatte", "serve", "--port", str(port),
                                "--device", "cpu"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not ready(url):
            assert process.poll() is None, "lpmatte serve exited"
            assert time.monotonic() < deadline, "lpmatte serve was not ready in 120 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz").status_code == 200
    except httpx.TransportError:
        return False


def screenshot_path() -> Path:
    folder = Path(os.environ.get("LPMATTE_SCREENSHOT_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "lpmatte-serve-page.png"


def test_page_mattes_the_example_in_headless_chromium(server_url):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                    "LPMATTE_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900},
                                    accept_downloads=True)
            outside = []  # every request the page makes must stay on this server
            local = (server_url, f"blob:{server_url}", "data:")
            page.on("request", lambda request: None if request.url.startswith(local)
                    else outside.append(request.url))
            page.goto(server_url)
            page.set_input_files("#file", str(EXAMPLE))
            page.wait_for_selector("body[data-state=done]", timeout=90_000)
            assert page.locator("#alpha-view").get_attribute("data-ready") == "true"
            alpha_size = page.eval_on_selector("#alpha-view", "c => [c.width, c.height]")
            assert alpha_size == [512, 512]
            with page.expect_download() as download_info:
                page.click("#download")
            downloaded = Path(download_info.value.path()).read_bytes()
            page.check("input[value=blur]")  # the other backgrounds draw without an error
            page.check("input[value=color]")
            page.screenshot(path=screenshot_path(), full_page=True)
            print(f"screenshot: {screenshot_path()}")
            assert page.locator("body").get_attribute("data-state") == "done"
        finally:
            browser.close()
    cutout = Image.open(io.BytesIO(downloaded))
    assert cutout.mode == "RGBA" and cutout.size == (512, 512)
    alpha = cutout.getchannel("A")
    assert alpha.getextrema() == (0, 255)  # a real matte: some background, some subject
    assert outside == []


def test_page_streams_a_camera_over_the_websocket(server_url):
    """Chromium's fake camera (a moving test pattern) through "Use camera" and /v1/stream."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                    "LPMATTE_CHROMIUM)")
    fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=CHROMIUM_ARGS + fake_camera)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(server_url)
            page.select_option("#max-side", "512")
            page.click("#camera")
            wait_for_frames(page, 3, timeout=90)
            assert page.locator("body").get_attribute("data-state") == "live"
            live_size = page.eval_on_selector("#alpha-view", "c => [c.width, c.height]")
            page.click("#camera")  # stop: the last frame stays and can be downloaded
            assert page.locator("body").get_attribute("data-state") == "done"
            assert "frames matted" in page.locator("#status").inner_text()
            page.wait_for_selector("#download:not(.disabled)", timeout=10_000)
        finally:
            browser.close()
    assert max(live_size) == 512  # the fake camera's frames, shrunk to the chosen side
    assert errors == []


def wait_for_frames(page, count: int, timeout: float) -> None:
    """Polled from here: the page's CSP forbids the string evaluation of wait_for_function."""
    deadline = time.monotonic() + timeout
    while int(page.locator("body").get_attribute("data-frames") or 0) < count:
        assert page.locator("body").get_attribute("data-state") != "error", \
            page.locator("#status").inner_text()
        assert time.monotonic() < deadline, f"fewer than {count} camera frames in {timeout} s"
        page.wait_for_timeout(100)
