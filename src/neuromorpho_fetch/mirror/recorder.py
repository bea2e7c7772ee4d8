"""The run's one writer of numbers: it consumes values (listing batches, listing results, outcomes,
retries) and is the only place a count changes. It also persists each outcome in the state store, since
"what happened to this file" is exactly what the store keeps.

Nothing reads its fields from outside: progress callbacks get frozen :class:`~..progress.Counters`
snapshots (at most every :data:`PROGRESS_INTERVAL`, so a fast run does not pay a callback per file), the
run asks :meth:`Recorder.server_down` after each outcome, and the report is built once at the end
(:meth:`Recorder.report`), from the recorder's numbers and the facts of how the run ended. rclone's
accounting, pooch's "download action": one place that knows what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import NeuroMorphoError, NotFoundError, TransportError
from ..progress import Counters, EventKind, ProgressEvent
from ..report import REJECTED_KEPT, Failure, ListingSummary, MirrorReport, Rejected
from ..retry import RetryEvent
from ..state import AsyncStateStore
from .listing import Batch, Listed
from .plan import Action, FilePlan
from .work import Kind, Outcome

log = logging.getLogger("neuromorpho_fetch.mirror")

#: The most often the same kind of progress is told (seconds); a new kind, a phase change and the end
#: are always told.
PROGRESS_INTERVAL = 0.1
#: After this many files in a row failed with no answer from the server, it is down: stop the run.
UNREACHABLE_STREAK = 50


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How the run ended: the facts the report needs besides the recorder's numbers."""

    out: str
    report_path: str | None = None
    dry_run: bool = False
    interrupted: bool = False
    stopped_by_deadline: bool = False
    error: str | None = None
    error_exit: int | None = None
    unreachable: bool = False
    internal_error: bool = False
    crash_log: str | None = None
    tls: Mapping[str, str] = field(default_factory=dict)
    dataset: Mapping[str, Any] | None = None


class Recorder:
    """Counts, persists and tells (module docstring). ``state`` is None for a dry run."""

    def __init__(
        self,
        state: AsyncStateStore | None,
        progress: Callable[[ProgressEvent], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.progress = progress
        self.clock = clock
        self.started = clock()
        self._last_emit = -1.0
        self._last_kind: str | None = None
        self._n: dict[str, int] = dict.fromkeys(
            (
                "neurons",
                "files",
                "downloaded",
                "skipped",
                "adopted",
                "revalidated",
                "bytes",
                "retries",
                "unavailable",
                "rejected",
                "would_download",
                "known_sizes",
                "metadata_missing",
            ),
            0,
        )
        self._damaged: list[str] = []
        self._failures: dict[str, Failure] = {}
        self._rejected: list[Rejected] = []
        self._listings: list[ListingSummary] = []
        self._listing_errors: list[str] = []
        self._streak = 0
        self._last_transport: TransportError | None = None
        self._deadline_hit = False
        self.neurons_total: int | None = None
        self.files_expected: int | None = None
        self._listing_done = False
        self._would: dict[str, int] = {}
        self._known_bytes: int | None = None

    # -- progress ------------------------------------------------------------------------------------

    def counters(self) -> Counters:
        n = self._n
        failed = len(self._failures)
        return Counters(
            neurons=n["neurons"],
            neurons_total=self.neurons_total,
            files=n["files"],
            files_expected=self.files_expected,
            listing_done=self._listing_done,
            downloaded=n["downloaded"] or n["would_download"],
            skipped=n["skipped"],
            failed=failed,
            retries=n["retries"],
            bytes=n["bytes"],
        )

    def emit(
        self, kind: EventKind, *, message: str | None = None, force: bool = False, path: str | None = None
    ) -> None:
        if self.progress is None:
            return
        now = self.clock()
        if not force and kind == self._last_kind and now - self._last_emit < PROGRESS_INTERVAL:
            return  # the same kind of news again within the interval: the next snapshot will carry it
        self._last_emit, self._last_kind = now, kind
        self.progress(ProgressEvent(kind, self.counters(), path=path, message=message))

    def finished(self, report: MirrorReport) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent("finished", self.counters(), report=report))

    # -- the listing ---------------------------------------------------------------------------------

    def expect(self, neurons: int, files: int) -> None:
        self.neurons_total, self.files_expected = neurons, files
        self.emit("listed", force=True)

    def listed(self, batch: Batch) -> None:
        self._n["neurons"] += len(batch.neurons)
        for bad in batch.rejected:
            self._n["rejected"] += 1
            if len(self._rejected) < REJECTED_KEPT:
                self._rejected.append(Rejected(batch.selection.label, bad.reason, bad.neuron_id, bad.excerpt))
        self.emit("listed")

    def listing(self, result: Listed) -> None:
        self._listings.append(
            ListingSummary(
                selection=result.selection.label,
                archive=result.selection.archive,
                announced=result.announced,
                listed=result.distinct,
                rejected=result.rejected,
                repeats=result.repeats,
                recount=result.recount,
                complete=result.complete,
                error=result.error,
            )
        )
        if result.error is not None:
            self._listing_errors.append(result.error)

    def listing_done(self) -> None:
        self._listing_done = True
        self.emit("listed", force=True)
        self.emit("planned", force=True)

    def planned(self, plans: int, unavailable: int = 0) -> None:
        self._n["files"] += plans
        self._n["unavailable"] += unavailable
        self.emit("planned")

    def retried_files(self, count: int) -> None:
        """``--retry-failed``: the report's files are this run's files, and their neurons its neurons."""
        self._n["neurons"] += count

    # -- outcomes ------------------------------------------------------------------------------------

    def dry(self, plan: FilePlan) -> None:
        """A dry run's decision: counted as what would happen (per archive folder; each path at debug
        level, ``-v``), nothing persisted. A file the state store knows has a known size."""
        if plan.action in (Action.FETCH, Action.REVALIDATE, Action.CHECK):
            self._n["would_download"] += 1
            self._would[plan.folder] = self._would.get(plan.folder, 0) + 1
            if plan.row is not None and plan.row.size is not None:
                self._known_bytes = (self._known_bytes or 0) + plan.row.size
                self._n["known_sizes"] += 1
            log.debug("would download %s", plan.path)
        elif plan.action is Action.REFUSE:
            self._fail(plan, plan.note)
        else:
            self._n["skipped"] += 1

    def record(self, outcome: Outcome) -> None:
        """Count one outcome and persist it in the state store."""
        plan, kind = outcome.plan, outcome.kind
        if kind is Kind.NOT_STARTED:
            # Left for the next run; a file that failed before stays a failure of this run.
            self._deadline_hit = True
            return
        if plan.second_pass or kind is not Kind.FAILED:
            self._failures.pop(plan.path, None)  # tried again: a failure only if it fails again
        if kind is Kind.FAILED:
            self._failed_outcome(outcome)
            return
        self._streak = 0
        n = self._n
        if kind is Kind.DOWNLOADED:
            n["downloaded"] += 1
            n["bytes"] += outcome.size
            if outcome.damaged:
                self._damaged.append(plan.path)
        else:
            n["skipped"] += 1
            if kind is Kind.ADOPTED:
                n["adopted"] += 1
            elif kind is Kind.REVALIDATED:
                n["revalidated"] += 1
        if self.state is not None and outcome.sha256 is not None and kind is not Kind.SKIPPED:
            self.state.complete(
                plan.path,
                plan.url,
                plan.archive,
                plan.neuron_name,
                plan.version,
                size=outcome.size,
                sha256=outcome.sha256,
                etag=outcome.etag,
                last_modified=outcome.last_modified,
                verified=outcome.verified,
            )
        self.emit(kind.value if kind is Kind.DOWNLOADED else "skipped", path=plan.path)

    def _failed_outcome(self, outcome: Outcome) -> None:
        if isinstance(outcome.error, TransportError):
            self._streak += 1
            self._last_transport = outcome.error
        else:
            self._streak = 0
        self._fail(outcome.plan, outcome.reason, missing=isinstance(outcome.error, NotFoundError))

    def _fail(self, plan: FilePlan, why: str, *, missing: bool = False) -> None:
        if self.state is not None and plan.action is not Action.REFUSE:
            self.state.failed(
                plan.path, plan.url, plan.archive, plan.neuron_name, plan.version, why, missing=missing
            )
        self._failures[plan.path] = Failure(
            plan.neuron_name, plan.url, why, plan.path, plan.archive, plan.version
        )
        self.emit("failed", path=plan.path, message=why)

    def refused(self, plan: FilePlan) -> None:
        """A plan not carried out (``REFUSE``): a failure with its note, never retried."""
        self._fail(plan, plan.note)

    def metadata(self, failure: Failure | None = None, *, missing: int = 0) -> None:
        """A morphometry/pvec request that failed (listed, not a file), or records the server has none of."""
        self._n["metadata_missing"] += missing
        if failure is not None:
            self._failures[f"{failure.version}:{failure.url}"] = failure
            self.emit("failed", path=failure.path, message=failure.reason)

    def retry(self, event: RetryEvent) -> None:
        self._n["retries"] += 1
        self.emit("retry", path=event.url)

    def server_down(self) -> NeuroMorphoError | None:
        """The error that stops the run when :data:`UNREACHABLE_STREAK` files in a row got no answer."""
        if self._streak < UNREACHABLE_STREAK or self._last_transport is None:
            return None
        last = self._last_transport
        return type(last)(
            f"{self._streak} files in a row got no answer from the server; stopping (last: {last})",
            url=last.url,
        )

    def changed_anything(self) -> bool:
        """Whether this run changed a file or its record: fetched, adopted or revalidated one, or one
        failed (the dataset step has something to write then)."""
        n = self._n
        return bool(n["downloaded"] or n["adopted"] or n["revalidated"] or self._failures or self._damaged)

    def first_transport_error(self) -> TransportError | None:
        return self._last_transport

    # -- the end -------------------------------------------------------------------------------------

    def report(self, end: RunEnd) -> MirrorReport:
        """The run's report: the recorder's numbers and how the run ended."""
        n = self._n
        failures = tuple(sorted(self._failures.values(), key=lambda f: (f.archive, f.path, f.url)))
        files_failed = sum(1 for f in failures if f.version not in ("morphometry", "pvec"))
        downloaded = n["would_download"] if end.dry_run else n["downloaded"]
        # Every planned file is in exactly one count. A file queued or in flight when the run ended
        # early was neither downloaded, skipped nor failed: it is not started. Derived, not counted,
        # so no path can forget it.
        not_started = max(0, n["files"] - downloaded - n["skipped"] - files_failed) if not end.dry_run else 0
        return MirrorReport(
            downloaded=downloaded,
            skipped=n["skipped"],
            failed=len(failures),
            bytes=n["bytes"],
            elapsed_s=self.clock() - self.started,
            neurons=n["neurons"],
            files=n["files"],
            revalidated=n["revalidated"],
            adopted=n["adopted"],
            damaged=tuple(self._damaged),
            retries=n["retries"],
            not_started=not_started,
            unavailable=n["unavailable"],
            dry_run=end.dry_run,
            interrupted=end.interrupted,
            stopped_by_deadline=end.stopped_by_deadline or self._deadline_hit,
            error=end.error,
            error_exit=end.error_exit,
            unreachable=end.unreachable,
            listing_errors=tuple(self._listing_errors),
            listings=tuple(self._listings),
            rejected=n["rejected"],
            rejected_records=tuple(self._rejected),
            tls=dict(end.tls),
            internal_error=end.internal_error,
            crash_log=end.crash_log,
            out=end.out,
            report_path=end.report_path,
            failures=failures,
            metadata_missing=n["metadata_missing"],
            listing_done=self._listing_done,
            neurons_total=self.neurons_total,
            files_expected=self.files_expected,
            estimated_bytes=self._known_bytes,
            known_sizes=n["known_sizes"],
            would_download=dict(sorted(self._would.items())),
            dataset=end.dataset,
        )
