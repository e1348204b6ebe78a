"""The classic CycleGAN / pix2pix generator ``state_dict`` layout, mapped onto this package's networks.

The classic project (junyanz/pytorch-CycleGAN-and-pix2pix) names its generator weights after its module tree:

* ResNet: one ``nn.Sequential`` called ``model``; residual blocks hold theirs in ``conv_block``
  (``model.10.conv_block.1.weight``). Our :class:`~gan_translate.nn.resnet.ResnetGenerator` has the same
  ``model`` indices (same layer order) and calls the block's sequence ``block``; with dropout both insert an
  ``nn.Dropout`` after the block's ReLU (the second convolution moves from index 5 to 6 in both).
* U-Net: recursive blocks, each a ``model`` sequence holding the next block (``model.model.1.model.3.model.1``).
  Our :class:`~gan_translate.nn.unet.UnetGenerator` computes the same function with flat ``downs`` / ``ups``
  lists, so level ``L`` of the recursion is ``downs[L]`` and ``ups[num_downs - 1 - L]``.

Everything here is pure (tensors and names, no files): :mod:`gan_translate.artifacts.classic` reads the file.
Mistakes are one-line :class:`~gan_translate.core.errors.CheckpointError`\\ s naming the first key at fault and, when
the keys show which classic architecture the file holds, the flags that would read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from gan_translate.core.errors import CheckpointError
from gan_translate.nn.resnet import ResnetBlock, ResnetGenerator
from gan_translate.nn.unet import UnetGenerator

__all__ = [
    "CLASSIC_ARCHS",
    "CLASSIC_NORMS",
    "ClassicLayout",
    "classic_network_args",
    "classic_state_keys",
    "detect_classic_layout",
    "map_classic_state",
    "strip_legacy_keys",
]

#: The classic ``--netG`` names this mapping reads (the layouts of our GENERATORS of the same names).
CLASSIC_ARCHS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
#: Classic ``--norm`` values: "none" is left out, since there the classic code drops the convolution biases
#: (its bias rule is "instance norm only") while ours keeps them, so the layouts differ.
CLASSIC_NORMS = ("instance", "batch")
_RESNET_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
_UNET_DOWNS = {"unet_256": 8, "unet_128": 7}
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class ClassicLayout:
    """What a classic file's key names reveal: its architecture, norm, and (ResNet only) dropout."""

    arch: str
    norm: str
    dropout: bool | None  # None: the keys cannot tell (a U-Net's dropout layers hold no tensors)

    def flags(self) -> str:
        """The ``import-classic`` flags for this layout."""
        dropout = "" if self.dropout is None else (" --dropout" if self.dropout else " --no-dropout")
        return f"--arch {self.arch} --norm {self.norm}{dropout}"


def strip_legacy_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """``state`` without a DataParallel ``module.`` prefix and without the running statistics of instance norms.

    Files saved by old PyTorch versions hold ``running_mean`` / ``running_var`` / ``num_batches_tracked`` buffers
    for InstanceNorm layers that track nothing; the classic loader deletes them before its strict load
    (``__patch_instance_norm_state_dict``). A classic norm without a ``weight`` is such an instance norm (the
    classic batch norm is always affine), which identifies them without building the network first, so even a
    file read with the wrong ``--arch`` is cleaned the same way. Returns the new dict and how many keys it dropped.
    """
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    kept: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in _NORM_BUFFERS and f"{prefix}.weight" not in state:
            continue
        kept[key] = value
    return kept, len(state) - len(kept)


def _resnet_module_map(net: ResnetGenerator) -> dict[str, str]:
    if net.size_multiple != 4 or any(type(m).__name__.startswith("Blur") for m in net.modules()):
        raise ValueError("only the classic ResNet (2 plain downsamplings) has a classic key layout")
    mapping: dict[str, str] = {}
    for index, layer in enumerate(net.model):
        if isinstance(layer, ResnetBlock):
            for inner, sub in enumerate(layer.block):
                if isinstance(sub, nn.ReflectionPad2d | nn.ReplicationPad2d | nn.ReLU | nn.Dropout):
                    continue
                mapping[f"model.{index}.block.{inner}"] = f"model.{index}.conv_block.{inner}"
        else:
            mapping[f"model.{index}"] = f"model.{index}"
    return mapping


def _unet_level_prefix(level: int) -> str:
    """The classic module path of U-Net recursion level ``level`` (0: outermost)."""
    return "model" if level == 0 else "model.model.1" + ".model.3" * (level - 1)


def _unet_module_map(net: UnetGenerator) -> dict[str, str]:
    n = len(net.downs)
    mapping = {"downs.0.0": "model.model.0", f"ups.{n - 1}.1": "model.model.3"}
    for level in range(1, n):
        prefix, up = f"{_unet_level_prefix(level)}.model", n - 1 - level
        if level == n - 1:  # innermost: LeakyReLU, down conv, ReLU, up conv, up norm
            mapping.update({f"downs.{level}.0": f"{prefix}.1", f"ups.{up}.1": f"{prefix}.3", f"ups.{up}.2": f"{prefix}.4"})
        else:  # LeakyReLU, down conv, down norm, the next level, ReLU, up conv, up norm[, Dropout]
            mapping.update({f"downs.{level}.0": f"{prefix}.1", f"downs.{level}.1": f"{prefix}.2",
                            f"ups.{up}.1": f"{prefix}.5", f"ups.{up}.2": f"{prefix}.6"})
    return mapping


def classic_state_keys(network: nn.Module) -> dict[str, str]:
    """``{our state_dict key: the classic file's key}`` for every tensor of ``network`` (a classic-shaped
    ResnetGenerator or UnetGenerator), in ``network.state_dict()`` order."""
    if isinstance(network, ResnetGenerator):
        modules = _resnet_module_map(network)
    elif isinstance(network, UnetGenerator):
        modules = _unet_module_map(network)
    else:
        raise TypeError(f"no classic key layout for {type(network).__name__}")
    keys: dict[str, str] = {}
    for key in network.state_dict():
        path, _, leaf = key.rpartition(".")
        keys[key] = f"{modules[path]}.{leaf}"
    return keys


def detect_classic_layout(keys: set[str] | list[str]) -> ClassicLayout | None:
    """The classic architecture whose key names ``keys`` (legacy keys stripped) are, or None if none fits."""
    keys = set(keys)
    blocks = {int(m.group(1)) for k in keys if (m := re.fullmatch(r"model\.(\d+)\.conv_block\.\d+\.\w+", k))}
    if blocks and "model.1.weight" in keys:
        arch = {9: "resnet_9blocks", 6: "resnet_6blocks"}.get(len(blocks), f"resnet (n_blocks={len(blocks)})")
        norm = "batch" if "model.2.weight" in keys else "instance"
        # Without dropout a block's second convolution is conv_block.5; with it, index 5 is the padding before it.
        dropout = not any(re.fullmatch(r"model\.\d+\.conv_block\.5\.weight", k) for k in keys)
        return ClassicLayout(arch, norm, dropout)
    if "model.model.0.weight" in keys:
        # Depth of the deepest key: the recursion levels are the "model.1" / "model.3" steps before the leaf layer.
        depth = max((len(k.split(".")) - 4) // 2 for k in keys if k.startswith("model.model."))
        downs = depth + 1
        arch = {8: "unet_256", 7: "unet_128"}.get(downs, f"unet (num_downs={downs})")
        norm = "batch" if "model.model.1.model.2.weight" in keys else "instance"
        return ClassicLayout(arch, norm, None)
    return None


def classic_network_args(state: dict[str, torch.Tensor], arch: str, source: str) -> dict[str, int]:
    """``in_channels``, ``out_channels`` and ``ngf`` of the classic ``arch`` network that ``state`` holds.

    They are read from the first and last convolutions (``[out, in, k, k]``; a transposed one is ``[in, out, k, k]``),
    so a 1-channel colourisation model or a narrow network imports as well as the zoo's 3 -> 3, ngf 64 ones.
    """
    if arch in _RESNET_BLOCKS:
        first, last, last_transposed = "model.1.weight", f"model.{17 + _RESNET_BLOCKS[arch]}.weight", False
    elif arch in _UNET_DOWNS:
        first, last, last_transposed = "model.model.0.weight", "model.model.3.weight", True
    else:
        raise CheckpointError(f"unknown classic architecture {arch!r}; valid: {', '.join(CLASSIC_ARCHS)}")
    for key in (first, last):
        if key not in state or state[key].dim() != 4:
            raise CheckpointError(f"{source} is not a classic {arch} generator: no 4-d tensor {key!r}{_hint(state, arch)}")
    ngf, in_channels = state[first].shape[:2]
    out_channels = state[last].shape[1] if last_transposed else state[last].shape[0]
    return {"in_channels": int(in_channels), "out_channels": int(out_channels), "ngf": int(ngf)}


def _hint(state: dict[str, torch.Tensor], arch: str, norm: str | None = None, dropout: bool | None = None) -> str:
    """'; it looks like --arch X ...' when the keys match another classic layout than the one asked for."""
    found = detect_classic_layout(list(state))
    if found is None:
        return "; its keys match no classic generator layout (resnet_9blocks, resnet_6blocks, unet_256, unet_128)"
    asked = ClassicLayout(arch, norm or found.norm, found.dropout if dropout is None or found.dropout is None else dropout)
    return "" if found == asked else f"; its keys look like {found.flags()}"


def map_classic_state(
    state: dict[str, torch.Tensor], network: nn.Module, source: str, arch: str, norm: str, dropout: bool
) -> dict[str, torch.Tensor]:
    """``state`` (a classic generator's tensors, legacy keys stripped) renamed to ``network``'s keys, checked.

    Every tensor ``network`` has must be in ``state`` with the same shape, and nothing may be left over; the first
    key that is not is named in a one-line CheckpointError (with ``source``, the file, and the flags the keys
    suggest). A batch norm's ``num_batches_tracked`` absent from files older than PyTorch 0.4.1 is taken as 0,
    as PyTorch's own loader does: inference never reads it.
    """
    ours = network.state_dict()
    wanted = f"--arch {arch} --norm {norm}{' --dropout' if dropout else ''}"
    mapped: dict[str, torch.Tensor] = {}
    names = classic_state_keys(network)
    for key, classic in names.items():
        if classic not in state:
            if classic.endswith(".num_batches_tracked"):
                mapped[key] = torch.zeros_like(ours[key])
                continue
            raise CheckpointError(
                f"{source}: no tensor {classic!r}, which {wanted} needs{_hint(state, arch, norm, dropout)}"
            )
        value = state[classic]
        if tuple(value.shape) != tuple(ours[key].shape):
            raise CheckpointError(
                f"{source}: {classic!r} has shape {list(value.shape)} but {wanted} expects {list(ours[key].shape)}"
                f"{_hint(state, arch, norm, dropout)}"
            )
        mapped[key] = value.to(ours[key].dtype)
    expected = set(names.values())
    left = [key for key in state if key not in expected]
    if left:
        raise CheckpointError(
            f"{source}: unexpected tensor {left[0]!r} ({len(left)} left over) for {wanted}{_hint(state, arch, norm, dropout)}"
        )
    return mapped
