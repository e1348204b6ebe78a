"""Running the app on uvicorn: loopback by default, graceful shutdown on SIGINT / SIGTERM.

On a signal uvicorn stops accepting connections, waits up to ``graceful_s`` for the requests it accepted to be
answered, then runs the app's shutdown, which lets the batcher finish what it still holds.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_server", "uvicorn_config"]


def uvicorn_config(app: Any, host: str = "127.0.0.1", port: int = 8000, graceful_s: float = 30.0,
                   log_level: str = "info") -> Any:
    """The uvicorn settings ``serve`` runs with (tests start the same server on a free port)."""
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=graceful_s,
        # one process: the models live in it; the batcher is what runs them concurrently
        workers=None, lifespan="on", server_header=False, access_log=log_level == "debug",
        # at most this many connections at once: more get 503 from uvicorn before any work is done
        limit_concurrency=1024, timeout_keep_alive=5,
    )


def run_server(app: Any, host: str, port: int, graceful_s: float = 30.0, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (blocks)."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, host, port, graceful_s, log_level))
    server.run()
