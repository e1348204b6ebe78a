"""``POST /v1/generate``: images from a sampling checkpoint (DCGAN, StyleGAN2), reproducible by seed: one picture,
a grid, or a zip of files."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Literal

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from gan_translate.core.grids import make_grid
from gan_translate.inference.generation import decoder_for
from gan_translate.serving.routes.common import OutputFormat, Served, image_response, pick_model
from gan_translate.serving.uploads import encode_image

__all__ = ["GenerateRequest", "router"]

router = APIRouter()


class GenerateRequest(BaseModel):
    """``POST /v1/generate``: images from a DCGAN (sampling) checkpoint."""

    model: str | None = Field(None, description="a sampling model's name (GET /v1/models); optional when only one is loaded")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the latents: the same images as `gan-translate generate --seed`")
    count: int = Field(1, ge=1, description="number of images (at most the server's --max-generate)")
    truncation: float = Field(1.0, ge=0.0, le=2.0, description="StyleGAN2's truncation psi (1: off; 0.5-0.7: less variety, fewer artefacts)")
    format: OutputFormat = "png"
    layout: Literal["grid", "zip"] = Field("grid", description="several images: one grid picture, or a zip of PNG / JPEG files")


def _zip_images(images: list[np.ndarray], output_format: str) -> bytes:
    buffer = io.BytesIO()
    suffix = "png" if output_format == "png" else "jpg"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # PNG / JPEG are compressed already
        for index, image in enumerate(images):
            archive.writestr(f"{index:06d}.{suffix}", encode_image(image, output_format)[0])
    return buffer.getvalue()


@router.post("/v1/generate", summary="generate images with a DCGAN checkpoint (reproducible by seed)",
             response_class=Response,
             responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "application/zip": {}}}})
async def generate(serving: Served, request: GenerateRequest) -> Response:
    started = time.perf_counter()
    served = pick_model(serving.models, request.model, "sample")
    if request.count > serving.settings.max_generate:
        raise HTTPException(422, f"count must be at most {serving.settings.max_generate} (the server's --max-generate), got {request.count}")
    decode = decoder_for(served.sampler, batch_size=64, psi=request.truncation)  # a DCGAN refuses psi != 1 here
    images = await serving.batcher.submit(served.generate, next(serving.unbatched), (request.seed, request.count, decode),
                                          timeout_s=serving.settings.request_timeout_s)
    headers = {"X-Model": served.name, "X-Seed": str(request.seed), "X-Count": str(request.count)}
    if request.count > 1 and request.layout == "zip":
        body = await run_in_threadpool(_zip_images, images, request.format)
        headers["X-Elapsed-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
        return Response(body, media_type="application/zip", headers=headers)
    # Several images: one square-ish grid, as `gan-translate generate --grid` draws it.
    picture = images[0] if len(images) == 1 else await run_in_threadpool(make_grid, images, square=True)
    if request.truncation != 1.0:
        headers["X-Truncation"] = f"{request.truncation:g}"
    return await image_response(picture, request.format, started, headers)
