"""An ASGI middleware that bounds what a request body may cost: its size and the time it takes to arrive.

``Content-Length`` over the limit is refused (413) before a byte of the body is read; a body without one (chunked)
or longer than it declared is counted as it streams and cut off at the limit; a body that has not fully arrived
``read_timeout_s`` after the request started is answered 408 (a slow client cannot hold a connection and a
parser open for ever). Both are Starlette ``HTTPException``\\ s raised from ``receive``, so the app's JSON error
handler answers them like every other error and the server goes on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimits", "BodyTimedOut", "BodyTooLarge"]


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit / 2**20:.1f} MiB limit")


class BodyTimedOut(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")


class BodyLimits:
    """Wraps ``app``: bodies of at most ``max_bytes``, arriving within ``read_timeout_s`` of the request's start."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, BodyTooLarge(self.max_bytes))
            return
        deadline = time.monotonic() + self.read_timeout_s
        received = 0
        finished = False

        async def limited_receive() -> Message:
            nonlocal received, finished
            if finished:  # after the body, receive() only waits for a disconnect: no deadline there
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise BodyTimedOut(self.read_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                finished = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, error: HTTPException) -> None:
    """Answer ``error`` as the app's handler would (JSON ``{"error": ...}``) and close the connection."""
    import json

    body = json.dumps({"error": error.detail}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
