"""tasks.shielded: a thread's work outlives its caller's cancellation, and its error is never lost to
asyncio's "Future exception was never retrieved" (a traceback on the user's terminal)."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

from neuromorpho_fetch.tasks import shielded


async def test_a_cancelled_caller_waits_for_the_work_and_its_error_is_retrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def commit() -> None:
        started.set()
        release.wait(5)
        finished.set()
        raise OSError(28, "No space left on device")

    work = loop.run_in_executor(None, commit)
    caller = asyncio.ensure_future(shielded(work))
    await asyncio.to_thread(started.wait, 5)
    caller.cancel()
    await asyncio.sleep(0.01)
    assert not caller.done()  # still waiting for the thread: the work is not cut short
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished.is_set() and work.done() and not work.cancelled()
    del work
    gc.collect()
    await asyncio.sleep(0)
    assert reported == []


async def test_the_result_and_the_error_reach_a_caller_not_cancelled() -> None:
    loop = asyncio.get_running_loop()
    assert await shielded(loop.run_in_executor(None, lambda: 42)) == 42

    def fail() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        await shielded(loop.run_in_executor(None, fail))
