"""What a mirror run is asked to do: :class:`MirrorOptions`, validated once, holding a :class:`ClientConfig`.

The client's settings are not copied here: ``options.config`` *is* the :class:`ClientConfig` the run's
client is built from (the one table of defaults). The keyword shorthands (``concurrency=8``,
``retries=3``, ``timeout=30`` ...) are folded into it when the options are built, so there is one value
to validate, log and compare, and ``--help`` quotes the same defaults the library uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from ..client import NeuroMorpho
from ..config import ClientConfig, RetryPolicy, Timeouts, check_seconds, normalise_base_url
from ..errors import UsageError
from ..models import Version
from ..query import Query

if TYPE_CHECKING:
    from ..retry import RetryEvent

__all__ = ["ClientShorthands", "MirrorOptions", "client_config", "parse_duration"]


class ClientShorthands(TypedDict, total=False):
    """The client flags as keywords; each one given (not None) changes the :class:`ClientConfig`."""

    base_url: str | None
    concurrency: int | None
    rate: float | None
    retries: int | None
    retry_wait: float | None
    retry_after_max: float | None
    timeout: float | None
    ca_file: str | None
    insecure: bool | None
    user_agent: str | None
    lowest_speed: float | None
    speed_time: float | None
    max_file_size: int | None
    tls: str | None


def client_config(base: ClientConfig | None = None, **flags: Unpack[ClientShorthands]) -> ClientConfig:
    """``base`` (default: :class:`ClientConfig`'s defaults) with the flags that were given (not None).

    ``timeout`` is the CLI's: the longest silence (:meth:`Timeouts.idle`), not a whole attempt.
    """
    cfg = base if base is not None else ClientConfig()
    base_url, timeout = flags.get("base_url"), flags.get("timeout")
    retries, retry_wait = flags.get("retries"), flags.get("retry_wait")
    retry_after_max = flags.get("retry_after_max")
    changes: dict[str, Any] = {
        name: value
        for name in (
            "concurrency",
            "rate",
            "ca_file",
            "insecure",
            "user_agent",
            "lowest_speed",
            "speed_time",
            "max_file_size",
            "tls",
        )
        if (value := flags.get(name)) is not None
    }
    if base_url is not None:
        changes["base_url"] = normalise_base_url(base_url)
    if timeout is not None:
        changes["timeouts"] = Timeouts.idle(timeout)
    policy = cfg.retry
    if retries is not None:
        policy = RetryPolicy.from_retries(
            retries,
            backoff_base=policy.backoff_base,
            backoff_max=policy.backoff_max,
            retry_after_max=policy.retry_after_max,
        )
    if retry_wait is not None:
        if retry_wait < 0:
            raise UsageError(f"--retry-wait must be >= 0 seconds, got {retry_wait}")
        policy = replace(policy, backoff_base=retry_wait, backoff_max=max(policy.backoff_max, retry_wait))
    if retry_after_max is not None:
        policy = replace(policy, retry_after_max=retry_after_max)
    if policy != cfg.retry:
        changes["retry"] = policy
    return replace(cfg, **changes) if changes else cfg


@dataclass(frozen=True, slots=True, init=False)
class MirrorOptions:
    """Everything a mirror run needs, validated once (``UsageError`` with a one-line message).

    What: ``archives`` (any case), ``all_archives``, ``query`` terms (``field:value``, AND-ed across
    fields) or ``retry_failed`` (a report whose failures are fetched again, and nothing else). How the
    server is talked to: ``config``, a :class:`ClientConfig`, or the shorthands ``base_url``,
    ``concurrency``, ``rate``, ``retries``, ``retry_wait``, ``retry_after_max``, ``timeout`` (longest
    silence), ``ca_file``, ``insecure``, ``user_agent``, which are applied to it.
    """

    out: Path
    archives: tuple[str, ...]
    all_archives: bool
    query: tuple[str, ...]
    limit: int | None
    versions: tuple[Version, ...]
    morphometry: bool
    config: ClientConfig
    dry_run: bool
    verify: bool
    refresh: bool
    delete_gone: bool
    report_path: Path | None
    retry_failed: Path | None
    max_duration: float | None
    cool_down: float
    queue_size: int | None
    rebuild_state: bool

    def __init__(
        self,
        out: Path = Path("neuromorpho"),
        archives: tuple[str, ...] = (),
        all_archives: bool = False,
        query: tuple[str, ...] = (),
        limit: int | None = None,
        versions: tuple[Version, ...] = (Version.CNG,),
        morphometry: bool = False,
        config: ClientConfig | None = None,
        dry_run: bool = False,
        verify: bool = False,
        refresh: bool = False,
        delete_gone: bool = False,
        report_path: Path | None = None,
        retry_failed: Path | None = None,
        max_duration: float | None = None,
        cool_down: float = 30.0,
        queue_size: int | None = None,
        rebuild_state: bool = False,
        **client: Unpack[ClientShorthands],
    ) -> None:
        cfg = client_config(config, **client)
        values = {
            "out": Path(out),
            "archives": tuple(archives),
            "all_archives": all_archives,
            "query": tuple(query),
            "limit": limit,
            "versions": tuple(versions),
            "morphometry": morphometry,
            "config": cfg,
            "dry_run": dry_run,
            "verify": verify,
            "refresh": refresh,
            "delete_gone": delete_gone,
            "report_path": report_path,
            "retry_failed": retry_failed,
            "max_duration": max_duration,
            "cool_down": cool_down,
            "queue_size": queue_size,
            "rebuild_state": rebuild_state,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        self._validate()

    def _validate(self) -> None:
        what = bool(self.archives) + self.all_archives + (self.retry_failed is not None)
        if self.retry_failed is not None and (self.archives or self.all_archives or self.query):
            raise UsageError(
                "--retry-failed fetches exactly a report's failures: drop --archive/--all/--query"
            )
        if self.archives and self.all_archives:
            raise UsageError("--archive and --all exclude each other")
        if not what and not self.query:
            raise UsageError(
                "say what to mirror: --archive NAME, --all, --query field:value or --retry-failed"
            )
        if self.query:
            Query.parse(self.query)  # a malformed term (or an OR) is refused before anything starts
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be >= 1, got {self.limit}")
        if not self.versions:
            raise UsageError("no file versions selected")
        if self.max_duration is not None:
            check_seconds(self.max_duration, "--max-duration")
        check_seconds(self.cool_down, "--cool-down", zero_ok=True)
        if self.rebuild_state and self.dry_run:
            raise UsageError("--rebuild-state writes a new state store: it cannot be used with --dry-run")
        if self.queue_size is not None and not 1 <= self.queue_size <= 1_000_000:
            raise UsageError(f"queue_size must be 1..1000000, got {self.queue_size}")

    # -- read-through views of the client config (the old attribute names) -----------------------

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def concurrency(self) -> int:
        return self.config.concurrency

    @property
    def rate(self) -> float:
        return self.config.rate

    @property
    def retries(self) -> int:
        return self.config.retry.retries

    @property
    def retry_wait(self) -> float:
        return self.config.retry.backoff_base

    @property
    def retry_after_max(self) -> float:
        return self.config.retry.retry_after_max

    @property
    def timeout(self) -> float:
        """The longest silence (``--timeout``)."""
        return self.config.timeouts.read

    @property
    def ca_file(self) -> str | None:
        return self.config.ca_file

    @property
    def insecure(self) -> bool:
        return self.config.insecure

    @property
    def user_agent(self) -> str | None:
        return self.config.user_agent

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.config.retry

    @property
    def timeouts(self) -> Timeouts:
        return self.config.timeouts

    def client(self, on_retry: Callable[[RetryEvent], None] | None = None) -> NeuroMorpho:
        """The client these options describe (not yet open: use it with ``async with``)."""
        return NeuroMorpho(config=self.config, on_retry=on_retry)

    def describe(self) -> str:
        """JSON of the options for the ``runs`` table (what a later reader needs to know)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["config"] = asdict(self.config)
        data["versions"] = [v.value for v in self.versions]
        return json.dumps(data, default=str)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``7h``, ``30m``, ``90s``, ``1h30m``, ``45`` (seconds) → seconds; anything else is a usage error."""
    cleaned = text.strip().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(cleaned):
        match = _DURATION.match(cleaned, pos)
        if match is None or match.end() == pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2).lower()]
        pos = match.end()
    if not cleaned or pos != len(cleaned) or total <= 0:
        raise UsageError(f"--max-duration: cannot read {text!r}; write e.g. 7h, 30m, 90s or 1h30m")
    return check_seconds(total, "--max-duration")
