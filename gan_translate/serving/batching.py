"""Dynamic batching: concurrent requests for the same model and image size run as one batch, off the event loop.

A request :meth:`DynamicBatcher.submit`\\ s a payload under a *group*: ``(run, key)``, where ``run`` turns a list of
payloads into a list of results (one network pass) and ``key`` says which payloads may share it (model, direction,
image size, ...). One worker coroutine takes the group whose oldest request waited longest, waits up to
``max_wait_s`` after that request's arrival for the group to fill to ``max_batch`` (or its pixel budget), and runs
it in a single worker thread: the event loop keeps accepting and answering requests meanwhile, and the device runs
one batch at a time (two batches at once only compete for the same cores or GPU). Under load the batches fill by
themselves: requests arriving during a pass wait for the next one.

The queue is bounded (:class:`QueueFull`, which the API answers with 503 and ``Retry-After``), each request has a
time limit (:class:`RequestTimedOut`), and :meth:`DynamicBatcher.stop` finishes every accepted request before it
returns (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchStats", "DynamicBatcher", "QueueFull", "RequestTimedOut"]

#: ``run(payloads) -> results``: one pass over a batch, results in the payloads' order.
BatchRun = Callable[[Sequence[Any]], Sequence[Any]]


class QueueFull(Exception):
    """The bounded queue holds ``max_queue`` requests already; ``retry_after_s`` estimates when one will be free."""

    def __init__(self, depth: int, retry_after_s: int) -> None:
        super().__init__(f"the server is busy ({depth} requests queued); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class RequestTimedOut(Exception):
    """A request waited and ran longer than its time limit (its result, if it comes, is dropped)."""


@dataclass
class _Job:
    payload: Any
    cost: int
    future: asyncio.Future[Any]
    arrived: float


@dataclass
class BatchStats:
    """What the batcher has done since it started (``GET /v1/stats``; the batching tests read it)."""

    requests: int = 0
    batches: int = 0
    rejected: int = 0
    timed_out: int = 0
    failed: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    busy_s: float = 0.0

    def as_dict(self, queued: int) -> dict[str, Any]:
        return {
            "requests": self.requests, "batches": self.batches, "queued": queued, "rejected": self.rejected,
            "timed_out": self.timed_out, "failed": self.failed,
            "mean_batch_size": round(sum(n * c for n, c in self.batch_sizes.items()) / self.batches, 3) if self.batches else 0.0,
            "batch_sizes": {str(n): c for n, c in sorted(self.batch_sizes.items())},
            "busy_s": round(self.busy_s, 3),
        }


class DynamicBatcher:
    """Gathers requests into batches per group and runs them in one worker thread (see the module docstring).

    Args:
        max_batch: most payloads in one pass (1: no batching, every request runs alone).
        max_wait_s: how long the oldest request of a group may wait for others to join it.
        max_queue: most requests waiting or running; one more is :class:`QueueFull`.
        max_batch_cost: most total cost (pixels) in one pass, so a batch of large images stays within memory;
            a single request over it still runs, alone.
    """

    def __init__(self, max_batch: int = 8, max_wait_s: float = 0.010, max_queue: int = 64,
                 max_batch_cost: int | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_queue = max_queue
        self.max_batch_cost = max_batch_cost
        self.stats = BatchStats()
        self._pending: dict[tuple[BatchRun, Hashable], list[_Job]] = {}
        self._running = 0  # jobs inside the current pass
        self._arrival: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    # --- life cycle --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done() and not self._closing

    async def start(self) -> None:
        """Start the worker on the running event loop (the server's lifespan calls this)."""
        self._arrival = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gan-translate-model")
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="gan-translate-batcher")

    async def stop(self) -> None:
        """Refuse new requests, finish every accepted one, then stop the worker and its thread."""
        self._closing = True
        if self._arrival is not None:
            self._arrival.set()
        if self._worker is not None:
            await self._worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # --- requests ----------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Requests waiting (not yet cancelled) plus those in the pass now running."""
        return sum(1 for jobs in self._pending.values() for job in jobs if not job.future.done()) + self._running

    async def submit(self, run: BatchRun, key: Hashable, payload: Any, cost: int = 0,
                     timeout_s: float | None = None) -> Any:
        """``payload``'s result from a batch of its group ``(run, key)``; raises :class:`QueueFull`,
        :class:`RequestTimedOut`, or whatever ``run`` raised for its batch."""
        if not self.running or self._arrival is None:
            raise RuntimeError("the batcher is not running (the server is starting or shutting down)")
        depth = self.queued
        if depth >= self.max_queue:
            self.stats.rejected += 1
            raise QueueFull(depth, self._retry_after(depth))
        loop = asyncio.get_running_loop()
        job = _Job(payload, cost, loop.create_future(), loop.time())
        self._pending.setdefault((run, key), []).append(job)
        self.stats.requests += 1
        self._arrival.set()
        try:
            return await asyncio.wait_for(job.future, timeout_s)
        except TimeoutError:
            self.stats.timed_out += 1
            raise RequestTimedOut(f"the request took longer than its {timeout_s:g} s limit") from None

    def _retry_after(self, depth: int) -> int:
        """Seconds until the queue has room, from the mean pass time so far (1 s at least)."""
        per_batch = self.stats.busy_s / self.stats.batches if self.stats.batches else 1.0
        return max(1, math.ceil(per_batch * depth / self.max_batch))

    # --- the worker --------------------------------------------------------------------------------
    async def _work(self) -> None:
        assert self._arrival is not None
        loop = asyncio.get_running_loop()
        while True:
            self._drop_finished()
            if not self._pending:
                if self._closing:
                    return
                self._arrival.clear()
                await self._arrival.wait()
                continue
            group = min(self._pending, key=lambda g: self._pending[g][0].arrived)
            deadline = self._pending[group][0].arrived + self.max_wait_s
            while not self._closing and not self._full(self._pending.get(group, [])):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrival.clear()
                try:
                    await asyncio.wait_for(self._arrival.wait(), remaining)
                except TimeoutError:
                    break
            jobs = self._take(group)
            if jobs:
                await self._run(group[0], jobs)

    def _full(self, jobs: list[_Job]) -> bool:
        live = [job for job in jobs if not job.future.done()]
        if len(live) >= self.max_batch:
            return True
        return self.max_batch_cost is not None and sum(job.cost for job in live) >= self.max_batch_cost

    def _take(self, group: tuple[BatchRun, Hashable]) -> list[_Job]:
        """Up to ``max_batch`` live jobs of ``group`` within the cost budget (one at least), oldest first."""
        waiting = [job for job in self._pending.pop(group, []) if not job.future.done()]
        taken: list[_Job] = []
        cost = 0
        while waiting and len(taken) < self.max_batch:
            if taken and self.max_batch_cost is not None and cost + waiting[0].cost > self.max_batch_cost:
                break
            cost += waiting[0].cost
            taken.append(waiting.pop(0))
        if waiting:
            self._pending[group] = waiting
        return taken

    def _drop_finished(self) -> None:
        """Forget groups whose every request was cancelled or timed out while waiting."""
        for group in [g for g, jobs in self._pending.items() if all(job.future.done() for job in jobs)]:
            del self._pending[group]

    async def _run(self, run: BatchRun, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        self._running = len(jobs)
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, run, [job.payload for job in jobs])
            if len(results) != len(jobs):
                raise RuntimeError(f"a batch of {len(jobs)} requests gave {len(results)} results")
        except Exception as error:  # noqa: BLE001 - every request of the batch gets the error; the worker goes on
            self.stats.failed += len(jobs)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
        else:
            for job, result in zip(jobs, results):
                if not job.future.done():  # timed out meanwhile: nobody waits for it
                    job.future.set_result(result)
        finally:
            self._running = 0
            self.stats.busy_s += time.perf_counter() - started
            self.stats.batches += 1
            self.stats.batch_sizes[len(jobs)] = self.stats.batch_sizes.get(len(jobs), 0) + 1
