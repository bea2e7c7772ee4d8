"""How many 20 KB files per second the emulator serves on one core (acceptance: >= 1,500 req/s).

Starts ``python -m neuromorpho_fetch.emulator --tls none --file-kb 20`` in a child process pinned to one
core, pins this process (the load) to another when the machine has one, lists the CNG file URLs through
the API, then drives them with an aiohttp load loop: ``--concurrency`` workers over keep-alive
connections for ``--seconds``. Every response is checked (status 200, full length), so a fast wrong
answer cannot inflate the figure. ``--wrk`` uses wrk instead, when it is installed.

    python benchmarks/emulator_throughput.py [--seconds 10] [--concurrency 32] [--neurons 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from neuromorpho_fetch import Neuron, Version, file_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import emulator

TARGET = 1500.0


def pin_load_generator() -> str:
    try:
        cores = os.sched_getaffinity(0)
        if len(cores) > 1:
            os.sched_setaffinity(0, cores - {0})
            return f"emulator on core 0, load on cores {sorted(cores - {0})}"
    except (OSError, AttributeError):
        pass
    return "emulator and load share the machine (no CPU pinning)"


async def list_urls(session: aiohttp.ClientSession, base_url: str) -> list[str]:
    urls: list[str] = []
    page, pages = 0, 1
    while page < pages:
        async with session.get(f"{base_url}/api/neuron", params={"page": page, "size": 500}) as resp:
            body = await resp.json()
        for record in body.get("_embedded", {}).get("neuronResources", []):
            urls.append(file_url(base_url, Neuron.from_record(record), Version.CNG))
        page, pages = page + 1, body["page"]["totalPages"]
    return urls


async def load(base_url: str, seconds: float, concurrency: int) -> tuple[int, int, float]:
    """Requests completed, bytes received and elapsed seconds; raises on any wrong answer."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        urls = await list_urls(session, base_url)
        counts = [0, 0]
        stop_at = 0.0

        async def worker(offset: int) -> None:
            for url in itertools.islice(itertools.cycle(urls), offset, None):
                if time.perf_counter() >= stop_at:
                    return
                async with session.get(url) as resp:
                    body = await resp.read()
                    if resp.status != 200 or len(body) != resp.content_length:
                        raise RuntimeError(f"bad answer {resp.status} for {url}")
                counts[0] += 1
                counts[1] += len(body)

        # Warm-up: the emulator builds each file once, then serves it from its cache.
        stop_at = time.perf_counter() + 2
        await asyncio.gather(*(worker(i * 7) for i in range(concurrency)))
        counts[:] = [0, 0]
        began = time.perf_counter()
        stop_at = began + seconds
        await asyncio.gather(*(worker(i * 7) for i in range(concurrency)))
        return counts[0], counts[1], time.perf_counter() - began


def run_wrk(base_url: str, seconds: float, concurrency: int) -> float:
    """wrk over one fixed URL (wrk has no URL list without a Lua script); returns requests/s."""

    async def one_url() -> str:
        async with aiohttp.ClientSession() as session:
            return (await list_urls(session, base_url))[0]

    url = asyncio.run(one_url())
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{int(seconds)}s", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    print(out)
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
    return float(line.split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--neurons", type=int, default=2000)
    parser.add_argument("--file-kb", type=float, default=20.0)
    parser.add_argument("--wrk", action="store_true", help="load with wrk (must be on PATH)")
    args = parser.parse_args()
    placement = pin_load_generator()
    settings = ("--tls", "none", "--neurons", str(args.neurons), "--file-kb", str(args.file_kb))
    with emulator(*settings) as emu:
        base_url = emu.base_url
        if args.wrk:
            if shutil.which("wrk") is None:
                raise SystemExit("wrk is not installed")
            rate = run_wrk(base_url, args.seconds, args.concurrency)
            tool = "wrk"
        else:
            done, received, elapsed = asyncio.run(load(base_url, args.seconds, args.concurrency))
            rate = done / elapsed
            tool = f"aiohttp load loop, {done} requests, {received / done / 1024:.1f} KiB each"
    verdict = "PASS" if rate >= TARGET else "FAIL"
    what = f"{args.file_kb:g} KB files ({tool}; {placement})"
    print(f"{rate:,.0f} requests/s for {what} {verdict} >= {TARGET:,.0f}")
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
