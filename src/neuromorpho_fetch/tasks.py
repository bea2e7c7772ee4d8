"""Ending a task the caller no longer needs: one rule for every look-ahead and background task."""

from __future__ import annotations

import asyncio
from typing import Any


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
