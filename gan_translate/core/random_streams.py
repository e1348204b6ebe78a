"""Per-process random streams for distributed training: every DDP rank draws its own noise, reproducibly.

``seed_everything`` (and a resumed run's restored random state) is the same on every process, so without this
each rank would draw the same latents, dropout masks and pool choices: under DDP an effective batch of N x b
fakes would hold each fake N times. Rank 0 keeps its stream, so a one-process run is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["RANK_SEED_STRIDE", "rank_seed", "reseed_generator_for_rank", "split_rank_random_streams"]

#: Seeds of different ranks are this far apart (a prime), here and in the data streams.
RANK_SEED_STRIDE = 1_000_003


def rank_seed(seed: int, rank: int) -> int:
    """The seed rank ``rank`` uses for a stream whose rank-0 seed is ``seed``."""
    return seed + RANK_SEED_STRIDE * rank


def _derived_seed(state: Tensor, rank: int) -> int:
    """A seed from a generator state and a rank, without advancing the generator the state came from."""
    generator = torch.Generator()
    generator.set_state(state)
    return rank_seed(int(torch.randint(0, 2**62, (), generator=generator)), rank) % 2**63


def split_rank_random_streams(rank: int) -> int | None:
    """Give process ``rank`` > 0 its own global torch random stream (dropout masks, DCGAN latents, ...).

    Rank r reseeds from its current state and its rank, so runs stay reproducible. Returns the new seed (None on
    rank 0, which keeps its stream).
    """
    if rank <= 0:
        return None
    seed = _derived_seed(torch.get_rng_state(), rank)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def reseed_generator_for_rank(generator: torch.Generator, rank: int) -> None:
    """Fold ``rank`` into a private generator (e.g. an image pool's) in place; rank 0 keeps its state."""
    if rank > 0:
        generator.manual_seed(_derived_seed(generator.get_state(), rank))
