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

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .paths import is_temp_name, temp_path

__all__ = ["AtomicFile", "atomic_open", "atomic_write", "sweep_temp"]


def sweep_temp(folder: Path, name: str | None = None) -> set[str]:
    """Remove the temp files a killed writer left in ``folder`` (only those of ``folder/name``, when
    given); returns the names of the other regular files there (empty when it cannot be listed).

    The caller holds the directory lock, so nobody else is writing them. One listing for both: a
    manifest write needs the folder's names too (one listing, not a stat per file: 5,000 stats cost
    ~0.1 s of a run's end).
    """
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return set()
    prefix = "." if name is None else f".{name}."
    names: set[str] = set()
    for entry in entries:
        if entry.name.startswith(prefix) and is_temp_name(entry.name):
            if entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    Path(entry.path).unlink()
        elif entry.is_file():
            names.add(entry.name)
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
