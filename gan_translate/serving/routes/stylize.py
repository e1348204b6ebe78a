"""``POST /v1/stylize``: a content image in a style image's style, with an AdaIN model (one forward pass) or the
built-in Gatys optimisation (bounded in steps and size by the server)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gan_translate.serving.routes.common import (
    IMAGE_RESPONSES,
    OutputFormat,
    Served,
    ServeSettings,
    image_response,
    pick_model,
    read_image,
)
from gan_translate.style.pipeline import Stylizer

__all__ = ["router"]

router = APIRouter()


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


@router.post("/v1/stylize", summary="render a content image in a style image's style (AdaIN model, or Gatys)",
             response_class=Response, responses=IMAGE_RESPONSES)
async def stylize(
    serving: Served,
    content: Annotated[UploadFile, File(description="the content image")],
    style: Annotated[UploadFile, File(description="the style image")],
    model: Annotated[str | None, Form(description="an AdaIN model's name, or 'gatys'; default: the AdaIN model if one is loaded, else gatys")] = None,
    alpha: Annotated[float, Form(ge=0.0, le=1.0, description="AdaIN: 0 keeps the content, 1 is the full style")] = 1.0,
    steps: Annotated[int | None, Form(ge=1, description="Gatys: optimiser iterations (at most the server's limit)")] = None,
    size: Annotated[int | None, Form(ge=16, description="Gatys: long side the optimisation runs at (at most the server's limit)")] = None,
    format: Annotated[OutputFormat, Form(description="png or jpeg")] = "png",  # noqa: A002 - the API's field name
) -> Response:
    started = time.perf_counter()
    settings, limits, timeout = serving.settings, serving.settings.limits, serving.settings.request_timeout_s
    adain = [m for m in serving.models.values() if m.capability == "stylize"]
    use_gatys = model == "gatys" or (model is None and not adain)
    served = None if use_gatys else pick_model(serving.models, model, "stylize")
    if use_gatys and settings.gatys is None:
        raise HTTPException(503, f"Gatys style transfer is not available here: {settings.gatys_unavailable}")
    stylizer = _gatys_for(settings, steps, size) if use_gatys else None
    content_image = await read_image(content, "content", limits)
    style_image = await read_image(style, "style", limits)
    if served is not None:
        result = await serving.batcher.submit(served.stylize_adain, next(serving.unbatched),
                                              (content_image, style_image, alpha), timeout_s=timeout)
        name = served.name
    else:
        assert stylizer is not None
        result = await serving.batcher.submit(_run_gatys, next(serving.unbatched), (stylizer, content_image, style_image),
                                              timeout_s=timeout)
        name = "gatys"
    return await image_response(result, format, started, {"X-Model": name})
