"""One mirror run from start to end: lock, state store, client, the passes, the report.

Shape (rclone's layering, asyncio discipline):

* one :class:`~neuromorpho_fetch.client.NeuroMorpho` client (one connector, one pacer), so concurrency
  and the request rate hold for the whole run, listing and morphometry included;
* the listing pages ``select`` and plans each batch of neurons against the state store (one thread hop
  per batch), putting only the files that need work on a *bounded* queue: the first downloads start
  after the first page and memory stays flat for any archive size;
* ``concurrency`` workers drain the queue; everything is owned by an :class:`asyncio.TaskGroup`, so
  one fatal error (TLS, full disk) or a Ctrl-C cancels every task, and each task's ``finally`` (the
  client removes its temp file there) runs before the state is committed and the report written;
* failures of the first pass get one more pass after a cool-down (the second level of retries); both
  passes, and ``--retry-failed``, admit their files through the one :meth:`_Run.admit`, so the
  deadline and the in-flight rule are the same everywhere.

Resources (lock, state store, client, retry counting, JSONL writers) are entered on one
:class:`contextlib.AsyncExitStack`, so they are released in reverse order whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from ..atomic import AtomicFile
from ..client import NeuroMorpho
from ..config import ClientConfig
from ..errors import NeuroMorphoError, OutputDirError, StateCorruptError, UsageError
from ..lock import DirLock
from ..models import Neuron
from ..paths import LAST_REPORT, METADATA_FILE, STATE_DIR, STATE_FILE, archive_folder, safe_target, temp_path
from ..progress import ProgressEvent
from ..report import Failure, MirrorReport, read_failures, write_crash_log, write_json_atomic
from ..state import AsyncStateStore, FileRow, StateStore, set_aside
from . import listing
from .dataset_hook import DatasetHook
from .options import MirrorOptions
from .plan import Action, FileJob, PlanDisk, file_jobs, plan_file, sweep_temp_files
from .tally import Tally
from .transfer import Job, MorphJob, Transfer, disk

__all__ = ["DEADLINE_GRACE_MAX", "deadline_grace", "mirror"]

log = logging.getLogger("neuromorpho_fetch.mirror")


Source = Callable[[asyncio.Queue[Job | None]], Awaitable[None]]

#: The longest grace ``--max-duration`` gives files still in flight before they are cancelled.
DEADLINE_GRACE_MAX = 10.0


def deadline_grace(max_duration: float) -> float:
    """Grace after ``--max-duration`` for files in flight: ``min(10 s, max_duration / 10)``.

    Issue 10: ``--max-duration 10s`` was still running at 60 s, because a file in flight was waited
    for however slowly it came. A tenth of the budget lets an ordinary file that is nearly done land
    (most take well under a second) without letting one trickling file hold the run hostage.
    """
    return min(DEADLINE_GRACE_MAX, max_duration / 10)


class _Run:
    def __init__(
        self,
        options: MirrorOptions,
        progress: Callable[[ProgressEvent], None] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.out = options.out
        self.clock = clock
        report = MirrorReport(dry_run=options.dry_run, out=str(options.out))
        if options.report_path is not None:
            report.report_path = str(options.report_path)
        elif not options.dry_run:
            report.report_path = str(options.out / STATE_DIR / LAST_REPORT)
        self.tally = Tally(report, progress, clock=clock)
        self.report = report
        self.config: ClientConfig = options.config
        self.deadline: float | None = None
        if options.max_duration is not None:
            self.deadline = self.tally.started + options.max_duration
        self.state: AsyncStateStore | None = None
        self.transfer: Transfer | None = None
        self.metadata: dict[str, AtomicFile] = {}
        self.listing_complete: set[str] = set()
        self.plan_disk = PlanDisk(self.out, sweep=not options.dry_run)
        self.usage_error = False
        self.dataset = DatasetHook(options, report, self.listing_complete)

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    # -- lifecycle ---------------------------------------------------------------------------------
    async def execute(self, client: NeuroMorpho | None) -> MirrorReport:
        opts = self.options
        try:
            async with contextlib.AsyncExitStack() as stack:
                if client is not None:
                    self.config = _shared_config(opts.config, client.config)
                _warn_plain_http(self.config.base_url)
                if opts.report_path is not None:
                    await asyncio.to_thread(_check_report_path, opts.report_path)
                retry_items = None
                if opts.retry_failed is not None:
                    retry_items = await asyncio.to_thread(read_failures, opts.retry_failed)
                if opts.dry_run:
                    store = await asyncio.to_thread(self._open_read_only)
                else:
                    await asyncio.to_thread(stack.enter_context, DirLock(self.out))
                    # A store that cannot be opened (damaged, disk full) ends the run before it began:
                    # opened first, so the dataset step is not entered and says nothing about it.
                    store = await asyncio.to_thread(self._open_store)
                    # Pushed before the state store's exit, so it runs after the store is closed, with
                    # the lock held.
                    stack.push_async_exit(self.dataset.exit)
                if store is not None:
                    self.state = AsyncStateStore(store)
                    stack.push(self._state_exit)
                    await self.state.call(lambda s: s.begin_run(opts.describe()))
                    await self.dataset.seed(self.state)
                stack.callback(self._discard_writers)
                if client is None:
                    client = await stack.enter_async_context(NeuroMorpho(config=self.config))
                stack.enter_context(client.transport.retry_listener(self.tally.retry))
                self.report.tls = client.transport.tls_hosts  # live: filled as hosts are met
                self.transfer = Transfer(
                    self.out,
                    self.state,
                    self.tally,
                    refresh=opts.refresh,
                    base_url=client.base_url,
                    past_deadline=self.past_deadline,
                )
                await self._passes(client, retry_items)
                await self.dataset.after_passes(client)
        except asyncio.CancelledError:
            self.report.interrupted = True
            raise
        except BaseException as exc:
            error = _first_error(exc)
            # A usage error means nothing ran, so no report; a store found damaged mid-run is one too
            # (its way out is a flag) but the run had started, so its report is written.
            self.usage_error = isinstance(error, UsageError) and not (
                isinstance(error, StateCorruptError) and self.state is not None
            )
            if isinstance(error, NeuroMorphoError):
                self.report.error = str(error)
            elif isinstance(error, Exception):
                self._crashed(error)
            if error is not exc:
                raise error from exc
            raise
        finally:
            self._write_report()
            self.tally.emit_finished()
        return self.report

    def _crashed(self, error: Exception) -> None:
        """An unexpected error (a bug): its traceback to a crash log, and the report says so (issue 10:
        the report of a crashed run said ``"exit_code": 0, "error": null``)."""
        self.report.internal_error = True
        self.report.error = f"internal error: {type(error).__name__}: {error}"
        try:
            self.report.crash_log = str(write_crash_log(self.out / STATE_DIR, error))
        except OSError as exc:
            log.error("cannot write a crash log: %s", exc)

    def _open_store(self) -> StateStore:
        """The state store; with ``--rebuild-state`` a damaged one is set aside and a new one started
        (its files are then adopted from the tree, as unverified). A healthy store is kept."""
        db = self.out / STATE_DIR / STATE_FILE
        try:
            return StateStore(db)
        except StateCorruptError:
            if not self.options.rebuild_state:
                raise
        aside = set_aside(db)
        log.warning(
            "state store was damaged: moved to %s; rebuilding it from the files on disk (recorded as "
            "unverified: --verify checks them against the server)",
            aside,
        )
        return StateStore(db)

    def _open_read_only(self) -> StateStore | None:
        db = self.out / STATE_DIR / STATE_FILE
        if not db.is_file():
            return None
        try:
            return StateStore(db, read_only=True)
        except OutputDirError as exc:
            log.warning("dry run: %s; planning as if nothing were downloaded", exc)
            return None

    async def _passes(self, client: NeuroMorpho, retry_items: list[Failure] | None) -> None:
        """Both passes under the hard bound: at ``--max-duration`` nothing new starts (``admit``); a
        grace later (:func:`deadline_grace`) whatever is still running, listing included, is cancelled
        with the same cleanup as Ctrl-C (temp files removed, renamed files recorded), and the files it
        held are reported as not started."""
        scope = asyncio.timeout(None)
        if self.deadline is not None and self.options.max_duration is not None:
            grace = deadline_grace(self.options.max_duration)
            scope = asyncio.timeout(max(0.0, self.deadline - self.clock()) + grace)
        try:
            async with scope:
                await self._passes_unbounded(client, retry_items)
        except TimeoutError:
            if not scope.expired():
                raise
            self.report.stopped_by_deadline = True
            log.warning(
                "--max-duration is up: %d files in flight were cancelled after a %.1fs grace; "
                "re-run the same command to continue",
                len(self.transfer.in_flight) if self.transfer is not None else 0,
                deadline_grace(self.options.max_duration or 0.0),
            )
            await disk(self._publish_writers)

    async def _passes_unbounded(self, client: NeuroMorpho, retry_items: list[Failure] | None) -> None:
        async with asyncio.TaskGroup() as tg:
            flusher = (
                tg.create_task(self.state.flusher()) if self.state and not self.options.dry_run else None
            )
            try:
                if retry_items is not None:
                    await self._pass(client, lambda q: self._feed_failures(retry_items, q))
                else:
                    await self._pass(client, lambda q: self._list(client, q))
                await self._second_pass(client)
                await disk(self._publish_writers)
            finally:
                if flusher is not None:
                    flusher.cancel()

    async def _pass(self, client: NeuroMorpho, source: Source) -> None:
        """One producer and ``concurrency`` workers around a bounded queue."""
        assert self.transfer is not None
        n = self.config.concurrency
        queue: asyncio.Queue[Job | None] = asyncio.Queue(self.options.queue_size or max(64, 4 * n))
        async with asyncio.TaskGroup() as tg:
            if not self.options.dry_run:
                for _ in range(n):
                    tg.create_task(self.transfer.worker(client, queue))
            await source(queue)
            if not self.options.dry_run:
                for _ in range(n):
                    await queue.put(None)

    async def _second_pass(self, client: NeuroMorpho) -> None:
        """The first pass's failures once more, after a cool-down, admitted like any other file."""
        assert self.transfer is not None
        jobs, self.transfer.retry_later = self.transfer.retry_later, []
        if not jobs or self.options.dry_run:
            return
        wait = self.options.cool_down
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - self.clock()))
        if not self.past_deadline():
            msg = f"{len(jobs)} files failed; trying them once more in {wait:.0f}s"
            # Said once: the CLI's progress display logs a phase itself (it was logged twice).
            if self.tally.progress is None:
                log.info("%s", msg)
            self.tally.emit("phase", message=msg)
            await asyncio.sleep(wait)
        for job in jobs:
            job.action = Action.FETCH
        # A file stays listed as failed until its second try starts (Transfer.handle): one the
        # deadline keeps from it is still a failure of this run, for --retry-failed.
        self.transfer.second_pass = True

        async def feed(queue: asyncio.Queue[Job | None]) -> None:
            for job in jobs:
                await self.admit(job, queue)

        await self._pass(client, feed)

    # -- listing and planning ----------------------------------------------------------------------
    async def _list(self, client: NeuroMorpho, queue: asyncio.Queue[Job | None]) -> None:
        opts = self.options
        selections, queried = await listing.selections(client, opts.archives, opts.all_archives, opts.query)
        self.report.neurons_total = await listing.expected_neurons(client, selections, queried, opts.limit)
        self.report.files_expected = self.report.neurons_total * len(opts.versions)

        async def plan(neurons: list[Neuron]) -> None:
            await self._plan(neurons, queue)

        await listing.walk(
            client,
            selections,
            limit=opts.limit,
            listed=lambda: self.report.neurons,
            plan=plan,
            complete=self.listing_complete.update,
            failed=self._listing_failed,
        )
        self.report.listing_done = True
        if queried and self.report.neurons == 0:
            log.warning("the query matched no neurons: nothing to download (check --query)")
        self.tally.emit("listed")
        self.tally.emit("planned")  # the files bar now shows the exact total

    def _listing_failed(self, selection: listing.Selection, error: NeuroMorphoError) -> None:
        """A selection's listing ended early (issue 10 items 3, 5): what it listed is fetched, the
        error is reported and the exit code is 1, so it never looks like a smaller archive."""
        log.error("listing %s ended early: %s", selection.label, error)
        self.report.listing_errors.append(f"{selection.label}: {error}")

    async def _plan(self, neurons: list[Neuron], queue: asyncio.Queue[Job | None]) -> None:
        """Plan a batch: write metadata, look rows up, stat files, then admit what needs work."""
        assert self.transfer is not None
        self.report.neurons += len(neurons)
        jobs: list[FileJob] = []
        for neuron in neurons:
            found, unavailable = file_jobs(self.transfer.base_url, neuron, self.options.versions)
            jobs.extend(found)
            self.report.unavailable += unavailable
        lines: dict[str, list[str]] = {}
        if not self.options.dry_run:
            for neuron in neurons:
                lines.setdefault(neuron.archive, []).append(
                    json.dumps(dict(neuron.record), ensure_ascii=False, separators=(",", ":")) + "\n"
                )
        self.tally.emit("listed")
        await self._schedule(
            jobs, queue, verify=self.options.verify, refresh=self.options.refresh, lines=lines
        )
        if self.options.morphometry and not self.options.dry_run:
            for neuron in neurons:
                if not self.past_deadline():
                    await queue.put(MorphJob(neuron))

    async def _schedule(
        self,
        jobs: list[FileJob],
        queue: asyncio.Queue[Job | None],
        *,
        verify: bool,
        refresh: bool,
        lines: dict[str, list[str]] | None = None,
    ) -> None:
        """Look rows up and stat files for a batch (one thread hop), plan each, and admit it."""
        paths = [job.path for job in jobs]
        rows: dict[str, FileRow] = await self.state.lookup(paths) if self.state is not None else {}
        sizes = await disk(self._plan_hop, lines or {}, paths)
        self.report.files += len(jobs)
        self.tally.emit("planned")
        for job in jobs:
            job.row, job.local_size = rows.get(job.path), sizes.get(job.path)
            job.action = plan_file(job.row, job.local_size, verify=verify, refresh=refresh)
            await self.admit(job, queue)

    async def admit(self, job: FileJob, queue: asyncio.Queue[Job | None]) -> None:
        """The one door to the queue, for every pass: skip, count (dry run), leave for the deadline,
        or queue. A path already in flight is not queued twice."""
        assert self.transfer is not None
        if job.action is Action.SKIP or job.path in self.transfer.in_flight:
            self.tally.skipped(job.path)
            return
        if self.options.dry_run:
            if job.action in (Action.FETCH, Action.REVALIDATE):
                self.report.downloaded += 1
                log.debug("would download %s", job.path)
            else:
                self.tally.skipped(job.path)
            return
        if self.past_deadline():
            self.tally.not_started()
            return
        self.transfer.in_flight.add(job.path)
        await queue.put(job)

    def _plan_hop(self, lines: dict[str, list[str]], paths: list[str]) -> dict[str, int]:
        """Blocking part of planning, in a worker thread: metadata lines, stale temp files, stats."""
        for archive, chunk in lines.items():
            writer = self.metadata.get(archive)
            if writer is None:
                folder = self.out / archive_folder(archive)
                sweep_temp_files(folder)  # a killed run's metadata.jsonl temp file (we hold the lock)
                writer = self.metadata[archive] = AtomicFile(folder / METADATA_FILE)
            writer.write_lines(chunk)
        return self.plan_disk.sizes(paths)

    async def _feed_failures(self, failures: list[Failure], queue: asyncio.Queue[Job | None]) -> None:
        """``--retry-failed``: the report's files, each planned against the state like any other."""
        jobs = []
        for failure in failures:
            if failure.version == "morphometry":
                log.warning(
                    "--retry-failed cannot refetch morphometry of %s; re-run with --with-morphometry",
                    failure.neuron_name,
                )
                continue
            try:
                safe_target(self.out, failure.path)
            except ValueError:
                log.warning("--retry-failed: ignoring unsafe path %r", failure.path)
                continue
            jobs.append(
                FileJob(
                    url=failure.url,
                    path=failure.path,
                    archive=failure.archive,
                    neuron_name=failure.neuron_name,
                    version=failure.version,
                )
            )
        self.report.neurons = len({j.neuron_name for j in jobs})
        self.report.listing_done = True
        await self._schedule(jobs, queue, verify=False, refresh=False)

    # -- end of run -------------------------------------------------------------------------------
    def _publish_writers(self) -> None:
        assert self.transfer is not None
        self.transfer.flush_morph()
        for writers in (self.metadata, self.transfer.morph):
            for archive, writer in list(writers.items()):
                if archive in self.listing_complete:
                    writer.commit()
                else:
                    writer.discard()
                del writers[archive]

    def _discard_writers(self) -> None:
        morph = self.transfer.morph if self.transfer is not None else {}
        for writers in (self.metadata, morph):
            for writer in writers.values():
                writer.discard()
            writers.clear()

    def _state_exit(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Last out of the stack but the lock: commit what is left and record how the run ended."""
        assert self.state is not None
        if exc_type is None:
            outcome = "complete"
        elif issubclass(exc_type, asyncio.CancelledError | KeyboardInterrupt):
            outcome = "interrupted"
            self.report.interrupted = True
        else:
            outcome = "failed"
        r = self.tally.finish()
        status = outcome if outcome != "complete" else ("complete" if r.exit_code == 0 else "incomplete")
        try:
            self.state.finish(status, r.downloaded, r.skipped, r.failed, r.bytes)
        except NeuroMorphoError as exc:
            log.error("state store: %s", exc)
            if r.error is None:
                r.error = str(exc)
        log.debug("state store: %d flushes, %.3fs in commits", self.state.flushes, self.state.flush_seconds)

    def _write_report(self) -> None:
        """``--report PATH`` if given, and always ``<out>/.neuromorpho-fetch/last-report.json``.

        The latter means a failed overnight run always says where its full list of failures is, even
        when nobody thought of ``--report``. A usage error (nothing ran) writes nothing; a dry run writes
        only ``--report``, never ``last-report.json``.
        """
        self.tally.finish()
        if self.usage_error:
            return
        if self.options.report_path is not None:
            try:
                write_json_atomic(self.options.report_path, self.report.to_json())
            except OSError as exc:
                # Checked before the run; failing now (disk full, folder gone) fails the run.
                why = f"cannot write --report {str(self.options.report_path)!r}: {exc.strerror or exc}"
                log.error("%s", why)
                self.report.error = self.report.error or why
        if not self.options.dry_run:
            path = self.out / STATE_DIR / LAST_REPORT
            try:
                write_json_atomic(path, self.report.to_json())  # with a --report failure in it
            except OSError as exc:
                log.error("cannot write report %s: %s", path, exc.strerror or exc)


def _shared_config(asked: ClientConfig, client: ClientConfig) -> ClientConfig:
    """The run's config when a client is passed in: the client's. Options that ask for something
    else are refused (they used to be ignored without a word)."""
    default = ClientConfig()
    clash = [
        f.name
        for f in dataclasses.fields(ClientConfig)
        if getattr(asked, f.name) != getattr(default, f.name)
        and getattr(asked, f.name) != getattr(client, f.name)
    ]
    if clash:
        raise UsageError(
            f"mirror(options, client=...): the options set {', '.join(clash)} but the client has its own; "
            "set them on the client (its settings apply to the whole run)"
        )
    return client


def _warn_plain_http(base_url: str) -> None:
    """One line when the server is plain http:// beyond this machine: bytes can be altered on the way
    and nothing would notice (the hashes are taken of what arrived). Loopback (the emulator, a local
    proxy) is not warned about."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and host != "localhost" and not host.startswith("127.") and host != "::1":
        log.warning("--base-url %s is plain http: transfers are not encrypted or authenticated", base_url)


def _check_report_path(path: Path) -> None:
    """Refuse an unwritable ``--report`` before the run, not after a night of downloads."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--report {str(path)!r}: cannot create its folder ({exc.strerror or exc})"
        ) from None
    if path.is_dir():
        raise UsageError(f"--report {str(path)!r} is a folder; give a file path")
    # Try, rather than ask os.access: root is "allowed" everywhere, yet a read-only mount or /proc
    # still refuses (issue 10: the check passed, the run went on, the report was lost, exit 0).
    probe = temp_path(path)
    try:
        probe.open("xb").close()
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--report {str(path)!r} cannot be written ({exc.strerror or exc}); choose another path"
        ) from None


def _first_error(exc: BaseException) -> BaseException:
    """The first :class:`NeuroMorphoError` inside (nested) exception groups, else ``exc`` itself.

    TaskGroups wrap a worker's error in an ``ExceptionGroup``; callers want the error that stopped the
    run, so the CLI can print one line for it.
    """
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_error(inner)
            if isinstance(found, NeuroMorphoError):
                return found
        for inner in exc.exceptions:
            found = _first_error(inner)
            if not isinstance(found, asyncio.CancelledError):
                return found
    return exc


async def mirror(
    options: MirrorOptions,
    *,
    client: NeuroMorpho | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> MirrorReport:
    """Mirror what ``options`` asks for into ``options.out`` and return what happened.

    Pass ``client`` to share a configured :class:`~neuromorpho_fetch.client.NeuroMorpho`: its config
    (rate, concurrency, retries, TLS) is the run's, and its retries are counted in the report; options
    that set a different client setting are refused with a :class:`UsageError`. Otherwise a client is
    built from ``options.config``. ``progress`` is called with every :class:`ProgressEvent`, last with
    ``kind="finished"`` carrying the report, also when the run is cancelled (the report then says
    ``interrupted``) or stopped by an error.

    Raises :class:`~neuromorpho_fetch.errors.NeuroMorphoError` for what stops a whole run (usage,
    TLS, disk full, server unreachable); files that fail one by one are in the report instead.
    """
    return await _Run(options, progress).execute(client)
