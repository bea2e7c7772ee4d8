"""The mirror engine: listing → plan → bounded queue → N workers → state, progress and report.

Shape (rclone's layering, asyncio discipline):

* one :class:`~neuromorpho_fetch.client.NeuroMorpho` client (one connector, one pacer), so concurrency
  and the request rate hold for the whole run, listing and morphometry included;
* a crawler pages ``select`` and plans each neuron's files against the state store in batches (one
  thread hop per batch), putting only the files that need work on a *bounded* queue: the first
  downloads start after the first page and memory stays flat for any archive size;
* ``concurrency`` workers drain the queue; everything is owned by an :class:`asyncio.TaskGroup`, so
  one fatal error (TLS, full disk) or a Ctrl-C cancels every task, and each task's ``finally`` (the
  client removes its ``.part`` file there) runs before the state is committed and the report written;
* failures of the first pass get one more pass after a cool-down (the second level of retries).

Every decision is a small pure function (:func:`plan_file`, :func:`failure_kind`, layout's ``safe_target``,
:func:`parse_duration`), tested without sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .client import NeuroMorpho
from .config import RetryPolicy, Timeouts, default_base_url
from .errors import (
    DiskError,
    NeuroMorphoError,
    NoSuchFileError,
    OutputDirError,
    TransportError,
    UsageError,
)
from .layout import file_task, safe_component, safe_target
from .lock import STATE_DIR, DirLock
from .models import Neuron, Version
from .progress import Counters, EventKind, ProgressEvent
from .query import Query
from .report import Failure, MirrorReport, read_failures, write_json_atomic
from .state import STATE_FILE, AsyncStateStore, FileRow, StateStore

if TYPE_CHECKING:
    from .retry import RetryEvent

__all__ = [
    "Action",
    "MirrorOptions",
    "MirrorReport",
    "ProgressEvent",
    "failure_kind",
    "mirror",
    "parse_duration",
    "plan_file",
]

log = logging.getLogger("neuromorpho_fetch.mirror")

T = TypeVar("T")

#: Neurons planned per state-store round trip (a select page is 500).
PLAN_BATCH = 250
#: Temp files of :mod:`neuromorpho_fetch.download` (``<name>.<8 hex>.part``) and of this module.
_PART = re.compile(r"\.[0-9a-f]{8}\.part$|^\..*\.part$")
#: Every run's report, also without --report (inside the state folder).
LAST_REPORT = "last-report.json"
#: After this many files in a row failed with no answer from the server, it is down: stop the run.
UNREACHABLE_STREAK = 50


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MirrorOptions:
    """Everything a mirror run needs, validated once (``UsageError`` with a one-line message).

    What: ``archives`` (any case), ``all_archives``, ``query`` terms (``field:value``, AND-ed across
    fields) or ``retry_failed`` (a report whose failures are fetched again, and nothing else).
    """

    out: Path = Path("neuromorpho")
    archives: tuple[str, ...] = ()
    all_archives: bool = False
    query: tuple[str, ...] = ()
    limit: int | None = None
    versions: tuple[Version, ...] = (Version.CNG,)
    morphometry: bool = False
    # Client.
    base_url: str | None = None
    concurrency: int = 4
    rate: float = 5.0
    retries: int = 5
    retry_wait: float = 0.5
    retry_after_max: float = 120.0
    timeout: float | None = None
    ca_file: str | None = None
    insecure: bool = False
    user_agent: str | None = None
    # Behaviour.
    dry_run: bool = False
    verify: bool = False
    refresh: bool = False
    report_path: Path | None = None
    retry_failed: Path | None = None
    max_duration: float | None = None
    cool_down: float = 30.0
    queue_size: int | None = None

    def __post_init__(self) -> None:
        what = bool(self.archives) + self.all_archives + (self.retry_failed is not None)
        if self.retry_failed is not None and (self.archives or self.all_archives or self.query):
            raise UsageError(
                "--retry-failed fetches exactly a report's failures: drop --archive/--all/--query"
            )
        if self.archives and self.all_archives:
            raise UsageError("--archive and --all exclude each other")
        if not what and not self.query:
            raise UsageError(
                "say what to mirror: --archive NAME, --all, --query field:value or --retry-failed"
            )
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be >= 1, got {self.limit}")
        if not self.versions:
            raise UsageError("no file versions selected")
        if self.retries < 0:
            raise UsageError(f"--retries must be >= 0, got {self.retries}")
        if self.retry_wait < 0:
            raise UsageError(f"--retry-wait must be >= 0 seconds, got {self.retry_wait}")
        if self.retry_after_max < 0:
            raise UsageError(f"--retry-after-max must be >= 0 seconds, got {self.retry_after_max}")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError(f"--timeout must be > 0 seconds, got {self.timeout}")
        if self.max_duration is not None and self.max_duration <= 0:
            raise UsageError("--max-duration must be > 0")
        if self.cool_down < 0:
            raise UsageError("--cool-down must be >= 0 seconds")
        if not 1 <= self.concurrency <= 256:
            raise UsageError(f"--concurrency must be 1..256, got {self.concurrency}")
        if self.rate <= 0:
            raise UsageError(f"--rate must be > 0 requests/s, got {self.rate}")

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retries + 1,
            backoff_base=self.retry_wait,
            backoff_max=max(30.0, self.retry_wait),
            retry_after_max=self.retry_after_max,
        )

    @property
    def timeouts(self) -> Timeouts | None:
        """``--timeout`` bounds silence (connect, and between two chunks), not a slow large file."""
        if self.timeout is None:
            return None
        return Timeouts(connect=self.timeout, read=self.timeout, total=max(600.0, 10 * self.timeout))

    def client(self, on_retry: Callable[[RetryEvent], None] | None = None) -> NeuroMorpho:
        """The client these options describe (not yet open: use it with ``async with``)."""
        return NeuroMorpho(
            self.base_url,
            concurrency=self.concurrency,
            rate=self.rate,
            retries=self.retry_policy,
            timeout=self.timeouts,
            ca_file=self.ca_file,
            insecure=self.insecure,
            user_agent=self.user_agent,
            on_retry=on_retry,
        )

    def describe(self) -> str:
        """JSON of the options for the ``runs`` table (what a later reader needs to know)."""
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        data["versions"] = [v.value for v in self.versions]
        return json.dumps(data, default=str)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``7h``, ``30m``, ``90s``, ``1h30m``, ``45`` (seconds) → seconds; anything else is a usage error."""
    cleaned = text.strip().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(cleaned):
        match = _DURATION.match(cleaned, pos)
        if match is None or match.end() == pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2).lower()]
        pos = match.end()
    if not cleaned or pos != len(cleaned) or total <= 0:
        raise UsageError(f"--max-duration: cannot read {text!r}; write e.g. 7h, 30m, 90s or 1h30m")
    return total


# --------------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------------
class Action(enum.Enum):
    """What to do about one file, decided from the state row and the file on disk alone."""

    SKIP = "skip"  # recorded complete, present, same size: no request
    FETCH = "fetch"  # missing, or damaged (size differs from the record)
    ADOPT = "adopt"  # present under its final name but not recorded: a run died after the rename
    VERIFY = "verify"  # --verify: re-hash against the record, fetch if it differs
    REVALIDATE = "revalidate"  # --refresh: conditional request with the recorded ETag/Last-Modified


def plan_file(row: FileRow | None, local_size: int | None, *, verify: bool, refresh: bool) -> Action:
    """Decide without any request. Only a file both on disk and recorded complete is skipped.

    A file present without a complete row is adopted, not fetched: the downloader only ever puts a
    verified body under a final name, so such a file is complete; what was lost is the bookkeeping
    (the state store commits in batches). This is what makes "no completed file fetched twice" hold
    across ``kill -9``.
    """
    if local_size is None:
        return Action.FETCH
    if row is None or row.status != "complete":
        return Action.ADOPT
    if row.size is not None and row.size != local_size:
        return Action.FETCH
    if verify:
        return Action.VERIFY
    if refresh:
        return Action.REVALIDATE
    return Action.SKIP


def failure_kind(error: BaseException) -> str:
    """``"file"`` when only this file is lost (listed, retried in the second pass), else ``"fatal"``.

    A read of ``error.stops_run`` (:mod:`neuromorpho_fetch.errors`); an unknown error stops the run.
    """
    return "file" if isinstance(error, NeuroMorphoError) and not error.stops_run else "fatal"


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


# --------------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _FileJob:
    url: str
    path: str
    archive: str
    neuron_name: str
    version: str
    action: Action
    row: FileRow | None = None
    local_size: int | None = None  # size on disk when planned; None = no file there

    @property
    def check_swc(self) -> bool:
        """Only the standardized SWC has a format the client can check before the rename."""
        return self.version == Version.CNG


@dataclass(slots=True)
class _MorphJob:
    neuron: Neuron


_Job = _FileJob | _MorphJob


@dataclass(slots=True)
class _JsonlWriter:
    """A JSON-lines file written to a temp name and renamed into place only when complete."""

    final: Path
    tmp: Path
    handle: IO[str]

    @classmethod
    def open(cls, final: Path) -> _JsonlWriter:
        final.parent.mkdir(parents=True, exist_ok=True)
        # A killed run leaves its temp file behind; we hold the lock, so any such file is stale.
        for stale in final.parent.glob(f".{glob.escape(final.name)}.*.part"):
            stale.unlink(missing_ok=True)
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
        return cls(final, tmp, open(tmp, "w", encoding="utf-8"))

    def write(self, lines: Sequence[str]) -> None:
        self.handle.writelines(lines)

    def publish(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        self.tmp.replace(self.final)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        self.tmp.unlink(missing_ok=True)


@dataclass(slots=True)
class _Selection:
    """One ``select`` to page through; ``archive`` set when it covers exactly one archive."""

    label: str
    archive: str | None
    query: Query | None


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
class _Run:
    def __init__(self, options: MirrorOptions, progress: Callable[[ProgressEvent], None] | None) -> None:
        self.options = options
        self.out = options.out
        self.progress = progress
        self.counters = Counters()
        self.report = MirrorReport(dry_run=options.dry_run, out=str(options.out))
        if options.report_path is not None:
            self.report.report_path = str(options.report_path)
        elif not options.dry_run:
            self.report.report_path = str(options.out / STATE_DIR / LAST_REPORT)
        self.failures: dict[str, Failure] = {}
        self.retry_later: list[_FileJob] = []
        self.state: AsyncStateStore | None = None
        self.base_url = options.base_url or default_base_url()
        self.deadline: float | None = None
        self.started = time.monotonic()
        self.in_flight: set[str] = set()
        self.seen_ids: OrderedDict[int, None] = OrderedDict()
        self.swept_dirs: set[str] = set()
        self.metadata: dict[str, _JsonlWriter] = {}
        self.morph: dict[str, _JsonlWriter] = {}
        self.morph_lines: dict[str, list[str]] = {}
        self.listing_complete: set[str] = set()
        self.unreachable_streak = 0
        self.second_pass = False
        self.usage_error = False

    # -- events ------------------------------------------------------------------------------------
    def emit(
        self, kind: EventKind, *, path: str | None = None, nbytes: int = 0, message: str | None = None
    ) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(kind, self.counters, path=path, nbytes=nbytes, message=message))

    def on_retry(self, event: RetryEvent) -> None:
        self.counters.retries += 1
        self.emit("retry", path=event.url)

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    # -- main --------------------------------------------------------------------------------------
    async def execute(self, client: NeuroMorpho | None) -> MirrorReport:
        opts = self.options
        if opts.max_duration is not None:
            self.deadline = self.started + opts.max_duration
        lock: DirLock | None = None
        store: StateStore | None = None
        outcome = "complete"
        try:
            if opts.report_path is not None:
                await asyncio.to_thread(_check_report_path, opts.report_path)
            retry_items = None
            if opts.retry_failed is not None:
                retry_items = await asyncio.to_thread(read_failures, opts.retry_failed)
            if opts.dry_run:
                store = await asyncio.to_thread(self._open_read_only)
            else:
                lock = DirLock(self.out)
                await asyncio.to_thread(lock.acquire)
                store = await asyncio.to_thread(StateStore, self.out / STATE_DIR / STATE_FILE)
            if store is not None:
                self.state = AsyncStateStore(store)
                await self.state.call(lambda s: s.begin_run(opts.describe()))
            if client is None:
                async with opts.client(on_retry=self.on_retry) as own_client:
                    await self._run(own_client, retry_items)
            else:
                self.base_url = str(getattr(client, "base_url", self.base_url))
                await self._run(client, retry_items)
        except asyncio.CancelledError:
            outcome = "interrupted"
            self.report.interrupted = True
            raise
        except BaseException as exc:
            outcome = "failed"
            error = _first_error(exc)
            self.usage_error = isinstance(error, UsageError)
            if isinstance(error, NeuroMorphoError):
                self.report.error = str(error)
            if error is not exc:
                raise error from exc
            raise
        finally:
            self._discard_writers()
            self._finish_report()
            if self.state is not None:
                self._close_state(outcome)
            if lock is not None:
                lock.release()
            self._write_report()
            if self.progress is not None:
                self.progress(ProgressEvent("finished", self.counters, report=self.report))
        return self.report

    def _open_read_only(self) -> StateStore | None:
        db = self.out / STATE_DIR / STATE_FILE
        if not db.is_file():
            return None
        try:
            return StateStore(db, read_only=True)
        except OutputDirError as exc:
            log.warning("dry run: %s; planning as if nothing were downloaded", exc)
            return None

    async def _run(self, client: NeuroMorpho, retry_items: list[Failure] | None) -> None:
        async with asyncio.TaskGroup() as tg:
            flusher = (
                tg.create_task(self.state.flusher()) if self.state and not self.options.dry_run else None
            )
            try:
                if retry_items is not None:
                    await self._pass(client, lambda q: self._feed_failures(retry_items, q))
                else:
                    selections = await self._selections(client)
                    await self._pass(client, lambda q: self._crawl(client, selections, q))
                await self._second_pass(client)
                await _disk(self._publish_writers)
            finally:
                if flusher is not None:
                    flusher.cancel()

    async def _second_pass(self, client: NeuroMorpho) -> None:
        jobs, self.retry_later = self.retry_later, []
        if not jobs or self.options.dry_run:
            return
        wait = self.options.cool_down
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait < 0:
                return
        msg = f"{len(jobs)} files failed; trying them once more in {wait:.0f}s"
        log.info("%s", msg)
        self.emit("phase", message=msg)
        await asyncio.sleep(wait)
        for job in jobs:
            self.failures.pop(job.path, None)
            job.action = Action.FETCH
        self.counters.failed = len(self.failures)

        async def feed(queue: asyncio.Queue[_Job | None]) -> None:
            for job in jobs:
                await queue.put(job)

        self.second_pass = True
        await self._pass(client, feed)

    async def _pass(self, client: NeuroMorpho, source: Callable[[asyncio.Queue[_Job | None]], Any]) -> None:
        """One producer and ``concurrency`` workers around a bounded queue."""
        n = self.options.concurrency
        queue: asyncio.Queue[_Job | None] = asyncio.Queue(self.options.queue_size or max(64, 4 * n))
        async with asyncio.TaskGroup() as tg:
            if not self.options.dry_run:
                for _ in range(n):
                    tg.create_task(self._worker(client, queue))
            await source(queue)
            if not self.options.dry_run:
                for _ in range(n):
                    await queue.put(None)

    # -- listing -----------------------------------------------------------------------------------
    async def _selections(self, client: NeuroMorpho) -> list[_Selection]:
        user = Query.parse(self.options.query) if self.options.query else None
        if self.options.archives:
            names: list[str] = []
            for name in self.options.archives:
                canonical = await client.resolve_archive(name)
                if canonical not in names:
                    names.append(canonical)
        elif self.options.all_archives and user is None:
            names = sorted(await client.archives(), key=str.lower)
        else:
            names = []
        out = [_Selection(label="query", archive=None, query=user)] if not names else []
        for name in names:
            query = Query.build(archive=name)
            out.append(_Selection(label=name, archive=name, query=user.merge(query) if user else query))
        self.counters.neurons_total = await self._expected_neurons(client, out, user is not None)
        if self.counters.neurons_total is not None:
            self.counters.files_expected = self.counters.neurons_total * len(self.options.versions)
        return out

    async def _expected_neurons(
        self, client: NeuroMorpho, selections: list[_Selection], queried: bool
    ) -> int | None:
        """How many neurons the listing will yield, for the progress bars (and an early field check).

        Archive counts are already cached by the client (no request); a query costs one ``count``
        per selection, which also rejects an unknown field before anything else happens.
        """
        if queried:
            total = 0
            for selection in selections:
                total += await client.count(selection.query)
        else:
            counts = await client.archives()
            total = sum(counts.get(s.archive or "", 0) for s in selections)
        limit = self.options.limit
        return min(total, limit) if limit is not None else total

    async def _crawl(
        self, client: NeuroMorpho, selections: list[_Selection], queue: asyncio.Queue[_Job | None]
    ) -> None:
        limit = self.options.limit
        for selection in selections:
            if limit is not None and self.counters.neurons >= limit:
                break
            batch: list[Neuron] = []
            archives: set[str] = set()
            iterator: AsyncIterator[Neuron] = client.select(selection.query)
            try:
                async for neuron in iterator:
                    if neuron.id in self.seen_ids:  # a record repeated across a page boundary
                        continue
                    self.seen_ids[neuron.id] = None
                    if len(self.seen_ids) > 5000:
                        self.seen_ids.popitem(last=False)
                    self.counters.neurons += 1
                    archives.add(neuron.archive)
                    batch.append(neuron)
                    if len(batch) >= PLAN_BATCH:
                        await self._plan(batch, queue)
                        batch = []
                    if limit is not None and self.counters.neurons >= limit:
                        break
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            if batch:
                await self._plan(batch, queue)
            # A --limit listing is complete for what was asked: its metadata is published.
            self.listing_complete.update(archives)
        self.counters.listing_done = True
        self.emit("listed")
        self.emit("planned")  # the files bar now shows the exact total

    def _tasks_for(self, neuron: Neuron) -> list[_FileJob]:
        jobs = []
        for version in self.options.versions:
            try:
                task = file_task(self.base_url, neuron, version)
            except NoSuchFileError:
                self.report.unavailable += 1
                continue
            jobs.append(
                _FileJob(
                    url=task.url,
                    path=task.path.as_posix(),
                    archive=neuron.archive,
                    neuron_name=neuron.name,
                    version=version.value,
                    action=Action.FETCH,
                )
            )
        return jobs

    async def _plan(self, neurons: list[Neuron], queue: asyncio.Queue[_Job | None]) -> None:
        """Plan a batch: write metadata, look rows up, stat files, then queue what needs work."""
        jobs = [job for neuron in neurons for job in self._tasks_for(neuron)]
        lines: dict[str, list[str]] = {}
        if not self.options.dry_run:
            for neuron in neurons:
                lines.setdefault(neuron.archive, []).append(
                    json.dumps(dict(neuron.record), ensure_ascii=False, separators=(",", ":")) + "\n"
                )
        self.emit("listed")
        await self._schedule(
            jobs, queue, verify=self.options.verify, refresh=self.options.refresh, metadata=lines
        )
        if self.options.morphometry and not self.options.dry_run:
            for neuron in neurons:
                if not self.past_deadline():
                    await queue.put(_MorphJob(neuron))

    async def _schedule(
        self,
        jobs: list[_FileJob],
        queue: asyncio.Queue[_Job | None],
        *,
        verify: bool,
        refresh: bool,
        metadata: dict[str, list[str]] | None = None,
    ) -> None:
        """Look rows up and stat files for a batch, then skip, count (dry run) or queue each job.

        The normal listing and ``--retry-failed`` both come here, so both skip files in flight and
        stop queueing at the deadline. ``metadata`` lines are written on the way (one thread hop).
        """
        paths = [job.path for job in jobs]
        rows: dict[str, FileRow] = await self.state.lookup(paths) if self.state is not None else {}
        sizes = await _disk(self._prepare_batch, metadata or {}, paths)
        self.counters.files += len(jobs)
        self.emit("planned")
        for job in jobs:
            job.row, job.local_size = rows.get(job.path), sizes.get(job.path)
            job.action = plan_file(job.row, job.local_size, verify=verify, refresh=refresh)
            if job.action is Action.SKIP or job.path in self.in_flight:
                self._skipped(job)
                continue
            if self.options.dry_run:
                self._dry(job)
                continue
            if self.past_deadline():
                self._not_started()
                continue
            self.in_flight.add(job.path)
            await queue.put(job)

    def _dry(self, job: _FileJob) -> None:
        if job.action in (Action.FETCH, Action.REVALIDATE):
            self.counters.downloaded += 1
            log.debug("would download %s", job.path)
        else:
            self._skipped(job)

    def _prepare_batch(self, lines: dict[str, list[str]], paths: list[str]) -> dict[str, int]:
        """Blocking part of planning, in a worker thread: metadata lines, stale temp files, stats."""
        for archive, chunk in lines.items():
            writer = self.metadata.get(archive)
            if writer is None:
                final = self.out / safe_component(archive.lower()) / "metadata.jsonl"
                writer = self.metadata[archive] = _JsonlWriter.open(final)
            writer.write(chunk)
        sizes: dict[str, int] = {}
        for path in paths:
            folder = path.rpartition("/")[0]
            if folder not in self.swept_dirs and not self.options.dry_run:
                self.swept_dirs.add(folder)
                self._sweep(self.out / folder)
            try:
                st = safe_target(self.out, path).stat()
            except (OSError, ValueError):
                continue
            sizes[path] = st.st_size
        return sizes

    @staticmethod
    def _sweep(folder: Path) -> None:
        """Remove ``.part`` files a killed run left behind (we hold the lock: nobody else writes)."""
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if _PART.search(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    Path(entry.path).unlink()

    async def _feed_failures(self, failures: list[Failure], queue: asyncio.Queue[_Job | None]) -> None:
        """``--retry-failed``: the report's files, each checked against the state like any other."""
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
                _FileJob(
                    url=failure.url,
                    path=failure.path,
                    archive=failure.archive,
                    neuron_name=failure.neuron_name,
                    version=failure.version,
                    action=Action.FETCH,
                )
            )
        self.counters.neurons = len({j.neuron_name for j in jobs})
        self.counters.listing_done = True
        await self._schedule(jobs, queue, verify=False, refresh=False)

    # -- workers -----------------------------------------------------------------------------------
    async def _worker(self, client: NeuroMorpho, queue: asyncio.Queue[_Job | None]) -> None:
        while True:
            job = await queue.get()
            if job is None:
                return
            if isinstance(job, _MorphJob):
                await self._morphometry(client, job.neuron)
                continue
            try:
                if self.past_deadline():
                    self._not_started()
                    continue
                await self._handle(client, job)
            finally:
                self.in_flight.discard(job.path)

    async def _handle(self, client: NeuroMorpho, job: _FileJob) -> None:
        target = safe_target(self.out, job.path)
        if job.action in (Action.ADOPT, Action.VERIFY):
            try:
                size, digest = await asyncio.to_thread(_hash_file, target)
            except OSError:  # gone or unreadable since planning: fetch it like a missing file
                job.action = Action.FETCH
            else:
                if self._settled_on_disk(job, size, digest):
                    return
        # The recorded validators, for a conditional request (--refresh).
        validators = job.row if job.action is Action.REVALIDATE else None
        assert self.state is not None
        self.state.start(job.path, job.url, job.archive, job.neuron_name, job.version)
        try:
            result = await client.fetch_file(
                job.url,
                target,
                check_swc=job.check_swc,
                etag=validators.etag if validators is not None else None,
                last_modified=validators.last_modified if validators is not None else None,
            )
        except asyncio.CancelledError:
            self._record_if_renamed(job, target)
            raise
        except NeuroMorphoError as exc:
            if failure_kind(exc) == "fatal":
                raise
            self._failed(job, exc)
            return
        except OSError as exc:
            raise DiskError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
        self.unreachable_streak = 0
        if result is None:  # 304: unchanged upstream; the file on disk is current
            self.report.revalidated += 1
            row = job.row
            if row is not None and row.size is not None and row.sha256 is not None:
                self._record_complete(job, row.size, row.sha256, row.etag, row.last_modified)
            self._skipped(job)
            return
        self._downloaded(job, result.size, result.sha256, result.etag, result.last_modified)
        self.emit("downloaded", path=job.path, nbytes=result.size)

    def _settled_on_disk(self, job: _FileJob, size: int, digest: str) -> bool:
        """ADOPT or VERIFY with the file's hash: True when the file on disk settles the job.

        Otherwise ``job.action`` says what to ask the server: REVALIDATE (intact, ``--refresh``)
        or FETCH (damaged).
        """
        row = job.row
        recorded = row if row is not None and row.sha256 == digest else None  # same bytes as recorded
        if job.action is Action.ADOPT:
            # Keep the validators when the bytes are the ones recorded (a run killed mid-refresh).
            etag = recorded.etag if recorded is not None else None
            modified = recorded.last_modified if recorded is not None else None
            self._record_complete(job, size, digest, etag, modified)
            self.report.adopted += 1
            self._skipped(job)
            return True
        if recorded is not None and recorded.size == size:
            if not self.options.refresh:
                self._skipped(job)
                return True
            job.action = Action.REVALIDATE
            return False
        log.warning(
            "damaged: %s (sha256 %s, recorded %s); fetching again",
            job.path,
            digest[:12],
            (row.sha256 or "?")[:12] if row else "?",
        )
        self.report.damaged.append(job.path)
        job.action = Action.FETCH
        return False

    def _record_if_renamed(self, job: _FileJob, target: Path) -> None:
        """Cancelled between the client's rename and our bookkeeping: record the file anyway.

        The rename runs in a worker thread, so a cancellation can land after it completed. A file
        that was absent when planned and is present now can only be this download, complete (only
        checked bodies are renamed into place). Hashing it here, synchronously, keeps the state exact
        on Ctrl-C; after ``kill -9`` the next run's adoption does the same.
        """
        if job.local_size is not None or job.action is not Action.FETCH:
            return
        try:
            size, digest = _hash_file(target)
        except OSError:
            return  # not renamed: nothing to record
        self._downloaded(job, size, digest, None, None)

    async def _morphometry(self, client: NeuroMorpho, neuron: Neuron) -> None:
        if self.past_deadline():
            return
        try:
            data = await client.morphometry(neuron.id)
        except NeuroMorphoError as exc:
            if failure_kind(exc) == "fatal":
                raise
            path = f"{safe_component(neuron.archive.lower())}/morphometry.jsonl"
            url = f"{self.base_url.rstrip('/')}/api/morphometry/id/{neuron.id}"
            self._add_failure(Failure(neuron.name, url, _reason(exc), path, neuron.archive, "morphometry"))
            self.emit("failed", path=path, message=_reason(exc))
            return
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
        pending = self.morph_lines.setdefault(neuron.archive, [])
        pending.append(line)
        if len(pending) >= 500:
            self.morph_lines[neuron.archive] = []
            await _disk(self._write_morph, neuron.archive, pending)

    def _write_morph(self, archive: str, lines: list[str]) -> None:
        writer = self.morph.get(archive)
        if writer is None:
            final = self.out / safe_component(archive.lower()) / "morphometry.jsonl"
            writer = self.morph[archive] = _JsonlWriter.open(final)
        writer.write(lines)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _record_complete(
        self, job: _FileJob, size: int, digest: str, etag: str | None, last_modified: str | None
    ) -> None:
        if self.state is not None:
            self.state.complete(
                job.path,
                job.url,
                job.archive,
                job.neuron_name,
                job.version,
                size=size,
                sha256=digest,
                etag=etag,
                last_modified=last_modified,
            )

    def _downloaded(
        self, job: _FileJob, size: int, digest: str, etag: str | None, last_modified: str | None
    ) -> None:
        """A body fetched and renamed into place: record it and count it."""
        self._record_complete(job, size, digest, etag, last_modified)
        self.counters.downloaded += 1
        self.counters.bytes += size

    def _skipped(self, job: _FileJob) -> None:
        self.counters.skipped += 1
        self.emit("skipped", path=job.path)

    def _failed(self, job: _FileJob, exc: BaseException) -> None:
        reason = _reason(exc)
        if isinstance(exc, TransportError):
            self.unreachable_streak += 1
            if self.unreachable_streak >= UNREACHABLE_STREAK:
                raise type(exc)(
                    f"{self.unreachable_streak} files in a row got no answer from the server; "
                    f"stopping (last: {reason})",
                    url=job.url,
                ) from exc
        else:
            self.unreachable_streak = 0
        if self.state is not None:
            self.state.failed(job.path, job.url, job.archive, job.neuron_name, job.version, reason)
        self._add_failure(Failure(job.neuron_name, job.url, reason, job.path, job.archive, job.version))
        if not self.second_pass:
            self.retry_later.append(job)
        log.debug("failed: %s: %s", job.path, reason)
        self.emit("failed", path=job.path, message=reason)

    def _not_started(self) -> None:
        """A file left for the next run because ``--max-duration`` is up."""
        self.report.not_started += 1
        self.report.stopped_by_deadline = True

    def _add_failure(self, failure: Failure) -> None:
        self.failures[failure.path if failure.version != "morphometry" else failure.url] = failure
        self.counters.failed = len(self.failures)

    # -- end of run -------------------------------------------------------------------------------
    def _publish_writers(self) -> None:
        for archive, lines in self.morph_lines.items():
            if lines:
                self._write_morph(archive, lines)
        self.morph_lines = {}
        for writers in (self.metadata, self.morph):
            for archive, writer in list(writers.items()):
                if archive in self.listing_complete:
                    writer.publish()
                else:
                    writer.discard()
                del writers[archive]

    def _discard_writers(self) -> None:
        for writers in (self.metadata, self.morph):
            for writer in writers.values():
                writer.discard()
            writers.clear()

    def _finish_report(self) -> None:
        """Copy the live counters into the report: the counters are the one running tally."""
        r, c = self.report, self.counters
        r.elapsed_s = time.monotonic() - self.started
        r.neurons = c.neurons
        r.files = c.files
        r.downloaded = c.downloaded
        r.skipped = c.skipped
        r.bytes = c.bytes
        r.retries = c.retries
        r.failures = sorted(self.failures.values(), key=lambda f: (f.archive, f.path, f.url))
        r.failed = c.failed = len(r.failures)

    def _close_state(self, outcome: str) -> None:
        assert self.state is not None
        r = self.report
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
        when nobody thought of ``--report``. A usage error (nothing ran) and a dry run write nothing.
        """
        if self.usage_error:
            return
        paths = [] if self.options.dry_run else [self.out / STATE_DIR / LAST_REPORT]
        if self.options.report_path is not None:
            paths.append(self.options.report_path)
        data = self.report.to_json()
        for path in paths:
            try:
                write_json_atomic(path, data)
            except OSError as exc:
                log.error("cannot write report %s: %s", path, exc.strerror or exc)


async def _disk(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work in a thread; an ``OSError`` (full disk, read-only) becomes a DiskError."""
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise DiskError(f"cannot write in the output directory{where}: {exc.strerror or exc}") from exc


def _check_report_path(path: Path) -> None:
    """Refuse an unwritable ``--report`` before the run, not after a night of downloads."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--report {str(path)!r}: cannot create its folder ({exc.strerror or exc})"
        ) from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise UsageError(f"--report {str(path)!r} cannot be written; choose another path")


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


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

    Pass ``client`` to share a configured :class:`~neuromorpho_fetch.client.NeuroMorpho` (its rate,
    retries and TLS then apply); otherwise one is built from the options. ``progress`` is called with
    every :class:`ProgressEvent`, last with ``kind="finished"`` carrying the report, also when the run
    is cancelled (the report then says ``interrupted``) or stopped by an error.

    Raises :class:`~neuromorpho_fetch.errors.NeuroMorphoError` for what stops a whole run (usage,
    TLS, disk full, server unreachable); files that fail one by one are in the report instead.
    """
    return await _Run(options, progress).execute(client)
