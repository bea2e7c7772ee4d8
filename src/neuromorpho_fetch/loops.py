"""Which event loop a blocking entry point runs on: uvloop where it is installed, else asyncio's.

The CLI (``--loop auto|asyncio|uvloop``) and the library's blocking helpers (:mod:`neuromorpho_fetch.sync`)
start their loop here. uvloop is an optional extra (``pip install 'neuromorpho-fetch[fast]'``), never a
core dependency: ``auto`` takes it when it can be imported and falls back to asyncio's loop silently;
``uvloop`` asks for it and is a one-line usage error without it. What it buys is measured side by side in
``benchmarks/`` (docs/benchmarks.md): a fraction of the event loop's own overhead, which matters when many
small files are fetched without a rate limit and not at NeuroMorpho.Org's polite 5 requests a second.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import UsageError

if TYPE_CHECKING:  # asyncio itself is imported when a loop starts: ``-V`` and ``--help`` never need it
    import asyncio

LOOPS = ("auto", "asyncio", "uvloop")

T = TypeVar("T")


def loop_factory(kind: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the event loop ``kind`` names (None: asyncio's default)."""
    if kind not in LOOPS:
        raise UsageError(f"--loop must be one of {', '.join(LOOPS)}, got {kind!r}")
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise UsageError(
                "--loop uvloop: uvloop is not installed (pip install 'neuromorpho-fetch[fast]')"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], kind: str = "auto") -> T:
    """``asyncio.run(coro)`` on the loop ``kind`` names."""
    import asyncio

    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(coro)
