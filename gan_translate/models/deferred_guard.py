"""The NaN guard without a host read per optimiser step (issue 29): what a captured GPU step needs.

Today's guard (:meth:`GANModule.check_finite <gan_translate.models.base.GANModule.check_finite>`) reads one value
back from the device before each update: on a GPU that is a synchronisation per optimiser step, and a CUDA graph
cannot contain it. :class:`DeferredNonFiniteGuard` keeps the same promise, a non-finite loss never reaches the
weights and training stops naming it, with the reads moved to every ``every`` steps:

* each step, on the device: the loss and every gradient (after DDP's all-reduce) are checked for NaN / Inf in one
  fused kernel (the one ``GradScaler`` uses); the flag is **sticky** (once a step is bad, every later one counts as
  bad) and is handed to torch's fused Adam as ``found_inf``, which skips the whole update on the device (weights,
  moments and step count). So the weights stay exactly those before the first bad step, as when today's guard stops;
* the first bad step's loss terms and its call number are kept on the device; the host keeps the names and the
  training position of the last calls (no device read for them);
* every ``every`` steps, at the end of an epoch and before a checkpoint is written, the flag is read once (all DDP
  processes decide together) and a bad step stops training with today's one-line message, naming the first bad step.

It needs an optimiser that takes ``found_inf`` (torch's fused Adam, which :meth:`GANModule.adam` builds when the
guard is on); anything else keeps the per-step guard (:meth:`GANModule.backward_step` decides).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MAX_TERMS", "DeferredNonFiniteGuard", "FirstBadStep", "takes_found_inf"]

#: Loss terms kept for the first bad step's message (a model's optimiser step names at most this many).
MAX_TERMS = 32


def takes_found_inf(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step()`` honours a ``found_inf`` flag on the device (torch's fused Adam / AdamW / SGD)."""
    return bool(optimizer.defaults.get("fused"))


@dataclass(frozen=True)
class FirstBadStep:
    """Where the first non-finite step of a window was, and its terms' values (for the message)."""

    values: dict[str, float]
    global_step: int
    epoch: int
    batch: int


class DeferredNonFiniteGuard:
    """Per-step NaN / Inf checks on the device, read back every ``every`` optimiser steps (see the module's text)."""

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"the NaN guard's check interval must be >= 1 step, got {every}")
        self.every = every
        self.calls = 0  # optimiser steps taken through the guard (host count: no device read)
        self._bad: Tensor | None = None  # sticky 0-d float flag: 1 once any step was non-finite
        self._first_call: Tensor | None = None  # call number of the first bad step (-1: none)
        self._first_values: Tensor | None = None  # its loss terms, padded to MAX_TERMS
        self._positions: dict[int, tuple[tuple[str, ...], int, int, int]] = {}  # call -> names, step, epoch, batch

    def _state(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        if self._bad is None or self._bad.device != device:
            self._bad = torch.zeros((), device=device)
            self._first_call = torch.full((), -1, dtype=torch.long, device=device)
            self._first_values = torch.zeros(MAX_TERMS, device=device)
        assert self._first_call is not None and self._first_values is not None
        return self._bad, self._first_call, self._first_values

    def flag_step(self, optimizer: torch.optim.Optimizer, loss: Tensor, terms: Mapping[str, Tensor],
                  position: tuple[int, int, int]) -> Tensor:
        """After ``backward``, before ``optimizer.step()``: check the loss and the gradients on the device and set the
        optimiser's ``found_inf`` to the sticky flag (so the update is skipped from the first bad step on). Returns
        the flag. ``position``: (global step, epoch, batch) of this step, for the message."""
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad, first_call, first_values = self._state(loss.device)
        found = torch.zeros((), device=loss.device)
        if grads:
            # GradScaler's fused check (with a scale of 1, the gradients are left as they are): 1 if any is NaN / Inf.
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, torch.ones((), device=loss.device))
        values = torch.stack([value.detach().float().reshape(-1)[0] for value in terms.values()])
        found = torch.maximum(found, (~torch.isfinite(values).all()).float())
        self.calls += 1
        names = tuple(terms)
        if len(names) > MAX_TERMS:
            raise ValueError(f"the NaN guard keeps at most {MAX_TERMS} loss terms per step, got {len(names)}")
        self._positions[self.calls] = (names, *position)
        for old in [call for call in self._positions if call <= self.calls - 2 * self.every - 8]:
            del self._positions[old]  # only the calls of the current window can be the first bad one
        first = (found > 0) & (first_call < 0)
        first_call.copy_(torch.where(first, torch.full_like(first_call, self.calls), first_call))
        first_values.copy_(torch.where(first, F.pad(values, (0, MAX_TERMS - len(names))), first_values))
        bad.copy_(torch.maximum(bad, found))
        optimizer.found_inf = bad  # type: ignore[attr-defined]  # read by the fused step: skip while bad
        return bad

    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Detach the flag from the optimiser (a later step through another path must not see a stale one)."""
        if hasattr(optimizer, "found_inf"):
            del optimizer.found_inf

    def due(self) -> bool:
        """Whether this step ends a window (the flag is read now)."""
        return self.calls > 0 and self.calls % self.every == 0

    def first_bad_step(self, reduce: Any = None) -> FirstBadStep | None:
        """Read the flag (one device read); the first bad step of the window, or None when every step was finite.
        ``reduce(bool) -> bool``: combines the processes' answers (DDP: any process bad stops all of them)."""
        if self._bad is None:
            return None
        bad = bool(self._bad > 0)
        if reduce is not None:
            bad = not reduce(not bad)  # reduce_boolean_decision(all=True) over "all finite"
        if not bad:
            return None
        call = int(self._first_call) if self._first_call is not None else -1
        if call < 0 or call not in self._positions:  # another process's bad step
            return FirstBadStep({"a loss on another process": float("nan")}, -1, -1, -1)
        names, step, epoch, batch = self._positions[call]
        assert self._first_values is not None
        values = dict(zip(names, self._first_values[: len(names)].tolist()))
        bad_values = {name: value for name, value in values.items() if not math.isfinite(value)}
        return FirstBadStep(bad_values or {"a gradient": float("nan")}, step, epoch, batch)
