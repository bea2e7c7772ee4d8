"""Ending a task the caller no longer needs, or no longer waits for: one rule for every look-ahead,
background task and shielded thread call."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

T = TypeVar("T")


async def drop(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` (when it is still running) and wait for it to end; its outcome is discarded.

    ``asyncio.wait`` never raises the task's error and lets the caller's own cancellation through; the
    error is then retrieved, so asyncio does not log an unconsumed look-ahead's error as lost. The wait
    is as long as the task takes to honour the cancellation (a request's own cleanup, no I/O of ours).
    """
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


async def shielded(work: asyncio.Future[T]) -> T:
    """``work``'s result; cancelled meanwhile, ``work`` is not cut short (a thread's commit or catalogue
    write must finish), the caller waits for it to end and then the cancellation goes on.

    Its error is retrieved whatever happens: the caller is going away, and an unawaited error made asyncio
    print "Future exception was never retrieved" with a traceback (a disk that filled during the state
    store's last flush, cancelled by the run's own stop). A second cancellation ends the wait, not the work.
    """
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        work.add_done_callback(_retrieve)
        await asyncio.wait([work])
        raise


def _retrieve(work: asyncio.Future[Any]) -> None:
    if not work.cancelled():
        work.exception()
