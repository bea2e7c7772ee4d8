"""The workers: take a planned file off the queue, fetch or settle it, record it, count it.

A worker asks :func:`~neuromorpho_fetch.mirror.plan.plan_file` (never decides on its own) when a file
had to be read first (``ADOPT``/``VERIFY``); everything else here is doing what the plan says and
writing down what happened: the state store row and the :class:`~neuromorpho_fetch.mirror.tally.Tally`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..atomic import AtomicFile
from ..client import NeuroMorpho
from ..errors import DiskError, NeuroMorphoError, TransportError
from ..models import Neuron
from ..paths import MORPHOMETRY_FILE, archive_folder, safe_target
from ..report import Failure
from ..state import AsyncStateStore
from .plan import Action, FileJob, hash_file, plan_file
from .tally import Tally, reason

__all__ = ["UNREACHABLE_STREAK", "MorphJob", "Transfer", "disk"]

log = logging.getLogger("neuromorpho_fetch.mirror")

T = TypeVar("T")

#: After this many files in a row failed with no answer from the server, it is down: stop the run.
UNREACHABLE_STREAK = 50
#: Morphometry lines buffered per archive before one thread hop writes them.
MORPH_BATCH = 500


@dataclass(slots=True)
class MorphJob:
    neuron: Neuron


Job = FileJob | MorphJob


async def disk(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work in a thread; an ``OSError`` (full disk, read-only) becomes a DiskError."""
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise DiskError(f"cannot write in the output directory{where}: {exc.strerror or exc}") from exc


class Transfer:
    """What the workers share: where files go, the state store, the tally, the run's rules."""

    def __init__(
        self,
        out: Path,
        state: AsyncStateStore | None,
        tally: Tally,
        *,
        refresh: bool,
        base_url: str,
        past_deadline: Callable[[], bool],
    ) -> None:
        self.out = out
        self.state = state
        self.tally = tally
        self.refresh = refresh
        self.base_url = base_url
        self.past_deadline = past_deadline
        self.in_flight: set[str] = set()
        self.retry_later: list[FileJob] = []
        self.second_pass = False
        self.unreachable_streak = 0
        self.morph: dict[str, AtomicFile] = {}
        self._morph_lines: dict[str, list[str]] = {}

    # -- the worker loop ---------------------------------------------------------------------------
    async def worker(self, client: NeuroMorpho, queue: asyncio.Queue[Job | None]) -> None:
        while True:
            job = await queue.get()
            if job is None:
                return
            if isinstance(job, MorphJob):
                await self.morphometry(client, job.neuron)
                continue
            try:
                if self.past_deadline():
                    self.tally.not_started()
                    continue
                await self.handle(client, job)
            finally:
                self.in_flight.discard(job.path)

    async def handle(self, client: NeuroMorpho, job: FileJob) -> None:
        target = safe_target(self.out, job.path)
        if self.second_pass:
            self.tally.forget_failure(job.path)  # tried again: a failure only if it fails again
        if job.action in (Action.ADOPT, Action.VERIFY) and await self._settle_on_disk(job, target):
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
            if exc.stops_run:
                raise
            self.failed(job, exc)
            return
        except OSError as exc:
            raise DiskError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
        self.unreachable_streak = 0
        if result is None:  # 304: unchanged upstream; the file on disk is current
            self.tally.report.revalidated += 1
            row = job.row
            if row is not None and row.size is not None and row.sha256 is not None:
                self.record(job, row.size, row.sha256, row.etag, row.last_modified)
            self.tally.skipped(job.path)
            return
        self.record(job, result.size, result.sha256, result.etag, result.last_modified)
        if job.action is Action.CHECK and result.sha256 != job.local_sha256:
            log.warning(
                "damaged: %s (sha256 %s, the server's %s); replaced with the server's bytes",
                job.path,
                (job.local_sha256 or "?")[:12],
                result.sha256[:12],
            )
            self.tally.report.damaged.append(job.path)
        self.tally.downloaded(job.path, result.size)

    async def _settle_on_disk(self, job: FileJob, target: Path) -> bool:
        """ADOPT or VERIFY: read the file, then True when it settles the job (recorded, skipped).

        Otherwise ``job.action`` is what :func:`plan_file` says with the hash: REVALIDATE or FETCH.
        """
        try:
            size, digest = await asyncio.to_thread(hash_file, target)
        except OSError:  # gone or unreadable since planning: fetch it like a missing file
            job.action = Action.FETCH
            return False
        row = job.row
        recorded = row if row is not None and row.sha256 == digest else None  # same bytes as recorded
        if job.action is Action.ADOPT:
            # Keep the validators when the bytes are the ones recorded (a run killed mid-refresh).
            etag = recorded.etag if recorded is not None else None
            modified = recorded.last_modified if recorded is not None else None
            # Only the bytes a download checked are "verified"; a file found on disk is not (issue
            # 10: a file damaged in place, with the store lost, was adopted as the truth).
            verified = recorded.verified if recorded is not None else False
            self.record(job, size, digest, etag, modified, verified=verified)
            self.tally.report.adopted += 1
            self.tally.skipped(job.path)
            return True
        job.action = plan_file(row, size, verify=True, refresh=self.refresh, sha256=digest)
        if job.action is Action.SKIP:
            self.tally.skipped(job.path)
            return True
        if job.action is Action.CHECK:
            job.local_sha256 = digest  # compared with the server's bytes when they arrive
        if job.action is Action.FETCH:
            log.warning(
                "damaged: %s (sha256 %s, recorded %s); fetching again",
                job.path,
                digest[:12],
                (row.sha256 or "?")[:12] if row else "?",
            )
            self.tally.report.damaged.append(job.path)
        return False

    def _record_if_renamed(self, job: FileJob, target: Path) -> None:
        """Cancelled between the client's rename and our bookkeeping: record the file anyway.

        The client's group commit lets a handed-over body's batch finish before the cancellation
        reaches us, so a file absent when planned and present now can only be this download, complete
        (only checked bodies are renamed into place). Hashing it here, synchronously, keeps the state
        exact on Ctrl-C; after ``kill -9`` the next run's adoption does the same.
        """
        if job.local_size is not None or job.action is not Action.FETCH:
            return
        try:
            size, digest = hash_file(target)
        except OSError:
            return  # not renamed: nothing to record
        self.record(job, size, digest, None, None)
        self.tally.downloaded(job.path, size, announce=False)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def record(
        self,
        job: FileJob,
        size: int,
        digest: str,
        etag: str | None,
        last_modified: str | None,
        *,
        verified: bool = True,
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
                verified=verified,
            )

    def failed(self, job: FileJob, exc: NeuroMorphoError) -> None:
        why = reason(exc)
        if isinstance(exc, TransportError):
            self.unreachable_streak += 1
            if self.unreachable_streak >= UNREACHABLE_STREAK:
                raise type(exc)(
                    f"{self.unreachable_streak} files in a row got no answer from the server; "
                    f"stopping (last: {why})",
                    url=job.url,
                ) from exc
        else:
            self.unreachable_streak = 0
        if self.state is not None:
            self.state.failed(job.path, job.url, job.archive, job.neuron_name, job.version, why)
        if not self.second_pass:
            self.retry_later.append(job)
        log.debug("failed: %s: %s", job.path, why)
        self.tally.add_failure(Failure(job.neuron_name, job.url, why, job.path, job.archive, job.version))

    # -- morphometry ----------------------------------------------------------------------------------
    async def morphometry(self, client: NeuroMorpho, neuron: Neuron) -> None:
        if self.past_deadline():
            return
        try:
            data = await client.morphometry(neuron.id)
        except NeuroMorphoError as exc:
            if exc.stops_run:
                raise
            path = f"{archive_folder(neuron.archive)}/{MORPHOMETRY_FILE}"
            url = f"{self.base_url.rstrip('/')}/api/morphometry/id/{neuron.id}"
            self.tally.add_failure(
                Failure(neuron.name, url, reason(exc), path, neuron.archive, "morphometry")
            )
            return
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
        pending = self._morph_lines.setdefault(neuron.archive, [])
        pending.append(line)
        if len(pending) >= MORPH_BATCH:
            self._morph_lines[neuron.archive] = []
            await disk(self.write_morph, neuron.archive, pending)

    def write_morph(self, archive: str, lines: list[str]) -> None:
        writer = self.morph.get(archive)
        if writer is None:
            final = self.out / archive_folder(archive) / MORPHOMETRY_FILE
            writer = self.morph[archive] = AtomicFile(final)
        writer.write_lines(lines)

    def flush_morph(self) -> None:
        """Write the buffered morphometry lines (blocking; at the end of the run)."""
        for archive, lines in self._morph_lines.items():
            if lines:
                self.write_morph(archive, lines)
        self._morph_lines = {}
