"""The mapping network z -> w and the centre of the truncation trick (``w_avg``)."""

from __future__ import annotations

import torch
from torch import nn

from gan_translate.core.errors import UserError
from gan_translate.nn.stylegan2.equalised import EqualLinear

__all__ = ["MappingNetwork"]


def _normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm of z: divide by the root mean square over features, so z lies near a sphere of radius
    sqrt(z_dim) whatever its scale."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``n_layers`` :class:`EqualLinear` + leaky ReLU layers (lr_mul 0.01).

    ``w_avg`` (a buffer, so it is saved and moved with the module but never optimised) is the centre of the
    truncation trick. It is *not* updated in ``forward``: the training step calls :meth:`update_w_avg` on
    the w it generated, so inference and evaluation passes never move it.
    """

    def __init__(self, z_dim: int = 512, w_dim: int = 512, n_layers: int = 8, lr_mul: float = 0.01) -> None:
        super().__init__()
        if n_layers < 1:
            raise UserError(f"the mapping network needs at least one layer, got n_layers={n_layers}")
        self.z_dim = z_dim
        self.w_dim = w_dim
        features = [z_dim] + [w_dim] * n_layers
        self.layers = nn.Sequential(
            *(EqualLinear(f_in, f_out, lr_mul=lr_mul, activation="lrelu") for f_in, f_out in zip(features[:-1], features[1:]))
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg: torch.Tensor

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork expects z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.layers(_normalize_2nd_moment(z))

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float = 0.995) -> None:
        """Move ``w_avg`` towards the batch mean of ``w``: ``w_avg = beta * w_avg + (1 - beta) * mean(w)``.

        ``w`` is ``(N, w_dim)`` or per-layer ``(N, n_styles, w_dim)`` (all its vectors are averaged).
        """
        if w.shape[-1] != self.w_dim:
            raise ValueError(f"update_w_avg expects w with {self.w_dim} features, got {tuple(w.shape)}")
        mean = w.detach().reshape(-1, self.w_dim).mean(0).to(self.w_avg.dtype)
        self.w_avg.copy_(mean.lerp(self.w_avg, beta))

    def truncate(self, w: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """The truncation trick: ``w_avg + psi * (w - w_avg)``.

        psi = 1 returns ``w`` unchanged, psi = 0 the average w (the "mean face"). ``w`` is ``(N, w_dim)``
        (every layer then gets the same truncated w) or per-layer ``(N, n_styles, w_dim)``; with ``cutoff`` only
        the first ``cutoff`` style layers (the coarse ones) are truncated, which needs the per-layer form.
        """
        if cutoff is not None and w.dim() != 3:
            raise UserError("truncation_cutoff needs per-layer w of shape (N, n_styles, w_dim); "
                            f"got {tuple(w.shape)} (use StyleGAN2Generator.broadcast)")
        truncated = self.w_avg.to(w.dtype).lerp(w, psi)
        if cutoff is None:
            return truncated
        if cutoff < 0:
            raise UserError(f"truncation_cutoff must be >= 0, got {cutoff}")
        layer = torch.arange(w.shape[1], device=w.device)[None, :, None]
        return torch.where(layer < cutoff, truncated, w)

