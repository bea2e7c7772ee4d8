"""Offline selection over a mirror: the same keywords as ``NeuroMorpho.select``, no network.

The matching rules are the server's as the client's query model sends them (:mod:`neuromorpho_fetch.query`
and the emulator's engine, reference A5):

* one keyword per field, AND-ed across fields; a list of values is OR-ed within the field;
* a value without ``*``/``?`` must equal the field's value, or any element of a list field (the client
  quotes such values, so a multi-word value is matched whole, never by its trailing word);
* ``*`` matches any run of characters and ``?`` exactly one; whitespace inside a wildcard value is sent
  as ``?`` by the client (:func:`neuromorpho_fetch.query.format_value`), so it matches any one character
  here too;
* case-insensitive, as the emulator answers (whether the real server is, is open: reference A5); null
  never matches; ``Physical_Integrity`` names the ``physical_Integrity`` key.

Raw ``q``/``fq`` text is server syntax and is refused here; pass keyword criteria (or a
:class:`~neuromorpho_fetch.query.Query` built from them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sqlite3
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UnknownFieldError, UsageError
from ..jsonio import loads
from ..models import Neuron, Version
from ..paths import CATALOGUE_FILE, METADATA_FILE, STATE_DIR
from ..query import Query
from ..swcread import read_swc
from .catalogue import FIELD_COLUMNS, LIST_FIELDS, USER_VERSION, connect_readonly, field_column
from .citations import Publication, publications
from .fieldtypes import FIELD_TYPES, typed_record

if TYPE_CHECKING:  # pragma: no cover
    import pandas


class Matcher:
    """One field's OR-ed values, compiled once: exact values (casefolded) and wildcard patterns."""

    def __init__(self, values: Sequence[str]) -> None:
        self.exact: set[str] = set()
        self.patterns: list[re.Pattern[str]] = []
        for value in values:
            text = str(value)
            if "*" in text or "?" in text:
                text = re.sub(r"\s+", "?", text.strip())  # what format_value sends
                pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
                self.patterns.append(re.compile(pattern, re.DOTALL | re.IGNORECASE))
            else:
                self.exact.add(text.casefold())

    def accept(self, value: Any) -> bool:
        """True when the value, or any element of a list value, matches; null never does."""
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(self.accept(v) for v in value)
        text = str(value)
        return text.casefold() in self.exact or any(p.fullmatch(text) for p in self.patterns)


def criteria_of(
    query: Query | None = None,
    q: str | None = None,
    fq: Sequence[str] | str = (),
    criteria: Mapping[str, str | int | Sequence[str | int]] | None = None,
) -> list[tuple[str, tuple[str, ...]]]:
    """The ``(column, values)`` pairs of a select call; raw ``q``/``fq`` is a usage error offline."""
    full = query if query is not None else Query()
    if q is not None or fq or full.q is not None or full.fq:
        raise UsageError("offline select takes keyword criteria (species='rat'), not raw q/fq text")
    if criteria:
        full = full.with_criteria(criteria)
    out: list[tuple[str, tuple[str, ...]]] = []
    for name, values in full.criteria:
        try:
            out.append((field_column(name), values))
        except KeyError:
            raise UnknownFieldError(name, FIELD_COLUMNS) from None
    return out


@dataclass(frozen=True, slots=True)
class LocalNeuron:
    """A catalogued neuron: the same :class:`Neuron` the server's select yields, plus its local files."""

    neuron: Neuron
    paths: Mapping[str, Path]  # version value (CNG, source, ...) → absolute path of the held file
    gone_upstream: bool = False

    @property
    def id(self) -> int:
        return self.neuron.id

    @property
    def name(self) -> str:
        return self.neuron.name

    @property
    def archive(self) -> str:
        return self.neuron.archive

    def path(self, version: Version | str = Version.CNG) -> Path | None:
        """The held file of ``version`` (``None`` when the mirror does not hold it)."""
        key = version.value if isinstance(version, Version) else Version.parse(version).value
        return self.paths.get(key)

    def read_swc(self, version: Version | str = Version.CNG, *, as_frame: bool = False) -> Any:
        """The held SWC file of ``version`` read by :func:`~neuromorpho_fetch.swcread.read_swc`
        (points and comments, or a DataFrame); ``UsageError`` when the mirror does not hold it."""
        path = self.path(version)
        if path is None:
            raise UsageError(f"the mirror holds no {version} file of neuron {self.name!r}")
        return read_swc(path, as_frame=as_frame)

    def typed(self) -> dict[str, Any]:
        """The catalogue's typed values of every field (:mod:`~.fieldtypes`), then one
        ``path_<version>`` per held file and ``gone_upstream``: one row of an export."""
        row = dict(zip(FIELD_COLUMNS, typed_record(self.neuron.record), strict=True))
        row.update({f"path_{v}": str(p) for v, p in self.paths.items()})
        row["gone_upstream"] = self.gone_upstream
        return row


class LocalMirror:
    """A mirror on disk, read through its catalogue (``catalogue.sqlite``); never writes into it.

    The catalogue is opened read-only. When it is missing, older than the mirror's ``metadata.jsonl``
    files, of an older schema, or cannot be read in place (a hot journal a killed run left, which a
    read-only connection may not roll back), a private catalogue is built in a temporary folder from
    the records and the tree (:func:`~neuromorpho_fetch.dataset.finalize` with ``write_files=False``)
    and ``notice`` (default: :func:`warnings.warn`) is told once; the mirror itself is not touched, so
    this works on a read-only copy and while a run holds the mirror's lock (issue 17 item 5).
    """

    def __init__(
        self, root: Path | str, *, build: bool = True, notice: Callable[[str], None] | None = None
    ) -> None:
        self.root = Path(root)
        self._private: tempfile.TemporaryDirectory[str] | None = None
        db = self.root / CATALOGUE_FILE
        reason = _stale(self.root, db)
        conn: sqlite3.Connection | None = None
        if reason is None:
            try:
                conn = _open_readonly(db)
            except sqlite3.Error as exc:
                reason = f"cannot be read in place ({exc})"
        if conn is None:
            if not build:
                raise UsageError(f"{str(db)!r}: {reason}: run neuromorpho-fetch on this folder first")
            if not self.root.is_dir():
                raise UsageError(f"no mirror at {str(self.root)!r}")
            (notice or _warn)(f"{db}: {reason}; building a private catalogue in a temporary folder")
            conn = self._build_private()
        self.conn = conn
        self._selects = itertools.count()
        self.conn.row_factory = sqlite3.Row

    def _build_private(self) -> sqlite3.Connection:
        from .finalize import finalize

        self._private = tempfile.TemporaryDirectory(prefix="neuromorpho-catalogue-")
        db = Path(self._private.name) / CATALOGUE_FILE
        finalize(self.root, catalogue=db, write_files=False)
        conn = sqlite3.connect(db, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def close(self) -> None:
        self.conn.close()
        if self._private is not None:
            self._private.cleanup()
            self._private = None

    def __enter__(self) -> LocalMirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM neurons").fetchone()[0])

    def select(
        self,
        query: Query | None = None,
        /,
        *,
        q: str | None = None,
        fq: Sequence[str] = (),
        include_gone: bool = True,
        **criteria: str | int | Sequence[str | int],
    ) -> Iterator[LocalNeuron]:
        """Catalogued neurons matching the criteria, in ``neuron_id`` order (the server's order).

        Streams rows (memory stays flat at any mirror size). ``include_gone=False`` leaves out neurons
        a complete listing no longer had (they are still on disk, hence the default).
        """
        matchers = [(column, Matcher(values)) for column, values in criteria_of(query, q, fq, criteria)]
        # A name per select: SQLite refuses to redefine a function while another select still runs.
        names = [f"nm_match_{next(self._selects)}" for _ in matchers]
        sql = "SELECT neuron_id, record, gone_upstream FROM neurons"
        where: list[str] = [] if include_gone else ["gone_upstream = 0"]
        for name, (column, _) in zip(names, matchers, strict=True):
            # The served value, not the typed column: the server's matching sees "Not reported" too.
            where.append(f"{name}(json_extract(record, '$.\"{column}\"'))")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY neuron_id"
        for name, (column, matcher) in zip(names, matchers, strict=True):
            self.conn.create_function(
                name, 1, _sql_matcher(matcher, column in LIST_FIELDS), deterministic=True
            )
        cursor = self.conn.execute(sql)
        while rows := cursor.fetchmany(500):
            files = self._files([row[0] for row in rows])
            for nid, line, gone in rows:
                yield LocalNeuron(Neuron.from_record(loads(line)), files.get(nid, {}), bool(gone))

    def _files(self, ids: list[int]) -> dict[int, dict[str, Path]]:
        marks = ",".join("?" * len(ids))
        found: dict[int, dict[str, Path]] = {}
        for nid, version, path in self.conn.execute(
            f"SELECT neuron_id, version, path FROM files WHERE neuron_id IN ({marks})", ids
        ):
            found.setdefault(nid, {})[version] = self.root / path
        return found

    def to_pandas(
        self, query: Query | None = None, /, *, include_gone: bool = True, **criteria: Any
    ) -> pandas.DataFrame:
        """The matching neurons as a DataFrame: every metadata field with its catalogue type
        (:func:`typed_frame`: numbers numeric, placeholders missing, dates datetimes, lists lists), one
        ``path_<version>`` column per version held, and ``gone_upstream``. Needs the ``dataset`` extra."""
        try:
            import pandas
        except ImportError:
            raise UsageError("to_pandas needs pandas: pip install 'neuromorpho-fetch[dataset]'") from None
        rows = [item.typed() for item in self.select(query, include_gone=include_gone, **criteria)]
        return typed_frame(pandas, rows)

    def publications(self, ids: Sequence[int]) -> list[Publication]:
        """The original publications of the held neurons among ``ids`` (for ``--cite``)."""
        return publications(self.conn, ids)


def typed_frame(pd: Any, rows: list[dict[str, Any]]) -> pandas.DataFrame:
    """A DataFrame of typed rows with the catalogue's types (:data:`~.fieldtypes.FIELD_TYPES`):
    ``integer`` as nullable ``Int64``, ``real`` as ``float64`` (NaN for NULL), ``date`` as
    ``datetime64``, ``list`` as Python lists, ``text`` as strings (None for NULL)."""
    paths = sorted({k for row in rows for k in row if k.startswith("path_")})
    frame = pd.DataFrame(rows, columns=[*FIELD_COLUMNS, *paths, "gone_upstream"])
    for name, kind in FIELD_TYPES.items():
        column = frame[name]
        if kind == "integer":
            frame[name] = pd.array(column.tolist(), dtype="Int64")
        elif kind == "real":
            frame[name] = pd.to_numeric(column, errors="coerce").astype("float64")
        elif kind == "date":
            frame[name] = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
        elif kind == "list":
            frame[name] = [loads(v) if isinstance(v, str) else v for v in column]
        else:
            frame[name] = column.astype(object).where(column.notna(), None)
    frame["gone_upstream"] = frame["gone_upstream"].astype(bool)
    return frame


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _stale(root: Path, db: Path) -> str | None:
    """Why the catalogue at ``db`` cannot serve a reader as it is, or ``None`` when it can."""
    try:
        built = db.stat().st_mtime
    except OSError:
        return "no catalogue"
    try:
        with os.scandir(root) as entries:
            folders = [e.path for e in entries if e.is_dir() and e.name != STATE_DIR]
    except OSError:
        return None
    for folder in folders:
        with contextlib.suppress(OSError):
            if (Path(folder) / METADATA_FILE).stat().st_mtime > built:
                return "older than the mirrored records"
    return None


def _open_readonly(db: Path) -> sqlite3.Connection:
    """The catalogue, read-only, checked to be of the current schema (else ``sqlite3.Error``)."""
    conn = connect_readonly(db)
    conn.execute("PRAGMA busy_timeout=10000")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version < USER_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version}, this version reads {USER_VERSION}")
        conn.execute("SELECT COUNT(*) FROM neurons").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _sql_matcher(matcher: Matcher, is_list: bool) -> Any:
    def match(value: Any) -> bool:
        if is_list and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = loads(value)
        return matcher.accept(value)

    return match
