"""What the run covers: the selections to page through, and the walk over them, as a stream of values.

:func:`walk` yields :class:`Batch` values (the valid neurons and the rejected records of a stretch of a
listing) and, when a selection ends, one :class:`Listed` value saying how it ended. It decides nothing
about files; the run hands batches to the planner and results to the recorder.

**When is a listing the whole truth?** (issue 15 item 1: a select that brought 3 distinct records while
its ``totalElements`` said 10 was taken as the whole archive, 7 neurons were flagged gone and
``--delete-gone`` deleted their files, exit 0.) Only when the distinct records it brought equal what the
server announced on its first page. When they differ, the selection is counted once more (one request):
records deleted (or added) upstream during the listing explain the difference only if the re-count
agrees with what was listed. Anything else is a listing error naming the selection and the counts, and
the run marks nothing gone, deletes nothing, and keeps the ``metadata.jsonl`` rows it did not see.
Repeats across pages count once, so they show as a gap, never as completeness. A server that announces
no count cannot prove a listing complete either.

Selections are listed in order, but not one after another: while one is planned, the first pages of the
next :data:`LOOKAHEAD` are already being fetched (``--all`` is one ``select`` per archive, most of them
a single page; walked in series each paid a full round trip while the workers ran dry).

A listing that fails (the server kept failing past the retries, its paging made no sense, its JSON was
unreadable) does not end the run: what it listed is planned and fetched, and its :class:`Listed` says
why it stopped. When the server stopped answering at all (a transport error after every retry), the
remaining selections are reported in one value, not each after its own retries. Errors that would fail
every request the same way (TLS, usage) still end the run.

``limit`` and the deadline are inputs: the walk counts what it yields and stops at ``limit``, and starts
no new page once ``past_deadline()`` says so.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from ..client import NeuroMorpho, SelectPage
from ..errors import NeuroMorphoError, TransportError
from ..models import Neuron, RejectedRecord
from ..query import Query
from ..tasks import drop

#: Neurons planned per state-store round trip (a select page is 500).
PLAN_BATCH = 250
#: Selections whose first page is fetched ahead of the one being planned. Each holds at most two
#: pages (its first and the prefetch of its second), so memory stays bounded at any archive count.
LOOKAHEAD = 4


@dataclass(frozen=True, slots=True)
class Selection:
    """One ``select`` to page through; ``archive`` set when it covers exactly one whole archive."""

    label: str
    archive: str | None
    query: Query | None
    #: True when the run asked for the whole archive (no ``--query``): only then may a complete listing
    #: flag a neuron it did not bring as gone upstream.
    whole: bool = False


@dataclass(frozen=True, slots=True)
class Batch:
    """A stretch of one selection's listing: up to :data:`PLAN_BATCH` valid neurons, and the records
    rejected on the way."""

    selection: Selection
    neurons: list[Neuron]
    rejected: list[RejectedRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Listed:
    """How one selection's listing ended (module docstring)."""

    selection: Selection
    announced: int | None
    #: Distinct records brought (valid and rejected; repeats of earlier pages not counted).
    distinct: int
    neurons: int
    rejected: int
    repeats: int
    recount: int | None
    complete: bool
    #: The listing stopped because ``--limit`` or ``--max-duration`` said so (not an error).
    stopped: bool = False
    #: Why the listing is not the whole truth, in one line starting with the selection's label; None
    #: when it is (or was stopped on purpose).
    error: str | None = None
    #: The listing ended on an error (the server, its paging or its JSON), not by a short count.
    ended_early: bool = False
    #: The archives its records belong to.
    archives: frozenset[str] = frozenset()


async def selections(
    client: NeuroMorpho, archives: tuple[str, ...], all_archives: bool, query: tuple[str, ...]
) -> tuple[list[Selection], bool]:
    """The selections for ``--archive``/``--all``/``--query``, and whether a user query is part of them.

    Archives are listed in a stable order, names that differ only in case next to each other (they
    share one folder on disk).
    """
    user = Query.parse(query) if query else None
    if archives:
        names: list[str] = []
        for name in archives:
            canonical = await client.resolve_archive(name)
            if canonical not in names:
                names.append(canonical)
    elif all_archives and user is None:
        names = sorted(await client.archives(), key=lambda a: (a.lower(), a))
    else:
        names = []
    out = [Selection(label="query", archive=None, query=user)] if not names else []
    for name in names:
        by_archive = Query.build(archive=name)
        out.append(
            Selection(
                label=name,
                archive=name,
                query=user.merge(by_archive) if user else by_archive,
                whole=user is None,
            )
        )
    return out, user is not None


async def expected_neurons(
    client: NeuroMorpho, selections: list[Selection], queried: bool, limit: int | None
) -> int:
    """How many neurons the listing will yield, for the progress bars (and an early field check).

    Archive counts are already cached by the client (no request); a query costs one ``count``
    per selection, which also rejects an unknown field before anything else happens.
    """
    if queried:
        total = sum(await asyncio.gather(*(client.count(s.query) for s in selections)))
    else:
        counts = await client.archives()
        total = sum(counts.get(s.archive or "", 0) for s in selections)
    return min(total, limit) if limit is not None else total


class _Ahead:
    """One selection's page walk, its first page fetched in a task started ahead of time."""

    def __init__(self, client: NeuroMorpho, selection: Selection) -> None:
        self.selection = selection
        self.pages: AsyncGenerator[SelectPage, None] = client.select_pages(selection.query)
        self.first: asyncio.Task[SelectPage | None] = asyncio.ensure_future(self._first())

    async def _first(self) -> SelectPage | None:
        try:
            return await anext(self.pages)
        except StopAsyncIteration:
            return None

    async def stream(self) -> AsyncGenerator[SelectPage, None]:
        first = await self.first
        if first is None:
            return
        yield first
        async for page in self.pages:
            yield page

    async def aclose(self) -> None:
        """Cancel the look-ahead if it is still running, then close the walk (its prefetch too)."""
        await drop(self.first)  # an unconsumed selection's error is not "lost"
        await self.pages.aclose()


@dataclass(slots=True)
class _Count:
    """What one selection's walk has brought so far (local to :func:`_walk_one`)."""

    announced: int | None = None
    neurons: int = 0
    rejected: int = 0
    repeats: int = 0
    anonymous: int = 0  # rejected records without a usable id: each counts as one distinct record
    archives: set[str] = field(default_factory=set)

    @property
    def distinct(self) -> int:
        return self.neurons + self.rejected


async def _walk_one(
    client: NeuroMorpho,
    current: _Ahead,
    budget: int | None,
    past_deadline: Callable[[], bool],
) -> AsyncIterator[Batch | Listed]:
    selection = current.selection
    seen = _Count()
    batch: list[Neuron] = []
    bad: list[RejectedRecord] = []
    stopped = False
    error: str | None = None
    failure: NeuroMorphoError | None = None
    try:
        async with contextlib.aclosing(current.stream()) as pages:
            async for page in pages:
                if page.number == 0:
                    seen.announced = page.announced
                seen.repeats += page.repeats
                seen.rejected += len(page.rejected)
                bad.extend(page.rejected)
                for neuron in page.neurons:
                    if budget is not None and seen.neurons >= budget:
                        stopped = True
                        break
                    seen.neurons += 1
                    seen.archives.add(neuron.archive)
                    batch.append(neuron)
                    if len(batch) >= PLAN_BATCH:
                        yield Batch(selection, batch, bad)
                        batch, bad = [], []
                if stopped or (budget is not None and seen.neurons >= budget):
                    stopped = True
                    break
                if past_deadline():
                    stopped = True
                    break
    except NeuroMorphoError as exc:
        if exc.stops_run:
            raise
        failure = exc
        error = f"{selection.label}: {exc}"
    finally:
        await current.aclose()
    if batch or bad:
        yield Batch(selection, batch, bad)
    recount: int | None = None
    complete = False
    if failure is None and not stopped:
        complete, recount, error = await _judge(client, selection, seen)
    yield Listed(
        selection=selection,
        announced=seen.announced,
        distinct=seen.distinct,
        neurons=seen.neurons,
        rejected=seen.rejected,
        repeats=seen.repeats,
        recount=recount,
        complete=complete,
        stopped=stopped,
        error=error,
        ended_early=failure is not None,
        archives=frozenset(seen.archives),
    )
    if isinstance(failure, TransportError):
        raise _ServerGone(failure)


async def _judge(
    client: NeuroMorpho, selection: Selection, seen: _Count
) -> tuple[bool, int | None, str | None]:
    """Whether a listing that ran to its end is the whole truth: ``(complete, recount, error)``."""
    if seen.announced is None:
        if seen.distinct == 0:
            return True, None, None  # no page at all: the API's "no results"
        return (
            False,
            None,
            f"{selection.label}: the server announced no count, so the listing cannot be proved complete",
        )
    if seen.distinct == seen.announced:
        return True, None, None
    try:
        recount = await client.count(selection.query)
    except NeuroMorphoError as exc:
        if exc.stops_run:
            raise
        recount = None
    if recount == seen.distinct:
        return True, recount, None  # records deleted or added upstream while we listed
    repeats = f", {seen.repeats} records repeated across pages" if seen.repeats else ""
    again = f"a re-count says {recount}" if recount is not None else "the re-count failed"
    return (
        False,
        recount,
        f"{selection.label}: listed {seen.distinct} of the {seen.announced} neurons the server announced "
        f"({again}{repeats}); nothing marked gone",
    )


class _ServerGone(Exception):
    """Internal: a selection's listing ended on a transport error after every retry."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


async def walk(
    client: NeuroMorpho,
    selections: list[Selection],
    *,
    limit: int | None = None,
    past_deadline: Callable[[], bool] = lambda: False,
) -> AsyncIterator[Batch | Listed]:
    """Page every selection, yielding :class:`Batch` values and one :class:`Listed` per selection."""
    todo = iter(selections)
    ahead: collections.deque[_Ahead] = collections.deque()
    listed = 0

    def top_up() -> None:
        while len(ahead) < LOOKAHEAD and (selection := next(todo, None)) is not None:
            ahead.append(_Ahead(client, selection))

    try:
        top_up()
        while ahead:
            if (limit is not None and listed >= limit) or past_deadline():
                break
            current = ahead.popleft()
            top_up()
            budget = None if limit is None else limit - listed
            try:
                async for item in _walk_one(client, current, budget, past_deadline):
                    if isinstance(item, Batch):
                        listed += len(item.neurons)
                    yield item
            except _ServerGone as gone:
                # No answer at all, after every retry: the server is unreachable, and each of the
                # remaining selections would spend the same retries to say so. Say it once for them.
                rest = len(ahead) + sum(1 for _ in todo)
                if rest:
                    label = f"{rest} more selection{'s' if rest > 1 else ''}"
                    yield Listed(
                        selection=Selection(label=label, archive=None, query=None),
                        announced=None,
                        distinct=0,
                        neurons=0,
                        rejected=0,
                        repeats=0,
                        recount=None,
                        complete=False,
                        error=f"{label}: not listed: the server stopped answering ({gone.error})",
                        ended_early=True,
                    )
                break
    finally:
        while ahead:
            await ahead.popleft().aclose()
