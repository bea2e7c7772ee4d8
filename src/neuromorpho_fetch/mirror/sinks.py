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
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from ..atomic import publish_temp, sweep_temp
from ..paths import MirrorPaths, temp_path, through_link

log = logging.getLogger("neuromorpho_fetch.mirror")


#: Buffered bytes per file before they are appended to its temp file.
FLUSH_BYTES = 256 << 10
_ID = re.compile(rb'"neuron_id":\s*(\d+)')


def _line_id(line: bytes) -> int | None:
    """The neuron id of one line we wrote (a JSON object with a top-level ``neuron_id``)."""
    match = _ID.search(line)
    return int(match.group(1)) if match else None


def _line_archive(line: bytes) -> str | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    archive = data.get("archive") if isinstance(data, dict) else None
    return archive if isinstance(archive, str) else None


class JsonlSink:
    """One JSON-lines file of an archive folder (module docstring). Blocking: call from a thread."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.tmp: Path | None = None
        self.seen: set[int] = set()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._digest = hashlib.sha256()
        self._size = 0

    def add(self, lines: Iterable[bytes], ids: Iterable[int]) -> None:
        for line in lines:
            self._pending.append(line)
            self._pending_bytes += len(line)
        self.seen.update(ids)
        if self._pending_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if self.tmp is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            sweep_temp(self.target.parent, self.target.name)  # a killed run's temp file (we hold the lock)
            self.tmp = temp_path(self.target)
        data = b"".join(self._pending)
        with open(self.tmp, "ab") as handle:
            handle.write(data)
        self._digest.update(data)
        self._size += len(data)
        self._pending, self._pending_bytes = [], 0

    def publish(self, gone_archives: frozenset[str]) -> bool:
        """Put the file in place by the merge rule; True when it changed."""
        self._flush()
        if self.tmp is None:
            return False
        kept: list[bytes] = []
        old = hashlib.sha256()
        old_size = 0
        try:
            with open(self.target, "rb") as handle:
                for line in handle:
                    old.update(line)
                    old_size += len(line)
                    neuron_id = _line_id(line)
                    if neuron_id is not None and neuron_id in self.seen:
                        continue
                    if gone_archives and _line_archive(line) in gone_archives:
                        continue  # its archive was listed whole and complete without it: gone upstream
                    kept.append(line if line.endswith(b"\n") else line + b"\n")
        except FileNotFoundError:
            pass
        if kept:
            self._pending = kept
            self._pending_bytes = sum(map(len, kept))
            self._flush()
        if self._size == old_size and self._digest.digest() == old.digest():
            self.discard()  # same bytes as before: leave the file as it was
            return False
        publish_temp(self.tmp, self.target)
        self.tmp = None
        return True

    def discard(self) -> None:
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
