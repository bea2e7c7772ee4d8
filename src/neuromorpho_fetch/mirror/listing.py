"""What the run covers: the selections to page through, how many neurons to expect, and the walk.

Selections are disjoint by construction (one per archive, or one query), so a neuron can repeat only
inside one ``select`` walk, where the client's :class:`~neuromorpho_fetch.protocol.Dedupe` already drops
it: that is the run's one dedupe.

Selections are listed in order, but not one after another: while one is planned, the first pages of the
next :data:`LOOKAHEAD` are already being fetched. ``--all`` is one ``select`` per archive, most of them a
single page, and walked in series each paid a full round trip while the workers ran dry (benchmark
scenario 5: 44 listing requests at 50 ms before 1,200 files could get going, efficiency 0.40).

A listing that fails (the server kept failing past the retries, or its paging made no sense, issue 10)
does not end the run: what it listed is planned and fetched, the error goes to ``failed`` (the report
records it and the exit code is 1), the selection is not marked complete, and the next one is listed,
unless the server stopped answering at all (a :class:`~neuromorpho_fetch.errors.TransportError` after
every retry): then the remaining selections are reported in one entry, not each after its own retries.
Errors that would fail every request the same way (TLS, usage) still end the run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from ..client import NeuroMorpho
from ..errors import NeuroMorphoError, TransportError
from ..models import Neuron
from ..query import Query

__all__ = ["LOOKAHEAD", "PLAN_BATCH", "Selection", "expected_neurons", "selections", "walk"]

#: Neurons planned per state-store round trip (a select page is 500).
PLAN_BATCH = 250
#: Selections whose first page is fetched ahead of the one being planned. Each holds at most two
#: pages (its first and the prefetch of its second), so memory stays bounded at any archive count.
LOOKAHEAD = 4


@dataclass(frozen=True, slots=True)
class Selection:
    """One ``select`` to page through; ``archive`` set when it covers exactly one archive."""

    label: str
    archive: str | None
    query: Query | None


async def selections(
    client: NeuroMorpho, archives: tuple[str, ...], all_archives: bool, query: tuple[str, ...]
) -> tuple[list[Selection], bool]:
    """The selections for ``--archive``/``--all``/``--query``, and whether a user query is part of them."""
    user = Query.parse(query) if query else None
    if archives:
        names: list[str] = []
        for name in archives:
            canonical = await client.resolve_archive(name)
            if canonical not in names:
                names.append(canonical)
    elif all_archives and user is None:
        names = sorted(await client.archives(), key=str.lower)
    else:
        names = []
    out = [Selection(label="query", archive=None, query=user)] if not names else []
    for name in names:
        by_archive = Query.build(archive=name)
        out.append(Selection(label=name, archive=name, query=user.merge(by_archive) if user else by_archive))
    return out, user is not None


async def expected_neurons(
    client: NeuroMorpho, selections: list[Selection], queried: bool, limit: int | None
) -> int:
    """How many neurons the listing will yield, for the progress bars (and an early field check).

    Archive counts are already cached by the client (no request); a query costs one ``count``
    per selection, which also rejects an unknown field before anything else happens.
    """
    if queried:
        # One count per selection, all at once (the pacer bounds them), not one round trip after another.
        total = sum(await asyncio.gather(*(client.count(s.query) for s in selections)))
    else:
        counts = await client.archives()
        total = sum(counts.get(s.archive or "", 0) for s in selections)
    return min(total, limit) if limit is not None else total


class _Ahead:
    """One selection's ``select`` generator, its first neuron fetched in a task started ahead of time."""

    def __init__(self, client: NeuroMorpho, selection: Selection) -> None:
        self.selection = selection
        self.neurons: AsyncGenerator[Neuron, None] = client.select(selection.query)
        self.first: asyncio.Task[Neuron | None] = asyncio.ensure_future(self._first())

    async def _first(self) -> Neuron | None:
        try:
            return await anext(self.neurons)
        except StopAsyncIteration:
            return None

    async def stream(self) -> AsyncGenerator[Neuron, None]:
        first = await self.first
        if first is None:
            return
        yield first
        async for neuron in self.neurons:
            yield neuron

    async def aclose(self) -> None:
        """Cancel the look-ahead if it is still running, then close the generator (its prefetch too)."""
        if not self.first.done():
            self.first.cancel()
        await asyncio.wait([self.first])
        if not self.first.cancelled():
            self.first.exception()  # retrieved: an unconsumed selection's error is not "lost"
        await self.neurons.aclose()


async def walk(
    client: NeuroMorpho,
    selections: list[Selection],
    *,
    limit: int | None,
    listed: Callable[[], int],
    plan: Callable[[list[Neuron]], Awaitable[None]],
    complete: Callable[[set[str]], None],
    failed: Callable[[Selection, NeuroMorphoError], None] | None = None,
) -> None:
    """Page every selection, handing neurons to ``plan`` in batches of :data:`PLAN_BATCH`.

    ``listed()`` is the count so far (for ``limit``); ``complete(archives)`` is told which archives a
    selection listed to the end (a ``--limit`` listing is complete for what was asked), so their
    metadata can be published. ``failed(selection, error)`` is told about a selection whose listing
    ended early on an error that does not stop the run (module docstring); without it, that error is
    raised.
    """
    todo = iter(selections)
    ahead: collections.deque[_Ahead] = collections.deque()

    def top_up() -> None:
        while len(ahead) < LOOKAHEAD and (selection := next(todo, None)) is not None:
            ahead.append(_Ahead(client, selection))

    try:
        top_up()
        while ahead:
            if limit is not None and listed() >= limit:
                break
            current = ahead.popleft()
            top_up()
            batch: list[Neuron] = []
            archives: set[str] = set()
            error: NeuroMorphoError | None = None
            try:
                async with contextlib.aclosing(current.stream()) as neurons:
                    async for neuron in neurons:
                        archives.add(neuron.archive)
                        batch.append(neuron)
                        if len(batch) >= PLAN_BATCH:
                            await plan(batch)
                            batch = []
                        if limit is not None and listed() + len(batch) >= limit:
                            break
            except NeuroMorphoError as exc:
                if exc.stops_run or failed is None:
                    raise
                error = exc
            finally:
                await current.aclose()
            if batch:
                await plan(batch)
            if error is None:
                complete(archives)
                continue
            assert failed is not None
            failed(current.selection, error)
            if isinstance(error, TransportError):
                # No answer at all, after every retry: the server is unreachable, and each of the
                # remaining selections would spend the same retries to say so. Say it once for them.
                rest = len(ahead) + sum(1 for _ in todo)
                if rest:
                    label = f"{rest} more selection{'s' if rest > 1 else ''}"
                    failed(
                        Selection(label=label, archive=None, query=None),
                        TransportError(f"not listed: the server stopped answering ({error})", url=error.url),
                    )
                break
    finally:
        while ahead:
            await ahead.popleft().aclose()
