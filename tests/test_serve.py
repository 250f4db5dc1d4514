"""``lpmatte serve``'s HTTP API against a real uvicorn server on 127.0.0.1.

A fake model (alpha = the red channel) keeps these fast and makes the expected output
exact; the browser test (test_serve_browser.py) runs the shipped model.
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the test extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")

from lpmatte.serve import ServeLimits, adapter, create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIMITS = ServeLimits(workers=2, max_queue=14, max_upload_mb=1, max_pixels=250_000, timeout_s=10)


class FakeMatter:
    """alpha = red channel, trimap all unknown; ``gate`` (an Event) holds every predict."""

    name, device, warning = "fake", "cpu", None

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate

    def predict(self, image, return_trimap=False):
        if self.gate is not None:
            self.gate.wait(10)
        red = image[..., 0]  # uint8 (8-bit uploads) or float in [0, 1], as Matter takes
        alpha = np.ascontiguousarray(red, dtype=np.float32) / (255 if red.dtype == np.uint8 else 1)
        trimap = np.full(alpha.shape, 128, np.uint8)
        return (alpha, trimap) if return_trimap else alpha


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


PHOTO = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
GOOD = png_bytes(PHOTO)


@contextmanager
def running(app):
    """Serve ``app`` on a free 127.0.0.1 port in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def url():
    with running(create_app(FakeMatter(), LIMITS)) as base:
        yield base


def matte(url, content=GOOD, params=None, **kwargs):
    return httpx.post(f"{url}/v1/matte", params=params, content=content, timeout=20, **kwargs)


def decoded(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def test_health_ready_and_models(url):
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "fake"
    models = httpx.get(f"{url}/v1/models").json()
    assert models["served"]["name"] == "fake"
    assert "lpm-s" in models["available"]
    assert models["formats"] == ["alpha", "rgba", "composite", "trimap"]


def test_page_docs_and_openapi_are_served(url):
    page = httpx.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "://" not in page.text  # nothing fetched from elsewhere
    for asset in ("static/app.js", "static/style.css"):
        assert httpx.get(f"{url}/{asset}").status_code == 200
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "://" not in docs.text  # the offline API reference
    assert httpx.get(f"{url}/static/docs.js").status_code == 200
    assert "swagger" in httpx.get(f"{url}/docs/swagger").text.lower()
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/v1/matte", "/v1/models", "/healthz", "/readyz"} <= set(paths)


@pytest.mark.parametrize("fmt, mode", [("alpha", "L"), ("rgba", "RGBA"), ("composite", "RGB"),
                                       ("trimap", "L")])
def test_each_format_as_multipart_and_raw_body(url, fmt, mode):
    as_form = httpx.post(f"{url}/v1/matte", params={"format": fmt},
                         files={"file": ("photo.png", GOOD, "image/png")}, timeout=20)
    as_body = matte(url, params={"format": fmt}, headers={"content-type": "image/png"})
    for response in (as_form, as_body):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert decoded(response).mode == mode and decoded(response).size == (64, 48)
    assert as_form.content == as_body.content
    rgb = adapter.load_rgb(PHOTO)  # what `lpmatte matte` writes for the same prediction
    expected = adapter.render(rgb, *FakeMatter().predict(rgb, True), fmt, (0.0, 1.0, 0.0))
    assert np.array_equal(np.asarray(decoded(as_form)), expected)


def test_alpha_is_the_models_prediction(url):
    alpha = np.asarray(decoded(matte(url)))
    assert np.array_equal(alpha, PHOTO[..., 0])  # the fake's alpha, unchanged by the trip


def test_rgba_alpha_channel_is_the_matte(url):
    cutout = np.asarray(decoded(matte(url, params={"format": "rgba"})))
    assert np.array_equal(cutout[..., 3], PHOTO[..., 0])


def test_composite_background_and_jpeg(url):
    white = np.zeros((16, 16, 3), np.uint8)  # alpha 0 everywhere: the background alone
    response = matte(url, png_bytes(white),
                     params={"format": "composite", "background": "#ff0000", "output": "jpeg"})
    assert response.headers["content-type"] == "image/jpeg"
    pixels = np.asarray(decoded(response)).reshape(-1, 3)
    assert np.abs(pixels.astype(int) - [255, 0, 0]).max() < 8


def test_form_fields_carry_options_too(url):
    response = httpx.post(f"{url}/v1/matte", data={"format": "rgba"},
                          files={"file": ("photo.png", GOOD, "image/png")})
    assert decoded(response).mode == "RGBA"


def test_max_side_shrinks_the_work(url):
    response = matte(url, params={"max_side": "32"})
    assert decoded(response).size == (32, 24)


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PHOTO).save(buffer, format="JPEG")
    return buffer.getvalue()[:len(buffer.getvalue()) // 2]  # header intact, pixels cut off


def many_pixels_png() -> bytes:
    return png_bytes(np.zeros((1000, 1000), np.uint8))  # a few KB that decode to 1 MP


BAD_UPLOADS = {
    "not an image": (b"just some text, not pixels", None, 415),
    "corrupt": (truncated_jpeg(), None, 422),
    "empty": (b"", None, 400),
    "too large": (b"\x89PNG" + bytes(2 * 1024 * 1024), None, 413),
    "too many pixels": (many_pixels_png(), None, 413),
    "unknown format": (GOOD, {"format": "bokeh"}, 400),
    "bad background": (GOOD, {"format": "composite", "background": "sparkly"}, 400),
    "jpeg alpha": (GOOD, {"output": "jpeg"}, 400),
    "bad max_side": (GOOD, {"max_side": "huge"}, 400),
}


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_bad_input_is_a_json_4xx_and_the_server_keeps_serving(url, case):
    content, params, status = BAD_UPLOADS[case]
    response = matte(url, content, params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error and "\n" not in error and "Traceback" not in error
    assert matte(url).status_code == 200


def test_malformed_multipart_and_missing_file_are_400(url):
    broken = matte(url, b"--xyz\r\nnonsense", headers={
        "content-type": "multipart/form-data; boundary=xyz"})
    assert broken.status_code == 400 and "error" in broken.json()
    no_file = httpx.post(f"{url}/v1/matte", data={"format": "rgba"},
                         files={"other": ("a.txt", b"", "text/plain")})
    assert no_file.status_code in (400, 415) and "error" in no_file.json()


def test_too_many_pixels_is_refused_from_the_header_with_the_limit_named(url):
    error = matte(url, many_pixels_png()).json()["error"]
    assert "1000000 pixels (1000x1000)" in error and f"limit of {LIMITS.max_pixels}" in error


def test_streamed_body_is_cut_at_the_limit_whatever_its_length_header(url):
    def chunks():  # chunked transfer: no Content-Length to refuse up front
        for _ in range(64):
            yield bytes(64 * 1024)

    response = matte(url, chunks())
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_unknown_path_and_method_are_json(url):
    assert httpx.get(f"{url}/v2/nothing").json() == {"error": "Not Found"}
    assert httpx.get(f"{url}/v1/matte").status_code == 405


def test_no_upload_touches_the_disk(url, monkeypatch):
    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was spooled to a temporary file")

    for name in ("NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    big = png_bytes(np.random.default_rng(1).integers(0, 256, (400, 600, 3), dtype=np.uint8))
    assert len(big) > 512 * 1024  # above python-multipart's default in-memory limit
    response = httpx.post(f"{url}/v1/matte", files={"file": ("big.png", big, "image/png")},
                          timeout=20)
    assert response.status_code == 200


def test_concurrent_burst_completes(url):
    with ThreadPoolExecutor(16) as clients:
        statuses = list(clients.map(lambda _: matte(url).status_code, range(32)))
    assert statuses.count(200) + statuses.count(503) == 32
    assert statuses.count(200) >= 16  # capacity is 16: a burst of 16 at a time fits


def wait_busy(url, count):
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/readyz").json()["busy"] < count:
        assert time.monotonic() < deadline, "requests never reached the workers"
        time.sleep(0.02)


def test_full_queue_is_503_with_retry_after_then_recovers():
    gate = threading.Event()
    app = create_app(FakeMatter(gate), ServeLimits(workers=1, max_queue=1))
    with running(app) as url, ThreadPoolExecutor(2) as clients:
        held = [clients.submit(matte, url) for _ in range(2)]
        wait_busy(url, 2)
        refused = matte(url)
        gate.set()
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1 and "busy" in refused.json()["error"]
        assert [future.result().status_code for future in held] == [200, 200]
        assert matte(url).status_code == 200


def test_slow_request_times_out_with_504_and_frees_its_slot():
    gate = threading.Event()
    app = create_app(FakeMatter(gate), ServeLimits(workers=1, max_queue=0, timeout_s=0.5))
    with running(app) as url:
        response = matte(url)
        assert response.status_code == 504 and "error" in response.json()
        gate.set()
        deadline = time.monotonic() + 5
        while httpx.get(f"{url}/readyz").json()["busy"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert matte(url).status_code == 200


def test_model_loading_in_the_background_is_not_ready_yet():
    started = threading.Event()

    def slow_loader():
        started.set()
        time.sleep(1.0)
        return FakeMatter()

    with running(create_app(loader=slow_loader)) as url:
        started.wait(5)
        assert httpx.get(f"{url}/healthz").status_code == 200
        not_ready = httpx.get(f"{url}/readyz")
        assert not_ready.status_code == 503 and "retry-after" in not_ready.headers
        assert matte(url).status_code == 503
        time.sleep(1.5)
        assert httpx.get(f"{url}/readyz").status_code == 200


SLOW_SERVER = """
import sys, time
import numpy as np
from lpmatte.serve.limits import ServeLimits
from lpmatte.serve.server import serve

class Slow:
    name, device, warning = "slow", "cpu", None
    def predict(self, image, return_trimap=False):
        time.sleep(1.5)
        alpha = np.ascontiguousarray(image[..., 0])
        return alpha, np.zeros(alpha.shape, np.uint8)

sys.exit(serve(Slow, port=int(sys.argv[1]), limits=ServeLimits(workers=1, max_queue=4)))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_drains_in_flight_requests_and_exits_0():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SLOW_SERVER), str(port)],
                               env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "server never ready"
            time.sleep(0.1)
        with ThreadPoolExecutor(2) as clients:
            in_flight = [clients.submit(matte, url) for _ in range(2)]
            wait_busy(url, 2)
            process.send_signal(signal.SIGTERM)
            assert [future.result().status_code for future in in_flight] == [200, 200]
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log = process.communicate()[1]
    assert log.count("POST /v1/matte 200") == 2  # one log line per request


def test_cli_with_an_unknown_model_stops_with_a_one_line_error(capsys):
    from lpmatte.cli import main

    assert main(["serve", "--model", "no-such-model", "--port", str(free_port())]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "lpmatte: error" in line]
    assert len(errors) == 1 and "unknown model 'no-such-model'" in errors[0]


def test_cli_refuses_impossible_limits(capsys):
    from lpmatte.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "workers must be >= 1" in capsys.readouterr().err


# --- /v1/stream: live frames over a WebSocket, the shipped model ------------------------------

STREAM_LIMITS = ServeLimits(workers=1, max_queue=2, max_upload_mb=0.5, max_pixels=200_000,
                            timeout_s=30)


@pytest.fixture(scope="module")
def stream_url():
    import lpmatte

    pytest.importorskip("websockets", reason="the serve extra is not installed")
    matter = lpmatte.load("default", device="cpu", backend="eager-fp32")
    with running(create_app(matter, STREAM_LIMITS)) as base:
        yield base.replace("http://", "ws://") + "/v1/stream"


def connect(url: str):
    from websockets.sync.client import connect

    return connect(url)


def stream(url: str, frames, query: str = ""):
    """Send every frame (bytes, text or an array) and collect one answer per frame."""
    answers = []
    with connect(url + query) as socket:
        for frame in frames:
            socket.send(frame if isinstance(frame, (bytes, str)) else png_bytes(frame))
            answers.append(socket.recv(timeout=30))
    return answers


def alpha_of(answer: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(answer)), np.int16)


def test_a_still_frame_sent_ten_times_gives_ten_identical_mattes(stream_url, portrait):
    mattes = [alpha_of(answer) for answer in stream(stream_url, [portrait(96, 128)] * 10)]
    assert mattes[0].shape == (96, 128) and mattes[0].max() > 0
    for matte in mattes[1:]:
        np.testing.assert_array_equal(matte, mattes[0])


def test_stabilised_stream_flickers_less_than_frame_by_frame_on_a_noisy_still_shot(
        stream_url):
    # a real photo: the shipped model settles a synthetic portrait it does not see as a person
    # to an exact, noise-proof 0, which would leave nothing for the stabiliser to do
    example = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
    still = np.asarray(Image.open(example).convert("RGB").resize((128, 128))).astype(np.int16)
    rng = np.random.default_rng(0)  # sensor noise: every frame differs a little
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)
              for _ in range(8)]

    def flicker(query):
        mattes = [alpha_of(answer) for answer in stream(stream_url, frames, query)]
        return np.mean([np.abs(b - a).mean() for a, b in zip(mattes, mattes[1:])])

    steady, alone = flicker(""), flicker("?stabilize=false")
    assert alone > 0  # the noise does reach the frame-by-frame matte
    assert steady < 0.5 * alone


def test_formats_and_the_shrink_option_apply_to_every_frame(stream_url, portrait):
    rgba, composite = (stream(stream_url, [portrait(96, 128)], f"?format={fmt}&max_side=64")[0]
                       for fmt in ("rgba", "composite"))
    assert Image.open(io.BytesIO(rgba)).mode == "RGBA"
    assert Image.open(io.BytesIO(composite)).size == (64, 48)


def test_a_bad_frame_is_answered_with_an_error_and_the_stream_goes_on(stream_url, portrait):
    big = np.zeros((500, 500, 3), np.uint8)  # 250 000 pixels: over max_pixels
    answers = stream(stream_url, [b"not an image", "a text message", png_bytes(big),
                                  portrait(96, 128)])
    errors = [json.loads(answer) for answer in answers[:3]]
    assert [error["status"] for error in errors] == [415, 400, 413]
    assert "binary message" in errors[1]["error"] and "pixels" in errors[2]["error"]
    assert alpha_of(answers[3]).shape == (96, 128)


def test_options_wrong_for_the_whole_stream_close_it_with_a_reason(stream_url):
    from websockets.exceptions import ConnectionClosed

    for query, words in (("?format=trimap", "cannot be streamed"),
                         ("?stabilize=maybe", "true or false"),
                         ("?format=nope", "unknown format")):
        with connect(stream_url + query) as socket:
            error = json.loads(socket.recv(timeout=10))
            assert error["status"] == 400 and words in error["error"]
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=10)
            assert closed.value.rcvd.code == 1008
