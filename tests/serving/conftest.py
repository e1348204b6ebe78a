"""Shared fixtures of the server tests: a real ``gan-translate serve`` (uvicorn) on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gan_translate.serving.app import ServeSettings

#: How long a server may take to load its models and start listening.
START_TIMEOUT_S = 60.0

LiveServer = Callable[..., str]


class _Running:
    """One uvicorn server in a daemon thread, on a socket bound before it starts (no free-port race)."""

    def __init__(self, checkpoints: list[Path], settings: ServeSettings | None) -> None:
        import uvicorn  # the serve extra: imported here, so a test module can skip without it first

        from gan_translate.serving.app import ServeSettings, create_app
        from gan_translate.serving.catalog import load_catalog
        from gan_translate.serving.server import uvicorn_config

        models = load_catalog([str(path) for path in checkpoints], device="cpu")
        self.app = create_app(models, settings or ServeSettings())
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", self.port, graceful_s=5.0, log_level="warning"))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"live-server-{self.port}", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except BaseException as error:  # noqa: BLE001 - reported by start() / stop() in the test's thread
            self.error = error

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the test server stopped while starting: {self.error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test server did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()
        if self.thread.is_alive():
            raise RuntimeError(f"the test server on port {self.port} did not stop within 30 s")


@pytest.fixture()
def live_server() -> Iterator[LiveServer]:
    """``start(checkpoints, settings=None) -> base URL``: a real server of those checkpoints (on CPU).

    Each call starts one more server on its own free loopback port; all of them stop at the test's teardown.
    """
    running: list[_Running] = []

    def start(checkpoints: list[Path], settings: ServeSettings | None = None) -> str:
        server = _Running(list(checkpoints), settings)
        running.append(server)
        return server.start()

    yield start
    problems = []
    for server in reversed(running):
        try:
            server.stop()
        except RuntimeError as error:
            problems.append(str(error))
    if problems:
        pytest.fail("; ".join(problems))
