"""What the run covers: the selections to page through, how many neurons to expect, and the walk.

Selections are disjoint by construction (one per archive, or one query), so a neuron can repeat only
inside one ``select`` walk, where the client's :class:`~neuromorpho_fetch.protocol.Dedupe` already drops
it: that is the run's one dedupe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..client import NeuroMorpho
from ..models import Neuron
from ..query import Query

__all__ = ["PLAN_BATCH", "Selection", "expected_neurons", "selections", "walk"]

#: Neurons planned per state-store round trip (a select page is 500).
PLAN_BATCH = 250


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
        total = 0
        for selection in selections:
            total += await client.count(selection.query)
    else:
        counts = await client.archives()
        total = sum(counts.get(s.archive or "", 0) for s in selections)
    return min(total, limit) if limit is not None else total


async def walk(
    client: NeuroMorpho,
    selections: list[Selection],
    *,
    limit: int | None,
    listed: Callable[[], int],
    plan: Callable[[list[Neuron]], Awaitable[None]],
    complete: Callable[[set[str]], None],
) -> None:
    """Page every selection, handing neurons to ``plan`` in batches of :data:`PLAN_BATCH`.

    ``listed()`` is the count so far (for ``limit``); ``complete(archives)`` is told which archives a
    selection listed to the end (a ``--limit`` listing is complete for what was asked), so their
    metadata can be published.
    """
    for selection in selections:
        if limit is not None and listed() >= limit:
            break
        batch: list[Neuron] = []
        archives: set[str] = set()
        neurons = client.select(selection.query)
        try:
            async for neuron in neurons:
                archives.add(neuron.archive)
                batch.append(neuron)
                if len(batch) >= PLAN_BATCH:
                    await plan(batch)
                    batch = []
                if limit is not None and listed() + len(batch) >= limit:
                    break
        finally:
            await neurons.aclose()
        if batch:
            await plan(batch)
        complete(archives)
