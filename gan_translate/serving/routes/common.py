"""What every endpoint shares: the server's settings, its state (models, batcher) as a FastAPI dependency, picking
a model by name and capability, reading an upload and answering with an image."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from fastapi import Depends, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from gan_translate.serving.batching import DynamicBatcher
from gan_translate.serving.catalog import ServedModel
from gan_translate.serving.uploads import UploadLimits, decode_upload, encode_image
from gan_translate.style.pipeline import Stylizer

__all__ = [
    "IMAGE_RESPONSES",
    "OutputFormat",
    "ServeSettings",
    "Served",
    "Serving",
    "error_response",
    "image_response",
    "pick_model",
    "read_image",
]

OutputFormat = Literal["png", "jpeg"]

#: The OpenAPI description of an endpoint answering with one picture.
IMAGE_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {"image/png": {}, "image/jpeg": {}}}}


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


@dataclass
class Serving:
    """One app's models, settings and batcher (``app.state.serving``)."""

    models: dict[str, ServedModel]
    settings: ServeSettings
    batcher: DynamicBatcher
    #: A fresh batch key per unbatched request (stylize, generate): its own pass, still through the queue and its limits.
    unbatched: itertools.count = field(default_factory=itertools.count)


def _serving(request: Request) -> Serving:
    return request.app.state.serving


#: The endpoint parameter that receives the app's :class:`Serving` (not part of the API: no schema entry).
Served = Annotated[Serving, Depends(_serving)]


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The API's error: ``{"error": "<one line>"}``."""
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def pick_model(models: dict[str, ServedModel], name: str | None, capability: str) -> ServedModel:
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


async def read_image(upload: UploadFile, field_name: str, limits: UploadLimits) -> np.ndarray:
    """An upload decoded off the event loop (sniffed, size-checked from its header first)."""
    data = await upload.read()
    return await run_in_threadpool(decode_upload, data, field_name, limits)


async def image_response(image: np.ndarray, output_format: str, started: float, headers: dict[str, str]) -> Response:
    """``image`` encoded off the event loop, with the time since ``started`` and its size in the headers."""
    body, media_type = await run_in_threadpool(encode_image, image, output_format)
    headers = {**headers, "X-Elapsed-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
               "X-Image-Size": f"{image.shape[1]}x{image.shape[0]}"}
    return Response(body, media_type=media_type, headers=headers)
