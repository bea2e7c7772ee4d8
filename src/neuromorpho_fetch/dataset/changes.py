"""What changed upstream since the last run: the decision (pure) and ``CHANGES.jsonl`` (the record).

One JSON object per run, appended to ``<root>/CHANGES.jsonl``::

    {"run": 3, "time": "2026-11-30T13:02:11Z", "baseline": false,
     "counts": {"new": 1, "gone": 1, "returned": 0, "changed": 1, "files_changed": 0},
     "new": [{"neuron_id": 401, "neuron_name": "...", "archive": "..."}],
     "gone": [...], "returned": [...],
     "changed": [{"neuron_id": 7, "neuron_name": "...", "archive": "...", "fields": ["species"]}],
     "files_changed": ["siegert/CNG/x.CNG.swc"], "truncated": false}

``baseline`` is true for the run that built the catalogue from nothing (there is no "last run" to
compare with; only the counts are written). Lists are capped at :data:`MAX_LISTED` entries each
(``truncated`` says so); the catalogue has every row (``first_run``, ``changed_run``, ``gone_run``).

The catalogue's ``changes`` table is the source of truth, written in the same transaction as the rows
it describes; ``CHANGES.jsonl`` is re-exported from it (atomically) whenever its line count differs, so
a run killed between the two leaves nothing lost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, sweep_temp
from ..jsonio import loads
from ..paths import CHANGES_FILE

#: Per kind of change, how many neurons a ``CHANGES.jsonl`` line names (the counts are always exact).
MAX_LISTED = 10_000
#: Keys that are not metadata: ``_links`` holds URLs of the host that answered (an emulator's port, a
#: proxy), which would flag every record as changed after a change of base URL.
IGNORED_KEYS = frozenset({"_links"})


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Sorted names of the fields whose values differ (a key present on one side only counts)."""
    keys = (set(old) | set(new)) - IGNORED_KEYS
    missing = object()
    return tuple(sorted(k for k in keys if old.get(k, missing) != new.get(k, missing)))


@dataclass(slots=True)
class ChangeSet:
    """The changes of one run; counts are exact, lists capped at :data:`MAX_LISTED`."""

    baseline: bool = False
    new: list[dict[str, Any]] = field(default_factory=list)
    gone: list[dict[str, Any]] = field(default_factory=list)
    returned: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"new": 0, "gone": 0, "returned": 0, "changed": 0, "files_changed": 0}
    )

    def add(self, kind: str, item: Any) -> None:
        self.counts[kind] += 1
        listed: list[Any] = getattr(self, kind)
        if not self.baseline and len(listed) < MAX_LISTED:
            listed.append(item)

    @property
    def truncated(self) -> bool:
        return any(len(getattr(self, kind)) < n for kind, n in self.counts.items())

    @property
    def any(self) -> bool:
        return any(self.counts.values())

    def to_json(self, run: int, when: float) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data: dict[str, Any] = {"run": run, "time": stamp, "baseline": self.baseline, "counts": self.counts}
        if not self.baseline:
            for kind in self.counts:
                data[kind] = getattr(self, kind)
            data["truncated"] = self.truncated
        return data

    def summary(self) -> str:
        """One line for the run's summary."""
        if self.baseline:
            return f"catalogue built: {self.counts['new']} neurons (first run, nothing to compare)"
        c = self.counts
        return (
            f"since the last run: {c['new']} new, {c['gone']} gone upstream (kept), {c['returned']} back, "
            f"{c['changed']} with changed metadata, {c['files_changed']} files changed"
        )


def export_changes(conn: sqlite3.Connection, root: Path) -> bool:
    """Make ``CHANGES.jsonl`` hold exactly the ``changes`` table's lines; True when it was rewritten."""
    target = root / CHANGES_FILE
    sweep_temp(root, CHANGES_FILE)
    (count,) = conn.execute("SELECT COUNT(*) FROM changes").fetchone()
    try:
        with open(target, "rb") as handle:
            held = sum(1 for _ in handle)
    except FileNotFoundError:
        held = -1
    if held == count:
        return False

    def lines() -> Iterator[bytes]:
        for (line,) in conn.execute("SELECT line FROM changes ORDER BY run_id"):
            yield line.encode("utf-8") + b"\n"

    atomic_write(target, lines())
    return True


def import_changes(conn: sqlite3.Connection, root: Path) -> int:
    """Take an existing ``CHANGES.jsonl`` into a catalogue being rebuilt, so its history survives.

    Without this, losing ``catalogue.sqlite`` would also lose the history on the next export. Lines keep
    their ``run`` number (a placeholder ``runs`` row keeps later ids above it); a line that is not a
    change record is kept too, under the next free number. Streamed: one line in memory at a time.
    Returns the number of lines taken.
    """
    path = root / CHANGES_FILE
    if not path.is_file():
        return 0
    taken = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            try:
                run = loads(line).get("run")
            except (ValueError, AttributeError):
                run = None
            (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()
            if not isinstance(run, int) or isinstance(run, bool) or run <= last:
                run = last + 1
            conn.execute("INSERT INTO runs (id, finished_at, neurons, files) VALUES (?, 0, 0, 0)", (run,))
            conn.execute("INSERT INTO changes VALUES (?, ?)", (run, line))
            taken += 1
    return taken


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
