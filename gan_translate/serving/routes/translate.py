"""``POST /v1/translate``: one image through a translator, batched with other requests of its model, direction
and size."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gan_translate.core.directions import DIRECTIONS
from gan_translate.serving.routes.common import IMAGE_RESPONSES, OutputFormat, Served, image_response, pick_model, read_image

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/translate", summary="translate one image (same size out)", response_class=Response, responses=IMAGE_RESPONSES)
async def translate(
    serving: Served,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, BMP or TIFF; sniffed from its bytes)")],
    model: Annotated[str | None, Form(description="a translator's name (GET /v1/models); optional when only one is loaded")] = None,
    direction: Annotated[str, Form(description="AtoB or BtoA")] = "AtoB",
    format: Annotated[OutputFormat, Form(description="png or jpeg")] = "png",  # noqa: A002 - the API's field name
    steps: Annotated[int | None, Form(ge=1, description="a multi-step translator's generator passes (UNSB: 1 to its "
                                      "num_timesteps; default all); GET /v1/models lists a model's settings")] = None,
    seed: Annotated[int | None, Form(ge=0, le=2**31 - 1, description="seed of a stochastic translator's noise (UNSB's "
                                     "bridge; default 0): the same as `gan-translate translate --seed`")] = None,
) -> Response:
    started = time.perf_counter()
    served = pick_model(serving.models, model, "translate")
    if direction not in DIRECTIONS:
        raise HTTPException(422, f"direction must be AtoB or BtoA, got {direction!r}")
    if direction not in served.translators:
        raise HTTPException(422, f"model {served.name!r} translates {', '.join(served.directions)} only, not {direction}")
    # Only the settings the request gives: a model that takes none still answers requests without them.
    settings = tuple((name, value) for name, value in (("seed", seed), ("steps", steps)) if value is not None)
    served.translator_for(direction, dict(settings))  # a setting the model refuses, or a bad value: 422 before queueing
    picture = await read_image(image, "image", serving.settings.limits)
    # Requests of one model, direction, size and settings share a pass; the cost (pixels) bounds a batch's memory.
    result = await serving.batcher.submit(served.translate_batch, (direction, picture.shape, settings),
                                          (direction, picture, settings), cost=picture.shape[0] * picture.shape[1],
                                          timeout_s=serving.settings.request_timeout_s)
    headers = {"X-Model": served.name, "X-Direction": direction, **{f"X-{name.title()}": str(value) for name, value in settings}}
    return await image_response(result, format, started, headers)
