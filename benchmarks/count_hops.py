"""Run the CLI (``python benchmarks/count_hops.py OUT -- <CLI args>``) counting its thread hops.

A thread hop is one job handed to a worker thread: every ``asyncio.to_thread``, every
``loop.run_in_executor`` (aiofiles, the state store's executor) and uvloop's equivalents end in
``concurrent.futures.ThreadPoolExecutor.submit``, so counting that one method counts them all without
touching the package. The count is written to ``OUT`` when the interpreter exits (``atexit`` runs on
the CLI's ``SystemExit``). Works on any checkout, so ``run.py --before`` can quote before and after.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

hops = 0
_submit = ThreadPoolExecutor.submit


def _counting_submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    global hops
    hops += 1
    return _submit(self, fn, *args, **kwargs)


def main() -> None:
    out, sep, *cli = sys.argv[1:]
    assert sep == "--", "usage: count_hops.py OUT -- <CLI args>"
    ThreadPoolExecutor.submit = _counting_submit  # type: ignore[method-assign,assignment]
    atexit.register(lambda: Path(out).write_text(str(hops)))
    sys.argv = ["neuromorpho_fetch", *cli]
    runpy.run_module("neuromorpho_fetch", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
