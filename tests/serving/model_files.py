"""Tiny untrained checkpoints of each kind a server runs, written as `fit` writes them (the keys the loaders read)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_translate.models.adain import AdaIN
from gan_translate.models.base import GANModule
from gan_translate.models.dcgan import DCGAN
from tests.artifacts.test_checkpoint_safety import write_checkpoint

__all__ = ["adain_checkpoint", "cyclegan_checkpoint", "dcgan_checkpoint", "png_bytes", "png_header_only", "save_model"]


def save_model(model: GANModule, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "gan_translate": {"model": model.model_name, "version": "test"}, "epoch": 0, "global_step": 0}, path)
    return path


def cyclegan_checkpoint(path: Path) -> Path:
    return write_checkpoint(path)


def dcgan_checkpoint(path: Path) -> Path:
    torch.manual_seed(1)
    return save_model(DCGAN(resolution=32, latent_dim=8, ngf=4, ndf=4, num_fixed_samples=4, make_gif=False), path)


def adain_checkpoint(path: Path) -> Path:
    torch.manual_seed(2)
    return save_model(AdaIN(encoder_weights="random", sample_every_n_steps=0), path)


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
