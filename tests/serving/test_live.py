"""A real server on loopback: batching of concurrent requests, a slow client, a full queue, the time limit, and
graceful shutdown of `gan-translate serve` itself."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="the serve test dependencies are not installed")
pytest.importorskip("uvicorn", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")

from gan_translate.cli import main  # noqa: E402
from gan_translate.data.io import load_image, save_image  # noqa: E402
from gan_translate.serving.app import ServeSettings  # noqa: E402
from gan_translate.serving.catalog import ServedModel  # noqa: E402
from gan_translate.serving.uploads import UploadLimits  # noqa: E402
from tests.helpers import REPO_ROOT  # noqa: E402
from tests.serving.model_files import cyclegan_checkpoint, picture, png_bytes  # noqa: E402

LiveServer = Callable[..., str]


@pytest.fixture()
def counted_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every translation pass the server runs (a counter in the model path); each pass sleeps 50 ms so
    that concurrent requests surely overlap it."""
    sizes: list[int] = []
    original = ServedModel.translate_batch

    def counting(self: ServedModel, payloads: Sequence[tuple[str, np.ndarray]]) -> list[np.ndarray]:
        sizes.append(len(payloads))
        time.sleep(0.05)
        return original(self, payloads)

    monkeypatch.setattr(ServedModel, "translate_batch", counting)
    return sizes


def _post_image(base: str, data: bytes, **fields: str) -> httpx.Response:
    return httpx.post(f"{base}/v1/translate", files={"image": ("photo.png", data)}, data=fields, timeout=60)


def test_concurrent_requests_are_batched_and_each_gets_what_translate_gives(
    live_server: LiveServer, counted_passes: list[int], tmp_path: Path
) -> None:
    checkpoint = cyclegan_checkpoint(tmp_path / "model.ckpt")
    base = live_server([checkpoint], settings=ServeSettings(max_batch=8, max_wait_ms=300))
    photos = tmp_path / "photos"
    images = [picture(40, 52, seed=i) for i in range(8)]
    for i, image in enumerate(images):
        save_image(image, photos / f"{i}.png")
    # the server here is built with TranslatorOptions' default, fp32 (the serve command's default is auto, as translate's)
    assert main(["translate", "--checkpoint", str(checkpoint), "--input", str(photos), "--output", str(tmp_path / "cli"),
                 "--device", "cpu", "--batch-size", "1", "--precision", "fp32"]) == 0

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda image: _post_image(base, png_bytes(image)), images))
    assert max(counted_passes) > 1 and sum(counted_passes) == 8  # batched, and nothing lost or run twice
    stats = httpx.get(f"{base}/v1/stats").json()
    assert stats["requests"] == 8 and stats["mean_batch_size"] > 1
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        served = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)
        expected = load_image(tmp_path / "cli" / f"{i}.png").astype(int)
        # a batch and a lone image run the same network; float sums may differ in the last bit, so one level
        assert served.shape == expected.shape and np.abs(served - expected).max() <= 1


def test_requests_of_other_sizes_or_directions_are_never_batched_together(
    live_server: LiveServer, counted_passes: list[int], tmp_path: Path
) -> None:
    base = live_server([cyclegan_checkpoint(tmp_path / "model.ckpt")], settings=ServeSettings(max_wait_ms=300))
    jobs = [(picture(32, 32), "AtoB"), (picture(32, 32), "BtoA"), (picture(36, 32), "AtoB"), (picture(32, 32), "AtoB")]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda job: _post_image(base, png_bytes(job[0]), direction=job[1]), jobs))
    assert [r.status_code for r in responses] == [200] * 4
    assert sorted(counted_passes) == [1, 1, 2]  # only the two 32x32 AtoB requests shared a pass


def _read_response(connection: socket.socket) -> str:
    """The whole HTTP response on a raw socket: one recv may hold only the headers, the body in a later packet."""
    received = b""
    while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _content_length(received):
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.decode(errors="replace")


def _content_length(received: bytes) -> int:
    for line in received.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_slow_client_gets_408_and_holds_no_one_else_up(live_server: LiveServer, tmp_path: Path) -> None:
    base = live_server([cyclegan_checkpoint(tmp_path / "model.ckpt")],
                       settings=ServeSettings(limits=UploadLimits(read_timeout_s=1.0)))
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\n")
        started = time.monotonic()
        # meanwhile, other clients are answered
        assert _post_image(base, png_bytes(picture(32, 32))).status_code == 200
        answer = _read_response(slow)
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408") and "did not arrive within 1 s" in answer
    assert waited < 5
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_a_full_queue_answers_503_with_retry_after(live_server: LiveServer, counted_passes: list[int], tmp_path: Path) -> None:
    base = live_server([cyclegan_checkpoint(tmp_path / "model.ckpt")], settings=ServeSettings(max_batch=1, max_queue=2))
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _post_image(base, png_bytes(picture(32, 32))), range(8)))
    refused = [r for r in responses if r.status_code == 503]
    assert refused and all(int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"] for r in refused)
    assert {r.status_code for r in responses} == {200, 503}
    assert len(counted_passes) == sum(r.status_code == 200 for r in responses)


def test_a_request_over_the_time_limit_gets_504(live_server: LiveServer, counted_passes: list[int], tmp_path: Path) -> None:
    base = live_server([cyclegan_checkpoint(tmp_path / "model.ckpt")], settings=ServeSettings(request_timeout_s=0.02))
    response = _post_image(base, png_bytes(picture(32, 32)))
    assert response.status_code == 504 and "limit" in response.json()["error"]
    assert httpx.get(f"{base}/readyz").status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_serve(arguments: list[str], attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """``gan-translate serve`` in a process on a free loopback port, ready; its base URL.

    The port is free when probed but another test process (pytest-xdist runs two) may take it before the server
    binds it: the server then exits with "address already in use", and the launch is tried on a new port.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    for _ in range(attempts):
        port = _free_port()
        command = [sys.executable, "-m", "gan_translate", "serve", *arguments, "--port", str(port)]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200 and server.poll() is None:
                    return server, base
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        if server.poll() is None:
            server.kill()
        output = server.communicate()[0]
        if "address already in use" not in output.lower():
            raise AssertionError(f"the server did not start:\n{output[-3000:]}")
    raise AssertionError(f"no free port in {attempts} attempts")


@pytest.mark.server
def test_serve_finishes_accepted_requests_when_stopped(tmp_path: Path) -> None:
    """`gan-translate serve` itself: ready, answers, and on SIGTERM answers the request it accepted, then exits."""
    checkpoint = cyclegan_checkpoint(tmp_path / "model.ckpt")
    server, base = _start_serve(["--checkpoint", f"zebra={checkpoint}", "--device", "cpu", "--gatys-vgg-weights", "random",
                                 "--gatys-max-steps", "60", "--gatys-max-size", "64", "--log-level", "warning"])
    try:
        assert httpx.get(f"{base}/v1/models").json()["models"][0]["name"] == "zebra"
        upload = {"content": ("c.png", png_bytes(picture(64, 64))), "style": ("s.png", png_bytes(picture(64, 64, 1)))}
        outcome: dict[str, httpx.Response] = {}
        request = threading.Thread(target=lambda: outcome.setdefault("r", httpx.post(
            f"{base}/v1/stylize", files=upload, data={"steps": "60", "size": "64"}, timeout=120)))
        request.start()
        while httpx.get(f"{base}/v1/stats").json()["queued"] == 0:  # accepted, now running
            time.sleep(0.02)
        server.send_signal(signal.SIGTERM)
        request.join(120)
        assert outcome["r"].status_code == 200 and outcome["r"].headers["x-model"] == "gatys"
        # uvicorn re-raises the signal once it has shut down, so supervisors see the process ended by SIGTERM
        assert server.wait(60) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
        output = server.communicate()[0]
    assert "serving zebra (cyclegan) on http://127.0.0.1" in output and "loopback only" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)
