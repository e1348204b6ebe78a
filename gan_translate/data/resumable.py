"""A training data stream that a resumed run replays exactly, mid-epoch included.

The classic loader (``shuffle=True`` plus per-worker reseeding) draws its order and augmentations from random
states that live in the DataLoader's generator and in each worker process: they are lost when a run is killed,
so a resumed run would see different data than an uninterrupted one, and a run resumed mid-epoch would even
repeat the epoch's first batches. Here every choice is a pure function of ``(seed, epoch, position)``:

* :class:`ResumableSampler` yields ``(index, item_seed)`` pairs: the epoch's permutation comes from
  ``(seed, epoch)``, each position's seed from ``(seed, epoch, position)``; under DDP every rank takes every
  ``world_size``-th position of the same permutation. After a resume it skips the batches already trained on.
* :class:`ItemSeededDataset` reseeds the wrapped dataset (its transform, random-B choice, ...) with the item's
  seed before loading it, so augmentations do not depend on which worker loads an item, on the number of
  workers, or on what was loaded before.
* :class:`ResumableDataLoader` exposes the sampler's ``state_dict`` / ``load_state_dict``, which Lightning
  stores in the checkpoint (``loops.fit_loop.state_dict.combined_loader``) and restores before the first batch.

The position recorded is the number of batches the *training step consumed* in the epoch. The loader cannot know
it (Lightning and the workers prefetch batches ahead), so :class:`gan_translate.callbacks.exact_resume.ExactResume` reports it
after every training batch via :func:`mark_consumed`. Without that callback a mid-epoch resume restarts the
epoch's data from its first batch (Lightning's default behaviour).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from gan_translate.core.lightning_compat import set_epoch_batches_done
from gan_translate.data.transforms import seed_dataset

__all__ = ["ItemSeededDataset", "ResumableDataLoader", "ResumableSampler", "align_resumed_epoch", "mark_consumed"]


class ResumableSampler(DistributedSampler):
    """Shuffled ``(index, item_seed)`` pairs from ``(seed, epoch)``; resumable at any batch.

    It subclasses ``DistributedSampler`` only so Lightning keeps it under DDP (it shards by itself with
    ``num_replicas`` / ``rank``) instead of wrapping it in a sampler that would reshuffle it.
    """

    def __init__(
        self, length: int, seed: int = 0, shuffle: bool = True, num_replicas: int = 1, rank: int = 0, drop_last: bool = False
    ) -> None:
        # DistributedSampler.__init__ needs an initialised process group: set its attributes ourselves.
        if length < 1:
            raise ValueError(f"ResumableSampler needs a non-empty dataset, got length {length}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.epoch = 0
        if drop_last and length % num_replicas:
            self.num_samples = length // num_replicas
        else:
            self.num_samples = -(-length // num_replicas)  # ceil: positions wrap around, as DistributedSampler does
        self.total_size = self.num_samples * num_replicas
        self.batches_consumed = 0  # in the current epoch, reported by the training loop (mark_consumed)
        self.batch_size = 1
        self._skip_items = 0
        # Items consumed before the first batch of the loader's size (a resume with another batch size).
        self._item_offset = 0
        self.restored_items = 0  # the restored position of this epoch (kept after the skip has happened)
        self.restored_batch_size = 0

    def __len__(self) -> int:
        # Always the whole epoch: Lightning counts the batches skipped on resume as already seen.
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch (a restored position only holds for its epoch)."""
        if epoch != self.epoch:
            self.batches_consumed = 0
            self._skip_items = 0
            self._item_offset = 0
            self.restored_items = 0
        self.epoch = epoch

    def epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The global ``(order, item_seeds)`` of ``epoch`` (all ranks), a pure function of ``(seed, epoch)``."""
        sequence = np.random.SeedSequence([self.seed & 0xFFFFFFFF, epoch, 0x5EED])
        order_seed, item_seq = sequence.spawn(2)
        if self.shuffle:
            order = np.random.default_rng(order_seed).permutation(self.length)
        else:
            order = np.arange(self.length)
        if self.total_size > self.length:  # pad by wrapping around so every rank gets as many items
            order = np.resize(order, self.total_size)
        order = order[: self.total_size]
        item_seeds = item_seq.generate_state(self.total_size, dtype=np.uint32)
        return order, item_seeds

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, item_seeds = self.epoch_plan(self.epoch)
        positions = range(self.rank, self.total_size, self.num_replicas)
        skip, self._skip_items = self._skip_items, 0
        for position in positions[skip:]:
            yield int(order[position]), int(item_seeds[position])

    # --- resuming ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where the training loop is in the stream (plain ints: safe to read with ``weights_only``)."""
        return {
            "epoch": int(self.epoch),
            "batches_consumed": int(self.batches_consumed),
            "batch_size": int(self.batch_size),
            "items_consumed": int(self.items_consumed),
            "seed": int(self.seed),
            "length": int(self.length),
            "num_replicas": int(self.num_replicas),
        }

    @property
    def items_consumed(self) -> int:
        """Items of the current epoch the training step has consumed (on this rank)."""
        return self.batches_consumed * self.batch_size + self._item_offset

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the saved epoch after its consumed items (a different dataset or world size restarts it).

        With another batch size than the saved run's, ``batches_consumed`` is recounted in the new size (whole
        batches; the remainder is kept as an offset): Lightning's own count of the epoch's batches is aligned to
        it by :func:`align_resumed_epoch`, so the epoch still ends after its last item.
        """
        self.epoch = int(state.get("epoch", 0))
        same_stream = (
            state.get("length") == self.length
            and state.get("num_replicas") == self.num_replicas
            and state.get("seed") == self.seed
        )
        saved_batch_size = int(state.get("batch_size", self.batch_size))
        items = int(state.get("items_consumed", int(state.get("batches_consumed", 0)) * saved_batch_size))
        items = min(items, self.num_samples) if same_stream else 0
        self._skip_items = self.restored_items = items
        self.restored_batch_size = saved_batch_size
        self.batches_consumed, self._item_offset = divmod(items, max(self.batch_size, 1))


def _seedable(dataset: Any) -> bool:
    """Whether :func:`seed_dataset` can reseed ``dataset`` (the framework's datasets all can)."""
    if isinstance(dataset, Subset):
        return _seedable(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return all(_seedable(part) for part in dataset.datasets)
    return callable(getattr(dataset, "set_random_seed", None)) or isinstance(getattr(dataset, "transforms", None), (list, tuple))


class ItemSeededDataset(Dataset[Any]):
    """Wraps a dataset so item ``(index, seed)`` is loaded with all its randomness seeded by ``seed``.

    A dataset :func:`seed_dataset` cannot reseed (no ``set_random_seed``, no list of albumentations
    ``transforms``) is loaded as is: its order still resumes exactly, its own randomness does not.
    """

    def __init__(self, dataset: Dataset[Any]) -> None:
        self.dataset = dataset
        self.seedable = _seedable(dataset)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            index, item_seed = key
            if self.seedable:
                seed_dataset(self.dataset, int(item_seed))
            return self.dataset[index]
        return self.dataset[key]

    def set_random_seed(self, seed: int) -> None:
        """Per-worker reseeding (``seed_worker``) is moot here: every item is seeded on its own."""

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "seedable"):  # not set yet (unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`ResumableSampler` whose position Lightning saves and restores."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.sampler, ResumableSampler) and self.batch_size:
            self.sampler.batch_size = int(self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's position (Lightning calls this when it writes a checkpoint)."""
        return self.sampler.state_dict() if isinstance(self.sampler, ResumableSampler) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position (Lightning calls this before the resumed run's first batch)."""
        if isinstance(self.sampler, ResumableSampler) and state:
            self.sampler.load_state_dict(state)


def _loaders(obj: Any) -> Iterator[Any]:
    if isinstance(obj, DataLoader):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _loaders(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _loaders(value)


def align_resumed_epoch(train_dataloaders: Any, epoch: int, epoch_loop: Any) -> str | None:
    """After a mid-epoch resume with another batch size, count the epoch's batches done in the new size.

    Lightning restores its count of the epoch's batches in the old size and ends the epoch when that count
    reaches the new number of batches: from 10 batches of 2 out of 60 images, batches of 4 would stop after 5
    more and leave 20 images untrained. Call it from ``on_train_start`` (``epoch_loop``: the fit loop's
    ``epoch_loop``, whose ``reset()`` runs next); returns a message saying what was done, or None when nothing
    needed to change.
    """
    for loader in _loaders(train_dataloaders):
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, ResumableSampler) or not sampler.restored_items or sampler.epoch != epoch:
            continue
        if sampler.restored_batch_size == sampler.batch_size:
            return None
        set_epoch_batches_done(epoch_loop, sampler.batches_consumed)
        return (
            f"resumed with batch size {sampler.batch_size} (the checkpoint's was {sampler.restored_batch_size}): "
            f"epoch {epoch} goes on after its first {sampler.restored_items} images"
        )
    return None


def mark_consumed(train_dataloaders: Any, epoch: int, batches: int) -> None:
    """Record that the training step has consumed ``batches`` batches of ``epoch`` (see module docstring)."""
    for loader in _loaders(train_dataloaders):
        sampler = getattr(loader, "sampler", None)
        if isinstance(sampler, ResumableSampler):
            sampler.epoch = epoch
            sampler.batches_consumed = batches

