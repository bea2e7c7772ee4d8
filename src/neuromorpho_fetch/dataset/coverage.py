"""Coverage: per archive, the neuron count the server reports against what the mirror holds.

So that "this archive is complete" is a checked statement, not a hope: the server's count comes from
``/api/neuron/partition/archive`` or a select's ``page.totalElements`` (the lead's run passes it in), the
held count from the catalogue (neurons catalogued and not gone upstream, and of those the ones with at
least one file on disk).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ArchiveCoverage", "coverage_status", "read_coverage", "update_coverage"]


@dataclass(frozen=True, slots=True)
class ArchiveCoverage:
    archive: str
    server: int | None  # None: the server was not asked this run
    held: int
    with_files: int

    @property
    def status(self) -> str:
        return coverage_status(self.server, self.held, self.with_files)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def coverage_status(server: int | None, held: int, with_files: int) -> str:
    """``complete`` (every neuron the server counts is held with a file), ``partial``, ``ahead``
    (more held than the server counts: neurons removed upstream not yet flagged) or ``unknown``."""
    if server is None:
        return "unknown"
    if held > server:
        return "ahead"
    if held == server and with_files == held:
        return "complete"
    return "partial"


_HELD = """
SELECT n.archive, COUNT(*),
       SUM(EXISTS (SELECT 1 FROM files f WHERE f.neuron_id = n.neuron_id))
FROM neurons n WHERE n.gone_upstream = 0 AND n.archive IN ({marks}) GROUP BY n.archive
"""


def update_coverage(conn: sqlite3.Connection, server_counts: Mapping[str, int]) -> None:
    """Record the server's counts next to the held counts (inside the caller's transaction)."""
    names = list(server_counts)
    held: dict[str, tuple[int, int]] = {}
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        for archive, n, with_files in conn.execute(_HELD.format(marks=",".join("?" * len(chunk))), chunk):
            held[archive] = (n, with_files or 0)
    now = time.time()
    conn.executemany(
        "INSERT INTO coverage (archive, server_count, held, with_files, checked_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(archive) DO UPDATE SET server_count=excluded.server_count, held=excluded.held, "
        "with_files=excluded.with_files, checked_at=excluded.checked_at",
        [(a, int(server_counts[a]), *held.get(a, (0, 0)), now) for a in names],
    )


def read_coverage(conn: sqlite3.Connection, archives: list[str] | None = None) -> list[ArchiveCoverage]:
    """The recorded coverage rows (all, or those of ``archives``), by archive name."""
    rows = conn.execute("SELECT archive, server_count, held, with_files FROM coverage ORDER BY archive")
    return [ArchiveCoverage(*row) for row in rows if archives is None or row[0] in archives]
