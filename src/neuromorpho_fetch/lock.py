"""One run per output directory: an advisory ``flock`` on ``<out>/.neuromorpho-fetch/lock``.

Two runs on the same tree would race on the state store and fetch the same files twice. ``flock`` is
released by the kernel when the process dies (``kill -9``, power loss), so a stale lock can never block
the next run, unlike a pid file; the pid written into the file is only there for the error message.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import OutputDirError
from .paths import MirrorPaths


def prepare_out_dir(out: Path) -> Path:
    """Create ``out`` and its state folder, or raise a one-line :class:`OutputDirError`. A state folder
    that is a symbolic link is refused: everything the tool keeps for itself would land outside."""
    state_dir = MirrorPaths(out).state_dir
    if state_dir.is_symlink():
        raise OutputDirError(
            f"{str(state_dir)!r} is a symbolic link; refusing to write through it (remove the link)"
        )
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputDirError(
            f"output directory {str(out)!r} cannot be written ({exc.strerror or exc}); choose another --out"
        ) from None
    return state_dir


class DirLock:
    """Exclusive, non-blocking lock on an output directory; use as a context manager."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = MirrorPaths(out).lock
        self._fd: int | None = None

    def acquire(self) -> None:
        prepare_out_dir(self.out)
        try:
            # O_NOFOLLOW: a lock file planted as a link must not get its target truncated and
            # overwritten with our pid (issue 15 item 11).
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputDirError(
                    f"lock file {str(self.path)!r} is a symbolic link; refusing to follow it (remove it)"
                ) from None
            raise OutputDirError(f"cannot create lock file {str(self.path)!r}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise OutputDirError(
                f"another neuromorpho-fetch run (pid {holder}) is using {str(self.out)!r}; "
                "wait for it to finish or choose another --out"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            # A full disk at start is a problem of the machine, not a bug (issue 10): say so.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            hint = "free some space or choose another --out" if exc.errno == errno.ENOSPC else "check --out"
            raise OutputDirError(
                f"cannot write lock file {str(self.path)!r}: {exc.strerror}; {hint}"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
