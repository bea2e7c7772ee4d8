"""Small frozen configuration objects with validated defaults: the one table of client defaults.

Everything that shapes a client's behaviour sits in one of these, so a run can be described (and
logged, and tested) as a value. The library (``NeuroMorpho()``), the mirror (``MirrorOptions.client``)
and the CLI (whose ``--help`` quotes these defaults) all start from :class:`ClientConfig`; nothing
re-declares a default. Each object validates itself when built and raises :class:`UsageError` with a
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

    #: 6 retries after the first try: enough to ride out a minute of 503s with the default backoff.
    attempts: int = 7
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        _require(self.attempts >= 1, f"retries must allow at least one attempt, got {self.attempts}")
        _require(self.backoff_base >= 0, "backoff base (--retry-wait) must be >= 0 seconds")
        _require(self.backoff_max >= self.backoff_base, "backoff max must be >= backoff base")
        _require(self.retry_after_max >= 0, "Retry-After cap (--retry-after-max) must be >= 0 seconds")

    @property
    def retries(self) -> int:
        """Retries after the first attempt (what ``--retries`` and ``NeuroMorpho(retries=)`` say)."""
        return self.attempts - 1

    @classmethod
    def from_retries(cls, retries: int, **changes: float) -> RetryPolicy:
        """``retries`` retries after the first attempt (``--retries``); other fields as given."""
        _require(retries >= 0, f"retries must be >= 0 (--retries), got {retries}")
        return cls(retries + 1, **changes)


_CONNECT, _READ, _TOTAL = 30.0, 60.0, 600.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and idle-read limits per request, plus a whole-attempt deadline.

    Two meanings, two names: ``read`` is the longest *silence* tolerated between two chunks (a stalled
    server), not the time a large file may take; ``total`` bounds one *attempt* of one request, body
    included. One number can mean either, so each has its own constructor: :meth:`idle` (the CLI's
    ``--timeout``) and :meth:`attempt` (``NeuroMorpho(timeout=5)``).
    """

    connect: float = _CONNECT
    read: float = _READ
    total: float = _TOTAL

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            _require(value > 0, f"{name} timeout must be > 0 seconds, got {value}")

    @classmethod
    def idle(cls, seconds: float) -> Timeouts:
        """``--timeout S``: at most ``S`` of silence (connecting, or between chunks); a slow large file
        is not cut off (the attempt deadline stays at least the default 600 s)."""
        _require(seconds > 0, f"timeout must be > 0 seconds (--timeout), got {seconds}")
        return cls(connect=seconds, read=seconds, total=max(_TOTAL, 10 * seconds))

    @classmethod
    def attempt(cls, seconds: float) -> Timeouts:
        """``NeuroMorpho(timeout=S)``: one whole attempt, body included, takes at most ``S``."""
        _require(seconds > 0, f"timeout must be > 0 seconds, got {seconds}")
        return cls(connect=min(_CONNECT, seconds), read=min(_READ, seconds), total=seconds)


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
        _require(
            1 <= self.concurrency <= 256,
            f"concurrency must be 1..256 (--concurrency), got {self.concurrency}",
        )
        _require(self.rate > 0, f"rate must be > 0 requests/s (--rate), got {self.rate}")
