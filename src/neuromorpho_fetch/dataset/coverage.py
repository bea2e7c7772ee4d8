"""Coverage: per archive, the neuron count the server reports against what the mirror holds.

So that "this archive is complete" is a checked statement, not a hope: the server's count comes from
``/api/neuron/partition/archive`` or a select's ``page.totalElements`` (the lead's run passes it in), the
held count from the catalogue (neurons catalogued and not gone upstream, and of those the ones whose
files the state store holds complete). "complete" also needs the run's listing of the archive to have been
complete (issue 17 item 2: an archive with 36 failed files was once called complete).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Set
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ArchiveCoverage:
    archive: str
    server: int | None  # None: the server was not asked this run
    held: int  # neurons catalogued and not gone upstream
    with_files: int  # of those, neurons whose files are present (the state store says complete)
    failed: int = 0  # of the others, neurons with a file asked for and not got (failed, or a 404)
    listing_complete: bool = False  # this run's listing of the archive was whole and complete

    @property
    def status(self) -> str:
        return coverage_status(self.server, self.held, self.with_files, self.failed, self.listing_complete)

    def line(self) -> str:
        """The summary's coverage line: ``coverage A: complete (600 of 600 neurons with files)``."""
        if self.status == "complete":
            return (
                f"coverage {self.archive}: complete ({self.with_files} of {self.server} neurons with files)"
            )
        return f"coverage {self.archive}: {self.status}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def coverage_status(
    server: int | None, held: int, with_files: int, failed: int = 0, listing_complete: bool = False
) -> str:
    """``complete`` only when the listing was complete, the server's count is held and every held
    neuron's files are present; ``ahead`` (more held than the server counts: removals not yet
    flagged); ``unknown`` (no count); else ``partial: N of M, K failed`` (N neurons with files)."""
    if server is None:
        return "unknown"
    if held > server:
        return "ahead"
    if listing_complete and held == server and with_files == held:
        return "complete"
    unlisted = "" if listing_complete else ", listing incomplete"
    return f"partial: {with_files} of {server}, {failed} failed{unlisted}"


@dataclass(frozen=True, slots=True)
class Holdings:
    """What the mirror holds, counted one way everywhere (CITATION.md, the summary, the report):
    neurons catalogued (not gone upstream), of those with files present, and why the rest have none."""

    catalogued: int
    with_files: int
    failed: int  # a file of theirs failed
    unfinished: int  # a download started and did not finish (a run stopped mid-file)
    missing: int = 0  # the server answered that it has no such file (a 404 after the retries)

    @property
    def without_files(self) -> int:
        return self.catalogued - self.with_files

    @property
    def not_fetched(self) -> int:
        """Without files and no attempt recorded: not reached yet (a run stopped or limited) or not asked."""
        return self.without_files - self.failed - self.unfinished - self.missing

    def sentence(self) -> str:
        """``600 neurons with files present; 561 more catalogued without files (3 failed, ...)``."""
        text = f"{self.with_files} neurons with files present"
        if self.without_files:
            why = [f"{self.failed} failed"] if self.failed else []
            why += [f"{self.missing} unavailable upstream"] if self.missing else []
            why += [f"{self.unfinished} unfinished"] if self.unfinished else []
            why += [f"{self.not_fetched} not fetched yet"] if self.not_fetched else []
            text += f"; {self.without_files} more catalogued without files ({', '.join(why)})"
        return text

    def to_json(self) -> dict[str, int]:
        return {
            "catalogued": self.catalogued,
            "with_files": self.with_files,
            "without_files": self.without_files,
            "failed": self.failed,
            "unfinished": self.unfinished,
            "missing_upstream": self.missing,
            "not_fetched": self.not_fetched,
        }


#: Per neuron not gone upstream, its one state, in this order of precedence: 0 a file present, 1 a failed
#: file, 2 an unfinished one, 3 one the server does not have, 4 none of these (a neuron with a failed
#: file and a missing one counts as failed: asking again may help). ``CASE`` asks the questions in turn and
#: stops at the first yes, so a neuron with files (nearly every one) costs one index search. The earlier
#: form, four ``EXISTS`` columns summed outside, was flattened by SQLite into ten searches per neuron
#: (each column re-asked wherever the sums named it): 11 of the 14 ms of a no-change re-run's end at
#: 5,000 neurons (benchmark scenario 4).
_HAS_PROBLEM = "EXISTS (SELECT 1 FROM file_problems p WHERE p.neuron_id = n.neuron_id AND p.reason = '{}')"
_PER_NEURON = f"""
SELECT n.archive,
       CASE WHEN EXISTS (SELECT 1 FROM files f WHERE f.neuron_id = n.neuron_id) THEN 0
            WHEN {_HAS_PROBLEM.format("failed")} THEN 1
            WHEN {_HAS_PROBLEM.format("pending")} THEN 2
            WHEN {_HAS_PROBLEM.format("missing")} THEN 3
            ELSE 4 END AS state
FROM neurons n WHERE n.gone_upstream = 0
"""
#: Neurons per archive and state (grouped on the state, so each neuron's state is computed once).
_TALLY = f"SELECT archive, state, COUNT(*) FROM ({_PER_NEURON}) GROUP BY archive, state"


def _tally(conn: sqlite3.Connection) -> dict[str, tuple[int, int, int, int, int]]:
    """Per archive: catalogued, with files, and of those without, failed, unfinished, missing."""
    counts: dict[str, list[int]] = {}  # catalogued, then one count per state (state 4 is not returned)
    for archive, state, n in conn.execute(_TALLY):
        row = counts.setdefault(archive, [0] * 6)
        row[0] += n
        row[1 + state] += n
    return {a: (r[0], r[1], r[2], r[3], r[4]) for a, r in counts.items()}


def holdings(conn: sqlite3.Connection) -> Holdings:
    """The mirror's :class:`Holdings`, from the catalogue (files present as the state store said)."""
    totals = [sum(col) for col in zip(*_tally(conn).values(), strict=True)] or [0, 0, 0, 0, 0]
    return Holdings(*totals)


def update_coverage(
    conn: sqlite3.Connection, server_counts: Mapping[str, int], listed_complete: Set[str] = frozenset()
) -> None:
    """Record the server's counts next to the held counts (inside the caller's transaction);
    ``listed_complete``: the archives whose listing this run had whole and complete."""
    held = _tally(conn)
    now = time.time()
    conn.executemany(
        "INSERT INTO coverage (archive, server_count, held, with_files, failed, listing_complete, "
        "checked_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(archive) DO UPDATE SET server_count=excluded.server_count, held=excluded.held, "
        "with_files=excluded.with_files, failed=excluded.failed, "
        "listing_complete=excluded.listing_complete, checked_at=excluded.checked_at",
        [
            (a, int(server_counts[a]), n, present, failed + missing, int(a in listed_complete), now)
            for a in server_counts
            for n, present, failed, _, missing in [held.get(a, (0, 0, 0, 0, 0))]
        ],
    )


def read_coverage(conn: sqlite3.Connection, archives: list[str] | None = None) -> list[ArchiveCoverage]:
    """The recorded coverage rows (all, or those of ``archives``), by archive name."""
    rows = conn.execute(
        "SELECT archive, server_count, held, with_files, failed, listing_complete FROM coverage "
        "ORDER BY archive"
    )
    return [
        ArchiveCoverage(a, s, h, w, f, bool(c))
        for a, s, h, w, f, c in rows
        if archives is None or a in archives
    ]
