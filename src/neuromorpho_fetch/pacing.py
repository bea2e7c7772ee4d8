"""One pacer per client: how many requests may run at once, how often one may start, and when to hold off.

NeuroMorpho.Org has no rate-limit headers and asks for about 5 requests per second (reference A9.2), so
politeness is enforced here, on the client, for *every* request it makes: API pages, files and retries.
Three gates, in this order, modelled on rclone's pacer (``lib/pacer``) and ``--tpslimit`` bucket:

1. a semaphore bounds requests in flight (``concurrency``);
2. a shared *pause gate*: when the server says 429/503 with ``Retry-After``, every caller waits until
   that deadline, not only the one that was told (the server is one machine; hammering it from the
   other workers while one backs off defeats the point);
3. a token bucket spaces request starts ``1/rate`` apart, with a burst of ``burst`` (default 1, so the
   rate holds over any window, not just on average).

The bucket reserves slots rather than polling: each caller computes its start time, takes it, and sleeps
once. With an injected clock and sleep the whole thing is deterministic in tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from .errors import UsageError

log = logging.getLogger("neuromorpho_fetch.client")

#: Pauses longer than this (seconds) are logged once when they start.
TELL_PAUSE_OVER = 5.0

Clock = Callable[[], float]
#: An awaitable sleep, injectable so tests record waits instead of spending them.
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Request starts at most ``rate`` per second on average, at most ``burst`` back to back."""

    def __init__(
        self, rate: float, burst: int = 1, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if rate <= 0:
            raise UsageError(f"rate must be > 0 requests/s, got {rate}")
        if burst < 1:
            raise UsageError(f"burst must be >= 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._interval = 1.0 / rate
        # Theoretical arrival time of the next request (GCRA): a start is allowed at
        # max(now, tat - (burst-1)*interval), and each start pushes tat one interval on.
        self._tat = float("-inf")

    def reserve(self) -> float:
        """Take the next slot; returns how long the caller must wait before starting (pure bookkeeping)."""
        now = self._clock()
        tat = max(self._tat, now)
        start = max(now, tat - (self.burst - 1) * self._interval)
        self._tat = tat + self._interval
        return start - now

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)


class Pacer:
    """Concurrency limit + shared pause gate + token bucket; use ``async with pacer.slot():``."""

    def __init__(
        self,
        rate: float,
        concurrency: int,
        *,
        burst: int = 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(concurrency)
        self._bucket = TokenBucket(rate, burst, clock=clock, sleep=sleep)
        self._pause_until = float("-inf")
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = 0
        self.pauses = 0

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def pause_for(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (a later deadline wins; an earlier one is ignored).

        A pause of more than :data:`TELL_PAUSE_OVER` seconds is said once, at the default level, when it
        starts (issue 15 item 17: a run sitting still for two minutes said nothing).
        """
        now = self._clock()
        deadline = now + max(0.0, seconds)
        if deadline > self._pause_until:
            if seconds > TELL_PAUSE_OVER and self._pause_until <= now:
                log.warning("the server asked for a pause (Retry-After): every request waits %.0f s", seconds)
            self._pause_until = deadline
            self.pauses += 1

    def paused_for(self) -> float:
        """Seconds left on the pause gate (0 when open)."""
        return max(0.0, self._pause_until - self._clock())

    async def _wait_gate(self) -> None:
        # Sleep until the deadline seen; loop only if someone moved it later meanwhile. Looping on
        # the clock instead would spin forever under a fake sleep that does not advance it.
        served = float("-inf")
        while self._pause_until > served:
            served = self._pause_until
            remaining = served - self._clock()
            if remaining <= 0:
                return
            await self._sleep(remaining)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot, the pause gate and a token; hold the slot for the whole request."""
        async with self._semaphore:
            await self._wait_gate()
            await self._bucket.acquire()
            self.in_flight += 1
            self.started += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
