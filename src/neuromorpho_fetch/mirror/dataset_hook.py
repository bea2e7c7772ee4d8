"""The mirror run's dataset step: the manifests stand in for a lost state store, and the run ends by
bringing the catalogue, manifests, citations and ``CHANGES.jsonl`` up to date (issue 12).

All the run's knowledge of :mod:`neuromorpho_fetch.dataset` is here (:class:`DatasetStep`), so
``mirror/run.py`` makes three calls and decides nothing about the dataset:

* :meth:`DatasetStep.seed` (``--verify`` only), after the state store opens: when it holds no file at
  all (deleted, or a new folder) the ``SHA256SUMS`` files of the tree are loaded into it as complete
  rows, so ``--verify``'s own path (re-hash, compare with the recorded hash, fetch again what differs,
  list it under ``damaged``) repairs the run's files from the manifests. Without this a lost state
  store meant every file on disk was *adopted*, a corrupt one included.
* :meth:`DatasetStep.counts`, with the client still open: the server's neuron count of each archive
  the run listed (the client's cached partition; one request at most), for coverage.
* :meth:`DatasetStep.run`, after the state store is closed and while the lock is still held: one
  :func:`~neuromorpho_fetch.dataset.finalize` in a worker thread, told which archives the run's
  listings proved whole and complete (:meth:`DatasetStep.proven`): only there is anything gone.

A failed finalize loses nothing (the files and the state store are already committed, and every
dataset file is derived and rewritten by the next run): it is logged as one error line and reported
under ``dataset.error``, and the run exits 1 (a script or cron job must see that the catalogue,
manifests and citations are stale, as rclone exits non-zero on any error). A run that stops with an
error or is interrupted skips the step; the next run catches up.

Neurons gone upstream keep their files unless ``--delete-gone`` (``options.delete_gone``) asks:
then :func:`~neuromorpho_fetch.dataset.gone.delete_gone_files` runs after ``finalize`` and their state
rows are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..client import NeuroMorpho
from ..dataset import DatasetSummary, FileFact, finalize
from ..dataset.catalogue import connect_readonly, held_counts, settled
from ..dataset.gone import delete_gone_files
from ..dataset.manifests import manifest_entries
from ..errors import NeuroMorphoError
from ..paths import CATALOGUE_FILE, MANIFEST, MirrorPaths, parse_data_path
from ..sqlitedb import Failure, failure, open_database, translate
from ..state import AsyncStateStore, complete_files, forget_files, unfinished_files
from ..tasks import shielded
from .listing import Listed
from .options import MirrorOptions
from .recorder import Recorder

log = logging.getLogger("neuromorpho_fetch.mirror")

#: Longest wait for the archive counts at the end of a run (one cached value, or one request).
COUNTS_TIMEOUT = 30.0
#: Seeded rows handed to the state store per flush.
SEED_BATCH = 2000


def manifest_rows(out: Path) -> list[tuple[str, str, int, bool]]:
    """``(path, sha256, size on disk, verified)`` of every file a manifest under ``out`` lists and the disk
    holds (blocking). A listed file that is missing is left out: with no row and no file it is fetched.

    ``verified`` is the catalogue's word for that path and hash (checked against the server's bytes when
    it was fetched), false when the catalogue does not say so: a manifest alone proves what the bytes
    were, not that the server sent them.
    """
    checked = _verified_in_catalogue(out)
    rows: list[tuple[str, str, int, bool]] = []
    for rel, folder, entries in manifest_entries(out, on_error=_unreadable):
        for name, digest in entries:
            try:
                size = (folder / name).stat().st_size
            except OSError:
                continue
            path = f"{rel}/{name}"
            rows.append((path, digest, size, (path, digest) in checked))
    return rows


def _unreadable(manifest: Path, exc: OSError) -> None:
    log.warning("cannot read %s: %s", manifest, exc.strerror or exc)


def _verified_in_catalogue(out: Path) -> set[tuple[str, str]]:
    """``(path, sha256)`` of the catalogue's files whose hash was checked against the server."""
    return {(p, h) for p, h in _query_catalogue(out, "SELECT path, sha256 FROM files WHERE verified = 1")}


def catalogue_built(out: Path) -> bool:
    """Whether ``catalogue.sqlite`` exists and a first build committed (``meta.schema_version``)."""
    return bool(_query_catalogue(out, "SELECT value FROM meta WHERE key='schema_version'"))


def _query_catalogue(out: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the catalogue opened read-only; none when it is missing or unreadable."""
    path = out / CATALOGUE_FILE
    if not path.is_file():
        return []
    try:
        conn = connect_readonly(path)
    except sqlite3.Error:
        return []
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def claim_catalogue(path: Path) -> None:
    """Raise :class:`~neuromorpho_fetch.errors.DatabaseBusyError` when another program holds the
    catalogue locked (a ``sqlite3`` shell in a transaction, a notebook), after the bounded busy wait.

    Busy is not corrupt (issue 15 item 13): the dataset step would otherwise meet "database is locked"
    while opening the catalogue and set it aside as damaged, then rebuild it as a first run (a read
    transaction left open in a notebook did that, silently). sqlitedb tells the two apart; anything else
    is left to the dataset step, which rebuilds a catalogue it cannot read.
    """
    if not path.is_file():
        return
    try:
        conn = open_database(path, what="catalogue")
        try:
            # EXCLUSIVE, not IMMEDIATE: the catalogue is a rollback-journal database, where a reader's
            # open transaction (SHARED) also blocks the commit the dataset step will need.
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if failure(exc, path) is Failure.BUSY:
            raise translate(exc, path, "catalogue") from None


class DatasetStep:
    """What the run tells the dataset layer; see the module docstring for when each call happens."""

    def __init__(self, options: MirrorOptions, paths: MirrorPaths) -> None:
        self.options = options
        self.paths = paths
        self.server_counts: dict[str, int] = {}

    # -- start: --verify without a state store ----------------------------------------------------
    async def seed(self, state: AsyncStateStore) -> int:
        """``--verify`` into a state store with no file rows: load the manifests as its rows.

        Returns how many rows were seeded. Each row has the manifest's hash and the size on disk (a
        byte changed in place keeps the size; the hash finds it), no URL or validators (the worker's
        record of the file replaces them), and is verified only when the catalogue says that hash was
        checked against the server (otherwise ``--verify`` checks it against the server's bytes).
        """
        if not self.options.verify or self.options.dry_run:
            return 0
        counts = await state.call(lambda s: s.counts())
        if sum(counts.values()):
            return 0
        rows = await asyncio.to_thread(manifest_rows, self.paths.root)
        if not rows:
            return 0
        for i in range(0, len(rows), SEED_BATCH):
            for path, digest, size, verified in rows[i : i + SEED_BATCH]:
                parsed = parse_data_path(path)
                if parsed is None:
                    continue
                state.complete(
                    path,
                    "",
                    parsed.folder,
                    "",
                    parsed.version,
                    size=size,
                    sha256=digest,
                    etag=None,
                    last_modified=None,
                    verified=verified,
                )
            await state.flush()
        log.info(
            "--verify: the state store holds no files; checking against %d files listed in %s manifests",
            len(rows),
            MANIFEST,
        )
        return len(rows)

    # -- with the client still open ----------------------------------------------------------------
    async def counts(self, client: NeuroMorpho, listings: list[Listed]) -> None:
        """The server's neuron count of each archive the run listed, for coverage (bounded, best effort)."""
        listed = {a for item in listings for a in item.archives}
        if self.options.dry_run or not listed:
            return
        try:
            async with asyncio.timeout(COUNTS_TIMEOUT):
                counts = await client.archives()
        except (NeuroMorphoError, TimeoutError) as exc:
            log.warning("coverage: no archive counts from the server (%s)", exc or "timed out")
            return
        self.server_counts = {name: counts[name] for name in listed if name in counts}

    # -- the run's end -----------------------------------------------------------------------------
    @staticmethod
    def proven(listings: list[Listed]) -> set[str]:
        """Archives whose listing this run proved whole and complete: only there can a neuron be
        declared gone upstream (issue 15 item 1)."""
        return {
            item.selection.archive
            for item in listings
            if item.selection.whole and item.complete and not item.rejected and item.selection.archive
        }

    def _finalize(self, listings: list[Listed]) -> tuple[DatasetSummary, list[str]]:
        root = self.paths.root
        claim_catalogue(root / CATALOGUE_FILE)
        listed = sorted({a for item in listings for a in item.archives})
        summary = finalize(
            root,
            archives=listed if catalogue_built(root) else None,
            files=(FileFact(*row) for row in complete_files(self.paths.state_db)),
            complete_archives=sorted(self.proven(listings)),
            server_counts=dict(self.server_counts) or None,
            # The state store is the word on what is held (issue 17 item 2); none (a dry run): no word.
            problems=unfinished_files(self.paths.state_db) if self.paths.state_db.is_file() else None,
        )
        deleted: list[str] = []
        if self.options.delete_gone:
            deleted = delete_gone_files(root)
            forget_files(self.paths.state_db, deleted)
        return summary, deleted

    async def run(
        self, listings: list[Listed], recorder: Recorder, changed: list[str]
    ) -> dict[str, Any] | None:
        """Run :func:`finalize` in a thread; errors are logged and reported, never raised.

        A run that changed nothing (no archive folder's ``metadata.jsonl`` changed, no file fetched,
        adopted or failed, no ``--delete-gone``) leaves the dataset files as they are: the catalogue,
        manifests and citations already say what it would write (issue 19: a no-change re-run cost the
        listing plus the whole dataset step). Cancelled meanwhile (Ctrl-C), the thread is let finish
        before the cancellation goes on, so the directory lock is not released while it still writes.
        """
        started = time.perf_counter()
        quiet = not changed and not recorder.changed_anything() and not self.options.delete_gone
        if quiet and await asyncio.to_thread(settled, self.paths.root):
            held = await asyncio.to_thread(held_counts, self.paths.root)
            line = f"catalogue: unchanged since the last run: {held.get('neurons', '?')} neurons, "
            line += f"{held.get('files', '?')} files"
            lines = [line, *([f"dataset: {held.pop('sentence')}"] if "sentence" in held else [])]
            return {**held, "unchanged": True, "deleted_gone": [], "summary": lines}
        try:
            summary, deleted = await shielded(
                asyncio.ensure_future(asyncio.to_thread(self._finalize, listings))
            )
        except Exception as exc:  # derived files: never lose the run over them
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NeuroMorphoError) else str(exc)
            log.error("catalogue and manifests not updated: %s (the next run retries)", message)
            return {
                "error": message,
                "summary": [f"dataset: not updated: {message} (the next run retries)"],
                "seconds": round(time.perf_counter() - started, 3),
            }
        lines = summary.lines()
        if self.options.delete_gone:
            lines.append(f"--delete-gone: {len(deleted)} files of neurons gone upstream deleted")
        return {**summary.to_json(), "deleted_gone": deleted, "summary": lines}
