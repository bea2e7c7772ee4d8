"""How this project opens its SQLite files, and how it tells their failures apart.

Two databases live in a mirror: the state store (:mod:`neuromorpho_fetch.state`) and the catalogue
(:mod:`neuromorpho_fetch.dataset.catalogue`). Both are opened through :func:`open_database` and both
translate SQLite's errors through :func:`failure`, which reads SQLite's own *error code*
(``sqlite3.Error.sqlite_errorcode``, Python 3.11) and never the message text: a message is for people and
changes between SQLite versions, a code does not.

The distinction matters because each failure has a different right answer (issue 15 items 4 and 13):

* ``busy`` (``SQLITE_BUSY``/``SQLITE_LOCKED``): another program holds the file (a ``sqlite3`` shell in a
  transaction, a notebook, an exclusive lock). It is *not* damage: we wait :data:`BUSY_TIMEOUT_S`, then
  stop that step with one line saying it is locked. Moving the file aside as "corrupt" would throw a
  user's database away for having it open.
* ``corrupt`` (``SQLITE_CORRUPT``/``SQLITE_NOTADB``): the file is damaged; each owner decides (the state
  store names ``--rebuild-state``, the catalogue is derived and rebuilt).
* ``full`` (``SQLITE_FULL``, or an I/O error while the disk has no space): the machine must change, exit 2.
* ``readonly``/``cantopen``: permissions, a read-only mount, a missing folder.

A file of ours that is a symbolic link is refused before SQLite opens it: SQLite follows links, so a link
planted in the mirror would make a run write a database outside ``--out`` (issue 15 item 11).
"""

from __future__ import annotations

import enum
import errno
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from .errors import DatabaseBusyError, DiskFullError, NeuroMorphoError, OutputDirError

#: How long a statement waits for another program's lock before it fails as busy.
BUSY_TIMEOUT_S = 10.0


class Failure(enum.Enum):
    BUSY = "busy"
    CORRUPT = "corrupt"
    FULL = "full"
    READONLY = "readonly"
    CANTOPEN = "cantopen"
    OTHER = "other"


_BY_CODE = {
    sqlite3.SQLITE_BUSY: Failure.BUSY,
    sqlite3.SQLITE_LOCKED: Failure.BUSY,
    sqlite3.SQLITE_CORRUPT: Failure.CORRUPT,
    sqlite3.SQLITE_NOTADB: Failure.CORRUPT,
    sqlite3.SQLITE_FULL: Failure.FULL,
    sqlite3.SQLITE_READONLY: Failure.READONLY,
    sqlite3.SQLITE_CANTOPEN: Failure.CANTOPEN,
}


def disk_is_full(folder: Path) -> bool:
    """Whether ``folder``'s file system has no free space left (SQLite reports a full disk as an I/O or
    "cannot open" error at some steps, so the code alone does not always say it)."""
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return exc.errno == errno.ENOSPC
    return st.f_bavail == 0


def failure(exc: sqlite3.Error, path: Path | None = None) -> Failure:
    """What ``exc`` means, from SQLite's primary error code (the low byte of the extended one)."""
    code = getattr(exc, "sqlite_errorcode", None)
    kind = Failure.OTHER if code is None else _BY_CODE.get(code & 0xFF, Failure.OTHER)
    io_trouble = code is not None and code & 0xFF in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN)
    if (
        kind in (Failure.OTHER, Failure.CANTOPEN)
        and io_trouble
        and path is not None
        and disk_is_full(path.parent)
    ):
        return Failure.FULL
    return kind


def translate(exc: sqlite3.Error, path: Path, what: str, *, at_start: bool = False) -> NeuroMorphoError:
    """The one-line error for a failure that is not damage (the caller handles ``CORRUPT`` itself).

    ``at_start``: the database is being opened, before the run did anything; a full disk then means
    ``--out`` cannot be used (exit 2, as for an empty mirror, issue 15 item 4), while a disk that fills
    up mid-run is a :class:`DiskFullError` of the run (exit 1: it started, some files are missing).
    """
    kind = failure(exc, path)
    if kind is Failure.BUSY:
        return DatabaseBusyError(
            f"{what} {str(path)!r} is locked by another program (waited {BUSY_TIMEOUT_S:g} s): close it "
            "(a sqlite3 shell or notebook holding a transaction) and run again"
        )
    if kind is Failure.FULL:
        return (OutputDirError if at_start else DiskFullError)(
            f"{what} {str(path)!r} cannot be written: the disk is full; free some space (or choose "
            "another --out) and run the same command again"
        )
    return OutputDirError(
        f"{what} {str(path)!r} cannot be used ({' '.join(str(exc).split())[:200]}); check the folder's "
        "permissions and free space"
    )


def refuse_link(path: Path, what: str) -> None:
    """A database path that is a symbolic link is refused: SQLite would follow it out of the mirror."""
    if path.is_symlink():
        raise OutputDirError(
            f"{what} {str(path)!r} is a symbolic link; refusing to write through it (remove the link)"
        )


def open_database(path: Path, *, what: str, read_only: bool = False) -> sqlite3.Connection:
    """A connection to one of our databases: links refused, a bounded busy wait, autocommit.

    ``read_only`` opens with ``mode=ro`` (no write can happen; a missing file is an error). Errors are
    raised as SQLite raised them; callers pass them to :func:`failure` or :func:`translate`.
    """
    refuse_link(path, what)
    for suffix in ("-wal", "-shm", "-journal"):
        refuse_link(path.with_name(path.name + suffix), what)
    if read_only:
        uri = f"file:{quote(str(path.absolute()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def create_schema(conn: sqlite3.Connection, script: str, *, user_version: int | None = None) -> None:
    """Run a ``CREATE ... IF NOT EXISTS`` script (and set ``user_version``) as one transaction.

    In autocommit each statement of a script is its own commit: creating the catalogue's tables, indexes
    and views, a commit each, cost 12.9 ms of a new mirror's first run (median of 15; the 10-file mirror
    of benchmark scenario 7), and one transaction 1.7 ms. One transaction is
    also all or nothing: a kill in the middle leaves no half-made schema.
    """
    version = f"PRAGMA user_version={int(user_version)};" if user_version is not None else ""
    conn.executescript(f"BEGIN;\n{script}\n{version}\nCOMMIT;")
