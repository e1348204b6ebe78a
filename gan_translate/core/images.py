"""Images between their two forms: uint8 ``HxWx3`` arrays (files, numpy, PIL) and float tensors in [-1, 1].

Inside the framework an image batch is a float ``NCHW`` tensor in ``[-1, 1]``, RGB; on disk and in numpy it is
``uint8`` ``HxWx3`` (or ``HxW``). Every conversion between the two, and between channel counts (grey, RGB,
RGBA), is written here once, so a value saved, logged, scored or fed to a network is rounded the same way.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from gan_translate.core.errors import UserError

__all__ = [
    "LUMA_WEIGHTS",
    "to_rgb_array",
    "as_tensor_image",
    "images_to_uint8",
    "match_channels",
    "tensor_to_uint8",
    "to_unit_range",
    "uint8_batch",
    "uint8_to_tensor",
]

log = logging.getLogger(__name__)

#: ITU-R BT.601 luma, as PIL's "L" conversion.
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)


def images_to_uint8(images: Tensor) -> Tensor:
    """A tensor in [-1, 1] (any shape) -> uint8 0..255 of the same shape, rounded and clamped; NaN -> mid-grey."""
    x = torch.nan_to_num(images.detach().float(), nan=0.0, posinf=1.0, neginf=-1.0)
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def tensor_to_uint8(t: Tensor) -> np.ndarray:
    """A ``CHW`` / ``NCHW`` tensor in ``[-1, 1]`` -> ``HWC`` / ``NHWC`` ``uint8`` numpy (rounded, clamped)."""
    if t.ndim not in (3, 4):
        raise ValueError(f"tensor_to_uint8 expects CHW or NCHW, got shape {tuple(t.shape)}")
    if t.ndim == 3 and t.shape[-2] > _ROWS_PER_CONVERSION:
        # A large (tiled) image: row bands, so the conversion's float temporaries stay small (a 8000x6000 result
        # would otherwise need three more full-size float copies at once).
        out = np.empty((t.shape[1], t.shape[2], t.shape[0]), dtype=np.uint8)
        for top in range(0, t.shape[1], _ROWS_PER_CONVERSION):
            band = t[:, top:top + _ROWS_PER_CONVERSION].to("cpu")
            out[top:top + band.shape[1]] = images_to_uint8(band).movedim(0, -1).numpy()
        return out
    return np.ascontiguousarray(images_to_uint8(t.to("cpu")).movedim(-3, -1).numpy())


_ROWS_PER_CONVERSION = 512


def uint8_to_tensor(a: np.ndarray) -> Tensor:
    """A ``uint8`` ``HxWx3`` (or ``HxW``) array -> a float32 ``CHW`` tensor in ``[-1, 1]``."""
    arr = np.asarray(a)
    if arr.dtype != np.uint8:
        raise ValueError(f"uint8_to_tensor expects uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"uint8_to_tensor expects HxW or HxWxC, got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(torch.float32) / 127.5 - 1.0


def uint8_batch(image: np.ndarray) -> Tensor:
    """A ``uint8`` ``HxW[xC]`` array -> a uint8 ``1xCxHxW`` tensor (values kept: what FID / KID and paired
    metrics read)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped (generators can overshoot slightly before tanh saturates)."""
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def match_channels(images: Tensor, channels: int) -> Tensor:
    """``NCHW`` (or ``CHW``) images -> ``channels`` channels: RGB(A) -> luma for 1, grey -> repeated for 3,
    RGBA -> its RGB for 3. Exact for grey images stored as RGB; any other request is a UserError."""
    axis = images.ndim - 3
    have = images.shape[axis]
    if have == channels:
        return images
    if channels == 1 and have >= 3:
        shape = [1] * images.ndim
        shape[axis] = 3
        weights = torch.tensor(LUMA_WEIGHTS, device=images.device, dtype=images.dtype).view(shape)
        return (images.narrow(axis, 0, 3) * weights).sum(axis, keepdim=True)
    if channels == 3 and have == 1:
        return images.expand(*images.shape[:axis], 3, *images.shape[axis + 1 :])
    if channels == 3 and have == 4:
        return images.narrow(axis, 0, 3)
    raise UserError(f"cannot turn {have}-channel images into {channels}-channel ones")


def as_tensor_image(image: np.ndarray | Image.Image | Tensor, channels: int) -> Tensor:
    """One image (uint8 ``HxW[xC]`` array, PIL image, or ``CHW`` tensor in [-1, 1]) -> ``CHW`` float in [-1, 1]
    with ``channels`` channels (what a generator with that many input channels takes)."""
    if isinstance(image, Tensor):
        tensor = image.float()
    else:
        array = to_rgb_array(image) if isinstance(image, Image.Image) else np.asarray(image)
        if array.dtype != np.uint8:
            raise UserError(f"expected a uint8 image array, got dtype {array.dtype}")
        tensor = uint8_to_tensor(array)
    try:
        return match_channels(tensor, channels)
    except UserError:
        raise UserError(f"cannot feed a {tensor.shape[0]}-channel image to a {channels}-channel generator") from None


# --- PIL images of any mode -> uint8 RGB ------------------------------------------------------------------
def _rescale_to_uint8(a: np.ndarray, full_scale: float) -> np.ndarray:
    """Linearly map ``[0, full_scale]`` to ``[0, 255]`` with rounding (not truncation or clipping)."""
    scaled = np.rint(a.astype(np.float64) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _high_bit_depth_to_uint8(img: Image.Image) -> np.ndarray:
    """Gray 16/32-bit integer (I;16*, I) or float (F) images -> uint8 HxW."""
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        return _rescale_to_uint8(a, 65535.0)
    if img.mode == "I":
        # Mode "I" is what PIL (and older PIL for 16-bit PNGs) gives 16-bit sources, so a range
        # that fits 16 bits is read as 16 bits; anything else has no defined full scale, so it is
        # stretched from its own minimum to its maximum.
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 65535:
            return _rescale_to_uint8(a, 65535.0)
        return _rescale_to_uint8(a - lo, float(max(hi - lo, 1)))
    # "F": float TIFFs are conventionally [0, 1]; larger values are taken as [0, 255].
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return _rescale_to_uint8(a, 1.0 if a.max(initial=0.0) <= 1.0 else 255.0)


def _mode_to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 HxWx3 RGB."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        gray = _high_bit_depth_to_uint8(img)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        # Composite on white rather than dropping alpha: convert("RGB") would expose whatever
        # colour the transparent pixels happen to store (often black or junk), and transparent
        # backgrounds in sketches / product shots (edges2shoes, icons, logos) mean "paper", i.e. white.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    # convert() covers 1, L, P, CMYK (PIL's profile-free inversion), YCbCr, LAB, HSV and RGBA.
    return np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy (asarray of PIL is read-only)


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> ``uint8`` ``HxWx3`` RGB, upright per its EXIF orientation.

    Palette, grayscale, alpha (composited on white), 16-bit, float, CMYK and 1-bit are handled.
    """
    try:
        img = ImageOps.exif_transpose(img)  # returns a copy without the orientation tag: never applied twice
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose an otherwise good image
        log.debug("ignoring unreadable EXIF orientation in %s", getattr(img, "filename", "an image"))
    return np.ascontiguousarray(_mode_to_rgb(img))

