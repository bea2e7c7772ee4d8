"""Small frozen configuration objects with validated defaults.

Everything that shapes a client's behaviour sits in one of these, so a run can be described (and
logged, and tested) as a value. Each object validates itself when built and raises :class:`UsageError` with a
one-line message, so the CLI never prints a traceback for a bad flag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import UsageError

__all__ = ["DEFAULT_BASE_URL", "ClientConfig", "RetryPolicy", "Timeouts", "default_base_url"]

DEFAULT_BASE_URL = "https://neuromorpho.org"


def default_base_url() -> str:
    """``NEUROMORPHO_BASE_URL`` when set (tests, mirrors, the emulator), else the public server."""
    return os.environ.get("NEUROMORPHO_BASE_URL") or DEFAULT_BASE_URL


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried (see :mod:`neuromorpho_fetch.retry`).

    ``attempts`` counts every try, the first included. Backoff is exponential with full jitter:
    the wait after failed attempt n (1-based) is uniform in
    ``[0, min(backoff_max, backoff_base * 2**(n-1))]``; a server's
    ``Retry-After`` raises the wait to what it asks, never above ``retry_after_max``.
    """

    attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        _require(self.attempts >= 1, f"retries must allow at least one attempt, got {self.attempts}")
        _require(self.backoff_base >= 0, "backoff base must be >= 0 seconds")
        _require(self.backoff_max >= self.backoff_base, "backoff max must be >= backoff base")
        _require(self.retry_after_max >= 0, "Retry-After cap must be >= 0 seconds")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and idle-read limits per request, plus a whole-attempt deadline.

    ``read`` is the longest silence tolerated between two chunks (a stalled server), not the time a
    large file may take; ``total`` bounds one attempt of one request, body included.
    """

    connect: float = 30.0
    read: float = 60.0
    total: float = 600.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            _require(value > 0, f"{name} timeout must be > 0 seconds, got {value}")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What a :class:`~neuromorpho_fetch.client.NeuroMorpho` client needs to know.

    ``rate`` is requests per second across every call of the client (NeuroMorpho.Org asks for about
    5); ``concurrency`` is the most requests in flight at once.
    """

    base_url: str = field(default_factory=default_base_url)
    concurrency: int = 4
    rate: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    user_agent: str | None = None
    ca_file: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        _require(
            self.base_url.startswith(("http://", "https://")),
            f"base URL must start with http:// or https://, got {self.base_url!r}",
        )
        _require(1 <= self.concurrency <= 256, f"concurrency must be 1..256, got {self.concurrency}")
        _require(self.rate > 0, f"rate must be > 0 requests/s, got {self.rate}")
