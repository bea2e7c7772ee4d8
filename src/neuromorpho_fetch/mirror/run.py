"""One mirror run from start to end, as a pipeline of values and explicit steps.

The pipeline (docs/architecture.md has the picture)::

    listing.walk ──Batch──▶ planner ──FilePlan──▶ admit ──▶ queue ──▶ workers ──Outcome──▶ recorder
         └──Listed (how each selection ended)─────────────────────────────────────────────▶ recorder

Values flow one way: nothing downstream writes anything upstream. The recorder is the only writer of the
numbers; the report is built from it at the end. The second pass is the first pass's returned failures
(``_pass`` returns them), not a flag; ``--limit`` and the deadline are inputs of the listing and of
:meth:`_Run.admit`, not counters read across objects.

The end of a run is explicit steps, in this order, whatever happened before them: flush and close the
state store; the dataset step (only after a run that ended normally: with failures or a deadline stop,
not an error or an interrupt); build the report and write it; *then* release the directory lock. So the
report is written while we still hold the lock (issue 16: ``last-report.json`` was written after the lock
was released), and a second run can never see a half-finished state.

A stop is an input too: ``stop`` (an :class:`asyncio.Event` the CLI sets on SIGINT, SIGTERM and SIGHUP)
cancels the passes, and the run ends as interrupted with its report written, returned like any other
(issue 15 item 14). Cancelling the task itself (a library caller) does the same and then re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ..atomic import blocking
from ..client import NeuroMorpho
from ..config import ClientConfig
from ..errors import (
    DatabaseBusyError,
    NeuroMorphoError,
    StateCorruptError,
    UsageError,
)
from ..lock import DirLock
from ..models import Neuron
from ..paths import METADATA_FILE, MirrorPaths, archive_folder, safe_target
from ..progress import ProgressEvent
from ..proxy import proxy_for
from ..report import MirrorReport, ReportFile, read_report
from ..state import AsyncStateStore
from . import listing
from .dataset_hook import DatasetStep
from .metadata import META_BATCH, MetaJob, fetch_metadata
from .options import MirrorOptions, deadline_grace
from .plan import Action, FilePlan, Planner, file_plans
from .recorder import Recorder
from .sinks import Sinks
from .steps import (
    Ending,
    check_report_path,
    end_facts,
    first_error,
    mirror_root,
    open_store,
    shared_config,
    uncancel,
    warn_plain_http,
    write_report,
)
from .work import Kind, Outcome, perform, renamed_while_cancelled

log = logging.getLogger("neuromorpho_fetch.mirror")


Job = FilePlan | MetaJob


def workers(concurrency: int) -> int:
    """How many files a pass works on at once: twice ``concurrency``.

    ``concurrency`` is what the server sees, the requests in flight, and the client's pacer holds it (a
    request takes a slot; the body's way to disk starts after the slot is given back). A worker whose body
    is on its way to disk (the group commit: write, fsync, rename: 0.8-8.7 ms for nine files in ten, 3.9
    ms mean) has left its slot, so with one worker per slot that slot stayed idle for as long: 6% of every
    file's time at 16 in flight and 50 ms of latency. A second worker per slot keeps every slot busy
    (scenario 5: wall 0.961x, five rounds side by side; scenario 2 unchanged). Bounded: at most
    ``concurrency`` more bodies, each within one chunk (1 MiB; larger ones stream to their temp file), are
    held on their way to disk.
    """
    return 2 * concurrency


class _Run:
    """The state of one run, local to :func:`run_mirror`; no other object writes it."""

    def __init__(
        self,
        options: MirrorOptions,
        out: Path,
        recorder: Recorder,
        config: ClientConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.out = out
        self.paths = MirrorPaths(out)
        self.recorder = recorder
        self.config = config
        self.clock = clock
        self.deadline = None if options.max_duration is None else clock() + options.max_duration
        self.state: AsyncStateStore | None = None
        self.sinks = Sinks(self.paths)
        self.in_flight: set[str] = set()
        self.listings: list[listing.Listed] = []
        self.planner: Planner | None = None

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    # -- the passes ----------------------------------------------------------------------------------

    async def passes(self, client: NeuroMorpho, retry: ReportFile | None) -> None:
        """Both passes, the state store's flusher beside them."""
        assert self.planner is not None
        async with asyncio.TaskGroup() as tg:
            flusher = (
                tg.create_task(self.state.flusher()) if self.state and not self.options.dry_run else None
            )
            try:
                source = self._retry_plans(retry) if retry is not None else self._listed_plans(client)
                failed = await self._pass(client, source)
                await self._second_pass(client, failed)
            finally:
                if flusher is not None:
                    flusher.cancel()

    async def _pass(self, client: NeuroMorpho, source: AsyncIterator[list[Job]]) -> list[FilePlan]:
        """One producer and :func:`workers` workers around a bounded queue; returns the files that
        failed and may be tried once more."""
        n = self.config.concurrency
        queue: asyncio.Queue[Job | None] = asyncio.Queue(self.options.queue_size or max(64, 4 * n))
        failures: list[FilePlan] = []
        async with asyncio.TaskGroup() as tg:
            if not self.options.dry_run:
                for _ in range(workers(n)):
                    tg.create_task(self._worker(client, queue, failures))
            async for jobs in source:
                for job in jobs:
                    await self.admit(job, queue)
            if not self.options.dry_run:
                for _ in range(workers(n)):
                    await queue.put(None)
        return failures

    async def _second_pass(self, client: NeuroMorpho, failed: list[FilePlan]) -> None:
        """The first pass's failures once more, after a cool-down, admitted like any other file. A file
        stays listed as failed until its second try ends: one the deadline keeps from it is still a
        failure of this run, for ``--retry-failed``."""
        if not failed or self.options.dry_run:
            return
        wait = self.options.cool_down
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - self.clock()))
        if self.past_deadline():
            return
        msg = f"{len(failed)} files failed; trying them once more in {wait:.0f}s"
        if self.recorder.progress is None:
            log.info("%s", msg)  # the CLI's progress display logs a phase itself
        self.recorder.emit("phase", message=msg, force=True)
        await asyncio.sleep(wait)
        again = [plan.decided(Action.FETCH, second_pass=True) for plan in failed]

        async def source() -> AsyncIterator[list[Job]]:
            yield list(again)

        await self._pass(client, source())

    async def admit(self, job: Job, queue: asyncio.Queue[Job | None]) -> None:
        """The one door to the queue, for every pass: refuse, skip, count (dry run), leave for the
        deadline, or queue. A path already in flight is not queued twice."""
        if isinstance(job, MetaJob):
            if not self.past_deadline():
                await queue.put(job)
            return
        plan, recorder = job, self.recorder
        if self.options.dry_run:
            recorder.dry(plan)
        elif plan.action is Action.REFUSE:
            recorder.refused(plan)
        elif plan.action is Action.SKIP or plan.path in self.in_flight:
            recorder.record(Outcome(plan, Kind.SKIPPED))
        elif self.past_deadline():
            recorder.record(Outcome(plan, Kind.NOT_STARTED))
        else:
            self.in_flight.add(plan.path)
            await queue.put(plan)

    async def _worker(
        self, client: NeuroMorpho, queue: asyncio.Queue[Job | None], failures: list[FilePlan]
    ) -> None:
        recorder = self.recorder
        while (job := await queue.get()) is not None:
            if isinstance(job, MetaJob):
                await fetch_metadata(client, job, self.sinks, recorder, self.past_deadline)
                continue
            try:
                if self.past_deadline():
                    outcome = Outcome(job, Kind.NOT_STARTED)
                else:
                    outcome = await perform(job, client, self.out, refresh=self.options.refresh)
            except asyncio.CancelledError:
                late = renamed_while_cancelled(job, self.out)
                if late is not None:
                    recorder.record(late)
                raise
            finally:
                self.in_flight.discard(job.path)
            recorder.record(outcome)
            if outcome.kind is Kind.FAILED and not job.second_pass:
                failures.append(job)
            down = recorder.server_down()
            if down is not None:
                raise down

    # -- sources of plans ----------------------------------------------------------------------------

    async def _listed_plans(self, client: NeuroMorpho) -> AsyncIterator[list[Job]]:
        """The listing, planned batch by batch; metadata lines go to the sinks on the planner's hop."""
        opts, recorder = self.options, self.recorder
        assert self.planner is not None
        chosen, queried = await listing.selections(client, opts.archives, opts.all_archives, opts.query)
        total = await listing.expected_neurons(client, chosen, queried, opts.limit)
        recorder.expect(total, total * len(opts.versions))
        async for item in listing.walk(client, chosen, limit=opts.limit, past_deadline=self.past_deadline):
            if isinstance(item, listing.Listed):
                recorder.listing(item)
                self.listings.append(item)
                if item.error and item.ended_early:
                    log.error(
                        "listing %s ended early: %s", item.selection.label, item.error.split(": ", 1)[-1]
                    )
                elif item.error:
                    log.error("listing incomplete: %s", item.error)
                continue
            recorder.listed(item)
            plans: list[FilePlan] = []
            unavailable = 0
            for neuron in item.neurons:
                found, missing = file_plans(client.base_url, neuron, opts.versions)
                plans.extend(found)
                unavailable += missing
            recorder.planned(len(plans), unavailable)
            also = None if opts.dry_run else _metadata_lines(self.sinks, item.neurons)
            yield list(await self.planner.plan(plans, also=also))
            if not opts.dry_run:
                yield list(_meta_jobs(item.neurons, opts))
        recorder.listing_done()
        if queried and recorder.counters().neurons == 0:
            log.warning("the query matched no neurons: nothing to download (check --query)")

    async def _retry_plans(self, retry: ReportFile) -> AsyncIterator[list[Job]]:
        """``--retry-failed``: the report's files, each planned against the state like any other."""
        assert self.planner is not None
        plans: list[FilePlan] = []
        for failure in retry.failures:
            if failure.version in ("morphometry", "pvec"):
                log.warning(
                    "--retry-failed cannot refetch %s of %s; re-run the archive with --with-%s",
                    failure.version,
                    failure.neuron_name,
                    failure.version,
                )
                continue
            try:
                safe_target(self.out, failure.path)
            except ValueError:
                log.warning("--retry-failed: ignoring unsafe path %r", failure.path)
                continue
            plans.append(
                FilePlan(failure.url, failure.path, failure.archive, failure.neuron_name, failure.version)
            )
        self.recorder.retried_files(len({p.neuron_name for p in plans}))
        self.recorder.planned(len(plans))
        self.recorder.listing_done()
        yield list(await self.planner.plan(plans))

    # -- the end -------------------------------------------------------------------------------------

    def publish_sinks(self) -> list[str]:
        """``metadata.jsonl`` and friends into place by the merge rule (blocking)."""
        gone = frozenset(
            item.selection.archive
            for item in self.listings
            if item.selection.whole and item.complete and not item.rejected and item.selection.archive
        )
        return self.sinks.publish(gone)


def _metadata_lines(sinks: Sinks, neurons: list[Neuron]) -> Callable[[], None]:
    """The blocking half of one batch's metadata: its lines into each archive folder's sink."""
    by_folder: dict[str, tuple[list[bytes], list[int]]] = {}
    for neuron in neurons:
        lines, ids = by_folder.setdefault(archive_folder(neuron.archive), ([], []))
        lines.append(neuron.line)
        ids.append(neuron.id)

    def write() -> None:
        for folder, (lines, ids) in by_folder.items():
            sinks.add(folder, METADATA_FILE, lines, ids)

    return write


def _meta_jobs(neurons: list[Neuron], opts: MirrorOptions) -> list[MetaJob]:
    jobs: list[MetaJob] = []
    for kind, wanted in (("morphometry", opts.morphometry), ("pvec", opts.pvec)):
        if wanted:
            for i in range(0, len(neurons), META_BATCH):
                jobs.append(MetaJob(kind, tuple(neurons[i : i + META_BATCH])))
    return jobs


# -- the steps around the passes ------------------------------------------------------------------------


async def _bounded(
    run: _Run, client: NeuroMorpho, retry: ReportFile | None, stop: asyncio.Event | None
) -> Ending:
    """The passes under ``--max-duration`` (nothing new starts at the deadline; a grace later whatever
    still runs is cancelled with the same cleanup as Ctrl-C) and the ``stop`` event."""
    opts = run.options
    scope = asyncio.timeout(None)
    if run.deadline is not None and opts.max_duration is not None:
        scope = asyncio.timeout(max(0.0, run.deadline - run.clock()) + deadline_grace(opts.max_duration))
    passes = asyncio.ensure_future(_scoped(run, client, retry, scope))
    waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        done, _ = await asyncio.wait(
            [passes, *([waiter] if waiter else [])], return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        uncancel()  # the end steps still run (report, lock); the cancellation is raised after them
        passes.cancel()
        with contextlib.suppress(BaseException):
            await passes
        return Ending(interrupted=True, cancelled=True)
    finally:
        if waiter is not None:
            waiter.cancel()
    if passes not in done:
        passes.cancel()
        with contextlib.suppress(BaseException):
            await passes
        return Ending(interrupted=True)
    try:
        expired = passes.result()
    except asyncio.CancelledError:
        return Ending(interrupted=True)
    except BaseException as exc:
        return Ending(error=first_error(exc))
    if expired:
        log.warning(
            "--max-duration is up: files in flight were cancelled after a %.1fs grace; re-run the same "
            "command to continue",
            deadline_grace(opts.max_duration or 0.0),
        )
    return Ending(deadline=expired or run.past_deadline())


async def _scoped(run: _Run, client: NeuroMorpho, retry: ReportFile | None, scope: asyncio.Timeout) -> bool:
    """Run the passes in ``scope``; True when the deadline's grace cut them short."""
    try:
        async with scope:
            await run.passes(client, retry)
    except TimeoutError:
        if not scope.expired():
            raise
        return True
    return False


async def run_mirror(
    options: MirrorOptions,
    *,
    client: NeuroMorpho | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop: asyncio.Event | None = None,
    recorder: Callable[[AsyncStateStore | None, Callable[[ProgressEvent], None] | None], Recorder] = Recorder,
) -> tuple[MirrorReport, BaseException | None]:
    """Run once; returns the report and the error that stopped the run (None when none did).

    ``recorder`` builds the run's one writer of the numbers from the state store and the progress
    callback (a test may hand in a double). Usage errors found before anything ran (a bad report path, a
    locked or unusable ``--out``, a damaged state store, an unknown client setting) are raised: nothing
    ran, so there is no report.
    """
    config = options.config if client is None else shared_config(options.config, client.config)
    warn_plain_http(config.base_url)
    proxy_for(config.base_url, config.proxy)  # a proxy we cannot use: a usage error before the lock
    if options.report_path is not None:
        await asyncio.to_thread(check_report_path, options.report_path)
    retry = await asyncio.to_thread(read_report, options.retry_failed) if options.retry_failed else None
    out = mirror_root(options, retry)
    lock = DirLock(out)
    if not options.dry_run:
        await asyncio.to_thread(lock.acquire)
    try:
        return await _locked(options, out, config, client, progress, stop, recorder, retry)
    finally:
        lock.release()  # the report is written: only now may another run start


async def _locked(
    options: MirrorOptions,
    out: Path,
    config: ClientConfig,
    client: NeuroMorpho | None,
    progress: Callable[[ProgressEvent], None] | None,
    stop: asyncio.Event | None,
    recorder: Callable[[AsyncStateStore | None, Callable[[ProgressEvent], None] | None], Recorder],
    retry: ReportFile | None,
) -> tuple[MirrorReport, BaseException | None]:
    paths = MirrorPaths(out)
    held: DatabaseBusyError | None = None
    try:
        store = await asyncio.to_thread(open_store, paths, options)
    except DatabaseBusyError as exc:
        # Busy is a condition of the machine, not bad input: the run ends with its own report (exit 2),
        # so an earlier run's report never stands for this one (issue 15 items 3 and 13).
        store, held = None, exc
    state = AsyncStateStore(store) if store is not None else None
    rec = recorder(state, progress)
    run = _Run(options, out, rec, config)
    run.state = state
    run.planner = Planner(
        out, state, verify=options.verify, refresh=options.refresh, sweep=not options.dry_run
    )
    dataset = DatasetStep(options, paths)
    ending = Ending()
    tls: dict[str, str] = {}
    reached = True
    try:
        if held is not None:
            raise held
        if state is not None:
            await state.call(lambda s: s.begin_run(options.describe()))
            await dataset.seed(state)
        async with contextlib.AsyncExitStack() as stack:
            if client is None:
                client = await stack.enter_async_context(NeuroMorpho(config=config))
            stack.enter_context(client.transport.retry_listener(rec.retry))
            try:
                ending = await _bounded(run, client, retry, stop)
                if ending.error is None and not ending.interrupted:
                    await dataset.counts(client, run.listings)
            finally:
                tls = client.transport.tls_hosts
                reached = client.transport.responses > 0
    except asyncio.CancelledError:
        ending = Ending(interrupted=True, cancelled=True)
        uncancel()
    except BaseException as exc:
        ending = Ending(error=first_error(exc))
    # -- the end, in order: sinks, state store, dataset, report (then the caller releases the lock) --
    ok = ending.error is None and not ending.interrupted
    changed: list[str] = []
    try:
        if ok and not options.dry_run:
            changed = await blocking(run.publish_sinks)
    except NeuroMorphoError as exc:
        ending, ok = Ending(error=exc), False
    finally:
        run.sinks.discard()
    end = end_facts(ending, rec, out, options, tls, reached)
    if state is not None:
        status = "interrupted" if ending.interrupted else "failed" if ending.error else "complete"
        report_now = rec.report(end)
        if status == "complete" and report_now.exit_code != 0:
            status = "incomplete"
        try:
            await asyncio.to_thread(
                state.finish,
                status,
                report_now.downloaded,
                report_now.skipped,
                report_now.failed,
                report_now.bytes,
            )
        except NeuroMorphoError as exc:
            log.error("state store: %s", exc)
            if end.error is None:
                end = dataclasses.replace(end, error=str(exc), error_exit=exc.exit_code)
    if ok and not options.dry_run:
        summary = await dataset.run(run.listings, rec, changed)
        end = dataclasses.replace(end, dataset=summary)
    report = rec.report(end)
    usage_before_start = isinstance(ending.error, UsageError) and not isinstance(
        ending.error, StateCorruptError | DatabaseBusyError
    )
    if not usage_before_start or rec.counters().files:
        report = write_report(report, paths, options)
    rec.finished(report)
    if ending.cancelled:
        raise asyncio.CancelledError
    return report, ending.error


async def mirror(
    options: MirrorOptions,
    *,
    client: NeuroMorpho | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop: asyncio.Event | None = None,
) -> MirrorReport:
    """Mirror what ``options`` asks for into ``options.out`` and return what happened.

    Pass ``client`` to share a configured :class:`~neuromorpho_fetch.client.NeuroMorpho`: its config
    (rate, concurrency, retries, TLS) is the run's, and its retries are counted in the report; options
    that set a different client setting are refused with a :class:`UsageError`. ``progress`` is called
    with :class:`ProgressEvent` snapshots, last with ``kind="finished"`` carrying the report, also when
    the run is cancelled (the report then says ``interrupted``) or stopped by an error. Setting ``stop``
    ends the run as interrupted, its report written and returned.

    Raises :class:`~neuromorpho_fetch.errors.NeuroMorphoError` for what stops a whole run (usage, TLS,
    disk full, server unreachable) after the report is written; files that fail one by one are in the
    report instead.
    """
    report, error = await run_mirror(options, client=client, progress=progress, stop=stop)
    if error is not None:
        raise error
    return report
