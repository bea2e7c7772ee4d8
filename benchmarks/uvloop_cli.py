"""``python benchmarks/uvloop_cli.py ARGS``: the ``neuromorpho-fetch`` command, run on uvloop's event loop.

Installs uvloop's event-loop policy, then runs the package exactly as ``python -m neuromorpho_fetch ARGS``
would (``runpy``, so nothing but the public entry point is touched). ``asyncio.run`` asks the policy for
its loop, so the whole run, listing and downloads, happens on uvloop. Used by ``run.py`` to measure
uvloop with and without on scenarios 2 and 5 (``pip install -e '.[bench]'``).
"""

import asyncio
import runpy

import uvloop

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
runpy.run_module("neuromorpho_fetch", run_name="__main__", alter_sys=True)
