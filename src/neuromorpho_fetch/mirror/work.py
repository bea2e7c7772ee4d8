"""The workers: a :class:`~.plan.FilePlan` in, an :class:`Outcome` out.

A worker carries out what its plan says and returns what happened as a value; it counts nothing and
writes no bookkeeping (the recorder does both, from the outcome). It asks
:func:`~neuromorpho_fetch.mirror.plan.plan_file` again (never decides on its own) when a file had to be
read first (``ADOPT``/``VERIFY``).

One case needs care: a run cancelled (Ctrl-C, the deadline's grace) between the client's rename and the
outcome reaching the recorder. The client's group commit lets a handed-over body's batch finish before
the cancellation reaches us, so a file absent when planned and present now can only be this download,
complete (only checked bodies are renamed into place): :func:`renamed_while_cancelled` hashes it
synchronously, so the state stays exact on Ctrl-C; after ``kill -9`` the next run's adoption does the
same.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from pathlib import Path

from ..atomic import hash_file
from ..client import NeuroMorpho
from ..errors import NeuroMorphoError
from ..paths import safe_target
from .plan import Action, FilePlan, plan_file

log = logging.getLogger("neuromorpho_fetch.mirror")


class Kind(enum.Enum):
    """What happened to one file."""

    DOWNLOADED = "downloaded"  # fetched and in place
    SKIPPED = "skipped"  # already complete: nothing asked of the server
    ADOPTED = "adopted"  # found complete on disk without a record, recorded (not verified)
    REVALIDATED = "revalidated"  # the server said 304 to our validators: the file on disk is current
    FAILED = "failed"  # could not be had (the reason says why)
    NOT_STARTED = "not started"  # left for the next run (--max-duration)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one planned file, with what the recorder needs to count and persist it."""

    plan: FilePlan
    kind: Kind
    size: int = 0
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    #: Whether ``sha256`` is of bytes the server sent (a download), not of a file found on disk.
    verified: bool = True
    #: The file on disk did not match its record (or the server's bytes) and was replaced.
    damaged: bool = False
    reason: str = ""
    #: For a failure: the error, whose class says whether a later pass may succeed.
    error: NeuroMorphoError | None = None


def reason(error: BaseException) -> str:
    """One line of at most 500 characters saying what went wrong."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


async def perform(plan: FilePlan, client: NeuroMorpho, out: Path, *, refresh: bool) -> Outcome:
    """Carry out ``plan`` (module docstring). Errors that stop the run are raised; others are outcomes."""
    target = safe_target(out, plan.path)
    if plan.action in (Action.ADOPT, Action.VERIFY):
        settled = await _settle_on_disk(plan, target, refresh)
        if isinstance(settled, Outcome):
            return settled
        plan = settled
    validators = plan.row if plan.action is Action.REVALIDATE else None
    try:
        result = await client.fetch_file(
            plan.url,
            target,
            check_swc=plan.check_swc,
            etag=validators.etag if validators is not None else None,
            last_modified=validators.last_modified if validators is not None else None,
        )
    except NeuroMorphoError as exc:
        if exc.stops_run:
            raise
        log.debug("failed: %s: %s", plan.path, reason(exc))
        return Outcome(plan, Kind.FAILED, reason=reason(exc), error=exc)
    if result is None:  # 304: unchanged upstream; the file on disk is current
        row = plan.row
        if row is not None and row.size is not None and row.sha256 is not None:
            return Outcome(plan, Kind.REVALIDATED, row.size, row.sha256, row.etag, row.last_modified)
        return Outcome(plan, Kind.REVALIDATED)
    damaged = plan.action is Action.CHECK and result.sha256 != plan.local_sha256
    if damaged:
        log.warning(
            "damaged: %s (sha256 %s, the server's %s); replaced with the server's bytes",
            plan.path,
            (plan.local_sha256 or "?")[:12],
            result.sha256[:12],
        )
    return Outcome(
        plan,
        Kind.DOWNLOADED,
        result.size,
        result.sha256,
        result.etag,
        result.last_modified,
        damaged=damaged or plan.damaged,
    )


async def _settle_on_disk(plan: FilePlan, target: Path, refresh: bool) -> Outcome | FilePlan:
    """ADOPT or VERIFY: read the file, then the outcome when that settles it, else the next plan."""
    try:
        size, digest = await asyncio.to_thread(hash_file, target)
    except OSError:  # gone or unreadable since planning: fetch it like a missing file
        return plan.decided(Action.FETCH, local_size=None)
    row = plan.row
    recorded = row if row is not None and row.sha256 == digest else None  # same bytes as recorded
    if plan.action is Action.ADOPT:
        # Keep the validators when the bytes are the ones recorded (a run killed mid-refresh). Only the
        # bytes a download checked are "verified"; a file found on disk is not (issue 10).
        return Outcome(
            plan,
            Kind.ADOPTED,
            size,
            digest,
            recorded.etag if recorded is not None else None,
            recorded.last_modified if recorded is not None else None,
            verified=recorded.verified if recorded is not None else False,
        )
    action = plan_file(row, size, verify=True, refresh=refresh, sha256=digest)
    if action is Action.SKIP:
        return Outcome(plan, Kind.SKIPPED)
    if action is Action.FETCH:
        log.warning(
            "damaged: %s (sha256 %s, recorded %s); fetching again",
            plan.path,
            digest[:12],
            (row.sha256 or "?")[:12] if row else "?",
        )
        return plan.decided(Action.FETCH, damaged=True)
    return plan.decided(action, local_sha256=digest if action is Action.CHECK else None)


def renamed_while_cancelled(plan: FilePlan, out: Path) -> Outcome | None:
    """The outcome of a download cancelled after its rename (module docstring), else None. Blocking
    on purpose: it runs while the task is being cancelled."""
    if plan.local_size is not None or plan.action is not Action.FETCH:
        return None
    try:
        size, digest = hash_file(safe_target(out, plan.path))
    except OSError:
        return None  # not renamed: nothing to record
    return Outcome(plan, Kind.DOWNLOADED, size, digest)
