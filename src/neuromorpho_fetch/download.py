"""One file: response body → verify as it streams → (slot released) → temp file → fsync → rename.

A crash, a Ctrl-C or a cancelled task at any point leaves either the old file or the new one under the
final name, never a partial one: bytes only ever go to a temp name beside the target
(:func:`neuromorpho_fetch.paths.temp_path`: same directory, so the rename is atomic on POSIX and never
crosses file systems; random, so two writers never share one), and the temp file is removed whatever
happened. The writing, fsyncing and renaming themselves are :mod:`neuromorpho_fetch.atomic`'s (the one
temp → fsync → rename of the project); this module decides when, and verifies what.

Checks, each answering a failure seen with real servers (reference A9.6, aiohttp notes 2.3/2.5):

* ``Content-Type: text/html`` or a body that starts like HTML: an error page served as the file;
* ``Content-Length`` against the bytes written, when the body was not content-encoded (a decoded gzip
  body is longer than its header says; files are requested with ``Accept-Encoding: identity``);
* for standardized SWC files, :class:`~neuromorpho_fetch.swc.SwcChecker` over the stream.

Two halves, because the transport's slot and pooled connection must not wait for the disk (issue 11):
:func:`receive` runs inside the transport's attempt and returns a verified :class:`Body`;
:func:`publish` runs after the slot is released and puts it under its final name.

Two ways to disk, chosen by size, because on our 2-core machines one ``asyncio.to_thread`` round trip
cost 55-210 us of CPU (measured twice, quiet and loaded machine), a sizeable share of what writing,
fsyncing and renaming a 20 KB file costs, and a NeuroMorpho.Org file is typically tens of kilobytes:

* a body that ends within one chunk (1 MiB: nearly every SWC file) is checked in memory and handed to
  the client's :class:`Publisher`, which writes, fsyncs and renames a whole batch of such files in
  **one** worker-thread call (:func:`~neuromorpho_fetch.atomic.publish_batch`, a group commit): one hop
  for many files instead
  of five per file, and nearly one journal commit instead of one per file;
* a larger body is streamed through aiofiles in 1 MiB chunks (each call a hop, so large chunks keep it
  at ~2 ms per MiB), never holding more than one chunk in memory; its fsync and rename are one more
  thread call, after the slot is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import aiohttp

from .atomic import disk_error, open_temp, publish_batch, publish_temp
from .bodies import CHUNK_SIZE, NO_LIMITS, BodyLimits, iter_body
from .errors import IntegrityError
from .paths import temp_path
from .protocol import validator
from .swc import SwcChecker, looks_like_html
from .tasks import shielded


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """A file now in place: what was fetched, where it is, and what the mirror records about it.

    ``fetched`` is False when the library reused a file already there instead of asking the server
    (``NeuroMorpho.download``'s rule, as pooch's: issue 17 item 8).
    """

    url: str
    path: Path
    size: int
    sha256: str
    etag: str | None
    last_modified: str | None
    fetched: bool = True


def expected_length(headers: Mapping[str, str]) -> int | None:
    """The body length to check against, or ``None`` when the header cannot be trusted.

    With a ``Content-Encoding`` aiohttp hands us decoded bytes, whose length differs from the header.
    """
    if headers.get("Content-Encoding") not in (None, "", "identity"):
        return None
    raw = headers.get("Content-Length")
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _is_html_type(content_type: str | None) -> bool:
    return content_type is not None and "html" in content_type.lower()


async def _open_temp(tmp: Path, url: str) -> Any:
    """The new temp file ``tmp``, opened unbuffered for aiofiles (chunks are large already, and
    it saves the flush hop before fsync)."""
    try:
        fd = await asyncio.to_thread(open_temp, tmp)
    except OSError as exc:
        raise disk_error(exc, f"write {str(tmp)!r}", url) from exc
    return await aiofiles.open(fd, "wb", buffering=0)


class _Verifier:
    """The checks every body goes through as it streams in, whichever way it reaches the disk."""

    def __init__(self, url: str, expected: int | None, check_swc: bool) -> None:
        self.url = url
        self.expected = expected
        self.checker = SwcChecker() if check_swc else None
        #: Hashed as it streams only once a body goes to a temp file; a body kept in memory is hashed in
        #: the group commit's thread, off the event loop (issue 19: one hop per file, hash off the loop).
        self.digest: Any = None
        self.size = 0
        self._first = True

    def hash_from_here(self, prior: list[bytes]) -> None:
        self.digest = hashlib.sha256()
        for chunk in prior:
            self.digest.update(chunk)

    def feed(self, chunk: bytes) -> None:
        url = self.url
        if self._first and chunk.strip():
            self._first = False
            if looks_like_html(chunk):
                raise IntegrityError(f"{url} served an HTML page instead of the file", url=url)
        if self.checker is not None:
            self.checker.feed(chunk)
            if self.checker.error is not None:
                raise IntegrityError(f"{url} is not an SWC file: {self.checker.error}", url=url)
        if self.digest is not None:
            self.digest.update(chunk)
        self.size += len(chunk)
        if self.expected is not None and self.size > self.expected:
            raise IntegrityError(f"{url}: body longer than Content-Length {self.expected}", url=url)

    def finish(self) -> None:
        url, expected = self.url, self.expected
        if expected is not None and self.size != expected:
            raise IntegrityError(
                f"{url}: got {self.size} of {expected} bytes (connection cut short)", url=url
            )
        if self.checker is not None and (reason := self.checker.finish()) is not None:
            raise IntegrityError(f"{url} is not an SWC file: {reason}", url=url)


@dataclass(slots=True)
class _Pending:
    chunks: list[bytes]
    target: Path
    url: str
    done: asyncio.Future[str]


def _hash_and_publish(batch: list[tuple[list[bytes], Path]]) -> list[tuple[OSError | None, str]]:
    """In the group commit's one thread call: each body's SHA-256 (hashlib releases the GIL on large
    updates), then :func:`~neuromorpho_fetch.atomic.publish_batch`."""
    digests = []
    for chunks, _target in batch:
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        digests.append(digest.hexdigest())
    return list(zip(publish_batch(batch), digests, strict=True))


class Publisher:
    """Group commit for verified in-memory bodies: one worker-thread call per batch, not per file.

    A body that arrives while :attr:`lanes` batches are being written waits for the next batch, so an
    idle client adds no delay and a busy one pays one thread hop and (nearly) one journal commit for
    many files.
    """

    max_batch = 256
    #: Batches written at once. One lane made every worker wait for the batch ahead of it (the disk
    #: idle while bodies queued, the loop idle while the disk worked): scenario 2 took 1.13x the wall
    #: of two lanes; three and four lanes cost CPU (smaller batches) and were no faster (2026-12-03).
    lanes = 2

    def __init__(self) -> None:
        self._queue: list[_Pending] = []
        self._drainers: set[asyncio.Task[None]] = set()

    async def publish(self, chunks: list[bytes], target: Path, url: str) -> str:
        """Put ``chunks`` under ``target``; their SHA-256."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(chunks, target, url, done))
        # Only drainers still running count: one that has just emptied the queue and returned is done
        # at once, but leaves the set only in a later callback; counting it left this body queued with
        # no drainer, and the run waiting for it forever (a benchmark caught it, 1 run in ~100).
        self._drainers = {d for d in self._drainers if not d.done()}
        if len(self._drainers) < self.lanes:
            self._drainers.add(asyncio.create_task(self._drain(), name="neuromorpho-publish"))
        # The body is handed over: cancelled, the caller lets its batch finish (milliseconds, bounded
        # by max_batch) so that, when the cancellation reaches it, the file is either in place or not
        # there, and the mirror's cancel path can record what is in place (tasks.shielded's rule).
        return await shielded(done)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await asyncio.to_thread(_hash_and_publish, [(p.chunks, p.target) for p in batch])
            except BaseException:
                for pending in (*batch, *self._queue):
                    if not pending.done.done():
                        pending.done.cancel()
                self._queue.clear()
                raise
            for pending, (error, digest) in zip(batch, results, strict=True):
                if pending.done.done():  # its caller was cancelled; the file is in place all the same
                    continue
                if error is None:
                    pending.done.set_result(digest)
                else:
                    pending.done.set_exception(
                        disk_error(error, f"write {str(pending.target)!r}", pending.url)
                    )

    async def aclose(self) -> None:
        """Wait for what was handed over: every accepted body ends up on disk or reported.

        Every lane is waited for before a lane's error is raised (the first one): raising at once left
        the other lane's bodies unawaited. Bounded: a lane ends when the queue is empty, and nothing is
        queued once the run's workers have stopped."""
        errors: list[BaseException] = []
        while self._drainers:
            finished, _ = await asyncio.wait(self._drainers)
            self._drainers -= finished
            errors += [e for d in finished if not d.cancelled() and (e := d.exception()) is not None]
        if errors:
            raise errors[0]


@dataclass(slots=True)
class Body:
    """A verified body out of the transport's slot, not yet under its final name.

    Small bodies are ``chunks`` in memory; a large one is already in the temp file ``tmp`` (written,
    not yet fsynced). :func:`publish` finishes either; :meth:`discard` removes a temp file left over.
    """

    url: str
    size: int
    #: None for a body kept in memory: hashed when it is published (in the group commit's thread).
    sha256: str | None
    etag: str | None
    last_modified: str | None
    chunks: list[bytes] | None = None
    tmp: Path | None = None

    def discard(self) -> None:
        # Synchronous on purpose: it must run even when the task is being cancelled again, and
        # unlinking one small file costs microseconds. After a successful replace it is a no-op.
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


async def receive(
    response: aiohttp.ClientResponse,
    url: str,
    target: Path,
    *,
    check_swc: bool,
    limits: BodyLimits = NO_LIMITS,
) -> Body:
    """Read and verify ``response``'s body (inside the transport's attempt); raise IntegrityError if wrong.

    A body within one chunk stays in memory; a larger one is streamed to a temp file beside ``target``.
    ``limits`` (the client's speed floor and size cap) are enforced by :func:`iter_body`.
    """
    headers = response.headers
    if _is_html_type(headers.get("Content-Type")):
        raise IntegrityError(f"{url} served an HTML page instead of the file", url=url)
    verifier = _Verifier(url, expected_length(headers), check_swc)
    stream = iter_body(response, limits)
    buffered: list[bytes] = []
    in_memory = 0
    tmp: Path | None = None
    async for chunk in stream:
        verifier.feed(chunk)
        buffered.append(chunk)
        in_memory += len(chunk)
        if in_memory > CHUNK_SIZE:
            verifier.hash_from_here(buffered)
            tmp = await _stream_to_disk(stream, buffered, verifier, target)
            break
    else:
        verifier.finish()
    return Body(
        url=url,
        size=verifier.size,
        sha256=verifier.digest.hexdigest() if verifier.digest is not None else None,
        etag=validator(headers.get("ETag")),
        last_modified=validator(headers.get("Last-Modified")),
        chunks=buffered if tmp is None else None,
        tmp=tmp,
    )


async def publish(body: Body, target: Path, publisher: Publisher) -> DownloadResult:
    """Put a verified ``body`` under ``target`` (after the slot is released): group commit, or for a
    large body one thread call that fsyncs and renames its temp file."""
    sha256 = body.sha256
    try:
        if body.chunks is not None:
            sha256 = await publisher.publish(body.chunks, target, body.url)
        elif body.tmp is not None:
            try:
                await asyncio.to_thread(publish_temp, body.tmp, target)
            except OSError as exc:
                raise disk_error(exc, f"move {str(body.tmp)!r} to {str(target)!r}", body.url) from exc
    finally:
        body.discard()
    assert sha256 is not None
    return DownloadResult(
        url=body.url,
        path=target,
        size=body.size,
        sha256=sha256,
        etag=body.etag,
        last_modified=body.last_modified,
    )


async def _stream_to_disk(
    stream: AsyncIterator[bytes], head: list[bytes], verifier: _Verifier, target: Path
) -> Path:
    """The large-body path: what is buffered so far, then the rest of ``stream``, through aiofiles.

    Returns the closed, verified temp file; on any failure it is removed.
    """
    url = verifier.url
    tmp = temp_path(target)
    try:
        handle = await _open_temp(tmp, url)
        try:

            async def write(chunk: bytes) -> None:
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[await handle.write(view) :]
                except OSError as exc:
                    raise disk_error(exc, f"write {str(tmp)!r}", url) from exc

            for chunk in head:
                await write(chunk)
            head.clear()
            async for chunk in stream:
                verifier.feed(chunk)
                await write(chunk)
            verifier.finish()
        finally:
            await handle.close()
    except BaseException:
        # OSError beyond "missing" (the folder is a file, permissions) must not hide the real error.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp
