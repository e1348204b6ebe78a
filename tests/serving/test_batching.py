"""DynamicBatcher: groups, batch limits, the bounded queue, time limits, errors and draining on stop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from gan_translate.serving.batching import DynamicBatcher, QueueFull, RequestTimedOut


class Recorder:
    """A batch function that records each batch it was given (and may sleep, to hold the worker)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.threads: set[str] = set()

    def __call__(self, payloads: Sequence[int]) -> list[int]:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        self.batches.append(list(payloads))
        return [p * 10 for p in payloads]


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_of_one_group_share_a_batch_and_get_their_own_results() -> None:
    async def main() -> tuple[list[int], Recorder]:
        batcher, run_batch = DynamicBatcher(max_batch=8, max_wait_s=0.2), Recorder()
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(run_batch, "size-32", i) for i in range(8)))
        await batcher.stop()
        return results, run_batch

    results, recorder = run(main())
    assert results == [i * 10 for i in range(8)]
    assert recorder.batches == [list(range(8))]  # one pass, in arrival order
    assert recorder.threads and not any(name == "MainThread" for name in recorder.threads)  # off the event loop


def test_groups_never_mix_and_batches_respect_max_batch_and_the_pixel_budget() -> None:
    async def main() -> Recorder:
        batcher, run_batch = DynamicBatcher(max_batch=3, max_wait_s=0.1, max_batch_cost=250), Recorder()
        await batcher.start()
        jobs = [batcher.submit(run_batch, "a", i, cost=100) for i in range(5)]
        jobs += [batcher.submit(run_batch, "b", 100 + i, cost=10) for i in range(4)]
        assert await asyncio.gather(*jobs) == [i * 10 for i in range(5)] + [(100 + i) * 10 for i in range(4)]
        await batcher.stop()
        return run_batch

    batches = run(main()).batches
    assert sorted(map(tuple, batches)) == [(0, 1), (2, 3), (4,), (100, 101, 102), (103,)]


def test_max_batch_one_runs_every_request_alone() -> None:
    async def main() -> Recorder:
        # A wait for company would take max_wait_s (30 s) per request; the bound is a third of one such wait, so a
        # busy machine (another test process beside this one) cannot fail it, and a single wait still would.
        batcher, run_batch = DynamicBatcher(max_batch=1, max_wait_s=30.0), Recorder()
        await batcher.start()
        started = time.perf_counter()
        await asyncio.gather(*(batcher.submit(run_batch, "k", i) for i in range(4)))
        assert time.perf_counter() - started < 10.0  # no waiting for company
        await batcher.stop()
        return run_batch

    assert run(main()).batches == [[0], [1], [2], [3]]


def test_a_full_queue_refuses_with_a_retry_estimate() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(max_batch=1, max_wait_s=0, max_queue=2)
        await batcher.start()
        slow = Recorder(delay_s=0.3)
        first = [asyncio.ensure_future(batcher.submit(slow, "k", i)) for i in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as refused:
            await batcher.submit(slow, "k", 99)
        assert refused.value.retry_after_s >= 1 and "busy" in str(refused.value)
        assert await asyncio.gather(*first) == [0, 10]
        assert batcher.stats.rejected == 1
        await batcher.stop()

    run(main())


def test_a_request_over_its_time_limit_times_out_and_the_worker_goes_on() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(max_batch=1, max_wait_s=0)
        await batcher.start()
        slow = Recorder(delay_s=0.3)
        with pytest.raises(RequestTimedOut):
            await batcher.submit(slow, "k", 1, timeout_s=0.05)
        assert await batcher.submit(slow, "k", 2, timeout_s=5) == 20
        assert batcher.stats.timed_out == 1
        await batcher.stop()

    run(main())


def test_an_error_in_a_pass_reaches_each_request_of_that_batch_only() -> None:
    def broken(payloads: Sequence[int]) -> list[int]:
        raise RuntimeError("out of memory")

    async def main() -> None:
        batcher = DynamicBatcher(max_batch=4, max_wait_s=0.05)
        await batcher.start()
        outcomes = await asyncio.gather(*(batcher.submit(broken, "k", i) for i in range(3)), return_exceptions=True)
        assert all(isinstance(o, RuntimeError) and "out of memory" in str(o) for o in outcomes)
        assert await batcher.submit(Recorder(), "k", 5) == 50  # still serving
        assert batcher.stats.failed == 3
        await batcher.stop()

    run(main())


def test_stop_answers_every_accepted_request_then_refuses_new_ones() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(max_batch=2, max_wait_s=0)
        await batcher.start()
        slow = Recorder(delay_s=0.1)
        accepted = [asyncio.ensure_future(batcher.submit(slow, "k", i)) for i in range(5)]
        await asyncio.sleep(0.01)
        await batcher.stop()
        assert [job.result() for job in accepted] == [0, 10, 20, 30, 40]
        with pytest.raises(RuntimeError, match="not running"):
            await batcher.submit(slow, "k", 9)

    run(main())
