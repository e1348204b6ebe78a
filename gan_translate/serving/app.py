"""The HTTP API and the web page of ``gan-translate serve`` (FastAPI; OpenAPI docs at ``/docs``).

Every error is JSON of one line, ``{"error": "..."}``, with a 4xx status for the client's mistakes (a bad or
oversize upload, a missing field, an unknown model or direction), 503 with ``Retry-After`` when the queue is full,
504 past the per-request time limit. Network passes run in the batcher's worker thread; decoding and encoding
images run in Starlette's thread pool, so the event loop only moves bytes and the server stays responsive.
"""

from __future__ import annotations

import io
import itertools
import logging
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from gan_translate.core.directions import DIRECTIONS
from gan_translate.core.errors import UserError
from gan_translate.core.version import __version__
from gan_translate.inference.generation import decoder_for, grid_picture
from gan_translate.serving.batching import DynamicBatcher, QueueFull, RequestTimedOut
from gan_translate.serving.body_limits import BodyLimits
from gan_translate.serving.catalog import ServedModel
from gan_translate.serving.uploads import BadUpload, UploadLimits, decode_upload, encode_image
from gan_translate.style.pipeline import Stylizer

__all__ = ["ServeSettings", "create_app"]

log = logging.getLogger("gan_translate.serve")
STATIC = Path(__file__).parent / "static"
OutputFormat = Literal["png", "jpeg"]


@dataclass
class ServeSettings:
    """Everything ``gan-translate serve`` flags set besides the models (see ``commands/serve.py`` for the meaning)."""

    limits: UploadLimits = field(default_factory=UploadLimits)
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_queue: int = 64
    max_batch_pixels: int = 8 * 512 * 512
    request_timeout_s: float = 120.0
    max_generate: int = 64
    gatys: Stylizer | None = None
    """Gatys style transfer for ``/v1/stylize`` without an AdaIN model; None: not offered (``gatys_unavailable`` says why)."""
    gatys_unavailable: str = "the server was started with --gatys off"
    gatys_max_steps: int = 100
    gatys_max_size: int = 512


class GenerateRequest(BaseModel):
    """``POST /v1/generate``: images from a DCGAN (sampling) checkpoint."""

    model: str | None = Field(None, description="a sampling model's name (GET /v1/models); optional when only one is loaded")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the latents: the same images as `gan-translate generate --seed`")
    count: int = Field(1, ge=1, description="number of images (at most the server's --max-generate)")
    truncation: float = Field(1.0, ge=0.0, le=2.0, description="StyleGAN2's truncation psi (1: off; 0.5-0.7: less variety, fewer artefacts)")
    format: OutputFormat = "png"
    layout: Literal["grid", "zip"] = Field("grid", description="several images: one grid picture, or a zip of PNG / JPEG files")


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
    app.state.batcher = batcher
    app.state.models = models
    app.state.settings = settings
    _add_error_handlers(app)
    _add_routes(app, models, settings, batcher)
    return BodyLimits(app, settings.limits.max_upload_bytes, settings.limits.read_timeout_s)


# --- errors -------------------------------------------------------------------------------------------
def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


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
        return _error(error.status_code, message, dict(error.headers) if error.headers else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(error))

    @app.exception_handler(BadUpload)
    async def bad_upload(request: Request, error: BadUpload) -> JSONResponse:
        return _error(error.status, str(error))

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        return _error(422, str(error))

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return _error(503, str(error), {"Retry-After": str(error.retry_after_s)})

    @app.exception_handler(RequestTimedOut)
    async def timed_out(request: Request, error: RequestTimedOut) -> JSONResponse:
        return _error(504, str(error))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return _error(500, f"internal error ({type(error).__name__}{': ' + first if first else ''}); the server log has the details")


# --- the endpoints ------------------------------------------------------------------------------------
def _pick_model(models: dict[str, ServedModel], name: str | None, capability: str) -> ServedModel:
    """The model ``name`` (which must have ``capability``), or the only one that has it when no name is given."""
    able = [m for m in models.values() if m.capability == capability]
    if name:
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; loaded: {', '.join(models) or 'none'}")
        if models[name].capability != capability:
            model = models[name]
            raise HTTPException(422, f"model {name!r} is a {model.kind} model: use {model.describe()['endpoint']}")
        return models[name]
    if len(able) == 1:
        return able[0]
    if not able:
        raise HTTPException(422, f"no loaded model can {capability}; loaded: {', '.join(models) or 'none'}")
    raise HTTPException(422, f"several models can {capability} ({', '.join(m.name for m in able)}): give the 'model' field")


async def _read_image(upload: UploadFile, field_name: str, limits: UploadLimits) -> np.ndarray:
    data = await upload.read()
    return await run_in_threadpool(decode_upload, data, field_name, limits)


async def _image_response(image: np.ndarray, output_format: str, started: float, headers: dict[str, str]) -> Response:
    body, media_type = await run_in_threadpool(encode_image, image, output_format)
    headers = {**headers, "X-Elapsed-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
               "X-Image-Size": f"{image.shape[1]}x{image.shape[0]}"}
    return Response(body, media_type=media_type, headers=headers)


def _add_routes(app: FastAPI, models: dict[str, ServedModel], settings: ServeSettings, batcher: DynamicBatcher) -> None:
    limits = settings.limits
    timeout = settings.request_timeout_s
    unbatched = itertools.count()  # a fresh key per request: its own pass, still through the queue and its limits

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", summary="the process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="the models are loaded and requests are taken")
    async def readyz() -> JSONResponse:
        if not batcher.running:
            return _error(503, "not ready: the server is starting or shutting down")
        return JSONResponse({"status": "ready", "models": len(models), "queued": batcher.queued})

    @app.get("/v1/models", summary="the loaded models, as their checkpoints describe them")
    async def list_models() -> dict[str, Any]:
        gatys = {"available": settings.gatys is not None, "max_steps": settings.gatys_max_steps,
                 "max_size": settings.gatys_max_size}
        if settings.gatys is None:
            gatys["reason"] = settings.gatys_unavailable
        return {"models": [m.describe() for m in models.values()], "gatys": gatys,
                "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                           "min_side": limits.min_side, "max_generate": settings.max_generate}}

    @app.get("/v1/stats", summary="what the batcher has done: requests, batches, batch sizes")
    async def stats() -> dict[str, Any]:
        return batcher.stats.as_dict(batcher.queued)

    @app.post("/v1/translate", summary="translate one image (same size out)",
              response_class=Response, responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    async def translate(
        image: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, BMP or TIFF; sniffed from its bytes)")],
        model: Annotated[str | None, Form(description="a translator's name (GET /v1/models); optional when only one is loaded")] = None,
        direction: Annotated[str, Form(description="AtoB or BtoA")] = "AtoB",
        format: Annotated[OutputFormat, Form(description="png or jpeg")] = "png",  # noqa: A002 - the API's field name
    ) -> Response:
        started = time.perf_counter()
        served = _pick_model(models, model, "translate")
        if direction not in DIRECTIONS:
            raise HTTPException(422, f"direction must be AtoB or BtoA, got {direction!r}")
        if direction not in served.translators:
            raise HTTPException(422, f"model {served.name!r} translates {', '.join(served.directions)} only, not {direction}")
        picture = await _read_image(image, "image", limits)
        result = await batcher.submit(served.translate_batch, (direction, picture.shape), (direction, picture),
                                      cost=picture.shape[0] * picture.shape[1], timeout_s=timeout)
        return await _image_response(result, format, started, {"X-Model": served.name, "X-Direction": direction})

    @app.post("/v1/stylize", summary="render a content image in a style image's style (AdaIN model, or Gatys)",
              response_class=Response, responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    async def stylize(
        content: Annotated[UploadFile, File(description="the content image")],
        style: Annotated[UploadFile, File(description="the style image")],
        model: Annotated[str | None, Form(description="an AdaIN model's name, or 'gatys'; default: the AdaIN model if one is loaded, else gatys")] = None,
        alpha: Annotated[float, Form(ge=0.0, le=1.0, description="AdaIN: 0 keeps the content, 1 is the full style")] = 1.0,
        steps: Annotated[int | None, Form(ge=1, description="Gatys: optimiser iterations (at most the server's limit)")] = None,
        size: Annotated[int | None, Form(ge=16, description="Gatys: long side the optimisation runs at (at most the server's limit)")] = None,
        format: Annotated[OutputFormat, Form(description="png or jpeg")] = "png",  # noqa: A002 - the API's field name
    ) -> Response:
        started = time.perf_counter()
        adain = [m for m in models.values() if m.capability == "stylize"]
        use_gatys = model == "gatys" or (model is None and not adain)
        served = None if use_gatys else _pick_model(models, model, "stylize")
        if use_gatys and settings.gatys is None:
            raise HTTPException(503, f"Gatys style transfer is not available here: {settings.gatys_unavailable}")
        stylizer = _gatys_for(settings, steps, size) if use_gatys else None
        content_image = await _read_image(content, "content", limits)
        style_image = await _read_image(style, "style", limits)
        if served is not None:
            result = await batcher.submit(served.stylize_adain, next(unbatched), (content_image, style_image, alpha),
                                          timeout_s=timeout)
            name = served.name
        else:
            assert stylizer is not None
            result = await batcher.submit(_run_gatys, next(unbatched), (stylizer, content_image, style_image), timeout_s=timeout)
            name = "gatys"
        return await _image_response(result, format, started, {"X-Model": name})

    @app.post("/v1/generate", summary="generate images with a DCGAN checkpoint (reproducible by seed)",
              response_class=Response,
              responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "application/zip": {}}}})
    async def generate(request: GenerateRequest) -> Response:
        started = time.perf_counter()
        served = _pick_model(models, request.model, "sample")
        if request.count > settings.max_generate:
            raise HTTPException(422, f"count must be at most {settings.max_generate} (the server's --max-generate), got {request.count}")
        decode = decoder_for(served.sampler, batch_size=64, psi=request.truncation)  # a DCGAN refuses psi != 1 here
        images = await batcher.submit(served.generate, next(unbatched), (request.seed, request.count, decode), timeout_s=timeout)
        headers = {"X-Model": served.name, "X-Seed": str(request.seed), "X-Count": str(request.count)}
        if request.count > 1 and request.layout == "zip":
            body = await run_in_threadpool(_zip_images, images, request.format)
            headers["X-Elapsed-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
            return Response(body, media_type="application/zip", headers=headers)
        picture = images[0] if len(images) == 1 else await run_in_threadpool(_grid, images)
        if request.truncation != 1.0:
            headers["X-Truncation"] = f"{request.truncation:g}"
        return await _image_response(picture, request.format, started, headers)


#: The page loads nothing from elsewhere; results are shown from blob: URLs.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


def _gatys_for(settings: ServeSettings, steps: int | None, size: int | None) -> Stylizer:
    """The server's Gatys stylizer with this request's steps and size, both within the server's limits."""
    assert settings.gatys is not None
    if steps is not None and steps > settings.gatys_max_steps:
        raise HTTPException(422, f"steps must be at most {settings.gatys_max_steps} on this server, got {steps}")
    if size is not None and size > settings.gatys_max_size:
        raise HTTPException(422, f"size must be at most {settings.gatys_max_size} px on this server, got {size}")
    base = settings.gatys
    config = replace(base.config, steps=steps or min(base.config.steps, settings.gatys_max_steps))
    return replace(base, config=config, sizes=(size or min(max(base.sizes), settings.gatys_max_size),))


def _run_gatys(payloads: list[tuple[Stylizer, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    return [stylizer(content, style) for stylizer, content, style in payloads]


def _grid(images: list[np.ndarray]) -> np.ndarray:
    """Images in a square-ish grid with 2 px white gaps (as ``gan-translate generate --grid``)."""
    import torch

    from gan_translate.core.images import uint8_to_tensor

    return grid_picture(torch.stack([uint8_to_tensor(image) for image in images]))


def _zip_images(images: list[np.ndarray], output_format: str) -> bytes:
    buffer = io.BytesIO()
    suffix = "png" if output_format == "png" else "jpg"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # PNG / JPEG are compressed already
        for index, image in enumerate(images):
            archive.writestr(f"{index:06d}.{suffix}", encode_image(image, output_format)[0])
    return buffer.getvalue()
