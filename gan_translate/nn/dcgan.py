"""DCGAN generator and discriminator (Radford et al. 2016) for 32, 64 and 128 pixel images."""

from __future__ import annotations

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.layers import norm_layer, uses_bias

__all__ = ["DCGAN_IMAGE_SIZES", "DCGANGenerator", "DCGANDiscriminator"]

DCGAN_IMAGE_SIZES: tuple[int, ...] = (32, 64, 128)


def _n_stages(image_size: int, network: str) -> int:
    """Number of stride-2 stages between a 4x4 map and ``image_size`` (3, 4 or 5)."""
    if image_size not in DCGAN_IMAGE_SIZES:
        valid = ", ".join(map(str, DCGAN_IMAGE_SIZES))
        raise UserError(f"{network} does not support image_size={image_size!r}; valid sizes: {valid}")
    return image_size.bit_length() - 3  # log2(image_size) - 2


class DCGANGenerator(nn.Module):
    """Latent vector -> image: a 4x4 transposed conv from 1x1, then stride-2 transposed convs to
    ``image_size``, halving the channels each time down to ``ngf``; BatchNorm + ReLU; tanh output.

    Takes ``(N, latent_dim)`` or ``(N, latent_dim, 1, 1)`` and returns
    ``(N, out_channels, image_size, image_size)`` in [-1, 1]. For 64 px this is the classic
    1 -> 4 -> 8 -> 16 -> 32 -> 64 stack with ngf*8 channels at 4x4.
    """

    def __init__(self, latent_dim: int = 100, out_channels: int = 3, ngf: int = 64, image_size: int = 64) -> None:
        super().__init__()
        n = _n_stages(image_size, type(self).__name__)
        self.latent_dim = latent_dim
        self.image_size = image_size
        # The input is a latent vector (1x1), so there is no spatial constraint on it.
        self.size_multiple: int = 1
        bias = uses_bias("batch")  # False: every hidden conv is followed by BatchNorm
        ch = [ngf * 2**i for i in range(n - 1, -1, -1)]  # channels at 4x4, 8x8, ..., image_size/2
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch[0], 4, 1, 0, bias=bias),
            norm_layer("batch", ch[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias), norm_layer("batch", c_out), nn.ReLU(True)]
        # No bias on the output layer either, as in the reference DCGAN (pytorch/examples).
        layers += [nn.ConvTranspose2d(ch[-1], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.latent_dim or z.shape[2:] != (1, 1):
            raise ValueError(
                f"DCGANGenerator expects latents of shape (N, {self.latent_dim}) or "
                f"(N, {self.latent_dim}, 1, 1), got {tuple(z.shape)}"
            )
        return self.model(z)


class DCGANDiscriminator(nn.Module):
    """Image -> one real/fake logit per image: stride-2 4x4 convs from ``image_size`` down to 4x4
    (doubling the channels from ``ndf``), LeakyReLU(0.2), norm on all but the first, then a 4x4
    valid conv. Returns unbounded logits of shape ``(N,)`` (no sigmoid: the loss decides).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, image_size: int = 64, norm: str = "batch") -> None:
        super().__init__()
        n = _n_stages(image_size, type(self).__name__)
        self.image_size = image_size
        bias = uses_bias(norm)
        ch = [ndf * 2**i for i in range(n)]  # channels at image_size/2, ..., 4x4
        # No norm on the first layer (as in the paper: normalising the input layer makes training
        # unstable); no bias on it or on the output, as in the reference DCGAN.
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias), norm_layer(norm, c_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ch[-1], 1, 4, 1, 0, bias=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise UserError(
                f"DCGANDiscriminator was built for {self.image_size}x{self.image_size} images, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )
        return self.model(x).reshape(x.shape[0])
