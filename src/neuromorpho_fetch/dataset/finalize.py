"""The run's last step: bring the catalogue, manifests, citations and ``CHANGES.jsonl`` up to date.

One call, :func:`finalize`, after the mirror has published its ``metadata.jsonl`` files and closed its
state store. Cheap by design (the catalogue may add at most 10% to benchmark scenario 2): records are
streamed from ``metadata.jsonl`` in batches of :data:`BATCH` and compared with the stored line, so an
unchanged neuron costs one JSON parse and one indexed lookup, and only changed rows are written; the files
of the run arrive as :class:`FileFact` values with the hashes the mirror already computed (nothing is
re-hashed except, when the catalogue is built from nothing, files no fact covers). Memory is bounded by
the batch, never by the mirror's size.

Order, for crash safety: everything derived from the records (rows, gone flags, coverage, the
``changes`` line, which manifests are now stale) is one SQLite transaction; the files written from it
afterwards (each atomic) are redone by the next call if a ``kill -9`` lands between them, because the
transaction left a ``dirty_manifests`` row / a ``changes`` row / a ``citations_dirty`` flag behind.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..atomic import hash_file
from ..errors import NoSuchFileError
from ..jsonio import loads, loads_fast
from ..layout import file_name, relative_path
from ..models import Neuron, Version
from ..paths import (
    BIB_FILE,
    CATALOGUE_FILE,
    CITATION_FILE,
    MANIFEST,
    METADATA_FILE,
    MORPHOMETRY_FILE,
    STATE_DIR,
    is_plain_name,
    is_temp_name,
    safe_component,
)
from .catalogue import (
    FIELD_COLUMNS,
    SCHEMA_VERSION,
    connect,
    transaction,
)
from .changes import ChangeSet, changed_fields, dumps, export_changes, import_changes
from .citations import write_citations
from .coverage import holdings, read_coverage, update_coverage
from .fieldtypes import typed_record
from .jsonlines import line_batches, read_morphometry
from .manifests import rewrite_manifests
from .summary import DatasetSummary, FileFact

log = logging.getLogger("neuromorpho_fetch.dataset")


_COLS = ", ".join(f'"{c}"' for c in FIELD_COLUMNS)
#: Parameters: the typed fields (:func:`~.fieldtypes.typed_record`), the served line, the run.
_UPSERT_NEURON = f"""
INSERT INTO neurons ({_COLS}, record, first_run, changed_run, gone_upstream, gone_run)
VALUES ({", ".join("?" * len(FIELD_COLUMNS))}, ?, ?, ?, 0, NULL)
ON CONFLICT(neuron_id) DO UPDATE SET
    {", ".join(f'"{c}"=excluded."{c}"' for c in FIELD_COLUMNS[1:])},
    record=excluded.record, changed_run=excluded.changed_run, gone_upstream=0, gone_run=NULL
"""
_INSERT_FACT = "INSERT OR REPLACE INTO temp.incoming VALUES (?, NULL, ?, ?, ?, ?, ?, ?)"
_INSERT_INCOMING = "INSERT OR REPLACE INTO temp.incoming VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_KNOWN_NEURONS = """
UPDATE temp.incoming SET neuron_id = (SELECT f.neuron_id FROM files f WHERE f.path = incoming.path)
"""
#: Folders whose manifest this run's facts change (a new file, or a new body).
_DIRTY_FOLDERS = """
INSERT OR IGNORE INTO dirty_manifests
SELECT DISTINCT i.archive || '/' || i.version FROM temp.incoming i LEFT JOIN files f ON f.path = i.path
WHERE f.path IS NULL OR f.sha256 != i.sha256
"""
_UPSERT_FILES = """
INSERT INTO files (path, neuron_id, archive, version, size, sha256, fetched_at, verified)
SELECT path, neuron_id, archive, version, size, sha256, fetched_at, verified FROM temp.incoming WHERE true
ON CONFLICT(path) DO UPDATE SET
    neuron_id=COALESCE(excluded.neuron_id, files.neuron_id), size=excluded.size,
    fetched_at=COALESCE(excluded.fetched_at, files.fetched_at),
    verified=CASE WHEN excluded.sha256 = files.sha256 THEN MAX(files.verified, excluded.verified)
                  ELSE excluded.verified END,
    sha256=excluded.sha256
WHERE files.sha256 != excluded.sha256 OR files.size != excluded.size OR excluded.verified > files.verified
    OR (files.neuron_id IS NULL AND excluded.neuron_id IS NOT NULL)
    OR excluded.fetched_at > COALESCE(files.fetched_at, 0)
"""


def finalize(
    root: Path | str,
    *,
    archives: Iterable[str] | None = None,
    files: Iterable[FileFact] = (),
    complete_archives: Iterable[str] = (),
    server_counts: Mapping[str, int] | None = None,
    problems: Iterable[tuple[str, str, str | None]] | None = None,
    catalogue: Path | None = None,
    write_files: bool = True,
) -> DatasetSummary:
    """Update the dataset layer of the mirror at ``root``; blocking (run it in a worker thread).

    ``archives``: the archives whose ``metadata.jsonl`` (and ``morphometry.jsonl``) this run published
    (``None``: every one under ``root``). ``files``: a :class:`FileFact` per file the run downloaded or
    found complete. ``complete_archives``: archives whose listing this run covered entirely (``--archive``
    / ``--all``, not ``--query``): only there can a neuron be declared gone upstream. ``server_counts``:
    archive → the server's neuron count, for coverage. ``problems``: the state store's files that are
    not complete, as ``(path, status, last_error)``; given (the run passes it, with every complete
    file as ``files``), the state store is the word on what is held: a file row it does not hold
    complete, or one missing on disk, leaves the catalogue (issue 17 item 2).

    When the catalogue is missing (or unreadable) it is rebuilt from every ``metadata.jsonl`` and the
    tree, hashing the files no fact covers; that run's changes are a baseline (no previous state).

    ``catalogue`` (another path) with ``write_files=False`` is the readers' build (:class:`LocalMirror`
    on a mirror without a usable catalogue): the catalogue goes there, and nothing is written under
    ``root`` (no manifests, citations or ``CHANGES.jsonl``), so a read-only copy, or a mirror a run
    holds, is never changed.
    """
    started = time.perf_counter()
    root = Path(root)
    conn, created = connect(catalogue or root / CATALOGUE_FILE)
    try:
        wanted = set(complete_archives)
        summary = _update(conn, root, archives, files, wanted, server_counts, created, problems)
        summary.holdings = holdings(conn)
        summary.listing_complete = sorted(wanted)
        if write_files:
            summary.manifests_written = _write_manifests(conn, root)
            export_changes(conn, root)
            summary.publications = _write_citations(conn, root, summary.holdings.sentence())
        summary.files = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    finally:
        conn.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _update(
    conn: sqlite3.Connection,
    root: Path,
    archives: Iterable[str] | None,
    files: Iterable[FileFact],
    complete: set[str],
    server_counts: Mapping[str, int] | None,
    created: bool,
    problems: Iterable[tuple[str, str, str | None]] | None,
) -> DatasetSummary:
    now = time.time()
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        if created:
            import_changes(conn, root)
        run = int(
            conn.execute("INSERT INTO runs (finished_at, neurons, files) VALUES (?, 0, 0)", (now,)).lastrowid
            or 0
        )
        changes = ChangeSet(baseline=created)
        for table in ("incoming", "seen", "problems"):
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        conn.execute(
            "CREATE TEMP TABLE incoming (path TEXT PRIMARY KEY, neuron_id INTEGER, archive TEXT, "
            "version TEXT, size INTEGER, sha256 TEXT, fetched_at REAL, verified INTEGER)"
        )
        conn.execute("CREATE TEMP TABLE seen (neuron_id INTEGER PRIMARY KEY)")
        conn.executemany(_INSERT_FACT, _facts(files, root if problems is not None else None))
        # Facts for files the catalogue already holds know their neuron; only the others need the records.
        conn.execute(_KNOWN_NEURONS)
        _stage_problems(conn, problems)
        versions: dict[str, list[Version]] = {}
        for folder, version in conn.execute(_UNRESOLVED).fetchall():
            if version in Version._value2member_map_:
                versions.setdefault(folder, []).append(Version(version))
        job = _RecordJob(conn, root, run, changes, versions, scan_tree=created)
        read: set[str] = set()
        for folder in _folders(root, archives):
            metadata = root / folder / METADATA_FILE
            if metadata.is_file():
                read.add(folder)
                job.read(metadata)
            morph = root / folder / MORPHOMETRY_FILE
            if morph.is_file():
                read_morphometry(conn, morph)
        wanted = {_folder(a) for a in complete}
        for archive in sorted(job.archives):
            if _folder(archive) in wanted and _folder(archive) in read:
                _flag_gone(conn, archive, run, changes)
        for (path,) in conn.execute(
            "SELECT i.path FROM temp.incoming i JOIN files f ON f.path = i.path WHERE f.sha256 != i.sha256 "
            "ORDER BY i.path"
        ).fetchall():
            changes.add("files_changed", path)
        conn.execute(_DIRTY_FOLDERS)
        conn.execute(_UPSERT_FILES)
        if problems is not None:  # the state store's word: what it does not hold complete is not held
            conn.execute(_DIRTY_GONE_FOLDERS)
            conn.execute("DELETE FROM files WHERE path NOT IN (SELECT path FROM temp.incoming)")
            conn.execute("DELETE FROM file_problems")
            conn.execute("INSERT INTO file_problems SELECT * FROM temp.problems")
        if server_counts:
            update_coverage(conn, server_counts, complete)
        if created or changes.any:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('citations_dirty', '1')")
        conn.execute("INSERT INTO changes VALUES (?, ?)", (run, dumps(changes.to_json(run, now))))
        neurons, gone = conn.execute(
            "SELECT COUNT(*) - COALESCE(SUM(gone_upstream), 0), COALESCE(SUM(gone_upstream), 0) FROM neurons"
        ).fetchone()
        (nfiles,) = conn.execute("SELECT COUNT(*) FROM files").fetchone()
        conn.execute("UPDATE runs SET neurons=?, files=? WHERE id=?", (neurons, nfiles, run))
        coverage = read_coverage(conn, list(server_counts)) if server_counts else []
    for table in ("incoming", "seen", "problems"):
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    return DatasetSummary(
        root=root,
        run=run,
        rebuilt=created,
        neurons=neurons,
        gone=gone,
        files=nfiles,
        manifests_written=0,
        publications=None,
        changes=changes,
        coverage=coverage,
        skipped_lines=job.skipped,
    )


_UNRESOLVED = """
SELECT archive, version FROM temp.incoming WHERE neuron_id IS NULL
UNION SELECT archive, version FROM temp.problems WHERE neuron_id IS NULL
"""
#: Folders whose manifest loses a file the state store no longer holds complete.
_DIRTY_GONE_FOLDERS = """
INSERT OR IGNORE INTO dirty_manifests
SELECT DISTINCT archive || '/' || version FROM files WHERE path NOT IN (SELECT path FROM temp.incoming)
"""


def _stage_problems(conn: sqlite3.Connection, problems: Iterable[tuple[str, str, str | None]] | None) -> None:
    """``temp.problems``: the state store's unfinished files, their neuron known when a catalogued file
    or an earlier problem row had that path (the others are resolved from the records)."""
    conn.execute(
        "CREATE TEMP TABLE problems (path TEXT PRIMARY KEY, neuron_id INTEGER, archive TEXT NOT NULL, "
        "version TEXT NOT NULL, reason TEXT NOT NULL, error TEXT)"
    )
    rows = []
    for path, status, error in problems or ():
        parts = path.split("/")
        if len(parts) == 3 and all(parts):
            reason = status if status in ("failed", "missing") else "pending"
            rows.append((path, parts[0], parts[1], reason, error))
    conn.executemany("INSERT OR REPLACE INTO temp.problems VALUES (?, NULL, ?, ?, ?, ?)", rows)
    conn.execute(
        "UPDATE temp.problems SET neuron_id = COALESCE("
        "(SELECT f.neuron_id FROM files f WHERE f.path = problems.path), "
        "(SELECT p.neuron_id FROM file_problems p WHERE p.path = problems.path))"
    )


def _facts(files: Iterable[FileFact], root: Path | None) -> Iterator[tuple[Any, ...]]:
    """Rows for ``temp.incoming``; with ``root``, a fact whose file is not on disk is left out (a file
    deleted by hand is not held, whatever the state store remembers)."""
    # os.path, not pathlib: one Path object per file was a tenth of a 5,000-file run's catalogue step.
    base = os.fspath(root) if root is not None else None
    for fact in files:
        parts = fact.path.split("/")
        if len(parts) != 3 or not all(parts):
            log.warning("catalogue: ignoring file outside <archive>/<version>/: %r", fact.path)
            continue
        if base is not None and not os.path.isfile(os.path.join(base, fact.path)):  # noqa: PTH113, PTH118
            continue
        yield (fact.path, parts[0], parts[1], fact.size, fact.sha256, fact.fetched_at, int(fact.verified))


def _folders(root: Path, archives: Iterable[str] | None) -> list[str]:
    """Archive folders to read: those of ``archives``, or every folder holding a ``metadata.jsonl``."""
    if archives is not None:
        return sorted({_folder(a) for a in archives})
    found = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir() and entry.name != STATE_DIR and (Path(entry.path) / METADATA_FILE).is_file():
                found.append(entry.name)
    return sorted(found)


_STORED = "neuron_id, record, gone_upstream, archive, neuron_name, changed_run"
#: A stored row as :data:`_STORED` reads it, without the id: ``(record, gone_upstream, archive,
#: neuron_name, changed_run)``.
_Stored = tuple[str, int, str, str, int]
_ID = re.compile(r'"neuron_id"\s*:\s*(\d+)')


def _line_id(line: str) -> int | None:
    match = _ID.search(line)
    return int(match.group(1)) if match else None


class _RecordJob:
    """Streams one archive's records into ``neurons``, classifying each against the stored line."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        root: Path,
        run: int,
        changes: ChangeSet,
        versions: dict[str, list[Version]],
        *,
        scan_tree: bool,
    ) -> None:
        self.conn = conn
        self.root = root
        self.run = run
        self.changes = changes
        self.versions = versions
        self.scan_tree = scan_tree
        self.skipped = 0
        self.archives: set[str] = set()  # archive names as the records spell them
        self._uncovered: set[str] = set()
        self._scan: list[Version] = []

    def read(self, path: Path) -> None:
        folder = path.parent.name
        if self.scan_tree:
            self._uncovered = _uncovered_files(self.conn, self.root, folder)
            self._scan = [v for v in Version if any(p.split("/")[1] == v.value for p in self._uncovered)]
        # Nothing to resolve from the records: an unchanged line needs no parsing at all.
        fast = not self.scan_tree and not self.versions.get(folder)
        for lines in line_batches(path):
            neurons: dict[int, tuple[str, Neuron]] = {}
            stored: dict[int, _Stored | None] = {}
            if fast:
                lines, stored = self._skip_unchanged(lines)
            for line in lines:
                try:
                    record = loads_fast(line)
                    if not isinstance(record, dict):
                        raise ValueError("not an object")
                    neuron = Neuron.from_record(record, line=line.encode("utf-8") + b"\n")
                except ValueError:
                    self.skipped += 1
                    continue
                neurons[neuron.id] = (line, neuron)
                self.archives.add(neuron.archive)
            if neurons:
                self._apply(neurons, stored)
        self._uncovered = set()
        if self.skipped:
            log.warning("catalogue: %d lines of %s are not neuron records", self.skipped, path)

    def _stored(self, ids: list[int]) -> dict[int, _Stored | None]:
        """The stored row of each of ``ids``, ``None`` for an id not held (one ``IN (...)`` lookup)."""
        found: dict[int, _Stored | None] = dict.fromkeys(ids)
        if ids:
            marks = ",".join("?" * len(ids))
            sql = f"SELECT {_STORED} FROM neurons WHERE neuron_id IN ({marks})"
            found.update((row[0], row[1:]) for row in self.conn.execute(sql, ids))
        return found

    def _skip_unchanged(self, lines: list[str]) -> tuple[list[str], dict[int, _Stored | None]]:
        """Lines identical to the stored record count as seen and are dropped; returns the rest, and the
        stored rows looked up (so :meth:`_apply` queries only the ids a guess missed).

        Measured: parsing every line cost a re-run over 5,000 unchanged records most of its time. The
        id is read with a regular expression; a wrong guess is harmless, because a line is skipped only
        when it equals, byte for byte, the line stored under that id.
        """
        keyed = [(_line_id(line), line) for line in lines]
        stored = self._stored([nid for nid, _ in keyed if nid is not None])
        rest: list[str] = []
        same: list[tuple[int]] = []
        back: list[tuple[int]] = []
        for nid, line in keyed:
            held = stored.get(nid) if nid is not None else None
            if nid is None or held is None or held[0] != line:
                rest.append(line)
                continue
            same.append((nid,))
            self.archives.add(held[2])
            if held[1]:
                back.append((nid,))
                stored[nid] = (held[0], 0, *held[2:])  # as the table holds it after the update below
                self.changes.add("returned", {"neuron_id": nid, "neuron_name": held[3], "archive": held[2]})
        self.conn.executemany("INSERT OR IGNORE INTO temp.seen VALUES (?)", same)
        if back:
            self.conn.executemany("UPDATE neurons SET gone_upstream=0, gone_run=NULL WHERE neuron_id=?", back)
        return rest, stored

    def _apply(self, neurons: dict[int, tuple[str, Neuron]], stored: dict[int, _Stored | None]) -> None:
        ids = list(neurons)
        previous = {**stored, **self._stored([nid for nid in ids if nid not in stored])}
        self.conn.executemany("INSERT OR IGNORE INTO temp.seen VALUES (?)", ((i,) for i in ids))
        upserts: list[tuple[Any, ...]] = []
        returned: list[tuple[int]] = []
        for nid, (line, neuron) in neurons.items():
            brief = {"neuron_id": nid, "neuron_name": neuron.name, "archive": neuron.archive}
            old = previous.get(nid)
            if old is None:
                self.changes.add("new", brief)
                upserts.append((*typed_record(neuron.record), line, self.run, self.run))
                continue
            old_line, gone, _, _, changed_run = old
            if gone:
                self.changes.add("returned", brief)
            if old_line == line:
                if gone:
                    returned.append((nid,))
                continue
            fields = changed_fields(loads(old_line), neuron.record)
            if fields:
                self.changes.add("changed", {**brief, "fields": list(fields)})
                upserts.append((*typed_record(neuron.record), line, self.run, self.run))
            else:  # only _links differ: keep the served line, not a change
                upserts.append((*typed_record(neuron.record), line, self.run, changed_run))
        if upserts:
            self.conn.executemany(_UPSERT_NEURON, upserts)
        if returned:
            self.conn.executemany(
                "UPDATE neurons SET gone_upstream=0, gone_run=NULL WHERE neuron_id=?", returned
            )
        self._resolve_files([n for _, n in neurons.values()])

    def _resolve_files(self, neurons: list[Neuron]) -> None:
        """Give the run's file facts their neuron id; when rebuilding, adopt files no fact covers."""
        pairs: list[tuple[int, str]] = []
        adopt: list[tuple[int, str]] = []
        for neuron in neurons:
            with_facts = self.versions.get(_folder(neuron.archive), [])
            for version in dict.fromkeys([*with_facts, *self._scan]):
                path = _relative(neuron, version)
                if path is None:
                    continue
                if version in with_facts:
                    pairs.append((neuron.id, path))
                if path in self._uncovered:
                    adopt.append((neuron.id, path))
        if pairs:
            self.conn.executemany("UPDATE temp.incoming SET neuron_id=? WHERE path=?", pairs)
            self.conn.executemany("UPDATE temp.problems SET neuron_id=? WHERE path=?", pairs)
        if adopt:
            self._adopt(adopt)

    def _adopt(self, found: list[tuple[int, str]]) -> None:
        """Hash files on disk that no fact covers (only when the catalogue is built from nothing)."""
        rows = []
        for neuron_id, path in found:
            target = self.root / path
            try:
                mtime = target.stat().st_mtime
                size, digest = hash_file(target)
            except OSError:
                continue
            archive, version, _ = path.split("/")
            rows.append((path, neuron_id, archive, version, size, digest, mtime, 0))
        if rows:
            self.conn.executemany(_INSERT_INCOMING, rows)


@functools.lru_cache(maxsize=4096)
def _folder(archive: str) -> str:
    return safe_component(archive.lower())


def _relative(neuron: Neuron, version: Version) -> str | None:
    """``relative_path(neuron, version)`` as text, ``None`` when the version cannot exist.

    Measured: ``safe_component`` walks every character, and computing the path of 5,000 neurons took
    0.3 s of a 1.5 s finalize; a name it would return unchanged is recognised by one regular expression.
    """
    try:
        name = file_name(neuron, version)
    except NoSuchFileError:
        return None
    if is_plain_name(name):
        return f"{_folder(neuron.archive)}/{version.value}/{name}"
    return relative_path(neuron, version).as_posix()


def _is_data(name: str) -> bool:
    return name != MANIFEST and not is_temp_name(name)


def _uncovered_files(conn: sqlite3.Connection, root: Path, folder: str) -> set[str]:
    """Files under ``<folder>/<version>/`` that no fact of this run covers (what a rebuild must hash)."""
    found: set[str] = set()
    for version in Version:
        try:
            with os.scandir(root / folder / version.value) as entries:
                names = [e.name for e in entries if e.is_file() and _is_data(e.name)]
        except OSError:
            continue
        paths = [f"{folder}/{version.value}/{name}" for name in names]
        for i in range(0, len(paths), 500):
            chunk = paths[i : i + 500]
            marks = ",".join("?" * len(chunk))
            covered = {
                p for (p,) in conn.execute(f"SELECT path FROM temp.incoming WHERE path IN ({marks})", chunk)
            }
            found.update(p for p in chunk if p not in covered)
    return found


def _flag_gone(conn: sqlite3.Connection, archive: str, run: int, changes: ChangeSet) -> None:
    """Neurons of a completely listed archive that the listing lacked: flagged, never deleted."""
    rows = conn.execute(
        "SELECT neuron_id, neuron_name, archive FROM neurons WHERE archive = ? "
        "AND gone_upstream = 0 AND neuron_id NOT IN (SELECT neuron_id FROM temp.seen) ORDER BY neuron_id",
        (archive,),
    ).fetchall()
    for nid, name, arch in rows:
        changes.add("gone", {"neuron_id": nid, "neuron_name": name, "archive": arch})
    conn.executemany(
        "UPDATE neurons SET gone_upstream=1, gone_run=? WHERE neuron_id=?", ((run, r[0]) for r in rows)
    )


def _write_manifests(conn: sqlite3.Connection, root: Path) -> int:
    """Rewrite the manifests marked stale, and any a folder of held files lacks; returns how many changed
    (:func:`~.manifests.rewrite_manifests`: the stale marks are cleared after every manifest is written).
    """
    folders = {f for (f,) in conn.execute("SELECT folder FROM dirty_manifests")}
    for archive, version in conn.execute("SELECT DISTINCT archive, version FROM files").fetchall():
        if not (root / archive / version / MANIFEST).is_file():
            folders.add(f"{archive}/{version}")
    if not folders:
        return 0
    return rewrite_manifests(conn, root, folders)


def _write_citations(conn: sqlite3.Connection, root: Path, held: str) -> int | None:
    """Rewrite the citations when the records changed, a file is missing, or what the mirror holds
    changed (``held``: :meth:`~.coverage.Holdings.sentence`, which CITATION.md states)."""
    dirty = conn.execute("SELECT value FROM meta WHERE key='citations_dirty'").fetchone()
    said = conn.execute("SELECT value FROM meta WHERE key='citations_held'").fetchone()
    missing = not (root / CITATION_FILE).is_file() or not (root / BIB_FILE).is_file()
    if not dirty and not missing and said is not None and said[0] == held:
        return None
    count = write_citations(conn, root, held)
    conn.execute("DELETE FROM meta WHERE key='citations_dirty'")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('citations_held', ?)", (held,))
    return count
