"""The mirror run's dataset step: the manifests stand in for a lost state store, and the run ends by
bringing the catalogue, manifests, citations and ``CHANGES.jsonl`` up to date (issue 12).

All the run's knowledge of :mod:`neuromorpho_fetch.dataset` is here, so ``mirror/run.py`` makes three
calls and decides nothing about the dataset:

* :meth:`DatasetHook.seed` (``--verify`` only), after the state store opens: when it holds no file at
  all (deleted, or a new folder) the ``SHA256SUMS`` files of the tree are loaded into it as complete
  rows, so ``--verify``'s own path (re-hash, compare with the recorded hash, fetch again what differs,
  list it under ``damaged``) repairs the run's files from the manifests. Without this a lost state
  store meant every file on disk was *adopted*, a corrupt one included.
* :meth:`DatasetHook.after_passes`, with the client still open: the server's neuron count of each
  archive the run listed (the client's cached partition; one request at most), for coverage.
* :meth:`DatasetHook.exit`, on the run's exit stack between the directory lock and the state store,
  so it runs after the state store is closed and while the lock is still held: one
  :func:`~neuromorpho_fetch.dataset.finalize` in a worker thread.

A failed finalize loses nothing (the files and the state store are already committed, and every
dataset file is derived and rewritten by the next run): it is logged as an error and reported under
``dataset.error``, and the exit code stays what the files say (0 when every requested file is
present). A run that stops with an error or is interrupted skips the step; the next run catches up.

Neurons gone upstream keep their files unless ``--delete-gone`` (``options.delete_gone``) asks:
then :func:`~neuromorpho_fetch.dataset.gone.delete_gone_files` runs after ``finalize`` and their state
rows are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..client import NeuroMorpho
from ..dataset import DatasetSummary, facts_from_state, finalize
from ..dataset.catalogue import connect_readonly
from ..dataset.gone import delete_gone_files
from ..dataset.manifests import manifest_entries
from ..errors import NeuroMorphoError
from ..paths import CATALOGUE_FILE, MANIFEST, STATE_DIR, STATE_FILE
from ..report import MirrorReport
from ..state import AsyncStateStore
from .options import MirrorOptions

__all__ = ["COUNTS_TIMEOUT", "DatasetHook", "catalogue_built", "forget_files", "manifest_rows"]

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


def forget_files(state_db: Path, paths: list[str]) -> None:
    """Drop the state rows of deleted files (the store is closed and the lock held), so the next run's
    facts do not bring them back into the catalogue."""
    if not paths or not state_db.is_file():
        return
    conn = sqlite3.connect(state_db)
    try:
        with conn:
            conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths))
    finally:
        conn.close()


class DatasetHook:
    """What the run tells the dataset layer; see the module docstring for when each call happens."""

    def __init__(self, options: MirrorOptions, report: MirrorReport, listed: set[str]) -> None:
        self.options = options
        self.report = report
        #: Archives whose listing ran to the end (the run's set, filled as it goes): their
        #: ``metadata.jsonl`` is the one the run publishes.
        self.listed = listed
        self.server_counts: dict[str, int] = {}

    @property
    def active(self) -> bool:
        return not self.options.dry_run

    # -- start: --verify without a state store ----------------------------------------------------
    async def seed(self, state: AsyncStateStore) -> int:
        """``--verify`` into a state store with no file rows: load the manifests as its rows.

        Returns how many rows were seeded. Each row has the manifest's hash and the size on disk (a
        byte changed in place keeps the size; the hash finds it), no URL or validators (the worker's
        record of the file replaces them), and is verified only when the catalogue says that hash was
        checked against the server (otherwise ``--verify`` checks it against the server's bytes).
        """
        if not self.options.verify or not self.active:
            return 0
        counts = await state.call(lambda s: s.counts())
        if sum(counts.values()):
            return 0
        rows = await asyncio.to_thread(manifest_rows, self.options.out)
        if not rows:
            return 0
        for i in range(0, len(rows), SEED_BATCH):
            for path, digest, size, verified in rows[i : i + SEED_BATCH]:
                archive, version, _ = path.split("/")
                state.complete(
                    path,
                    "",
                    archive,
                    "",
                    version,
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
    async def after_passes(self, client: NeuroMorpho) -> None:
        """The server's neuron count of each archive the run listed, for coverage (bounded, best effort)."""
        if not self.active or not self.listed:
            return
        try:
            async with asyncio.timeout(COUNTS_TIMEOUT):
                counts = await client.archives()
        except (NeuroMorphoError, TimeoutError) as exc:
            log.warning("coverage: no archive counts from the server (%s)", exc or "timed out")
            return
        self.server_counts = {name: counts[name] for name in self.listed if name in counts}

    # -- the exit stack's callback -----------------------------------------------------------------
    async def exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Finalize after a run that ended normally (also with failed files or a deadline stop).

        Only a run that writes pushes this (``mirror/run.py`` skips it for ``--dry-run``).
        """
        if exc_type is not None:
            log.debug("catalogue and manifests not updated (the run did not finish); the next run will")
            return False
        await self.finalize()
        return False

    def complete_archives(self) -> set[str]:
        """Archives listed in full: only there can a neuron be declared gone upstream."""
        opts = self.options
        whole = (opts.archives or opts.all_archives) and not opts.query and opts.limit is None
        if not whole or self.report.stopped_by_deadline:
            return set()
        return set(self.listed)

    def arguments(self) -> dict[str, Any]:
        """:func:`finalize`'s keywords for this run (blocking: it looks at the catalogue)."""
        out = self.options.out
        # No catalogue yet (a mirror made before it existed, or lost): read every archive's records.
        archives = sorted(self.listed) if catalogue_built(out) else None
        return {
            "archives": archives,
            "files": facts_from_state(out / STATE_DIR / STATE_FILE),
            "complete_archives": sorted(self.complete_archives()),
            "server_counts": dict(self.server_counts) or None,
        }

    def _finalize(self) -> tuple[DatasetSummary, list[str]]:
        summary = finalize(self.options.out, **self.arguments())
        deleted: list[str] = []
        if self.options.delete_gone:
            deleted = delete_gone_files(self.options.out)
            forget_files(self.options.out / STATE_DIR / STATE_FILE, deleted)
        return summary, deleted

    async def finalize(self) -> DatasetSummary | None:
        """Run :func:`finalize` in a thread; errors are logged and reported, never raised.

        Cancelled meanwhile (Ctrl-C), the thread is let finish before the cancellation goes on, so
        the directory lock is not released while it still writes.
        """
        started = time.perf_counter()
        task = asyncio.ensure_future(asyncio.to_thread(self._finalize))
        try:
            summary, deleted = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await task
            raise
        except Exception as exc:  # derived files: never lose the run over them
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NeuroMorphoError) else str(exc)
            log.error("catalogue and manifests not updated: %s (the next run retries)", message)
            self.report.dataset = {
                "error": message,
                "summary": [f"dataset: not updated: {message} (the next run retries)"],
                "seconds": round(time.perf_counter() - started, 3),
            }
            return None
        lines = summary.lines()
        if self.options.delete_gone:
            lines.append(f"--delete-gone: {len(deleted)} files of neurons gone upstream deleted")
        self.report.dataset = {**summary.to_json(), "deleted_gone": deleted, "summary": lines}
        return summary
