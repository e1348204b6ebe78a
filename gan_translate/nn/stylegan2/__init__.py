"""StyleGAN2 generator and discriminator (Karras et al., CVPR 2020, "Analyzing and Improving the Image
Quality of StyleGAN"), config F, as pure ``nn.Module``s.

The pieces, bottom up:

* :mod:`.equalised`: :class:`EqualLinear` / :class:`EqualConv2d`, equalised learning rate. Weights are stored as N(0, 1) / lr_mul
  and scaled at run time by lr_mul / sqrt(fan_in), so every layer sees the same effective step size under Adam
  (whose updates are scale-free) whatever its fan-in; the mapping network uses lr_mul = 0.01.
* :mod:`.mapping`: :class:`MappingNetwork`, z -> w, pixel norm then 8 leaky-ReLU layers; ``w_avg`` for the truncation trick.
* :mod:`.modulated`: :class:`ModulatedConv2d`, the paper's weight (de)modulation, replacing AdaIN, as one grouped
  convolution, or unfused (:func:`unfuse_modulated_convs`: the form the exports trace, for any batch size).
* :mod:`.generator`: :class:`NoiseInjection`, :class:`StyleLayer`, :class:`ToRGB`, :class:`SynthesisNetwork`: the
  skip generator (a learned 4x4 constant, two style layers and an RGB output per resolution, RGBs upsampled and
  summed); :class:`StyleGAN2Generator`: mapping + synthesis, truncation, style mixing; :class:`TruncatedSampler`:
  ``(z, psi) -> images`` as one module to export.
* :mod:`.discriminator`: :class:`StyleGAN2Discriminator`, the residual discriminator with a minibatch standard deviation layer.

Resampling (a simplification of the official ``upfirdn2d`` kernels, chosen to need no custom ops):

* Up (generator): ``F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)`` before the 3x3
  modulated conv, and for the RGB skip. 2x bilinear with half-pixel centres *is* the official separable
  [1, 3, 3, 1] filter (weights 3/4 and 1/4 per axis); only the border differs (edge replication here,
  zero padding there). The official layer instead runs a transposed conv and blurs after it; upsampling first
  costs 4x the multiply-adds of the conv at the lower resolution, which is irrelevant at the sizes tested here
  and simpler to read.
* Down (discriminator): as the official code, a normalised [1, 3, 3, 1] x [1, 3, 3, 1] blur then a stride-2
  conv (3x3 convs: pad 2, blur, valid stride-2 conv; the 1x1 skip: blur with stride 2 and pad 1, then 1x1).

Initialisation is part of the method (N(0, 1) weights, zero biases, style biases 1): never apply the classic
``init_weights`` N(0, 0.02) to these networks (the builders in ``gan_translate.nn`` skip it, see
``classic_init``). There is no ``tanh`` on the generator's output, as in StyleGAN2: images are roughly in
[-1, 1] and are clamped where they are turned into pictures.

State dict keys are those of the single module this package was split from: old checkpoints load unchanged.
"""

from __future__ import annotations

from gan_translate.nn.stylegan2.discriminator import Blur, DiscriminatorBlock, MinibatchStdDev, StyleGAN2Discriminator
from gan_translate.nn.stylegan2.equalised import NOISE_MODES, STYLEGAN2_RESOLUTIONS, EqualConv2d, EqualLinear, stylegan2_channels
from gan_translate.nn.stylegan2.generator import (
    NoiseInjection,
    StyleGAN2Generator,
    StyleLayer,
    SynthesisNetwork,
    ToRGB,
    TruncatedSampler,
)
from gan_translate.nn.stylegan2.mapping import MappingNetwork
from gan_translate.nn.stylegan2.modulated import ModulatedConv2d, unfuse_modulated_convs, upsample2x

#: The name the exports' own unfused copy imported before it moved into :mod:`.modulated` (kept importable).
_upsample2x = upsample2x

__all__ = [
    "STYLEGAN2_RESOLUTIONS",
    "NOISE_MODES",
    "EqualLinear",
    "EqualConv2d",
    "MappingNetwork",
    "ModulatedConv2d",
    "NoiseInjection",
    "StyleLayer",
    "ToRGB",
    "SynthesisNetwork",
    "StyleGAN2Generator",
    "TruncatedSampler",
    "MinibatchStdDev",
    "Blur",
    "DiscriminatorBlock",
    "StyleGAN2Discriminator",
    "stylegan2_channels",
    "unfuse_modulated_convs",
    "upsample2x",
]
