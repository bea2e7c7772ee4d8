"""What a mirror run is asked to do: :class:`MirrorOptions`, a plain frozen dataclass holding a
:class:`~neuromorpho_fetch.config.ClientConfig`.

The client's settings are not copied here: ``options.config`` *is* the config the run's client is built
from (the one table of defaults, :mod:`neuromorpho_fetch.config`); named settings are applied to it with
:func:`~neuromorpho_fetch.config.overlay`, the one way to do so. The numeric checks are config.py's.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import ClientConfig, check_seconds
from ..errors import UsageError
from ..models import Version
from ..query import Query

#: Where a mirror goes when ``--out`` is not given.
DEFAULT_OUT = "neuromorpho"


@dataclass(frozen=True, slots=True)
class MirrorOptions:
    """Everything a mirror run needs, validated once (``UsageError`` with a one-line message).

    What: ``archives`` (any case), ``all_archives``, ``query`` terms (``field:value``, AND-ed across
    fields) or ``retry_failed`` (a report whose failures are fetched again, and nothing else). Where:
    ``out`` (default ``./neuromorpho``; for ``retry_failed``, the report's own mirror). How the server is
    talked to: ``config``.
    """

    out: Path | None = None
    archives: tuple[str, ...] = ()
    all_archives: bool = False
    query: tuple[str, ...] = ()
    limit: int | None = None
    versions: tuple[Version, ...] = (Version.CNG,)
    morphometry: bool = False
    pvec: bool = False
    config: ClientConfig = field(default_factory=ClientConfig)
    dry_run: bool = False
    verify: bool = False
    refresh: bool = False
    delete_gone: bool = False
    report_path: Path | None = None
    retry_failed: Path | None = None
    max_duration: float | None = None
    cool_down: float = 30.0
    queue_size: int | None = None
    rebuild_state: bool = False

    def __post_init__(self) -> None:
        # Accept what a caller naturally passes (a str path, a list of names), store one shape.
        for name, kind in (("out", Path), ("report_path", Path), ("retry_failed", Path)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                object.__setattr__(self, name, kind(value))
        for name in ("archives", "query", "versions"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
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
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
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

    def describe(self) -> str:
        """JSON of the options for the ``runs`` table (what a later reader needs to know)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["config"] = asdict(self.config)
        data["versions"] = [v.value for v in self.versions]
        return json.dumps(data, default=str)


#: The longest grace ``--max-duration`` gives files still in flight before they are cancelled.
DEADLINE_GRACE_MAX = 10.0


def deadline_grace(max_duration: float) -> float:
    """Grace after ``--max-duration`` for files in flight: ``min(10 s, max_duration / 10)``.

    Issue 10: ``--max-duration 10s`` was still running at 60 s, because a file in flight was waited
    for however slowly it came. A tenth of the budget lets an ordinary file that is nearly done land
    (most take well under a second) without letting one trickling file hold the run hostage.
    """
    return min(DEADLINE_GRACE_MAX, max_duration / 10)


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
