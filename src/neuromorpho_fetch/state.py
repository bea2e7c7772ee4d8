"""The crash-safe record of what a mirror holds: SQLite in ``<out>/.neuromorpho-fetch/state.sqlite``.

Why SQLite: it is in the standard library, a single file, and with ``journal_mode=WAL`` a commit survives
``kill -9`` the moment it returns (``synchronous=NORMAL`` may lose the last commits on *power* loss,
never corrupt the file). Why batching: one commit per file would cost a transaction and a thread hop
for every file, and take the event loop's time; instead every change goes into an in-memory list and a
flusher writes them in one transaction every :attr:`AsyncStateStore.flush_interval` seconds (or sooner
when many are queued). A crash loses at most that moment's bookkeeping, and the rules below make losing
it harmless:

* a row says ``complete`` only after the client has ``os.replace``\\ d the verified body under its final
  name (the worker records it after ``fetch_file`` returns), so ``complete`` never lies;
* a file under its final name is always a complete body (the client writes ``.<name>.<8 hex>.part``
  and renames only after checking it), so a file present on disk whose row is missing or says
  ``downloading`` is *adopted* by the next run: hashed, recorded complete, not fetched again.

``verified`` says whether a row's hash was taken from the server's bytes (a download: 1) or only from
whatever was on disk (an adoption: 0). Issue 10: with the store lost and a file damaged in place, the
damage was adopted as the truth; now it is adopted as *unverified*, and ``--verify`` checks it against
the server. Stores from before the column are migrated in place; their rows count as verified (they
were almost all downloads, and re-fetching a whole mirror on upgrade would be worse).

A damaged database ("database disk image is malformed", "file is not a database") is a
:class:`~neuromorpho_fetch.errors.StateCorruptError` that names the way out, ``--rebuild-state``:
:func:`set_aside` moves the file away (never deletes it) and the next open starts afresh, adopting the
files on disk as unverified.

One writer: only the thread of a single-worker executor touches the connection, so reads and writes
are serialized without locks and nothing blocks the event loop. The directory lock
(:mod:`neuromorpho_fetch.lock`) keeps a second process out.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from .atomic import hash_file
from .errors import NeuroMorphoError, StateCorruptError
from .paths import MirrorPaths
from .sqlitedb import Failure, create_schema, failure, open_database, refuse_link, translate
from .tasks import shielded

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path          TEXT PRIMARY KEY,   -- relative to --out, POSIX separators
    url           TEXT NOT NULL,
    archive       TEXT,
    neuron_name   TEXT,
    version       TEXT,
    size          INTEGER,
    sha256        TEXT,
    etag          TEXT,
    last_modified TEXT,
    status        TEXT NOT NULL,      -- downloading | complete | failed | missing (the server has none)
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    updated_at    REAL NOT NULL,      -- Unix time
    run_id        INTEGER,
    verified      INTEGER NOT NULL DEFAULT 1  -- 1: sha256 is of the server's bytes; 0: adopted from disk
);
CREATE INDEX IF NOT EXISTS files_status ON files(status);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  REAL NOT NULL,
    finished_at REAL,
    status      TEXT NOT NULL,        -- running | complete | incomplete | failed | interrupted | killed
    options     TEXT,
    downloaded  INTEGER,
    skipped     INTEGER,
    failed      INTEGER,
    bytes       INTEGER
);
"""

_COLUMNS = "path, url, size, sha256, etag, last_modified, status, attempts, last_error, updated_at, verified"

# One statement per kind of change; each is an upsert so replaying them in order is always valid.
_SQL_COMPLETE = """
INSERT INTO files (path, url, archive, neuron_name, version, size, sha256, etag, last_modified, status,
                   attempts, last_error, updated_at, run_id, verified)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'complete', 0, NULL, ?, ?, {verified})
ON CONFLICT(path) DO UPDATE SET url=excluded.url, size=excluded.size, sha256=excluded.sha256,
    etag=excluded.etag, last_modified=excluded.last_modified, status='complete', last_error=NULL,
    updated_at=excluded.updated_at, run_id=excluded.run_id, verified=excluded.verified
"""
_SQL_FAILED = """
INSERT INTO files (path, url, archive, neuron_name, version, status, attempts, last_error, updated_at, run_id)
VALUES (?, ?, ?, ?, ?, '{status}', 0, ?, ?, ?)
ON CONFLICT(path) DO UPDATE SET url=excluded.url, status='{status}', last_error=excluded.last_error,
    updated_at=excluded.updated_at, run_id=excluded.run_id
"""

#: ``complete``: the hash is of the server's bytes; ``adopted``: of a file found on disk (unverified).
_OPS = {
    "complete": _SQL_COMPLETE.format(verified=1),
    "adopted": _SQL_COMPLETE.format(verified=0),
    "failed": _SQL_FAILED.format(status="failed"),
    # The server answered that it has no such file (a 404, after the retries): a failure of the run all
    # the same (asked again next time), told apart so the dataset can say "unavailable upstream".
    "missing": _SQL_FAILED.format(status="missing"),
}


@dataclass(frozen=True, slots=True)
class FileRow:
    """What the store knows about one local file."""

    path: str
    url: str
    size: int | None
    sha256: str | None
    etag: str | None
    last_modified: str | None
    status: str
    attempts: int
    last_error: str | None
    updated_at: float
    #: Whether ``sha256`` is of the server's bytes (a download) rather than of what was found on disk.
    verified: bool = True


def is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means the database file is damaged (not busy, not a full disk): SQLite's code."""
    return failure(exc) is Failure.CORRUPT


def _corrupt_error(exc: sqlite3.Error, db: Path) -> StateCorruptError:
    return StateCorruptError(
        f"state store {str(db)!r} is damaged ({' '.join(str(exc).split())[:200]}); no file is lost: run "
        "the same command with --rebuild-state to move it aside and rebuild it from the files on disk"
    )


def _error(exc: sqlite3.Error, db: Path, *, at_start: bool = False) -> NeuroMorphoError:
    """The one translation of a state-store failure: damaged, busy, full or unusable."""
    if is_corrupt(exc):
        return _corrupt_error(exc, db)
    return translate(exc, db, "state store", at_start=at_start)


def set_aside(db: Path, *, now: float | None = None) -> Path | None:
    """Move a damaged store (and its ``-wal``/``-shm`` files) to ``<name>.damaged-<UTC time>``; never
    delete it (it may still be read by hand). Returns the new path, or None when there was no store."""
    if not db.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    aside = db.with_name(f"{db.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = db.with_name(f"{db.name}.damaged-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        extra = db.with_name(db.name + suffix)
        if extra.exists():
            extra.replace(aside.with_name(aside.name + suffix))
    db.replace(aside)
    return aside


class StateStore:
    """Synchronous access to the state database; :class:`AsyncStateStore` runs it in one thread."""

    def __init__(self, db: Path, *, read_only: bool = False) -> None:
        self.db = db
        self.read_only = read_only
        self.run_id: int | None = None
        try:
            if read_only:
                # immutable: no -wal/-shm files are created, so --dry-run really writes nothing. But a
                # WAL left beside the store (a killed run, or a disk that filled before the checkpoint)
                # holds committed rows, and without it the main file can read as malformed: then the
                # store is read with its WAL (mode=ro uses the -shm the writer left).
                refuse_link(db, "state store")
                wal = db.with_name(db.name + "-wal")
                immutable = "" if wal.is_file() and wal.stat().st_size > 0 else "&immutable=1"
                uri = f"file:{quote(str(db.absolute()))}?mode=ro{immutable}"
                self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self.conn = open_database(db, what="state store")
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                create_schema(self.conn, _SCHEMA)
                self._migrate()
                self._check()
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self.conn.close()
            raise _error(exc, db, at_start=True) from None

    def _migrate(self) -> None:
        """Add columns newer versions need to a store made by an older one (in place, kept rows)."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(files)")}
        if "verified" not in columns:
            self.conn.execute("ALTER TABLE files ADD COLUMN verified INTEGER NOT NULL DEFAULT 1")

    def _check(self) -> None:
        """``PRAGMA quick_check``: a store damaged in the middle opens fine and fails at the first
        lookup of a damaged page, mid-run; reading every page once here makes it fail before anything
        starts. Cheap next to a run: 0.16 s on a 265,000-row, 95 MB store (the whole archive's size;
        warm cache, 2-core machine, 2026-11-30)."""
        result = self.conn.execute("PRAGMA quick_check(1)").fetchone()
        if result is None or result[0] != "ok":
            error = sqlite3.DatabaseError(f"quick_check: {result[0] if result else '?'}")
            error.sqlite_errorcode = sqlite3.SQLITE_CORRUPT
            raise error

    # -- reads ---------------------------------------------------------------------------------
    def lookup(self, paths: Iterable[str]) -> dict[str, FileRow]:
        """Rows for the given paths (absent paths are simply missing from the result)."""
        wanted = list(paths)
        found: dict[str, FileRow] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            try:
                cursor = self.conn.execute(f"SELECT {_COLUMNS} FROM files WHERE path IN ({marks})", chunk)
            except sqlite3.OperationalError as exc:
                if self.read_only and failure(exc) is Failure.OTHER:
                    return found  # a read-only view of a store that has no tables (or no column) yet
                raise _error(exc, self.db) from None
            except sqlite3.Error as exc:
                raise _error(exc, self.db) from None
            try:
                for row in cursor:
                    found[row[0]] = FileRow(*row)
            except sqlite3.Error as exc:
                raise _error(exc, self.db) from None
        return found

    def get(self, path: str) -> FileRow | None:
        return self.lookup([path]).get(path)

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())

    def runs(self) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM runs ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    # -- writes --------------------------------------------------------------------------------
    def apply(self, ops: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Apply a batch of changes in one transaction (all or nothing)."""
        if self.read_only or not ops:
            return
        try:
            self.conn.execute("BEGIN")
            for kind, params in ops:
                self.conn.execute(_OPS[kind], params)
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise _error(exc, self.db) from exc

    def begin_run(self, options: str) -> int:
        if self.read_only:
            return 0
        try:
            # The caller holds the directory lock, so a run still marked running died without
            # finishing (kill -9, power loss): say so.
            self.conn.execute("UPDATE runs SET status='killed' WHERE status='running'")
            cursor = self.conn.execute(
                "INSERT INTO runs (started_at, status, options) VALUES (?, 'running', ?)",
                (time.time(), options),
            )
        except sqlite3.Error as exc:
            raise _error(exc, self.db) from exc
        self.run_id = int(cursor.lastrowid or 0)
        return self.run_id

    def end_run(self, status: str, downloaded: int, skipped: int, failed: int, nbytes: int) -> None:
        if self.read_only or self.run_id is None:
            return
        try:
            self.conn.execute(
                "UPDATE runs SET finished_at=?, status=?, downloaded=?, skipped=?, failed=?, bytes=? "
                "WHERE id=?",
                (time.time(), status, downloaded, skipped, failed, nbytes, self.run_id),
            )
        except sqlite3.Error as exc:
            raise _error(exc, self.db) from exc

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if not self.read_only:
                # Fold the WAL back so the directory holds one self-contained file between runs.
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()


class AsyncStateStore:
    """Batched, off-loop access to a :class:`StateStore` for the mirror's workers.

    Changes are recorded synchronously (a list append, so workers never wait) and written by
    :meth:`flusher` in one transaction per interval. :meth:`lookup` sees completions not yet flushed
    (an overlay holding exactly those), so a file completed a moment ago is never planned again within
    the same run.
    """

    flush_interval = 0.2
    flush_batch = 2000

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuromorpho-state")
        self._ops: list[tuple[str, tuple[Any, ...]]] = []
        self._completed: dict[str, FileRow] = {}
        self._wake = asyncio.Event()
        self.flushes = 0
        self.flush_seconds = 0.0

    async def call(self, fn: Callable[[StateStore], T]) -> T:
        """Run ``fn(store)`` in the store's thread (after every change already handed to it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self.store)

    async def lookup(self, paths: Sequence[str]) -> dict[str, FileRow]:
        # Taken before the query: a flush that commits (and drops) an overlay row while the query
        # runs cannot make it vanish from both.
        before = {path: self._completed[path] for path in paths if path in self._completed}
        rows = await self.call(lambda s: s.lookup(paths))
        for path in paths:
            row = self._completed.get(path) or before.get(path)
            if row is not None:
                rows[path] = row
        return rows

    # -- recording (synchronous, cheap) --------------------------------------------------------
    def _push(self, kind: str, params: tuple[Any, ...]) -> None:
        self._ops.append((kind, params))
        if len(self._ops) >= self.flush_batch:
            self._wake.set()

    def complete(
        self,
        path: str,
        url: str,
        archive: str,
        neuron: str,
        version: str,
        *,
        size: int,
        sha256: str,
        etag: str | None,
        last_modified: str | None,
        verified: bool = True,
    ) -> None:
        now = time.time()
        self._push(
            "complete" if verified else "adopted",
            (path, url, archive, neuron, version, size, sha256, etag, last_modified, now, self.store.run_id),
        )
        row = FileRow(path, url, size, sha256, etag, last_modified, "complete", 0, None, now, verified)
        self._completed[path] = row

    def failed(
        self,
        path: str,
        url: str,
        archive: str,
        neuron: str,
        version: str,
        error: str,
        *,
        missing: bool = False,
    ) -> None:
        """A file this run did not get; ``missing``: because the server said it has none (a 404)."""
        self._completed.pop(path, None)
        kind = "missing" if missing else "failed"
        self._push(kind, (path, url, archive, neuron, version, error, time.time(), self.store.run_id))

    # -- writing -------------------------------------------------------------------------------
    async def flush(self) -> None:
        ops, self._ops = self._ops, []
        self._wake.clear()
        if not ops:
            return
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # Shielded: if the run is cancelled meanwhile, the thread still commits this batch (and the
        # final flush queues behind it), so nothing is lost and nothing is applied twice; its error is
        # the final flush's to report (the same disk), never asyncio's "never retrieved".
        await shielded(loop.run_in_executor(self._executor, self.store.apply, ops))
        self.flush_seconds += time.perf_counter() - started
        self.flushes += 1
        # Rows committed just now are in the database: the overlay keeps only what a flush has not
        # written yet, so it stays small and never drops a completion before it is committed.
        for kind, params in ops:
            if kind in ("complete", "adopted"):
                row = self._completed.get(params[0])
                if row is not None and row.updated_at == params[9]:
                    del self._completed[params[0]]

    async def flusher(self) -> None:
        """Run until cancelled: flush every interval, or at once when a batch fills up."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            await self.flush()

    def finish(self, status: str, downloaded: int, skipped: int, failed: int, nbytes: int) -> None:
        """End the run: write what is left, record the run's outcome, close.

        Synchronous (it also serves a cancelled run, whose loop is going away) and all on the
        store's own thread. A failed write is raised after the store is closed.
        """
        self._close(lambda store: store.end_run(status, downloaded, skipped, failed, nbytes))

    def close(self) -> None:
        """Write what is left and close, without ending the run."""
        self._close(None)

    def _close(self, then: Callable[[StateStore], None] | None) -> None:
        ops, self._ops = self._ops, []

        def last(store: StateStore) -> None:
            store.apply(ops)
            if then is not None:
                then(store)

        try:
            self._executor.submit(last, self.store).result()
        finally:
            # The database is consistent whatever happened above (a write is all or nothing), so a
            # failure to close must not hide the outcome.
            with contextlib.suppress(sqlite3.Error):
                self._executor.submit(self.store.close).result()
            self._executor.shutdown(wait=True)


def complete_files(
    db: Path, *, read_only: bool = False
) -> Iterator[tuple[str, int, str, float | None, bool]]:
    """``(path, size, sha256, updated_at, verified)`` of every ``complete`` file of the store at ``db``,
    streamed (the run's end hands them to the dataset step as facts). Nothing when there is no store.

    Read-write by default, although it only reads: a read-only connection to a WAL database recreates
    the -wal/-shm files and cannot remove them on close; the run's end holds the lock. ``read_only``
    (``mode=ro``) is for readers outside a run, which must never write into a mirror."""
    if not db.is_file():
        return
    conn = open_database(db, what="state store", read_only=read_only)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(files)")}
        verified = "verified" if "verified" in columns else "0"
        cursor = conn.execute(
            f"SELECT path, size, sha256, updated_at, {verified} FROM files "
            "WHERE status = 'complete' AND size IS NOT NULL AND sha256 IS NOT NULL"
        )
        while rows := cursor.fetchmany(2000):
            for path, size, sha256, updated_at, checked in rows:
                yield str(path), int(size), str(sha256), updated_at, bool(checked)
    except sqlite3.Error as exc:
        raise _error(exc, db) from None
    finally:
        conn.close()


def unfinished_files(db: Path) -> list[tuple[str, str, str | None]]:
    """``(path, status, last_error)`` of every file of the store at ``db`` that is not ``complete``
    (``failed``, or ``downloading`` when a run stopped mid-file): why the dataset says a catalogued
    neuron has no file. Failures are few, so a list. Nothing when there is no store."""
    if not db.is_file():
        return []
    conn = open_database(db, what="state store")
    try:
        rows = conn.execute(
            "SELECT path, status, last_error FROM files WHERE status != 'complete'"
        ).fetchall()
    except sqlite3.Error as exc:
        raise _error(exc, db) from None
    finally:
        conn.close()
    return [(str(p), str(s), e) for p, s, e in rows]


def forget_files(db: Path, paths: list[str]) -> None:
    """Drop the rows of deleted files (``--delete-gone``; the store is closed and the lock held), so
    the next run's facts do not bring them back into the catalogue."""
    if not paths or not db.is_file():
        return
    conn = open_database(db, what="state store")
    try:
        with conn:
            conn.execute("BEGIN")
            conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths))
    except sqlite3.Error as exc:
        raise _error(exc, db) from None
    finally:
        conn.close()


def held_file(root: Path, relative: str, sha256: str | None = None) -> tuple[int, str] | None:
    """``(size, sha256)`` of ``root/relative`` when it can be reused without a request, else None.

    The expected size and hash come from ``sha256`` when given, else from the state store's row when
    ``root`` is a mirror (a row that is not complete, or another size, means fetch). Blocking.
    """
    target = root / relative
    try:
        if not target.is_file() or target.is_symlink():
            return None
        size = target.stat().st_size
    except OSError:
        return None
    expected = sha256
    db = MirrorPaths(root).state_db
    if expected is None and db.is_file():
        try:
            store = StateStore(db, read_only=True)
        except NeuroMorphoError:
            store = None
        if store is not None:
            try:
                row = store.get(relative)
            except NeuroMorphoError:
                row = None
            finally:
                store.close()
            if row is not None and (row.status != "complete" or (row.size is not None and row.size != size)):
                return None
            expected = row.sha256 if row is not None else None
    try:
        actual_size, digest = hash_file(target)
    except OSError:
        return None
    if expected is not None and digest != expected:
        return None
    return actual_size, digest
