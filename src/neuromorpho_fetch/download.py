"""One download attempt: response body → unique temp file → verify → fsync → rename into place.

A crash, a Ctrl-C or a cancelled task at any point leaves either the old file or the new one under the
final name, never a partial one: bytes only ever go to ``<name>.<random>.part`` beside the target (same
directory, so the rename is atomic on POSIX and never crosses file systems), and the temp file is
removed in ``finally`` whatever happened. The random part keeps two processes (or two tasks) writing
the same file from sharing a temp file.

Checks, each answering a failure seen with real servers (reference A9.6, aiohttp notes 2.3/2.5):

* ``Content-Type: text/html`` or a body that starts like HTML: an error page served as the file;
* ``Content-Length`` against the bytes written, when the body was not content-encoded (a decoded gzip
  body is longer than its header says; files are requested with ``Accept-Encoding: identity``);
* for standardized SWC files, :class:`~neuromorpho_fetch.swc.SwcChecker` over the stream.

Writes go through aiofiles in large chunks (each call is a thread hop, so 1 MiB chunks cost ~2 ms per
MiB instead of ~24 ms with 4 KiB ones); fsync and rename run in a worker thread. A small file costs five
thread hops: open, write, fsync, close, rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
import aiohttp

from .errors import DiskError, IntegrityError
from .swc import SwcChecker, looks_like_html

__all__ = ["CHUNK_SIZE", "DownloadResult", "expected_length", "save_body", "temp_path"]

#: Bytes per read and per write; >= 256 KiB keeps aiofiles' per-call thread hop cheap.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """A file now in place: what was fetched, where it is, and what the mirror records about it."""

    url: str
    path: Path
    size: int
    sha256: str
    etag: str | None
    last_modified: str | None


def temp_path(target: Path) -> Path:
    """``<name>.<random>.part`` in the target's own folder."""
    return target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")


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
    """Open the temp file unbuffered, creating its folder only when it is missing.

    Unbuffered (``buffering=0``): chunks are large already, and it saves the flush hop before fsync.
    Trying the open first saves a ``makedirs`` thread hop per file in the common case.
    """
    try:
        try:
            return await aiofiles.open(tmp, "wb", buffering=0)
        except FileNotFoundError:
            await aiofiles.os.makedirs(tmp.parent, exist_ok=True)
            return await aiofiles.open(tmp, "wb", buffering=0)
    except OSError as exc:
        raise DiskError(f"cannot write {str(tmp)!r}: {exc}", url=url) from exc


async def save_body(
    response: aiohttp.ClientResponse,
    url: str,
    target: Path,
    *,
    check_swc: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> DownloadResult:
    """Stream ``response``'s body into ``target`` atomically; raise :class:`IntegrityError` if it is wrong.

    The caller owns the request (status already checked) and the retry; this is the part of one attempt
    that touches the disk.
    """
    headers = response.headers
    if _is_html_type(headers.get("Content-Type")):
        raise IntegrityError(f"{url} served an HTML page instead of the file", url=url)
    expected = expected_length(headers)
    tmp = temp_path(target)
    digest = hashlib.sha256()
    checker = SwcChecker() if check_swc else None
    size = 0
    first = True
    try:
        handle = await _open_temp(tmp, url)
        try:
            async for chunk in response.content.iter_chunked(chunk_size):
                if first and chunk.strip():
                    first = False
                    if looks_like_html(chunk):
                        raise IntegrityError(f"{url} served an HTML page instead of the file", url=url)
                if checker is not None:
                    checker.feed(chunk)
                    if checker.error is not None:
                        raise IntegrityError(f"{url} is not an SWC file: {checker.error}", url=url)
                digest.update(chunk)
                size += len(chunk)
                if expected is not None and size > expected:
                    raise IntegrityError(f"{url}: body longer than Content-Length {expected}", url=url)
                try:
                    view = memoryview(chunk)
                    while view:  # a raw write may take fewer bytes than offered
                        view = view[await handle.write(view) :]
                except OSError as exc:
                    raise DiskError(f"cannot write {str(tmp)!r}: {exc}", url=url) from exc
            if expected is not None and size != expected:
                raise IntegrityError(f"{url}: got {size} of {expected} bytes (connection cut short)", url=url)
            if checker is not None and (reason := checker.finish()) is not None:
                raise IntegrityError(f"{url} is not an SWC file: {reason}", url=url)
            try:
                # The data must be on disk before the rename publishes it (else a power cut can
                # leave an empty file under the final name: the ext4 zero-length problem).
                await asyncio.to_thread(os.fsync, handle.fileno())
            except OSError as exc:
                raise DiskError(f"cannot write {str(tmp)!r}: {exc}", url=url) from exc
        finally:
            await handle.close()
        try:
            # Atomic on POSIX. The folder is not fsynced: after a power cut the rename may be lost,
            # which leaves the old file (still a whole file), and the mirror re-checks on resume.
            await aiofiles.os.replace(tmp, target)
        except OSError as exc:
            raise DiskError(f"cannot move {str(tmp)!r} to {str(target)!r}: {exc}", url=url) from exc
    finally:
        # Synchronous on purpose: it must run even when the task is being cancelled again, and
        # unlinking one small file costs microseconds. After a successful replace it is a no-op.
        # OSError beyond "missing" (the folder is a file, permissions) must not hide the real error.
        with contextlib.suppress(OSError):
            tmp.unlink()
    return DownloadResult(
        url=url,
        path=target,
        size=size,
        sha256=digest.hexdigest(),
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
    )
