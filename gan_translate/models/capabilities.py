"""What a model can be asked to do outside training, and which command does it (for refusal messages); what a
sampler is (:class:`SamplerSpec`); what a translator's standalone export runs (:class:`TranslatorProgram`).

Apart from the registry and :class:`~gan_translate.models.base.GANModule` so that both can use it: the model base
class names a model's use when it refuses a job, the registry lists the models that can do one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from torch import nn

__all__ = ["CAPABILITY_USES", "Capability", "ProgramInput", "SamplerSpec", "TranslatorProgram", "capability_use"]

#: ``translate`` images (``translators``), ``sample`` new ones, or ``stylize`` a content image with style images
#: (``stylize(content, styles, weights, alpha)``).
Capability = Literal["translate", "sample", "stylize"]

#: capability -> (what a model with it does, the command that does it): the hint when a file is used for the wrong job.
CAPABILITY_USES: dict[str, tuple[str, str]] = {
    "translate": ("translates images", "gan-translate translate"),
    "sample": ("generates images", "gan-translate generate"),
    "stylize": ("stylises images", "gan-translate stylize --method adain"),
}


def capability_use(capabilities: Iterable[str]) -> str:
    """``"generates images: use `gan-translate generate`"``: what a model with ``capabilities`` is for."""
    uses = [CAPABILITY_USES[c] for c in sorted(capabilities) if c in CAPABILITY_USES]
    return "; ".join(f"{does}: use `{command}`" for does, command in uses)


@dataclass(frozen=True)
class SamplerSpec:
    """What a sampling model is, as it declares it (``model.sampler_spec``): what ``generate``, ``serve`` and the
    exports read instead of probing hyperparameter names, attributes or signatures (stylegan3's generators carry
    their ``z_dim`` the same way).

    ``decode(z)`` maps ``(N, latent_dim)`` latents to ``(N, channels, resolution, resolution)`` images in [-1, 1];
    ``export_program()`` is the module a standalone export traces.
    """

    latent_dim: int
    """Size of a latent vector (DCGAN's ``latent_dim``, StyleGAN2's ``z_dim``)."""
    network: str
    """The attribute of the network ``decode`` runs, the one an export keeps (``generator``; StyleGAN2's
    ``generator_ema``)."""
    resolution: int
    channels: int
    truncation: bool = False
    """Whether ``decode`` takes ``psi`` / ``truncation_cutoff`` (a mapping network with a ``w_avg``), and the
    export program a second input ``psi``."""
    style_mixing: bool = False
    """Whether the model draws style-mixing grids (``mixing_grid``)."""
    style_layers: int = 0
    """How many per-layer styles a mixing crossover chooses among (StyleGAN2's ``n_styles``; 0 without mixing)."""
    constant_noise: bool = False
    """Whether ``decode`` uses noise maps stored with the weights (so an image is a function of its latent alone)."""


@dataclass(frozen=True)
class ProgramInput:
    """An input of a translator's export program besides the image (UNSB's bridge ``latents`` and ``noise``).

    ``shape``: ints are fixed sizes; ``"height"`` / ``"width"`` are the padded image's sides (the image's, rounded up
    to the network's size multiple: what the program runs at)."""

    name: str
    shape: tuple[int | str, ...]
    description: str
    """What to feed, for the file's metadata (e.g. standard normal values, and how to get ``translate``'s)."""


@dataclass(frozen=True)
class TranslatorProgram:
    """What a standalone (ONNX / TorchScript) export of one direction runs, as the model declares it
    (``model.translator_export_program(direction)``): ``network(image, *inputs)`` on images whose sides are
    multiples of its ``size_multiple``, returning the translation in [-1, 1]. Most translators: the eval-mode
    generator and no ``inputs``; UNSB: its bridge, the noise as inputs (the file keeps no random generator)."""

    network: nn.Module
    inputs: tuple[ProgramInput, ...] = ()
