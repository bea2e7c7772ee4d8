"""The catalogue: one SQLite file at the mirror's root that any tool can read (``sqlite3``, pandas, DuckDB).

Schema (documented on the docs page "Your mirror as a dataset"; :data:`SCHEMA_VERSION` says which):

* ``neurons`` (``STRICT``): one row per neuron ever mirrored. One column per metadata field of reference
  A7, named by the record's JSON key (``physical_Integrity``, not the fields list's
  ``Physical_Integrity``), typed by :data:`~.fieldtypes.FIELD_TYPES` (numbers ``INTEGER``/``REAL``,
  placeholders such as "Not reported" NULL, dates ISO text, lists JSON text), plus ``record`` (the
  JSON line exactly as ``metadata.jsonl`` holds it), ``first_run``/``changed_run`` (the catalogue run that
  added / last changed it) and ``gone_upstream`` (1 once a complete listing of its archive no longer
  had it; the files stay on disk).
* ``files``: one row per file held: ``path`` (relative to the root), ``neuron_id``, ``archive``
  (folder), ``version``, ``size``, ``sha256``, ``fetched_at`` (Unix time), ``verified`` (1 when the hash
  was checked against the server, not just computed locally, issue 10).
* ``morphometry``: one row per neuron whose ``/api/morphometry`` record was fetched: one REAL column per
  key of reference A7 plus ``record`` (the JSON as served).
* ``file_problems``: the files the state store has but does not hold complete (``failed``, ``missing``
  upstream, ``pending``).
* ``holdings`` (a view): per neuron and version, ``<version>_present`` and ``<version>_verified``.
* ``coverage``, ``runs``, ``changes`` (the lines of ``CHANGES.jsonl``), ``meta``.

Why in-place SQLite transactions and not "copy, change, rename": at full scale the file is hundreds of
megabytes and a copy per run would cost more than the run's bookkeeping; SQLite's rollback journal
(``journal_mode=DELETE``, ``synchronous=FULL``) already makes a transaction all-or-nothing across
``kill -9`` and power loss, and leaves one self-contained file between runs (no ``-wal`` beside it that a
user copying the folder could forget).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import OutputDirError
from ..jsonio import loads
from ..models import Version
from ..paths import BIB_FILE, CATALOGUE_FILE, CHANGES_FILE, CITATION_FILE, MANIFEST
from ..sqlitedb import Failure, create_schema, failure, open_database, translate
from .fieldtypes import FIELD_TYPES, SQL_TYPES, typed_record

SCHEMA_VERSION = 2
#: ``PRAGMA user_version`` of the current layout: 2 = typed ``STRICT`` ``neurons`` (issue 17 item 1),
#: ``file_problems`` and the ``holdings`` view (item 2). A version-1 file is migrated in place on open.
USER_VERSION = 2

#: Every metadata field of a served record (reference A7), by its JSON key, in the served order.
FIELD_COLUMNS: tuple[str, ...] = tuple(FIELD_TYPES)

#: Fields served as JSON lists (reference A7); stored as JSON text.
LIST_FIELDS = frozenset(name for name, kind in FIELD_TYPES.items() if kind == "list")

#: ``/api/morphometry/id`` keys (reference A7, with the server's odd capitals), all numbers.
MORPHOMETRY_COLUMNS: tuple[str, ...] = (
    "surface", "volume", "soma_Surface", "n_stems", "n_bifs", "n_branch", "width", "height", "depth",
    "diameter", "length", "eucDistance", "pathDistance", "branch_Order", "contraction", "fragmentation",
    "partition_asymmetry", "pk_classic", "bif_ampl_local", "bif_ampl_remote", "fractal_Dim",
)  # fmt: skip

_FIELD_SQL = ",\n    ".join(
    f'"{name}" {SQL_TYPES[kind]}' + (" PRIMARY KEY" if name == "neuron_id" else "")
    + (" NOT NULL" if name in ("neuron_name", "archive") else "")
    for name, kind in FIELD_TYPES.items()
)  # fmt: skip
_VERSIONS = tuple(v.value for v in Version)
_HOLDINGS_SQL = ",\n    ".join(
    f"EXISTS (SELECT 1 FROM files f WHERE f.neuron_id = n.neuron_id AND f.version = '{v}') "
    f'AS "{v}_present",\n    '
    "COALESCE((SELECT MAX(f.verified) FROM files f "
    f"WHERE f.neuron_id = n.neuron_id AND f.version = '{v}'), 0) "
    f'AS "{v}_verified"'
    for v in _VERSIONS
)
_NEURONS_SQL = f"""CREATE TABLE IF NOT EXISTS neurons (
    {_FIELD_SQL},
    record        TEXT NOT NULL,               -- the metadata.jsonl line, exactly as served
    first_run     INTEGER NOT NULL,            -- runs.id that first catalogued it
    changed_run   INTEGER NOT NULL,            -- runs.id that last changed its record
    gone_upstream INTEGER NOT NULL DEFAULT 0,  -- 1: a complete listing of its archive lacked it
    gone_run      INTEGER                      -- runs.id that flagged it
) STRICT;"""
_MORPH_SQL = ",\n    ".join(f'"{name}" REAL' for name in MORPHOMETRY_COLUMNS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
{_NEURONS_SQL}
CREATE INDEX IF NOT EXISTS neurons_archive ON neurons(archive, neuron_name);
-- The holdings' and the counts' scan of the neurons held: covering, so they never read the rows (the
-- served record makes a row about 1.5 KB, so some 400 MB of table at the whole archive's 265,000).
CREATE INDEX IF NOT EXISTS neurons_held ON neurons(gone_upstream, archive);
CREATE TABLE IF NOT EXISTS files (
    path       TEXT PRIMARY KEY,               -- relative to the mirror root, POSIX separators
    neuron_id  INTEGER,
    archive    TEXT NOT NULL,                  -- the archive folder (first path component)
    version    TEXT NOT NULL,                  -- CNG | source | remaining-issues | ... (second component)
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    fetched_at REAL,                           -- Unix time the body was written (or first hashed)
    verified   INTEGER NOT NULL DEFAULT 0      -- 1: hash checked against the server's bytes
);
CREATE INDEX IF NOT EXISTS files_neuron ON files(neuron_id);
CREATE INDEX IF NOT EXISTS files_folder ON files(archive, version);
CREATE TABLE IF NOT EXISTS morphometry (
    neuron_id INTEGER PRIMARY KEY,
    {_MORPH_SQL},
    record    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS coverage (
    archive      TEXT PRIMARY KEY,
    server_count INTEGER,                      -- what the server reported, NULL if not asked
    held         INTEGER NOT NULL,             -- neurons catalogued and not gone upstream
    with_files   INTEGER NOT NULL,             -- of those, neurons with files present
    checked_at   REAL NOT NULL,
    failed       INTEGER NOT NULL DEFAULT 0,   -- of the others, neurons with a failed file
    listing_complete INTEGER NOT NULL DEFAULT 0  -- 1: the run's listing of the archive was complete
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    finished_at REAL NOT NULL,
    neurons     INTEGER NOT NULL,
    files       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (run_id INTEGER PRIMARY KEY, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dirty_manifests (folder TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS file_problems (
    path       TEXT PRIMARY KEY,               -- a file the state store has and does not hold complete
    neuron_id  INTEGER,
    archive    TEXT NOT NULL,                  -- the archive folder
    version    TEXT NOT NULL,
    reason     TEXT NOT NULL,                  -- failed | missing (a 404) | pending (not finished)
    error      TEXT                            -- the last error the run recorded
);
-- The holdings ask, per neuron, whether it has a problem of each kind: without this index each asked
-- by scanning the table, a time of neurons x problems at every run's end (1,000 failed files of 5,000
-- neurons: 1.25 s, against 15 ms with it).
CREATE INDEX IF NOT EXISTS file_problems_neuron ON file_problems(neuron_id, reason);
CREATE VIEW IF NOT EXISTS holdings AS SELECT n.neuron_id, n.neuron_name, n.archive, n.gone_upstream,
    {_HOLDINGS_SQL}
FROM neurons n;
"""


def connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    """Open (or create) the catalogue; ``True`` when it was created (so it must be rebuilt).

    A file SQLite says is damaged (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is moved aside
    (``catalogue.sqlite.corrupt-<time>``) and a new one created: the catalogue is derived data, and a run
    must not fail over it. Anything else is not damage and is never moved aside (issue 15 item 13): a
    catalogue another program holds locked is *busy* (a bounded wait, then
    :class:`~neuromorpho_fetch.errors.DatabaseBusyError`), a full disk is a disk error, and so on, as
    :func:`~neuromorpho_fetch.sqlitedb.translate` says.
    """
    created = not path.exists()
    try:
        conn = _open(path)
    except sqlite3.DatabaseError as exc:
        if failure(exc, path) is not Failure.CORRUPT:
            raise translate(exc, path, "catalogue") from None
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        try:
            path.replace(aside)
            for suffix in ("-journal", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            conn = _open(path)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise OutputDirError(f"catalogue {str(path)!r} cannot be opened or replaced: {exc}") from None
        created = True
    if not created:
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        created = version is None  # a previous first build was killed before its commit
    return conn, created


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open an SQLite file read-only (a ``mode=ro`` URI): a reader that must never create the file, nor
    take a write lock on a store another process may still hold."""
    return sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)


def _open(path: Path) -> sqlite3.Connection:
    conn = open_database(path, what="catalogue")  # links refused, the one bounded busy wait
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=FULL")
        _migrate(conn)
        create_schema(conn, SCHEMA, user_version=USER_VERSION)
        conn.execute("SELECT COUNT(*) FROM neurons").fetchone()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Version 1 (fields stored as served, no declared type) to 2 (typed, ``STRICT``), in place.

    The typed columns are recomputed from each row's ``record`` (the served line), so nothing is lost;
    one transaction, so a kill leaves version 1 and the next open migrates again. Views are dropped
    (the next :data:`SCHEMA` recreates them) because SQLite checks them on every schema change.
    """
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version >= USER_VERSION or "neurons" not in tables:
        return
    with transaction(conn):
        have = {row[1] for row in conn.execute("PRAGMA table_info(coverage)")}
        for column in ("failed", "listing_complete"):
            if have and column not in have:
                conn.execute(f"ALTER TABLE coverage ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        conn.execute("DROP VIEW IF EXISTS holdings")
        conn.execute("ALTER TABLE neurons RENAME TO neurons_v1")
        conn.execute("DROP INDEX IF EXISTS neurons_archive")
        conn.execute(_NEURONS_SQL)
        cursor = conn.execute(
            "SELECT record, first_run, changed_run, gone_upstream, gone_run FROM neurons_v1"
        )
        while rows := cursor.fetchmany(500):
            conn.executemany(_INSERT_TYPED, [(*typed_line(r[0]), *r) for r in rows])
        conn.execute("DROP TABLE neurons_v1")
        conn.execute(f"PRAGMA user_version={USER_VERSION}")


_COLS = ", ".join(f'"{c}"' for c in FIELD_COLUMNS)
#: A full ``neurons`` row: the typed fields, ``record``, ``first_run``, ``changed_run``,
#: ``gone_upstream``, ``gone_run``.
_INSERT_TYPED = (
    f"INSERT INTO neurons ({_COLS}, record, first_run, changed_run, gone_upstream, gone_run) "
    f"VALUES ({', '.join('?' * (len(FIELD_COLUMNS) + 5))})"
)


def typed_line(line: str) -> tuple[Any, ...]:
    """The typed field values of a served JSON line (every field NULL when it is not an object)."""
    try:
        record = loads(line)
    except ValueError:
        record = {}
    return typed_record(record if isinstance(record, dict) else {})


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception (all or nothing)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def field_column(field: str) -> str:
    """The column for a query field name: the fields list's ``Physical_Integrity`` is the JSON key
    ``physical_Integrity`` (reference A5's field-name oddity). Raises ``KeyError`` for a non-field."""
    if field == "Physical_Integrity":
        return "physical_Integrity"
    if field in FIELD_COLUMNS:
        return field
    raise KeyError(field)


def row_to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The typed field columns of a ``neurons`` row as Python values (list fields decoded); the values
    as served are in ``row["record"]``."""
    out: dict[str, Any] = {}
    for name in FIELD_COLUMNS:
        value = row[name]
        out[name] = loads(value) if name in LIST_FIELDS and isinstance(value, str) else value
    return out


def held_counts(root: Path) -> dict[str, Any]:
    """What the catalogue at ``root`` holds: ``neurons`` (not gone upstream), ``gone``, ``files`` and
    ``holdings`` (:class:`~.coverage.Holdings` as JSON, with its ``sentence``); empty when there is no
    readable catalogue. Read-only."""
    from .coverage import holdings

    path = root / CATALOGUE_FILE
    if not path.is_file():
        return {}
    try:
        conn = connect_readonly(path)
    except sqlite3.Error:
        return {}
    try:
        neurons, gone = conn.execute(
            "SELECT COUNT(*) - COALESCE(SUM(gone_upstream), 0), COALESCE(SUM(gone_upstream), 0) FROM neurons"
        ).fetchone()
        (files,) = conn.execute("SELECT COUNT(*) FROM files").fetchone()
        held = holdings(conn)
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {
        "neurons": int(neurons),
        "gone": int(gone),
        "files": int(files),
        "holdings": held.to_json(),
        "sentence": held.sentence(),
    }


def settled(root: Path) -> bool:
    """Whether the dataset layer at ``root`` is whole as the last finalize left it: a built catalogue
    with no pending work (no manifest marked stale, no citations to rewrite) and every derived file in
    place (citations, ``CHANGES.jsonl``, each version folder's ``SHA256SUMS``). A run that changed
    nothing may then leave it alone; anything missing (a kill mid-step, a file deleted by hand) and the
    next run's finalize does the work. Read-only."""
    path = root / CATALOGUE_FILE
    if not path.is_file():
        return False
    try:
        conn = connect_readonly(path)
    except sqlite3.Error:
        return False
    try:
        built = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        dirty = conn.execute("SELECT COUNT(*) FROM dirty_manifests").fetchone()[0]
        citations = conn.execute("SELECT value FROM meta WHERE key='citations_dirty'").fetchone()
        changes = conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
        folders = conn.execute("SELECT DISTINCT archive, version FROM files").fetchall()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    if not built or dirty or citations:
        return False
    needed = [root / CITATION_FILE, root / BIB_FILE, *([root / CHANGES_FILE] if changes else [])]
    needed += [root / folder / version / MANIFEST for folder, version in folders]
    return all(p.is_file() for p in needed)
