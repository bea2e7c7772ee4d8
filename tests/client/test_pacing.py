"""The pacer with a fake clock: rate, burst, concurrency and the shared pause gate."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from neuromorpho_fetch.errors import UsageError
from neuromorpho_fetch.pacing import Pacer, TokenBucket


class FakeClock:
    """Time that moves only when someone sleeps; sleeps yield to the loop so others can run."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_bucket_spaces_starts() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, clock=clock, sleep=clock.sleep)
    assert [round(bucket.reserve(), 6) for _ in range(4)] == [0.0, 0.2, 0.4, 0.6]
    clock.now = 10.0  # idle for long: no credit beyond the burst
    assert [round(bucket.reserve(), 6) for _ in range(2)] == [0.0, 0.2]


def test_bucket_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock, sleep=clock.sleep)
    assert [round(bucket.reserve(), 6) for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_bad_limits() -> None:
    with pytest.raises(UsageError):
        TokenBucket(rate=0)
    with pytest.raises(UsageError):
        Pacer(rate=1, concurrency=0)


@pytest.mark.timing
async def test_rate_holds_over_any_window() -> None:
    """Real clock, kept short: 16 starts at 40/s take ~0.4 s and never bunch up."""
    pacer = Pacer(rate=40.0, concurrency=8)
    starts: list[float] = []

    async def request() -> None:
        async with pacer.slot():
            starts.append(time.monotonic())
            await asyncio.sleep(0.01)

    began = time.monotonic()
    await asyncio.gather(*(request() for _ in range(16)))
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / 40 - 0.005
    assert starts[-1] - began >= 15 / 40 - 0.01


async def test_concurrency_is_bounded() -> None:
    pacer = Pacer(rate=1000.0, concurrency=3)
    gate = asyncio.Event()
    entered = 0

    async def request() -> None:
        nonlocal entered
        async with pacer.slot():
            entered += 1
            await gate.wait()

    tasks = [asyncio.create_task(request()) for _ in range(8)]
    for _ in range(20):
        await asyncio.sleep(0.001)
    assert entered == 3 and pacer.in_flight == 3
    gate.set()
    await asyncio.gather(*tasks)
    assert pacer.max_in_flight == 3 and pacer.in_flight == 0 and pacer.started == 8


async def test_pause_gate_holds_every_caller() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=1000.0, concurrency=4, clock=clock, sleep=clock.sleep)
    pacer.pause_for(5.0)
    pacer.pause_for(1.0)  # an earlier deadline does not shorten the pause
    assert pacer.paused_for() == 5.0
    starts: list[float] = []

    async def request() -> None:
        async with pacer.slot():
            starts.append(clock.now)

    await asyncio.gather(*(request() for _ in range(3)))
    assert min(starts) >= 5.0
    assert pacer.paused_for() == 0.0


async def test_pause_gate_with_a_sleep_that_does_not_move_time() -> None:
    """Tests inject instant sleeps with a real clock: the gate must not spin."""
    waits: list[float] = []

    async def instant(seconds: float) -> None:
        waits.append(seconds)

    pacer = Pacer(rate=1000.0, concurrency=1, sleep=instant)
    pacer.pause_for(30.0)
    async with pacer.slot():
        pass
    assert len(waits) == 1 and 29.0 < waits[0] <= 30.0


async def test_cancelled_waiter_frees_nothing_it_did_not_take() -> None:
    pacer = Pacer(rate=1000.0, concurrency=1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with pacer.slot():
            await hold.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0.001)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0.001)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    hold.set()
    await first
    assert pacer.in_flight == 0
    async with pacer.slot():
        assert pacer.in_flight == 1
