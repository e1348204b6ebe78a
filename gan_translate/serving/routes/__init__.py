"""The HTTP API of ``gan-translate serve``, one FastAPI router per concern; :mod:`gan_translate.serving.app` mounts
them with the page and the JSON error handlers.

* :mod:`~gan_translate.serving.routes.common`: the server's settings and state (one ``Serving`` per app, handed to
  each endpoint as a dependency), model lookup, upload reading, image responses;
* :mod:`~gan_translate.serving.routes.models`: ``/healthz``, ``/readyz``, ``/v1/models``, ``/v1/stats``;
* :mod:`~gan_translate.serving.routes.translate`: ``POST /v1/translate``;
* :mod:`~gan_translate.serving.routes.stylize`: ``POST /v1/stylize`` (an AdaIN model, or Gatys);
* :mod:`~gan_translate.serving.routes.generate`: ``POST /v1/generate`` (DCGAN, StyleGAN2).
"""

from __future__ import annotations

from fastapi import APIRouter

from gan_translate.serving.routes import generate, models, stylize, translate

__all__ = ["ROUTERS"]

#: In the order the API docs (``/docs``) list them.
ROUTERS: tuple[APIRouter, ...] = (models.router, translate.router, stylize.router, generate.router)
