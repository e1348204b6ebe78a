"""CUT's feature sampler: the same random locations taken from every feature map, projected by a small MLP per
layer and L2-normalised (Park et al. 2020, section 3.2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchSampleMLP"]


class PatchSampleMLP(nn.Module):
    """One head per feature layer: ``Linear(C_l, channels) -> ReLU -> Linear(channels, channels)``.

    Built from the layers' channel counts (``ResnetGenerator.feature_channels``), not from a first batch, so the
    heads exist when the optimisers are made, are in every checkpoint, and rebuild from the hyperparameters.

    Args:
        in_channels: channels of each feature layer, in order.
        channels: width of every head (CUT: 256); 0 uses no head (features only sampled and normalised).
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, channels), nn.ReLU(), nn.Linear(channels, channels)) if channels > 0 else nn.Identity()
            for c in in_channels
        )

    @staticmethod
    def sample_locations(features: Sequence[torch.Tensor], num_patches: int) -> list[torch.Tensor]:
        """For each feature map, ``num_patches`` distinct positions of its ``H x W`` (all of them when it has fewer),
        drawn from the global torch generator on the CPU (seeded, restored on resume, per-rank under DDP)."""
        locations = []
        for feature in features:
            positions = feature.shape[2] * feature.shape[3]
            chosen = torch.randperm(positions)[: min(num_patches, positions)]
            locations.append(chosen.to(feature.device))
        return locations

    def forward(self, features: Sequence[torch.Tensor], locations: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The features at ``locations`` of every image, ``(N * P_l, channels)`` per layer, L2-normalised."""
        projected = []
        for feature, where, head in zip(features, locations, self.heads):
            flat = feature.flatten(2).transpose(1, 2)  # (N, H*W, C)
            picked = flat[:, where, :].flatten(0, 1)  # (N * P, C): image-major, the same positions in each image
            projected.append(F.normalize(head(picked), dim=1, eps=1e-7))
        return projected
