"""Pictures from an unconditional generator (DCGAN, StyleGAN2): samples, interpolations, style-mixing grids, walks.

Everything takes latents drawn up front on the CPU from a seeded ``torch.Generator``, and the model's ``decode``
(the EMA generator for StyleGAN2, eval-mode BatchNorm for DCGAN), so a seed gives the same pictures whatever the
batch size or device. StyleGAN2's extras (truncation ``psi``, style mixing) are refused in one line for models
whose ``sampler_spec`` (:class:`~gan_translate.models.capabilities.SamplerSpec`) does not declare them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_translate.core.errors import UserError
from gan_translate.core.grids import make_grid
from gan_translate.core.images import tensor_to_uint8

__all__ = ["Decoder", "check_mixing", "decoder_for", "latent_walk", "mixing_grid_picture", "slerp"]


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latent batches ``a`` and ``b`` (N, D) at fractions ``t`` (T,) -> (N, T, D).

    Why not a straight line: a D-dimensional standard normal vector has norm ~sqrt(D) with very little
    spread, so the generator was only ever trained on that thin shell. The midpoint of two independent
    latents has norm ~sqrt(D/2) (about 0.7x): linear paths dip inside the shell, where images turn grey
    and washed out. Slerp follows the great circle, keeping the norm near sqrt(D) all the way (White 2016,
    "Sampling Generative Networks").
    """
    a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1.0, 1.0))[:, None, None]  # (N, 1, 1)
    t = t[None, :, None]  # (1, T, 1)
    sin_omega = torch.sin(omega)
    linear = (1 - t) * a[:, None] + t * b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin_omega.clamp_min(1e-12)
    # Nearly parallel endpoints: slerp's formula is 0/0 there, and the line is the same path anyway.
    return torch.where(sin_omega.abs() < 1e-6, linear, spherical)


class Decoder:
    """``decoder(z) -> images`` (N, C, H, W) in [-1, 1] on the CPU: the model's ``decode`` with the truncation asked for."""

    def __init__(self, model: Any, batch_size: int, psi: float = 1.0, truncation_cutoff: int | None = None) -> None:
        self.model, self.batch_size = model, batch_size
        self.options: dict[str, Any] = {}
        if psi != 1.0 or truncation_cutoff is not None:
            self.options = {"psi": psi, "truncation_cutoff": truncation_cutoff}

    def __call__(self, z: Tensor) -> Tensor:
        return self.model.decode(z, batch_size=self.batch_size, **self.options).float().cpu()


def decoder_for(model: Any, batch_size: int, psi: float = 1.0, truncation_cutoff: int | None = None) -> Decoder:
    """The :class:`Decoder` of ``model``; truncation on a model whose ``sampler_spec`` has none is a UserError."""
    if (psi != 1.0 or truncation_cutoff is not None) and not model.sampler_spec.truncation:
        raise UserError(f"--truncation needs a StyleGAN2 checkpoint; {model.model_name} has no mapping network to truncate")
    if not 0.0 <= psi <= 2.0:
        raise UserError(f"--truncation psi must be between 0 and 2 (1: off, 0.5-0.7: the usual trade-off), got {psi}")
    return Decoder(model, batch_size, psi, truncation_cutoff)


def check_mixing(model: Any, rows: int, columns: int, crossover: int | None) -> None:
    """One line when ``model`` cannot draw a ``rows x columns`` mixing grid at ``crossover`` (before any work)."""
    spec = model.sampler_spec
    if not spec.style_mixing:
        raise UserError(f"--mixing-grid needs a StyleGAN2 checkpoint; {model.model_name} has one latent for all layers")
    if rows < 1 or columns < 1:
        raise UserError(f"--mixing-grid needs at least 1x1 sources, got {rows}x{columns}")
    n_styles = spec.style_layers
    if crossover is not None and not 1 <= crossover < n_styles:
        raise UserError(f"--mixing-crossover must be between 1 and {n_styles - 1} for this {n_styles}-style generator, got {crossover}")


def mixing_grid_picture(model: Any, rows: int, columns: int, rng: torch.Generator, crossover: int | None = None,
                        psi: float = 1.0, batch_size: int = 64) -> np.ndarray:
    """The StyleGAN paper's style-mixing figure: the top row shows ``columns`` source images, the left column
    ``rows`` others; image ``(i, j)`` takes its coarse styles (layers ``< crossover``: pose, shape) from row ``i``'s
    source and the rest (colours, texture) from column ``j``'s."""
    check_mixing(model, rows, columns, crossover)
    options = {} if crossover is None else {"crossover": crossover}
    row_z, column_z = model.latents(rows, rng), model.latents(columns, rng)
    decode = decoder_for(model, batch_size, psi)
    row_images, column_images = decode(row_z), decode(column_z)
    mixed = model.mixing_grid(row_z, column_z, psi=psi, batch_size=batch_size, **options).float().cpu()
    blank = torch.ones_like(row_images[:1])  # the corner: white
    cells = [torch.cat([blank, column_images])]
    cells += [torch.cat([row_images[i : i + 1], mixed[i]]) for i in range(rows)]
    return make_grid(tensor_to_uint8(torch.cat(cells)), columns=columns + 1)


def latent_walk(decode: Decoder, draw: Callable[[int, torch.Generator], Tensor], count: int, keyframes: int, steps: int,
                rng: torch.Generator) -> Iterator[np.ndarray]:
    """Frames of a looping walk: ``count`` images (one grid per frame), each travelling along great circles
    (:func:`slerp`) through ``keyframes`` latents (``draw(count, rng)`` each: the model's ``latents``) and back to
    its first, ``steps`` frames per leg."""
    if keyframes < 2 or steps < 1:
        raise UserError(f"an animation needs at least 2 key latents and 1 step per leg, got {keyframes} and {steps}")
    keys = torch.stack([draw(count, rng) for _ in range(keyframes)])  # drawn up front: the walk is one seed's
    fractions = torch.arange(steps, dtype=torch.float32) / steps  # the end of a leg is the next leg's start
    for leg in range(keyframes):
        path = slerp(keys[leg], keys[(leg + 1) % keyframes], fractions)  # (count, steps, D)
        for step in range(steps):
            yield make_grid(tensor_to_uint8(decode(path[:, step])), square=True)
