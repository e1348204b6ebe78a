"""The StyleGAN2 discriminator: residual blocks with blurred downsampling and a minibatch standard deviation layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.stylegan2.equalised import EqualConv2d, EqualLinear, _check_resolution, stylegan2_channels

__all__ = ["Blur", "DiscriminatorBlock", "MinibatchStdDev", "StyleGAN2Discriminator"]


class Blur(nn.Module):
    """The normalised [1, 3, 3, 1] x [1, 3, 3, 1] low-pass filter (per channel), after zero padding ``pad``
    on every side, with ``stride`` (2: blur and subsample in one step). Anti-aliases the discriminator's
    downsampling; the kernel is a non-persistent buffer (not in state dicts, moved with the module)."""

    def __init__(self, pad: int, stride: int = 1) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)
        self.kernel: torch.Tensor
        self.pad = pad
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        return F.conv2d(x, kernel, stride=self.stride, padding=self.pad, groups=c)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, stride={self.stride}"


class DiscriminatorBlock(nn.Module):
    """Residual block, halving the resolution: 3x3 conv, blur + stride-2 3x3 conv (leaky ReLUs), plus a
    blurred stride-2 1x1 conv skip without bias; the sum is scaled by 1/sqrt(2) to keep the variance."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, padding=1, activation="lrelu")
        # pad 2 + 4-tap blur: H + 1, then a valid stride-2 3x3 conv: H / 2 (the official padding).
        self.conv1 = nn.Sequential(Blur(pad=2), EqualConv2d(in_channels, out_channels, 3, stride=2, activation="lrelu"))
        self.skip = nn.Sequential(Blur(pad=1, stride=2), EqualConv2d(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * (1 / math.sqrt(2))


class MinibatchStdDev(nn.Module):
    """Appends ``channels`` feature maps holding the standard deviation of the features across groups of
    samples, averaged over features and pixels: a cue to the discriminator about the batch's variety, against
    mode collapse (ProGAN, kept in StyleGAN2).

    The batch is split into groups of ``group_size`` (sample i in group i % (N // G), as the official code); the
    group is ``min(group_size, N)`` and, where that does not divide N (the official code would fail), the
    largest divisor of N below it, so any batch size works (N = 1: a group of one, std ~ 1e-4).
    """

    def __init__(self, group_size: int = 4, channels: int = 1) -> None:
        super().__init__()
        if group_size < 1 or channels < 1:
            raise UserError(f"minibatch std group size and channels must be >= 1, got {group_size} and {channels}")
        self.group_size = group_size
        self.channels = channels

    def group_for(self, n: int) -> int:
        """The group size used for a batch of ``n``."""
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        return group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g, f = self.group_for(n), self.channels
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, n/G, F, C/F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (n/G, F): mean std per group and channel group
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # back to (N, F, H, W), sample i -> group i % (N/G)
        return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """Image -> one real/fake logit per image, shape ``(N, 1)`` (no sigmoid: the loss decides).

    The residual architecture of config F: fromRGB (1x1 conv + leaky ReLU) at full resolution, one
    :class:`DiscriminatorBlock` per halving down to 4x4, then minibatch std, a 3x3 conv, a linear layer on the
    flattened 4x4 map and a linear output. Channels per resolution as the generator's.
    """

    #: Equalised learning rate needs N(0, 1) weights: the builders must not re-initialise them.
    classic_init = False

    def __init__(
        self,
        resolution: int = 256,
        channel_base: int = 32768,
        channel_max: int = 512,
        in_channels: int = 3,
        mbstd_group_size: int = 4,
        mbstd_channels: int = 1,
    ) -> None:
        super().__init__()
        log2 = _check_resolution(resolution, type(self).__name__)
        channels = stylegan2_channels(resolution, channel_base, channel_max)
        if channels[4] % mbstd_channels:
            raise UserError(f"mbstd_channels={mbstd_channels} must divide the {channels[4]} channels at 4x4")
        self.resolution = resolution
        self.image_size = resolution
        self.in_channels = in_channels
        self.from_rgb = EqualConv2d(in_channels, channels[resolution], 1, activation="lrelu")
        self.blocks = nn.Sequential(*(DiscriminatorBlock(channels[2**i], channels[2 ** (i - 1)]) for i in range(log2, 2, -1)))
        c4 = channels[4]
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_channels)
        self.conv = EqualConv2d(c4 + mbstd_channels, c4, 3, padding=1, activation="lrelu")
        self.fc = EqualLinear(c4 * 4 * 4, c4, activation="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.in_channels, self.resolution, self.resolution):
            raise UserError(f"StyleGAN2Discriminator was built for {self.in_channels}x{self.resolution}x{self.resolution} "
                            f"images, got {'x'.join(map(str, x.shape[1:]))}")
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))
