"""Liveness, readiness, the loaded models and the batcher's statistics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gan_translate.serving.routes.common import Served, error_response

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", summary="the process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="the models are loaded and requests are taken")
async def readyz(serving: Served) -> JSONResponse:
    if not serving.batcher.running:
        return error_response(503, "not ready: the server is starting or shutting down")
    return JSONResponse({"status": "ready", "models": len(serving.models), "queued": serving.batcher.queued})


@router.get("/v1/models", summary="the loaded models, as their checkpoints describe them")
async def list_models(serving: Served) -> dict[str, Any]:
    settings, limits = serving.settings, serving.settings.limits
    gatys = {"available": settings.gatys is not None, "max_steps": settings.gatys_max_steps,
             "max_size": settings.gatys_max_size}
    if settings.gatys is None:
        gatys["reason"] = settings.gatys_unavailable
    return {"models": [m.describe() for m in serving.models.values()], "gatys": gatys,
            "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                       "min_side": limits.min_side, "max_generate": settings.max_generate}}


@router.get("/v1/stats", summary="what the batcher has done: requests, batches, batch sizes")
async def stats(serving: Served) -> dict[str, Any]:
    return serving.batcher.stats.as_dict(serving.batcher.queued)
