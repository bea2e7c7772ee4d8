"""What the dataset step was told (:class:`FileFact`) and what it did (:class:`DatasetSummary`), as values.

Apart from :func:`~.finalize.finalize` so that the run's summary and report can hold them without the
finalize machinery, and so that each module stays small.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import CATALOGUE_FILE
from ..state import complete_files
from .changes import ChangeSet
from .coverage import ArchiveCoverage, Holdings

#: Records per batch: one ``IN (...)`` lookup and one ``executemany`` each.
BATCH = 500


@dataclass(frozen=True, slots=True)
class FileFact:
    """A file the run holds, with what the mirror knows of it (from its state row).

    ``path`` is relative to the root (``<archive folder>/<version>/<file>``, as ``relative_path``
    makes it); ``verified`` is true only when the hash was checked against the server's bytes.
    """

    path: str
    size: int
    sha256: str
    fetched_at: float | None = None
    verified: bool = False


@dataclass(slots=True)
class DatasetSummary:
    """What :func:`finalize` did, for the run's summary and report."""

    root: Path
    run: int
    rebuilt: bool
    neurons: int
    gone: int
    files: int
    manifests_written: int
    publications: int | None  # None: citations were up to date, not rewritten
    changes: ChangeSet
    coverage: list[ArchiveCoverage] = field(default_factory=list)
    holdings: Holdings | None = None
    #: The archives whose listing this run had whole and complete (coverage's "complete" needs it).
    listing_complete: list[str] = field(default_factory=list)
    skipped_lines: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human lines for the end-of-run summary."""
        out = [
            f"catalogue: {self.neurons} neurons ({self.gone} gone upstream, kept), {self.files} files"
            f"{' (rebuilt)' if self.rebuilt else ''}; {self.manifests_written} manifests written",
            self.changes.summary(),
        ]
        if self.holdings is not None:
            out.insert(1, f"dataset: {self.holdings.sentence()}")
        out.extend(cov.line() for cov in self.coverage)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "catalogue": str(self.root / CATALOGUE_FILE),
            "run": self.run,
            "rebuilt": self.rebuilt,
            "neurons": self.neurons,
            "gone": self.gone,
            "files": self.files,
            "manifests_written": self.manifests_written,
            "publications": self.publications,
            "changes": self.changes.to_json(self.run, time.time()),
            "coverage": [c.to_json() for c in self.coverage],
            "holdings": self.holdings.to_json() if self.holdings is not None else None,
            "listing_complete": self.listing_complete,
            "skipped_lines": self.skipped_lines,
            "seconds": round(self.seconds, 3),
        }


def facts_from_state(state_db: Path) -> Iterator[FileFact]:
    """Every ``complete`` file of a state store (``.neuromorpho-fetch/state.sqlite``), as facts.

    For the run's end when it does not collect facts itself: the state store already holds each file's
    size and hash. Read-only and streamed; the query is the state store's own
    (:func:`~neuromorpho_fetch.state.complete_files`: only ``state.py`` queries it).
    """
    return (FileFact(*row) for row in complete_files(state_db, read_only=True))
