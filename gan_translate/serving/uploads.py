"""Uploaded bytes -> a checked uint8 RGB image, and results -> PNG / JPEG bytes.

Nothing about an upload is trusted: its file name and content type are ignored, the format is sniffed from the
bytes (PNG, JPEG, WebP, BMP, TIFF only), and the width and height are read from the header and checked against
:class:`UploadLimits` *before* any pixel is decoded, so a small file declaring 30000 x 30000 pixels (a
decompression bomb) costs nothing. Decoding happens in memory; no upload is ever written to disk under a name a
client gave. The pixels then go through the same conversion as image files (:func:`gan_translate.core.images.to_rgb_array`:
EXIF orientation, alpha on white, 16-bit, palette), so a served result equals ``gan-translate translate``'s.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gan_translate.core.images import to_rgb_array

__all__ = ["ACCEPTED_FORMATS", "OUTPUT_FORMATS", "BadUpload", "UploadLimits", "decode_upload", "encode_image"]

#: PIL format names an upload may be in (sniffed from its bytes).
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
#: ``format`` field value -> (PIL format, media type).
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg")}


class BadUpload(Exception):
    """An upload the server refuses: ``status`` (400 / 413 / 415 / 422) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    """What one request may send.

    Attributes:
        max_upload_bytes: the whole request body (all its files); checked from ``Content-Length`` and while reading.
        max_pixels: width x height of one image, read from its header before decoding.
        min_side: smaller images are refused (the generators need a few pixels a side to mean anything).
        read_timeout_s: the whole body must arrive within this time (a slow client holds nothing longer).
    """

    max_upload_bytes: int = 32 * 2**20
    max_pixels: int = 4096 * 4096
    min_side: int = 8
    read_timeout_s: float = 30.0


def decode_upload(data: bytes, field: str, limits: UploadLimits) -> np.ndarray:
    """The upload of form field ``field`` as uint8 HxWx3 RGB, or :class:`BadUpload` saying what is wrong with it."""
    if not data:
        raise BadUpload(400, f"the {field!r} upload is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # PIL warns between 1x and 2x its own pixel limit and raises above: our limit below decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise BadUpload(413, f"the {field!r} image declares more pixels than the {_megapixels(limits.max_pixels)} limit") from None
    except Image.UnidentifiedImageError:
        raise BadUpload(415, f"the {field!r} upload is not a PNG, JPEG, WebP, BMP or TIFF image") from None
    except Exception as error:  # noqa: BLE001 - a header PIL cannot parse: SyntaxError, ValueError, struct.error ...
        raise BadUpload(400, f"the {field!r} image has an unreadable header ({_first_line(error)})") from None
    with image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise BadUpload(413, f"the {field!r} image is {width}x{height} ({_megapixels(width * height)}); "
                                 f"the limit is {_megapixels(limits.max_pixels)}")
        if min(width, height) < limits.min_side:
            raise BadUpload(422, f"the {field!r} image is {width}x{height}; images need at least {limits.min_side} px a side")
        try:
            image.load()
            return to_rgb_array(image)
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - truncated data, bad compression streams, ...
            raise BadUpload(400, f"the {field!r} image is corrupt or truncated ({_first_line(error)})") from None


def encode_image(image: np.ndarray, output_format: str, jpeg_quality: int = 92) -> tuple[bytes, str]:
    """uint8 HxWx3 -> (file bytes, media type) for ``png`` or ``jpeg``."""
    pil_format, media_type = OUTPUT_FORMATS[output_format]
    buffer = io.BytesIO()
    picture = Image.fromarray(np.ascontiguousarray(image))
    if pil_format == "PNG":
        picture.save(buffer, format="PNG", compress_level=1)  # 1: fast; level 6 costs ~3x the time for ~10% bytes
    else:
        picture.save(buffer, format="JPEG", quality=jpeg_quality)
    return buffer.getvalue(), media_type


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0][:160] if text else type(error).__name__)
