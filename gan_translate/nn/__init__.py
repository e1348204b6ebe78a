"""Networks as pure ``nn.Module``s, built by name: ``build_generator("resnet_9blocks", ngf=64)``.

The builders check every keyword against the network they build (an unexpected or contradicting
one is a :class:`~gan_translate.core.errors.UserError`, never silently ignored) and initialise the
weights the classic way (``init_weights``, normal 0.02 unless ``init_type`` / ``init_gain`` say
otherwise), except for networks whose class sets ``classic_init = False`` (StyleGAN2: equalised
learning rate is defined by its own N(0, 1) init, so they keep it and refuse ``init_type`` / ``init_gain``).
This package imports only torch, so checkpoints and tools can use it without Lightning.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.core.registry import Registry
from gan_translate.nn.dcgan import DCGAN_IMAGE_SIZES, DCGANDiscriminator, DCGANGenerator
from gan_translate.nn.layers import INITS, NORMS, init_weights, norm_layer, uses_bias
from gan_translate.nn.patchgan import PatchDiscriminator, PixelDiscriminator
from gan_translate.nn.resnet import PADDINGS, ResnetGenerator
from gan_translate.nn.student import (
    H2Z_STUDENT_BLOCK_CHANNELS,
    H2Z_STUDENT_CHANNELS,
    NARROW_RESNETS,
    MobileResnetGenerator,
)
from gan_translate.nn.stylegan2 import (
    STYLEGAN2_RESOLUTIONS,
    MappingNetwork,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    SynthesisNetwork,
)
from gan_translate.nn.unet import UnetGenerator

__all__ = [
    "GENERATORS",
    "DISCRIMINATORS",
    "build_generator",
    "build_discriminator",
    "ResnetGenerator",
    "MobileResnetGenerator",
    "UnetGenerator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "DCGAN_IMAGE_SIZES",
    "StyleGAN2Generator",
    "StyleGAN2Discriminator",
    "MappingNetwork",
    "SynthesisNetwork",
    "STYLEGAN2_RESOLUTIONS",
    "NORMS",
    "INITS",
    "PADDINGS",
    "norm_layer",
    "uses_bias",
    "init_weights",
]

Builder = Callable[..., nn.Module]

GENERATORS: Registry[Builder] = Registry("generator")
DISCRIMINATORS: Registry[Builder] = Registry("discriminator")


def _fixed(cls: type[nn.Module], kind: str, name: str, base: str, **fixed: Any) -> Builder:
    """A builder of ``cls`` with some arguments pinned by the name (e.g. resnet_9blocks: n_blocks=9).

    Passing a pinned argument with the same value is allowed (configs often spell it out); another
    value contradicts the name and is refused rather than one of the two silently winning.
    """

    def build(**kwargs: Any) -> nn.Module:
        for key, value in fixed.items():
            if key in kwargs and kwargs[key] != value:
                raise UserError(
                    f"{kind} {name!r} has {key}={value!r}, got {key}={kwargs[key]!r}; use {base!r} to choose {key}"
                )
            kwargs[key] = value
        return cls(**kwargs)

    build.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]  # for the kwarg check
    build.__name__ = name
    build.takes_ngf = getattr(cls, "takes_ngf", True)  # type: ignore[attr-defined]
    return build


GENERATORS.register("resnet")(ResnetGenerator)
GENERATORS.register("resnet_9blocks")(_fixed(ResnetGenerator, "generator", "resnet_9blocks", "resnet", n_blocks=9))
GENERATORS.register("resnet_6blocks")(_fixed(ResnetGenerator, "generator", "resnet_6blocks", "resnet", n_blocks=6))
# issue 28's students: GAN Compression's mobile ResNet (any widths; its horse2zebra student pinned) and plain narrow
# ResNets (only ResnetGenerator arguments, so presets of "resnet")
GENERATORS.register("mobile_resnet")(MobileResnetGenerator)
GENERATORS.register("mobile_resnet_h2z")(
    _fixed(MobileResnetGenerator, "generator", "mobile_resnet_h2z", "mobile_resnet", n_blocks=9,
           channels=list(H2Z_STUDENT_CHANNELS), block_channels=list(H2Z_STUDENT_BLOCK_CHANNELS))
)
for _name, _pinned in NARROW_RESNETS.items():
    GENERATORS.register(_name)(_fixed(ResnetGenerator, "generator", _name, "resnet", **_pinned))
GENERATORS.register("unet")(UnetGenerator)
GENERATORS.register("unet_256")(_fixed(UnetGenerator, "generator", "unet_256", "unet", num_downs=8))
GENERATORS.register("unet_128")(_fixed(UnetGenerator, "generator", "unet_128", "unet", num_downs=7))
GENERATORS.register("dcgan")(DCGANGenerator)
GENERATORS.register("stylegan2")(StyleGAN2Generator)

DISCRIMINATORS.register("patchgan")(PatchDiscriminator)
DISCRIMINATORS.register("basic")(_fixed(PatchDiscriminator, "discriminator", "basic", "patchgan", n_layers=3))
DISCRIMINATORS.register("pixel")(PixelDiscriminator)
DISCRIMINATORS.register("dcgan")(DCGANDiscriminator)
DISCRIMINATORS.register("stylegan2")(StyleGAN2Discriminator)


def _build(registry: Registry[Builder], name: str, kwargs: dict[str, Any]) -> nn.Module:
    builder = registry.get(name)  # unknown name -> UserError listing the valid ones
    # A network with its own init (StyleGAN2's equalised learning rate needs N(0, 1) weights) keeps it:
    # the classic options would silently break it, so they are unexpected arguments there.
    classic_init = getattr(builder, "classic_init", True)
    init_options = ["init_type", "init_gain"] if classic_init else []
    init_type = kwargs.pop("init_type", "normal") if classic_init else "normal"
    init_gain = kwargs.pop("init_gain", 0.02) if classic_init else 0.02
    if not getattr(builder, "takes_ngf", True):
        # Widths per stage (mobile_resnet's channels): the models' one-number width option does not apply.
        kwargs.pop("ngf", None)
    accepted = [p for p in inspect.signature(builder).parameters if p != "self"]
    unexpected = sorted(set(kwargs) - set(accepted))
    if unexpected:
        raise UserError(
            f"{registry.kind} {name!r} got unexpected argument(s) {', '.join(unexpected)}; "
            f"it accepts: {', '.join(accepted + init_options)}"
        )
    if not classic_init:
        return builder(**kwargs)
    INITS.get(init_type)  # check before building a possibly large network
    return init_weights(builder(**kwargs), init_type, init_gain)


def build_generator(name: str, **kwargs: Any) -> nn.Module:
    """Build the generator ``name`` from GENERATORS with ``kwargs`` and initialise its weights."""
    return _build(GENERATORS, name, kwargs)


def build_discriminator(name: str, **kwargs: Any) -> nn.Module:
    """Build the discriminator ``name`` from DISCRIMINATORS with ``kwargs`` and initialise its weights."""
    return _build(DISCRIMINATORS, name, kwargs)
