"""The one way this project puts a file under its final name: temp name beside it, fsync, ``os.replace``.

Every file a run leaves behind (neuron bodies, ``metadata.jsonl``, reports, manifests, the catalogue,
``CHANGES.jsonl``) is either the old complete file or the new complete file, never a prefix: bytes only
ever go to a temp name in the destination's own folder (same file system, so the rename is atomic), the
data is fsynced before the rename (ext4's zero-length-after-power-cut problem), and a crash leaves at most
a temp file that :func:`is_temp_name` recognises and the next run sweeps.

One temp-name pattern for the whole project, :func:`~neuromorpho_fetch.paths.temp_path`
(``.<final name>.<8 hex>.part``): hidden (a user listing the folder does not mistake it for data), unique
per writer (two processes never share one, the huggingface_hub lesson), and recognisable by one regular
expression (:func:`~neuromorpho_fetch.paths.is_temp_name`); the names belong to :mod:`.paths`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from .errors import DiskError, DiskFullError
from .paths import is_temp_name, temp_path

T = TypeVar("T")

#: The errors that mean "no space left": the disk, or the user's quota.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_error(
    exc: OSError, what: str = "write in the output directory", url: str | None = None
) -> DiskError:
    """The one translation of a file-system error: a full disk (or quota) is :class:`DiskFullError`
    (exit 2, free space and run again; issue 15 item 4), anything else a :class:`DiskError`."""
    where = f" {exc.filename!r}" if exc.filename else ""
    why = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _FULL:
        return DiskFullError(
            f"cannot {what}{where}: the disk is full ({why}); free some space (or choose another --out) "
            "and run the same command again",
            url=url,
        )
    return DiskError(f"cannot {what}{where}: {why}", url=url)


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work in a worker thread, its ``OSError`` translated by :func:`disk_error`."""
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        raise disk_error(exc) from exc


def sweep_temp(folder: Path, name: str | None = None) -> set[str]:
    """Remove the temp files a killed writer left in ``folder`` (only those of ``folder/name``, when
    given); returns the names of the other regular files there (empty when it cannot be listed).

    The caller holds the directory lock, so nobody else is writing them. One listing for both: a
    manifest write needs the folder's names too (one listing, not a stat per file: 5,000 stats cost
    ~0.1 s of a run's end).
    """
    prefix = "." if name is None else f".{name}."
    names: set[str] = set()
    leftovers: list[Path] = []
    try:
        if folder.is_symlink():
            return set()  # never delete through a link planted in the tree (paths.through_link)
        # Entries one at a time, not a list: a folder of 80,000 files made a 20 MB list at a run's end.
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith(prefix) and is_temp_name(entry.name):
                    if entry.is_file(follow_symlinks=False):
                        leftovers.append(Path(entry.path))
                elif entry.is_file():
                    names.add(entry.name)
    except OSError:
        return set()
    for path in leftovers:  # removed after the listing: never while the folder is being read
        with contextlib.suppress(OSError):
            path.unlink()
    return names


@contextlib.contextmanager
def atomic_open(target: Path, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """Open a temp file beside ``target`` for binary writing; on a clean exit, fsync and rename it.

    On any exception (including ``KeyboardInterrupt``) the temp file is removed and ``target`` is left as
    it was. Blocking: call it from a worker thread when on the event loop.
    """
    tmp = temp_path(target)
    handle = open(tmp, "xb")  # noqa: SIM115 - closed on every path below, before the rename
    try:
        yield handle
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
        handle.close()
        tmp.replace(target)
    except BaseException:
        # close() flushes what is buffered, and on a full disk that fails too: the temp file must go
        # all the same (a full disk left .last-report.json.*.part behind).
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(target: Path, data: bytes | Iterable[bytes], *, fsync: bool = True) -> None:
    """Write ``data`` (bytes, or an iterable of byte chunks) to ``target`` atomically."""
    with atomic_open(target, fsync=fsync) as handle:
        if isinstance(data, bytes | bytearray | memoryview):
            handle.write(data)
        else:
            for chunk in data:
                handle.write(chunk)


class AtomicFile:
    """A file written a piece at a time over a whole run (``metadata.jsonl``), put in place only by
    :meth:`commit`; :meth:`discard` (or a crash) leaves the old file as it was.

    The same scheme as :func:`atomic_open` for a writer that outlives one ``with`` block. Blocking:
    call it from a worker thread when on the event loop.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(target)
        self._handle: BinaryIO = open(self.tmp, "xb")  # noqa: SIM115 - closed by commit or discard

    def write_lines(self, lines: Iterable[str]) -> None:
        self._handle.write("".join(lines).encode("utf-8"))

    def commit(self, *, fsync: bool = True) -> None:
        try:
            self._handle.flush()
            if fsync:
                os.fsync(self._handle.fileno())
            self._handle.close()
            self.tmp.replace(self.target)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def _create(tmp: Path) -> int:
    """A new temp file (never an existing one, never through a link: ``O_EXCL``), its folder made when
    missing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        return os.open(tmp, flags, 0o666)


def open_temp(tmp: Path) -> int:
    """Create the temp file ``tmp`` (a :func:`~neuromorpho_fetch.paths.temp_path`) for a body streamed in
    pieces; its descriptor. The caller names it first, so a cancel during the call can still remove it."""
    return _create(tmp)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:  # a raw write may take fewer bytes than offered
        view = view[os.write(fd, view) :]


def publish_batch(batch: list[tuple[list[bytes], Path]]) -> list[OSError | None]:
    """Write every body to its temp file, then fsync and rename each: the group commit (blocking).

    Writing all before syncing any: on ext4 (data=ordered) the first fsync's journal commit carries the
    other files' data too, so their fsyncs find little left to do. Each file is still fsynced before its
    own rename, so a file under a final name is whole even after a power cut (the ext4 zero-length
    problem). The folder is not fsynced: a lost rename leaves the old file, which the mirror re-checks
    on resume. Self-contained, so a cancelled caller cannot race it, and a temp file never outlives a
    failure. Returns, per body, ``None`` or the error that lost it.
    """
    results: list[OSError | None] = [None] * len(batch)
    written: list[tuple[int, Path, int]] = []
    for i, (chunks, target) in enumerate(batch):
        tmp = temp_path(target)
        try:
            fd = _create(tmp)
            try:
                for chunk in chunks:
                    _write_all(fd, chunk)
            except OSError:
                os.close(fd)
                raise
            written.append((i, tmp, fd))
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            results[i] = exc
    for i, tmp, fd in written:
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(batch[i][1])  # atomic on POSIX; replaces a link, never writes through it
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            results[i] = exc
    return results


def publish_temp(tmp: Path, target: Path) -> None:
    """fsync a closed temp file (through a new descriptor: fsync flushes the file, not the descriptor)
    and rename it into place (blocking). The temp file is removed if that fails."""
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def hash_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in 1 MiB chunks (bounded memory whatever its size)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
