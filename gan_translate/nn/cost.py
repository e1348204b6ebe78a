"""What a network costs, counted rather than computed by hand: multiply-accumulates and parameters.

``count_macs`` runs the network once under torch's ``FlopCounterMode`` (which counts the FLOPs of matrix products
and convolutions, transposed ones included, as 2 per multiply-add) and halves the total. Norms, activations, padding
and additions are not counted, so the ResNet-9 teacher (ngf 64, 256 px) comes to 49.6 G MACs here against the
56.8 G GAN Compression's profiler reports (/work/shared/REFERENCE.md, issue 28): compare networks counted one way.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gan_translate.core.errors import UserError

__all__ = ["count_macs", "count_params"]


def count_macs(network: nn.Module, input_size: Sequence[int], meta: bool = True) -> int:
    """Multiply-accumulates of one ``network(x)`` for ``x`` of shape ``input_size`` (N, C, H, W: the batch counts).

    With ``meta`` (the default) a copy of the network runs on the ``meta`` device: shapes only, no arithmetic, no
    memory for activations, so a 256 px ResNet-9 is counted in well under a second. ``meta=False`` runs the network
    itself on a zero tensor on its own device (for a network with an operation meta tensors do not support).
    """
    shape = tuple(int(s) for s in input_size)
    if len(shape) < 1 or any(s <= 0 for s in shape):
        raise UserError(f"count_macs input_size must be positive sizes (N, C, H, W), got {list(input_size)}")
    if meta:
        net = copy.deepcopy(network).to("meta")
        x = torch.zeros(shape, device="meta")
    else:
        net = network
        first = next(network.parameters(), None)
        x = torch.zeros(shape, device=first.device if first is not None else "cpu")
    was_training = net.training
    net.eval()  # dropout and batch-norm statistics change no counts, but eval touches no buffers
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
    finally:
        net.train(was_training)
    return counter.get_total_flops() // 2


def count_params(network: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters in ``network`` (only those that require a gradient with ``trainable_only``)."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad or not trainable_only)
