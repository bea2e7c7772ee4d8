"""What is retried and how long to wait: one policy for every request the client makes.

Classification is read off the error class (``error.transient``, see :mod:`neuromorpho_fetch.errors`),
never guessed from messages: a transport failure, a busy server (429/5xx) and a damaged body are
retried; 400/404, TLS failures and disk errors are raised at once. The unit retried is a whole attempt
(request, stream, verify, rename), because aiohttp's own retries never cover a body that breaks off.

Waits are exponential with *full jitter* (uniform in ``[0, min(max, base * 2**n)]``, the AWS
"Exponential Backoff and Jitter" scheme) so a crowd of workers that failed together does not come back
together; a server's ``Retry-After`` raises the wait to what it asks (``max``, not ``+``), capped at
``RetryPolicy.retry_after_max`` so a bogus header cannot park a run for a day.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_base, stop_never

from .config import RetryPolicy
from .errors import HTTPStatusError, IntegrityError, NeuroMorphoError, NotFoundPageError
from .pacing import Sleep

__all__ = [
    "NOT_FOUND_PAGE_ATTEMPTS",
    "RetryEvent",
    "Sleep",
    "backoff_wait",
    "classify",
    "is_retryable",
    "parse_retry_after",
    "retry_call",
    "retry_wait",
    "should_retry",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

Classification = Literal["transient", "permanent", "integrity"]

#: Most attempts spent on a 404 served as an HTML page (a glitch, or a file that is really gone).
NOT_FOUND_PAGE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One failed attempt that will be retried after ``wait`` seconds (progress counts these)."""

    url: str
    attempt: int
    wait: float
    error: NeuroMorphoError


def classify(error: BaseException) -> Classification:
    """``integrity`` (body wrong, retried), ``transient`` (retried) or ``permanent`` (raised)."""
    if isinstance(error, IntegrityError):
        return "integrity"
    if isinstance(error, NeuroMorphoError) and error.transient:
        return "transient"
    return "permanent"


def is_retryable(error: BaseException) -> bool:
    """Only our own transient errors; never ``CancelledError`` or a programming error."""
    return isinstance(error, NeuroMorphoError) and classify(error) != "permanent"


def should_retry(error: BaseException, attempt: int, policy: RetryPolicy) -> bool:
    """Whether failed attempt number ``attempt`` (1-based) is followed by another."""
    if not is_retryable(error) or attempt >= policy.attempts:
        return False
    return not (isinstance(error, NotFoundPageError) and attempt >= NOT_FOUND_PAGE_ATTEMPTS)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    Garbage gives ``None`` (fall back to backoff); a date in the past gives ``0``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_wait(policy: RetryPolicy, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter wait after failed attempt number ``attempt`` (1-based)."""
    exponent = min(max(0, attempt - 1), 64)  # 2.0**64 is plenty and never overflows
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0**exponent)
    return ceiling * rng()


def retry_wait(
    policy: RetryPolicy,
    attempt: int,
    error: BaseException | None,
    rng: Callable[[], float] = random.random,
) -> float:
    """``max(backoff, Retry-After)`` with the server's wish capped at ``retry_after_max``."""
    wait = backoff_wait(policy, attempt, rng)
    retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.retry_after_max))
    return wait


class _Decide(retry_base):
    """tenacity predicate: :func:`should_retry` on the attempt's exception."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        return error is not None and should_retry(error, retry_state.attempt_number, self.policy)


async def retry_call(
    attempt_fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    url: str,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt_fn`` until it succeeds, fails permanently, or the attempts run out.

    The last error is raised as itself (``reraise``), never as tenacity's ``RetryError``.
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return retry_wait(policy, state.attempt_number, error, rng)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.upcoming_sleep
        if not isinstance(error, NeuroMorphoError):  # pragma: no cover - is_retryable guarantees it
            return
        log.debug("retry %d for %s in %.2fs after: %s", state.attempt_number, url, delay, error)
        if on_retry is not None:
            on_retry(RetryEvent(url=url, attempt=state.attempt_number, wait=delay, error=error))

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=stop_never,  # the attempt budget is part of _Decide (it depends on the error)
        wait=wait,
        retry=_Decide(policy),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await attempt_fn()
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
