"""The one table of client settings: frozen configuration objects, their validation, and one overlay.

Everything that shapes a client's behaviour sits in :class:`ClientConfig` (with its :class:`RetryPolicy`
and :class:`Timeouts`), so a run can be described, logged and compared as a value. Each object validates
itself when built and raises :class:`UsageError` with a one-line message, so neither the library nor the
CLI ever shows a traceback for a bad value; the checks (:func:`check_number`, :func:`check_seconds`,
:func:`check_text`, :func:`parse_size`) live here and nowhere else, and the CLI's argparse types call
them.

:data:`SETTINGS` is the table of every setting a user can name: its keyword (``rate``, ``idle_timeout``,
...), its CLI flag (the keyword with dashes), how it is read from and applied to a config, and its help
text. :func:`overlay` is the one way to apply named settings to a config: ``NeuroMorpho(rate=2)``, the
CLI's flags and tests all go through it, and ``--help`` quotes the defaults from the same table.

Two timeouts, two names, everywhere (issue 16: ``timeout`` meant a whole attempt in the library and the
longest silence on the command line): ``idle_timeout`` is the longest *silence* on a connection (the CLI's
``--idle-timeout``, also spelled ``--timeout``), ``attempt_timeout`` bounds one whole attempt of one
request, body included. ``header_timeout`` bounds the wait for the status line and headers (a server
trickling its headers a byte at a time is never silent, issue 15 item 6).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .errors import UsageError

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_SECONDS",
    "SETTINGS",
    "TLS_MODES",
    "ClientConfig",
    "RetryPolicy",
    "Setting",
    "Timeouts",
    "check_number",
    "check_seconds",
    "check_text",
    "default_base_url",
    "format_size",
    "normalise_base_url",
    "overlay",
    "parse_size",
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

    NaN fails every comparison, so it is named first: ``nan < 0`` is False and used to slip through.
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


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
#: The largest size any setting may name.
MAX_SIZE = 1 << 50


def parse_size(text: str, what: str) -> int:
    """Bytes, or a number with K, M, G or T (powers of 1024; ``B``/``iB`` optional): ``500M``, ``2G``."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS else ""
    try:
        number = float(cleaned[: len(cleaned) - len(unit)])
    except ValueError:
        raise UsageError(f"{what}: not a size: {text!r} (write e.g. 500M or 2G)") from None
    if not number >= 1 or number * _SIZE_UNITS[unit] > MAX_SIZE:
        raise UsageError(f"{what} must be 1 B..1024T, got {text!r}")
    return int(number * _SIZE_UNITS[unit])


def format_size(size: int) -> str:
    """The shortest exact spelling :func:`parse_size` reads back (``256M``)."""
    unit = next(u for u in ("T", "G", "M", "K", "") if size % _SIZE_UNITS[u] == 0)
    return f"{size // _SIZE_UNITS[unit]}{unit}"


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
        _require(
            isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0,
            f"retries must be a whole number >= 0 (--retries), got {retries!r}",
        )
        return cls(retries + 1, **changes)


_TIMEOUT_FLAGS = {
    "connect": "--idle-timeout",
    "headers": "--header-timeout",
    "idle": "--idle-timeout",
    "attempt": "--attempt-timeout",
}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The four limits of one request, each with its own name (module docstring).

    ``connect``: to open a connection (TCP and TLS); ``headers``: from the request sent to the last
    header received; ``idle``: the longest silence between two pieces of a body (not how long a large
    file may take); ``attempt``: one whole attempt, body included.
    """

    connect: float = 30.0
    headers: float = 60.0
    idle: float = 60.0
    attempt: float = 600.0

    def __post_init__(self) -> None:
        for name, flag in _TIMEOUT_FLAGS.items():
            check_seconds(getattr(self, name), f"{name} timeout ({flag})")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What a :class:`~neuromorpho_fetch.client.NeuroMorpho` client needs to know.

    ``rate`` is requests per second across every call of the client (NeuroMorpho.Org asks for about
    5); ``concurrency`` is the most requests in flight at once.

    Bounds on every body (``transport.iter_body``): a body slower than ``lowest_speed`` bytes/s over a
    window of ``speed_time`` seconds is a transient failure (curl's ``--speed-limit``/``--speed-time``;
    ``0`` turns it off). ``max_file_size`` is the most one body may have, declared or streamed (a
    permanent failure of that file), and ``max_in_flight`` the most all bodies being received at once
    may hold together (a transient failure of the body that would pass it), so a server sending endless
    bodies to every worker cannot fill the disk (issue 15 item 10). The defaults, and the data they are
    sized against, are in ``docs/cli.md``: the largest file NeuroMorpho.Org is known to serve is about
    14 MB, a CNG file averages about 70 KB (18 GB over 264,771 cells, reference section D).

    ``tls``: ``auto`` tries a stock modern context first and falls back, per host, to the legacy-DH
    one only when the handshake fails with ``DH_KEY_TOO_SMALL``; ``modern`` and ``legacy`` force one.
    Certificates are verified in every mode unless ``insecure``. ``proxy``: ``None`` takes the proxy
    from the environment as curl does (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``),
    ``"none"`` uses none, a URL uses that one for every request (:mod:`neuromorpho_fetch.proxy`).
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
    max_file_size: int = 256 << 20
    max_in_flight: int = 1 << 30
    tls: str = "auto"
    proxy: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))
        _check_base_url(self.base_url)
        check_number(
            self.lowest_speed, "lowest speed (--lowest-speed)", low=0.0, high=1e12, unit=" (bytes/s)"
        )
        check_seconds(self.speed_time, "speed window (--speed-time)")
        for name, flag in (("max_file_size", "--max-file-size"), ("max_in_flight", "--max-in-flight")):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SIZE,
                f"{name.replace('_', ' ')} ({flag}) must be 1 B..1024T, got {value!r}",
            )
        _require(
            self.tls in TLS_MODES,
            f"TLS mode (--tls) must be one of {', '.join(TLS_MODES)}, got {self.tls!r}",
        )
        _require(
            isinstance(self.concurrency, int) and 1 <= self.concurrency <= 256,
            f"concurrency must be 1..256 (--concurrency), got {self.concurrency}",
        )
        check_number(self.rate, "rate", low=0.0, high=1e6, low_ok=False, unit=" (requests/s, --rate)")
        if self.user_agent is not None:
            check_text(self.user_agent, "user agent (--user-agent)")
        if self.proxy is not None and self.proxy.lower() != "none":  # checked before it is ever used
            check_text(self.proxy, "proxy (--proxy)")
            _require(
                urlsplit(self.proxy).scheme in ("http", "https", "socks4", "socks5", "socks5h"),
                f"proxy (--proxy) must be a URL such as http://host:3128 or 'none', got {self.proxy!r}",
            )

    def with_settings(self, **settings: Any) -> ClientConfig:
        """This config with named settings applied (:func:`overlay`): ``ClientConfig().with_settings(
        rate=50, retries=3, idle_timeout=30)``."""
        return overlay(self, **settings)


# -- the table of settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting a user can name: ``name`` is the keyword (``NeuroMorpho(name=...)``,
    :func:`overlay`) and, with dashes, the CLI flag; ``kind`` says how the CLI reads it
    (``int``, ``count`` (>= 0), ``seconds``, ``positive-seconds``, ``rate``, ``speed``, ``size``,
    ``text``, ``flag``, ``choice``)."""

    name: str
    kind: str
    help: str
    get: Callable[[ClientConfig], Any]
    apply: Callable[[ClientConfig, Any], ClientConfig]
    metavar: str = ""
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _retry(cfg: ClientConfig, **changes: Any) -> ClientConfig:
    policy = cfg.retry
    if isinstance(changes.get("retries"), RetryPolicy):  # a whole policy under the everyday name
        return replace(cfg, retry=changes["retries"])
    if "retries" in changes:
        policy = RetryPolicy.from_retries(
            changes.pop("retries"),
            backoff_base=policy.backoff_base,
            backoff_max=policy.backoff_max,
            retry_after_max=policy.retry_after_max,
        )
    if "backoff_base" in changes:
        base = check_seconds(changes["backoff_base"], "--retry-wait", zero_ok=True)
        changes["backoff_max"] = max(policy.backoff_max, base)
    return replace(cfg, retry=replace(policy, **changes))


def _idle(cfg: ClientConfig, seconds: float) -> ClientConfig:
    """``--idle-timeout S``: at most ``S`` of silence (connecting, or between chunks); a slow large
    file is not cut off (the attempt deadline stays at least its default)."""
    check_seconds(seconds, "idle timeout (--idle-timeout)")
    attempt = max(cfg.timeouts.attempt, min(10 * seconds, MAX_SECONDS))
    return replace(cfg, timeouts=replace(cfg.timeouts, connect=seconds, idle=seconds, attempt=attempt))


def _attempt(cfg: ClientConfig, seconds: float) -> ClientConfig:
    """``attempt_timeout=S``: one whole attempt, body included, takes at most ``S`` (the other limits
    are lowered to it where they were longer)."""
    check_seconds(seconds, "attempt timeout (--attempt-timeout)")
    t = cfg.timeouts
    return replace(
        cfg,
        timeouts=Timeouts(
            connect=min(t.connect, seconds), headers=min(t.headers, seconds), idle=min(t.idle, seconds),
            attempt=seconds,
        ),
    )  # fmt: skip


def _set(name: str) -> Callable[[ClientConfig, Any], ClientConfig]:
    return lambda cfg, value: replace(cfg, **{name: value})


SETTINGS: tuple[Setting, ...] = (
    Setting("base_url", "text", "server (default $NEUROMORPHO_BASE_URL or https://neuromorpho.org)",
            lambda c: c.base_url, lambda c, v: replace(c, base_url=normalise_base_url(v)), "URL"),
    Setting("concurrency", "int", "requests in flight", lambda c: c.concurrency, _set("concurrency"), "N"),
    Setting("rate", "rate", "requests per second, all kinds", lambda c: c.rate, _set("rate"), "R"),
    Setting("retries", "count", "retries per request after the first attempt (or a RetryPolicy)",
            lambda c: c.retry.retries, lambda c, v: _retry(c, retries=v), "N"),
    Setting("retry_wait", "seconds", "base of the exponential backoff between retries (s)",
            lambda c: c.retry.backoff_base, lambda c, v: _retry(c, backoff_base=v), "S"),
    Setting("retry_after_max", "seconds", "longest pause honoured when the server sends Retry-After (s)",
            lambda c: c.retry.retry_after_max, lambda c, v: _retry(c, retry_after_max=v), "S"),
    Setting("idle_timeout", "positive-seconds",
            "longest silence on a connection (connecting, or between two chunks) before it counts as "
            "stalled (s); not a limit on how long a large file may take",
            lambda c: c.timeouts.idle, _idle, "S", aliases=("--timeout",)),
    Setting("header_timeout", "positive-seconds",
            "longest wait for a response's status line and headers once the request is sent (s)",
            lambda c: c.timeouts.headers,
            lambda c, v: replace(c, timeouts=replace(c.timeouts, headers=v)), "S"),
    Setting("attempt_timeout", "positive-seconds", "longest one attempt of one request may take, body "
            "included (s)", lambda c: c.timeouts.attempt, _attempt, "S"),
    Setting("lowest_speed", "speed", "a body slower than this over --speed-time is retried; 0 turns the "
            "check off (bytes/s)", lambda c: c.lowest_speed, _set("lowest_speed"), "BYTES/S"),
    Setting("speed_time", "positive-seconds", "window over which --lowest-speed is measured (s)",
            lambda c: c.speed_time, _set("speed_time"), "S"),
    Setting("max_file_size", "size", "largest file accepted, e.g. 500M or 2G; a larger one fails and is "
            "not retried", lambda c: c.max_file_size, _set("max_file_size"), "SIZE"),
    Setting("max_in_flight", "size", "most bytes all downloads in progress may hold together; a body "
            "that would pass it is retried later", lambda c: c.max_in_flight, _set("max_in_flight"), "SIZE"),
    Setting("ca_file", "text", "extra CA certificates to trust (PEM)", lambda c: c.ca_file, _set("ca_file"),
            "PEM"),
    Setting("insecure", "flag", "do not verify TLS certificates (last resort)", lambda c: c.insecure,
            _set("insecure")),
    Setting("tls", "choice", "TLS level: auto tries modern TLS and falls back per host to the legacy "
            "1024-bit DH key only when the server needs it; modern or legacy force one",
            lambda c: c.tls, _set("tls"), choices=TLS_MODES),
    Setting("proxy", "text", "proxy URL for every request, or 'none'; default: HTTPS_PROXY, HTTP_PROXY, "
            "ALL_PROXY and NO_PROXY from the environment", lambda c: c.proxy, _set("proxy"), "URL"),
    Setting("user_agent", "text", "identify your project to the server", lambda c: c.user_agent,
            _set("user_agent"), "TEXT"),
)  # fmt: skip

#: The settings by keyword.
SETTING: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


#: Whole objects that may be given under their :class:`ClientConfig` field names.
_OBJECTS = ("retry", "timeouts")


def overlay(base: ClientConfig | None = None, /, **settings: Any) -> ClientConfig:
    """``base`` (default: :class:`ClientConfig`'s defaults) with the named settings that are given
    (``None`` is "not given"): the one way named settings become a config.

    Names are those of :data:`SETTINGS` (``rate``, ``retries``, ``idle_timeout`` ...), or ``retry`` and
    ``timeouts`` with a whole :class:`RetryPolicy` / :class:`Timeouts`. An unknown name is a
    :class:`UsageError` naming the known ones; each value is validated by the config it produces.
    """
    cfg = base if base is not None else ClientConfig()
    for name, value in settings.items():
        if value is None:
            continue
        setting = SETTING.get(name)
        if setting is not None:
            cfg = setting.apply(cfg, value)
        elif name == "retry" and isinstance(value, RetryPolicy):
            cfg = replace(cfg, retry=value)
        elif name == "timeouts" and isinstance(value, Timeouts):
            cfg = replace(cfg, timeouts=value)
        else:
            known = ", ".join([*SETTING, *_OBJECTS])
            raise UsageError(f"unknown client setting {name}={value!r}; known: {known}")
    return cfg
