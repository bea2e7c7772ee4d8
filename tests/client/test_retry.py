"""Retry policy: classification, Retry-After parsing, backoff bounds and waits, without real sleeping."""

from __future__ import annotations

import email.utils
import time

import pytest

from neuromorpho_fetch.config import RetryPolicy
from neuromorpho_fetch.errors import (
    BadRequestError,
    ConnectError,
    DiskError,
    IntegrityError,
    NotFoundError,
    NotFoundPageError,
    RequestTimeout,
    ServerBusyError,
    TLSError,
)
from neuromorpho_fetch.retry import (
    NOT_FOUND_PAGE_ATTEMPTS,
    RetryEvent,
    backoff_wait,
    classify,
    parse_retry_after,
    retry_call,
    retry_wait,
    should_retry,
)

from .conftest import FakeSleep

URL = "https://example/x"


def test_classify() -> None:
    assert classify(ConnectError("x")) == "transient"
    assert classify(RequestTimeout("x")) == "transient"
    assert classify(ServerBusyError(503, URL)) == "transient"
    assert classify(IntegrityError("x")) == "transient"
    assert classify(NotFoundError(404, URL)) == "permanent"
    assert classify(BadRequestError(400, URL)) == "permanent"
    assert classify(TLSError("x")) == "permanent"
    assert classify(DiskError("x")) == "permanent"
    assert classify(ValueError("bug")) == "permanent"


def test_not_found_page_gets_a_small_budget() -> None:
    policy = RetryPolicy(attempts=10)
    error = NotFoundPageError(404, URL)
    assert should_retry(error, 1, policy)
    assert not should_retry(error, NOT_FOUND_PAGE_ATTEMPTS, policy)
    assert not should_retry(NotFoundError(404, URL), 1, policy)
    assert not should_retry(ConnectError("x"), 10, policy)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("", None),
        ("soon", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=time.time()) == 0.0


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0)
    assert [backoff_wait(policy, n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 50)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
        4.0,
    ]
    assert backoff_wait(policy, 3, lambda: 0.0) == 0.0
    assert backoff_wait(policy, 10_000, lambda: 1.0) == 4.0  # no overflow


def test_retry_after_raises_the_wait_but_is_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0, retry_after_max=10.0)
    busy = ServerBusyError(429, URL, retry_after=7.0)
    assert retry_wait(policy, 1, busy, lambda: 1.0) == 7.0
    assert retry_wait(policy, 1, ServerBusyError(503, URL, retry_after=1e6), lambda: 1.0) == 10.0
    assert retry_wait(policy, 5, ServerBusyError(503, URL, retry_after=0.1), lambda: 1.0) == 4.0  # max, not +
    assert retry_wait(policy, 1, ConnectError("x"), lambda: 0.5) == 0.25


async def test_retry_call_retries_transient_then_succeeds() -> None:
    sleep = FakeSleep()
    events: list[RetryEvent] = []
    errors = [ServerBusyError(503, URL, retry_after=2.0), IntegrityError("short"), ConnectError("reset")]
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=5, backoff_base=0.01, backoff_max=0.01)
    result = await retry_call(attempt, policy=policy, url=URL, on_retry=events.append, sleep=sleep)
    assert result == "ok" and calls == 4
    assert sleep.waits[0] == 2.0 and all(w <= 0.01 for w in sleep.waits[1:])
    assert [e.attempt for e in events] == [1, 2, 3]
    assert [e.wait for e in events] == sleep.waits
    assert isinstance(events[0].error, ServerBusyError) and events[0].url == URL


async def test_retry_call_raises_permanent_at_once() -> None:
    sleep = FakeSleep()
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise NotFoundError(404, URL)

    with pytest.raises(NotFoundError):
        await retry_call(attempt, policy=RetryPolicy(), url=URL, sleep=sleep)
    assert calls == 1 and sleep.waits == []


async def test_retry_call_gives_up_with_the_last_error() -> None:
    sleep = FakeSleep()
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ConnectError(f"refused {calls}")

    with pytest.raises(ConnectError, match="refused 3"):
        await retry_call(attempt, policy=RetryPolicy(attempts=3), url=URL, sleep=sleep)
    assert calls == 3 and len(sleep.waits) == 2


async def test_retry_call_never_retries_programming_errors() -> None:
    async def attempt() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retry_call(attempt, policy=RetryPolicy(), url=URL, sleep=FakeSleep())
