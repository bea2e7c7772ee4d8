"""The archive folders' JSON-lines files (``metadata.jsonl``, ``morphometry.jsonl``, ``pvec.jsonl``),
written as the run goes and put in place at the end by one rule.

**One writer per folder, not per archive name.** ``Smith`` and ``smith`` share one folder (paths.py), so
their records share one ``metadata.jsonl``; two writers of one file swept each other's temp files and
failed ``--all`` on every run with a made-up disk error (issue 15 item 12).

**The merge rule.** The new file holds every line the run brought, then the old file's lines of neurons
the run did not bring, *unless* the run proved them gone: their archive was listed whole (no
``--query``, no ``--limit``) and completely (its listing is the whole truth, listing.py). A short or
failed listing, a query, a ``--limit`` run, a rejected record: none of them can drop a line (issue 15
item 1: a listing that stopped short rewrote ``metadata.jsonl`` with 3 of 10 lines). A file whose new
content equals the old one is left as it was (no fsync, no rename).

Lines are buffered and appended to the temp file in batches (opened and closed each time), so a query
spanning hundreds of archives never holds hundreds of files open.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ..atomic import publish_temp, sweep_temp
from ..jsonio import loads
from ..paths import MirrorPaths, temp_path, through_link

log = logging.getLogger("neuromorpho_fetch.mirror")


#: Lines buffered (all folders together) before they are compared or appended.
FLUSH_BYTES = 1 << 20
_ID = re.compile(rb'"neuron_id":\s*(\d+)')


def _line_id(line: bytes) -> int | None:
    """The neuron id of one line we wrote (a JSON object with a top-level ``neuron_id``)."""
    match = _ID.search(line)
    return int(match.group(1)) if match else None


def _line_archive(line: bytes) -> str | None:
    try:
        data = loads(line)
    except ValueError:
        return None
    archive = data.get("archive") if isinstance(data, dict) else None
    return archive if isinstance(archive, str) else None


class JsonlSink:
    """One JSON-lines file of an archive folder (module docstring). Blocking: call from a thread.

    While the new lines are the old file's bytes, nothing is written: they are compared with the old
    file as they come (issue 19: a re-run that changed nothing wrote, fsynced and renamed every
    ``metadata.jsonl`` of the mirror). At the first difference the temp file is started with the
    identical prefix copied from the old file, and from then on lines are appended to it.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.tmp: Path | None = None
        # The ids of the neurons the run brought, 8 bytes each: as a set of ints, 265,000 ids held
        # 16.9 MB (tracemalloc; 2.2 MB as this array), growing all through a full mirror (scenario 6).
        # A set is made of them only at publish(), one sink at a time.
        self.seen = array("q")
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._same = 0  # bytes of the new content that equal the old file's start, not written
        self._old: BinaryIO | None = None
        self._old_done = False  # the old file was opened (or found missing)

    def add(self, lines: Iterable[bytes], ids: Iterable[int]) -> None:
        for line in lines:
            self._pending.append(line)
            self._pending_bytes += len(line)
        self.seen.extend(ids)

    def pending_bytes(self) -> int:
        return self._pending_bytes

    def _open_old(self) -> None:
        if not self._old_done:
            self._old_done = True
            try:
                self._old = open(self.target, "rb")  # noqa: SIM115 - closed by _diverge or close
            except FileNotFoundError:
                self._old = None

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        if self.tmp is None:
            self._open_old()
            if self._old is not None and self._old.read(len(data)) == data:
                self._same += len(data)
                return
            self._diverge()
        assert self.tmp is not None
        with open(self.tmp, "ab") as handle:
            handle.write(data)

    def _diverge(self) -> None:
        """Start the temp file with the old file's first ``_same`` bytes (the identical prefix)."""
        self.target.parent.mkdir(parents=True, exist_ok=True)
        sweep_temp(self.target.parent, self.target.name)  # a killed run's temp file (we hold the lock)
        self.tmp = temp_path(self.target)
        with open(self.tmp, "ab") as handle:
            if self._same:
                with open(self.target, "rb") as old:
                    left = self._same
                    while left:
                        chunk = old.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        handle.write(chunk)
                        left -= len(chunk)
        self._close_old()

    def _close_old(self) -> None:
        if self._old is not None:
            self._old.close()
            self._old = None

    def publish(self, gone_archives: frozenset[str]) -> bool:
        """Put the file in place by the merge rule; True when it changed."""
        self.flush()
        if self.tmp is None and not self._old_done:
            return False  # nothing was added
        if self.tmp is None:
            rest = self._old.read(1) if self._old is not None else b""
            self._close_old()
            if not rest:
                return False  # every byte as before: the file stays as it was
        kept = self._kept(gone_archives)
        if self.tmp is None and self._rest_is(b"".join(kept)):
            return False  # the new lines, then the kept old ones, are the old file as it was
        if self.tmp is None:
            self._diverge()
        if kept:
            self._pending = kept
            self.flush()
        assert self.tmp is not None
        publish_temp(self.tmp, self.target)
        self.tmp = None
        return True

    def _rest_is(self, tail: bytes) -> bool:
        """Whether the old file, past the ``_same`` bytes already compared, is exactly ``tail``."""
        try:
            with open(self.target, "rb") as old:
                old.seek(self._same)
                return old.read(len(tail) + 1) == tail
        except OSError:
            return False

    def _kept(self, gone_archives: frozenset[str]) -> list[bytes]:
        """The old file's lines of neurons this run did not bring and did not prove gone."""
        kept: list[bytes] = []
        seen = set(self.seen)
        try:
            with open(self.target, "rb") as handle:
                for line in handle:
                    neuron_id = _line_id(line)
                    if neuron_id is not None and neuron_id in seen:
                        continue
                    if gone_archives and _line_archive(line) in gone_archives:
                        continue  # its archive was listed whole and complete without it: gone upstream
                    kept.append(line if line.endswith(b"\n") else line + b"\n")
        except FileNotFoundError:
            pass
        return kept

    def discard(self) -> None:
        self._close_old()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None


class Sinks:
    """The run's JSON-lines files, one :class:`JsonlSink` per (folder, file name). Blocking, and safe to
    call from several worker threads at once: the listing's planner and the morphometry workers each add
    lines from their own thread hop, so one lock orders them (two threads creating one folder's sink at
    once lost a batch of lines)."""

    def __init__(self, paths: MirrorPaths) -> None:
        self.paths = paths
        self._sinks: dict[tuple[str, str], JsonlSink] = {}
        self._refused: set[str] = set()
        self._lock = threading.Lock()
        self._pending = 0

    def add(self, folder: str, name: str, lines: list[bytes], ids: list[int]) -> None:
        with self._lock:
            self._add(folder, name, lines, ids)

    def _add(self, folder: str, name: str, lines: list[bytes], ids: list[int]) -> None:
        sink = self._sinks.get((folder, name))
        if sink is None:
            link = through_link(self.paths.root, folder)
            if link is not None:
                if folder not in self._refused:
                    self._refused.add(folder)
                    log.warning("%s is a symbolic link: its %s is not written through it", link, name)
                return
            sink = self._sinks[(folder, name)] = JsonlSink(self.paths.root / folder / name)
        sink.add(lines, ids)
        self._pending += sum(map(len, lines))
        if self._pending >= FLUSH_BYTES:  # the buffers of every folder together stay bounded
            for each in self._sinks.values():
                each.flush()
            self._pending = 0

    def publish(self, gone_archives: frozenset[str], folders: Iterable[str] | None = None) -> list[str]:
        """Publish the sinks of ``folders`` (default: all); returns the folders whose files changed."""
        with self._lock:
            return self._publish(gone_archives, folders)

    def _publish(self, gone_archives: frozenset[str], folders: Iterable[str] | None) -> list[str]:
        wanted = None if folders is None else set(folders)
        changed: list[str] = []
        for key in list(self._sinks):
            if wanted is not None and key[0] not in wanted:
                continue
            sink = self._sinks.pop(key)
            try:
                if sink.publish(gone_archives):
                    changed.append(key[0])
            except BaseException:
                sink.discard()
                raise
        return changed

    def discard(self) -> None:
        with self._lock:
            for sink in self._sinks.values():
                sink.discard()
            self._sinks.clear()
