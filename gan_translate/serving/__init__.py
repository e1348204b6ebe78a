"""``gan-translate serve``: every checkpoint behind a web page and an HTTP API.

* :mod:`~gan_translate.serving.catalog`: the checkpoints, loaded once, named, ready to run;
* :mod:`~gan_translate.serving.batching`: concurrent requests gathered into batches, run off the event loop;
* :mod:`~gan_translate.serving.uploads`: uploads sniffed, size-checked from their header, decoded in memory;
* :mod:`~gan_translate.serving.body_limits`: request bodies bounded in size and in the time they take to arrive;
* :mod:`~gan_translate.serving.app`: the FastAPI endpoints, JSON errors and the page (``static/``);
* :mod:`~gan_translate.serving.server`: uvicorn, loopback by default, graceful shutdown.

FastAPI, uvicorn and python-multipart come with the ``serve`` extra (``pip install "gan-translate[serve]"``).
"""

from __future__ import annotations
