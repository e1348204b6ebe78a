"""The web page and the HTTP API of ``gan-translate serve`` (FastAPI; OpenAPI docs at ``/docs``).

The endpoints are FastAPI routers, one per concern (:mod:`gan_translate.serving.routes`); this module builds the app
around them: the batcher's start and drain, the page, and the error handlers. Every error is JSON of one line,
``{"error": "..."}``, with a 4xx status for the client's mistakes (a bad or oversize upload, a missing field, an
unknown model or direction), 503 with ``Retry-After`` when the queue is full, 504 past the per-request time limit.
Network passes run in the batcher's worker thread; decoding and encoding images run in Starlette's thread pool, so
the event loop only moves bytes and the server stays responsive.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from gan_translate.core.errors import UserError
from gan_translate.core.version import __version__
from gan_translate.serving.batching import DynamicBatcher, QueueFull, RequestTimedOut
from gan_translate.serving.body_limits import BodyLimits
from gan_translate.serving.catalog import ServedModel
from gan_translate.serving.routes import ROUTERS
from gan_translate.serving.routes.common import ServeSettings, Serving, error_response
from gan_translate.serving.uploads import BadUpload

__all__ = ["ServeSettings", "create_app"]

log = logging.getLogger("gan_translate.serve")
STATIC = Path(__file__).parent / "static"


def create_app(models: dict[str, ServedModel], settings: ServeSettings | None = None) -> BodyLimits:
    """The ASGI app serving ``models``: FastAPI wrapped in the body-size and read-time limits."""
    settings = settings or ServeSettings()
    batcher = DynamicBatcher(settings.max_batch, settings.max_wait_ms / 1000, settings.max_queue, settings.max_batch_pixels)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        log.info("serving %d model(s): %s", len(models), ", ".join(models))
        yield
        await batcher.stop()  # after the server stopped taking requests: every accepted one is answered first

    app = FastAPI(title="gan-translate", version=__version__, lifespan=lifespan,
                  description="Translate, stylise and generate images with gan-translate checkpoints.")
    app.state.serving = Serving(models, settings, batcher)  # what every endpoint receives (routes.common.Served)
    _add_error_handlers(app)
    _add_page(app)
    for router in ROUTERS:
        app.include_router(router)
    return BodyLimits(app, settings.limits.max_upload_bytes, settings.limits.read_timeout_s)


# --- errors -------------------------------------------------------------------------------------------
def _validation_message(error: RequestValidationError) -> str:
    """FastAPI's list of validation problems -> one line naming the first field and what is wrong with it."""
    first = error.errors()[0] if error.errors() else {}
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    name = ".".join(where) or "request"
    if first.get("type") == "missing":
        return f"missing field {name!r}" + ("" if len(error.errors()) == 1 else f" (and {len(error.errors()) - 1} more problems)")
    return f"{name}: {first.get('msg', 'invalid value')}"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return error_response(error.status_code, message, dict(error.headers) if error.headers else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(error))

    @app.exception_handler(BadUpload)
    async def bad_upload(request: Request, error: BadUpload) -> JSONResponse:
        return error_response(error.status, str(error))

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        return error_response(422, str(error))

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return error_response(503, str(error), {"Retry-After": str(error.retry_after_s)})

    @app.exception_handler(RequestTimedOut)
    async def timed_out(request: Request, error: RequestTimedOut) -> JSONResponse:
        return error_response(504, str(error))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return error_response(500, f"internal error ({type(error).__name__}{': ' + first if first else ''}); the server log has the details")


# --- the page ---------------------------------------------------------------------------------------
def _add_page(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


#: The page loads nothing from elsewhere; results are shown from blob: URLs.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'",
    "X-Content-Type-Options": "nosniff",
}
