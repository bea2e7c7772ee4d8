"""Small frozen configuration objects with validated defaults: the one table of client defaults.

Everything that shapes a client's behaviour sits in one of these, so a run can be described (and
logged, and tested) as a value. The library (``NeuroMorpho()``), the mirror (``MirrorOptions.client``)
and the CLI (whose ``--help`` quotes these defaults) all start from :class:`ClientConfig`; nothing
re-declares a default. Each object validates itself when built and raises :class:`UsageError` with a
one-line message, so the CLI never prints a traceback for a bad flag.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import UsageError

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_SECONDS",
    "TLS_MODES",
    "ClientConfig",
    "RetryPolicy",
    "Timeouts",
    "check_number",
    "check_seconds",
    "check_text",
    "default_base_url",
    "normalise_base_url",
]

DEFAULT_BASE_URL = "https://neuromorpho.org"
#: ``ClientConfig.tls`` / ``--tls``: modern first with a per-host legacy-DH fallback, or one forced.
TLS_MODES = ("auto", "modern", "legacy")


def default_base_url() -> str:
    """``NEUROMORPHO_BASE_URL`` when set (tests, mirrors, the emulator), else the public server."""
    return os.environ.get("NEUROMORPHO_BASE_URL") or DEFAULT_BASE_URL


def normalise_base_url(url: str) -> str:
    """Accept ``https://host``, ``https://host/`` and ``https://host/api``; keep the origin part."""
    return url.strip().rstrip("/").removesuffix("/api")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


#: The longest time any setting may name (about 116 days). Larger values are refused, not clamped:
#: issue 10 found ``--timeout 1e309`` (infinity) raising ``OverflowError`` inside aiohttp and
#: ``--cool-down inf`` sleeping forever; a finite but huge value overflows the event loop's timers.
MAX_SECONDS = 1e7


def check_number(
    value: float, what: str, *, low: float, high: float, low_ok: bool = True, unit: str = ""
) -> float:
    """``value`` if it is a real, finite number in ``[low, high]`` (``(low, high]`` when not
    ``low_ok``); else a one-line :class:`UsageError` naming ``what`` (e.g. ``"--rate"``).

    The one numeric check: the config objects call it when built, and the CLI's argparse types call it
    too, so a library user and a flag get the same answer. NaN fails every comparison, so it is named
    first: ``nan < 0`` is False and used to slip through.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{what} must be a number{unit}, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise UsageError(f"{what} must be a finite number{unit}, got {value}")
    above = value >= low if low_ok else value > low
    if not above or value > high:
        bracket = "[" if low_ok else "("
        raise UsageError(f"{what} must be in {bracket}{low:g}, {high:g}]{unit}, got {value:g}")
    return value


def check_seconds(value: float, what: str, *, zero_ok: bool = False) -> float:
    """A duration in seconds: finite, > 0 (>= 0 when ``zero_ok``), at most :data:`MAX_SECONDS`."""
    return check_number(value, what, low=0.0, high=MAX_SECONDS, low_ok=zero_ok, unit=" (seconds)")


def check_text(value: str, what: str) -> str:
    """Text that goes into an HTTP header: no CR, LF or other control character (header injection;
    aiohttp raised ``ValueError: Forbidden control character`` mid-run, issue 10)."""
    bad = next((ch for ch in value if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise UsageError(f"{what} must not contain control characters, found {bad!r}")
    return value


def _check_base_url(url: str) -> None:
    """http(s), a host, a port in range: checked once, so a bad URL is a usage error, not a crash of
    the first request (``https://localhost:99999`` raised ``Port out of range``, issue 10)."""
    check_text(url, "base URL (--base-url)")
    _require(not any(ch.isspace() for ch in url), f"base URL (--base-url) {url!r} contains whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of 0..65535 or not a number
    except ValueError as exc:
        raise UsageError(f"base URL (--base-url) {url!r} is not valid: {exc}") from None
    _require(
        parts.scheme in ("http", "https"),
        f"base URL (--base-url) must start with http:// or https://, got {url!r}",
    )
    _require(bool(parts.hostname), f"base URL (--base-url) {url!r} has no host")
    _require(port is None or port > 0, f"base URL (--base-url) {url!r}: port must be 1..65535")


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
        _require(self.attempts <= 1001, f"retries must be 0..1000 (--retries), got {self.attempts - 1}")
        check_seconds(self.backoff_base, "backoff base (--retry-wait)", zero_ok=True)
        check_seconds(self.backoff_max, "backoff max", zero_ok=True)
        _require(self.backoff_max >= self.backoff_base, "backoff max must be >= backoff base")
        check_seconds(self.retry_after_max, "Retry-After cap (--retry-after-max)", zero_ok=True)

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
            check_seconds(getattr(self, name), f"{name} timeout")

    @classmethod
    def idle(cls, seconds: float) -> Timeouts:
        """``--timeout S``: at most ``S`` of silence (connecting, or between chunks); a slow large file
        is not cut off (the attempt deadline stays at least the default 600 s)."""
        check_seconds(seconds, "timeout (--timeout)")
        return cls(connect=seconds, read=seconds, total=max(_TOTAL, min(10 * seconds, MAX_SECONDS)))

    @classmethod
    def attempt(cls, seconds: float) -> Timeouts:
        """``NeuroMorpho(timeout=S)``: one whole attempt, body included, takes at most ``S``."""
        check_seconds(seconds, "timeout")
        return cls(connect=min(_CONNECT, seconds), read=min(_READ, seconds), total=seconds)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What a :class:`~neuromorpho_fetch.client.NeuroMorpho` client needs to know.

    ``rate`` is requests per second across every call of the client (NeuroMorpho.Org asks for about
    5); ``concurrency`` is the most requests in flight at once.

    Bounds on every body (``transport.iter_body``, issue 10): a body slower than ``lowest_speed``
    bytes/s over a window of ``speed_time`` seconds is a transient failure (curl's ``--speed-limit`` /
    ``--speed-time``; ``0`` turns it off): 1 KiB/s over 30 s fails a server trickling a byte every 2 s
    in 30 s and no working link. ``max_file_size`` bytes is the most one body may have, declared or
    streamed (a permanent failure of that file): 1 GiB, four orders of magnitude above an average CNG
    SWC (~70 KB: 18 GB over 264,771 cells, reference section D), so no real reconstruction meets it,
    while a lying 3 GB ``Content-Length`` or an endless body does.

    ``tls``: ``auto`` tries a stock modern context first and falls back, per host, to the legacy-DH
    one only when the handshake fails with ``DH_KEY_TOO_SMALL``; ``modern`` and ``legacy`` force one
    (:mod:`neuromorpho_fetch.tls`). Certificates are verified in every mode unless ``insecure``.
    """

    base_url: str = field(default_factory=default_base_url)
    concurrency: int = 4
    rate: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    user_agent: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    lowest_speed: float = 1024.0
    speed_time: float = 30.0
    max_file_size: int = 1 << 30
    tls: str = "auto"

    def __post_init__(self) -> None:
        _check_base_url(self.base_url)
        check_number(
            self.lowest_speed, "lowest speed (--lowest-speed)", low=0.0, high=1e12, unit=" (bytes/s)"
        )
        check_seconds(self.speed_time, "speed window (--speed-time)")
        _require(
            isinstance(self.max_file_size, int) and 1 <= self.max_file_size <= 1 << 50,
            f"max file size (--max-file-size) must be 1 B..1 PiB, got {self.max_file_size!r}",
        )
        _require(
            self.tls in TLS_MODES,
            f"TLS mode (--tls) must be one of {', '.join(TLS_MODES)}, got {self.tls!r}",
        )
        _require(
            1 <= self.concurrency <= 256,
            f"concurrency must be 1..256 (--concurrency), got {self.concurrency}",
        )
        check_number(self.rate, "rate", low=0.0, high=1e6, low_ok=False, unit=" (requests/s, --rate)")
        if self.user_agent is not None:
            check_text(self.user_agent, "user agent (--user-agent)")
