"""Tiny untrained checkpoints of each kind a server runs (tests/tiny.py's settings), written as `fit` writes them (the
keys the loaders read)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_translate.models.base import GANModule
from tests.tiny import TINY

__all__ = ["adain_checkpoint", "cyclegan_checkpoint", "dcgan_checkpoint", "png_bytes", "png_header_only", "save_model",
           "tiny_checkpoint"]


def save_model(model: GANModule, path: Path) -> Path:
    """``model``'s checkpoint at ``path`` with the entries `fit` writes that the loaders read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "gan_translate": {"model": model.model_name, "version": "test"}, "epoch": 0, "global_step": 0}, path)
    return path


def tiny_checkpoint(model: str, path: Path, seed: int = 0) -> Path:
    """An untrained ``model`` (a registered name) built from tests/tiny.py's settings after ``seed``, saved at ``path``."""
    torch.manual_seed(seed)
    return save_model(TINY[model].build(model), path)


def cyclegan_checkpoint(path: Path) -> Path:
    """A tiny CycleGAN (two directions) to translate with."""
    return tiny_checkpoint("cyclegan", path, seed=0)


def dcgan_checkpoint(path: Path) -> Path:
    """A tiny DCGAN (32 px) to generate with."""
    return tiny_checkpoint("dcgan", path, seed=1)


def adain_checkpoint(path: Path) -> Path:
    """A tiny AdaIN (random encoder) to stylise with."""
    return tiny_checkpoint("adain", path, seed=2)


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random picture (upscaled noise), like a photo to a generator."""
    low = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, 6, 5)).astype(np.float32))[None]
    image = torch.nn.functional.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)[0]
    return image.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def png_bytes(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring ``width x height`` RGB pixels, with one tiny IDAT: a decompression
    bomb's header (decoding it would need width * height * 3 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
