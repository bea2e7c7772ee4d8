"""The run's numbers: one :class:`Tally` around one :class:`~neuromorpho_fetch.report.MirrorReport`.

The report *is* the live counter object (progress callbacks read it as ``event.counters``), so nothing
is copied at the end and ``failed`` is kept in one place: :meth:`Tally.add_failure` and
:meth:`Tally.forget_failure`, from the one dictionary of failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..progress import EventKind, ProgressEvent
from ..report import Failure, MirrorReport
from ..retry import RetryEvent

__all__ = ["Tally", "reason"]


def reason(error: BaseException) -> str:
    """One line of at most 500 characters saying what went wrong."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


class Tally:
    """Counts what happens to each file and tells the progress callback; owns the failures list."""

    def __init__(
        self,
        report: MirrorReport,
        progress: Callable[[ProgressEvent], None] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report = report
        self.progress = progress
        self.clock = clock
        self.started = clock()
        self.failures: dict[str, Failure] = {}

    def emit(
        self, kind: EventKind, *, path: str | None = None, nbytes: int = 0, message: str | None = None
    ) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(kind, self.report, path=path, nbytes=nbytes, message=message))

    def emit_finished(self) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent("finished", self.report, report=self.report))

    def retry(self, event: RetryEvent) -> None:
        self.report.retries += 1
        self.emit("retry", path=event.url)

    def skipped(self, path: str) -> None:
        self.report.skipped += 1
        self.emit("skipped", path=path)

    def downloaded(self, path: str, size: int, *, announce: bool = True) -> None:
        self.report.downloaded += 1
        self.report.bytes += size
        if announce:
            self.emit("downloaded", path=path, nbytes=size)

    def not_started(self) -> None:
        """A file left for the next run because ``--max-duration`` is up."""
        self.report.not_started += 1
        self.report.stopped_by_deadline = True

    def add_failure(self, failure: Failure) -> None:
        key = failure.path if failure.version != "morphometry" else failure.url
        self.failures[key] = failure
        self.report.failed = len(self.failures)
        self.emit("failed", path=failure.path, message=failure.reason)

    def forget_failure(self, path: str) -> None:
        """A failed file is being tried again (second pass): it is not a failure until it fails again."""
        self.failures.pop(path, None)
        self.report.failed = len(self.failures)

    def finish(self) -> MirrorReport:
        """Time taken and the sorted list of failures into the report; the counts are already there."""
        r = self.report
        r.elapsed_s = self.clock() - self.started
        r.failures = sorted(self.failures.values(), key=lambda f: (f.archive, f.path, f.url))
        r.failed = len(r.failures)
        # Every planned file is in exactly one count. A file queued or in flight when the run ended
        # early (deadline, full disk, Ctrl-C, an error) was neither downloaded, skipped nor failed: it
        # is not started (finished nothing). Derived, not counted, so no path can forget it.
        files_failed = sum(1 for f in r.failures if f.version != "morphometry")
        r.not_started = max(0, r.files - r.downloaded - r.skipped - files_failed)
        return r
