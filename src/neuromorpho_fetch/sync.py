"""Blocking helpers for scripts and notebooks.

``asyncio.run`` refuses to start inside a running event loop, which is where every Jupyter cell runs.
:func:`run` therefore checks: with no loop in this thread it uses ``asyncio.run``; with one it runs the
coroutine in a private loop on a worker thread and blocks for the answer. The client's session and
pacer are created inside whichever loop runs the coroutine, so nothing crosses loops.

Each helper opens one client for its call (keyword options are :class:`NeuroMorpho`'s). For many
calls in a row, write one coroutine and hand it to :func:`run` so they share a client::

    from neuromorpho_fetch import NeuroMorpho
    from neuromorpho_fetch.sync import run

    async def main():
        async with NeuroMorpho() as nm:
            return [n async for n in nm.select(archive="Siegert")]

    neurons = run(main())
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from . import loops
from .client import NeuroMorpho
from .download import DownloadResult
from .models import Neuron, Version
from .query import Query

__all__ = [
    "archives",
    "count",
    "counts",
    "download",
    "field_values",
    "fields",
    "health",
    "morphometry",
    "neuron",
    "neuron_by_name",
    "run",
    "select",
]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, whether or not a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return loops.run(coro)
    # A loop is running in this thread (Jupyter): a private loop on a worker thread. Context vars
    # are copied so logging/tracing context set by the caller still applies.
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="neuromorpho-sync") as pool:
        return pool.submit(context.run, loops.run, coro).result()


def _with_client(action: Callable[[NeuroMorpho], Awaitable[T]], options: dict[str, Any]) -> T:
    async def main() -> T:
        async with NeuroMorpho(**options) as nm:
            return await action(nm)

    return run(main())


def health(**options: Any) -> dict[str, Any]:
    return _with_client(lambda nm: nm.health(), options)


def neuron(neuron_id: int, **options: Any) -> Neuron:
    return _with_client(lambda nm: nm.neuron(neuron_id), options)


def neuron_by_name(name: str, **options: Any) -> Neuron:
    return _with_client(lambda nm: nm.neuron_by_name(name), options)


def fields(**options: Any) -> list[str]:
    return _with_client(lambda nm: nm.fields(), options)


def field_values(field: str, **options: Any) -> list[str]:
    return _with_client(lambda nm: nm.field_values(field), options)


def counts(field: str, **options: Any) -> dict[str, int]:
    return _with_client(lambda nm: nm.counts(field), options)


def archives(**options: Any) -> dict[str, int]:
    return _with_client(lambda nm: nm.archives(), options)


def morphometry(id_or_name: int | str, **options: Any) -> dict[str, Any]:
    return _with_client(lambda nm: nm.morphometry(id_or_name), options)


def select(
    query: Query | None = None,
    /,
    *,
    q: str | None = None,
    fq: Sequence[str] = (),
    limit: int | None = None,
    client: dict[str, Any] | None = None,
    **criteria: str | Sequence[str],
) -> list[Neuron]:
    """Matching neurons as a list (at most ``limit``); ``client`` holds :class:`NeuroMorpho` options.

    Client options have their own dict here because every other keyword is a query field.
    """

    async def collect(nm: NeuroMorpho) -> list[Neuron]:
        found: list[Neuron] = []
        if limit is not None and limit <= 0:
            return found
        results = nm.select(query, q=q, fq=fq, **criteria)
        try:
            async for item in results:
                found.append(item)
                if limit is not None and len(found) >= limit:
                    break
        finally:
            await results.aclose()
        return found

    return _with_client(collect, dict(client or {}))


def count(
    query: Query | None = None,
    /,
    *,
    q: str | None = None,
    fq: Sequence[str] = (),
    client: dict[str, Any] | None = None,
    **criteria: str | Sequence[str],
) -> int:
    return _with_client(lambda nm: nm.count(query, q=q, fq=fq, **criteria), dict(client or {}))


def download(
    neuron: Neuron,
    version: Version | str,
    dest_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    **options: Any,
) -> DownloadResult:
    """One file, reused when already held (:meth:`NeuroMorpho.download`); ``force=True`` fetches again."""
    return _with_client(lambda nm: nm.download(neuron, version, dest_dir, force=force), options)
