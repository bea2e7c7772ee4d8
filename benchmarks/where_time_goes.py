"""Where a file's CPU goes: the same files, written to RAM, by five clients of decreasing simplicity.

``python benchmarks/where_time_goes.py [--files 2000]`` starts the emulator (modern TLS, 20 KB files, one
core) and fetches every CNG file into ``/dev/shm`` (RAM, so this VM's noisy disk is out of the picture)
with: aria2c ``-j 32``; a bare aiohttp loop (32 workers, ``resp.read()``, a blocking write); the library's
``NeuroMorpho.fetch_file`` without and with the SWC check; and the whole CLI. Each runs as a child process
measured by ``os.wait4``; it prints files/s and CPU milliseconds per file. The table in
``benchmarks/README.md`` ("Reading the results") comes from this script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PY, Emulator, Measure, cli, emulator, file_urls, measure, run_aria2

BARE = """
import asyncio, json, os, ssl, sys, aiohttp
ca, out, urls = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
async def main():
    ctx = ssl.create_default_context(cafile=ca)
    queue = asyncio.Queue()
    for item in urls:
        queue.put_nowait(item)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=32)) as session:
        async def worker():
            while not queue.empty():
                url, rel = queue.get_nowait()
                async with session.get(url) as resp:
                    body = await resp.read()
                path = os.path.join(out, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as fh:
                    fh.write(body)
        await asyncio.gather(*(worker() for _ in range(32)))
asyncio.run(main())
"""

LIBRARY = """
import asyncio, json, sys
from pathlib import Path
from neuromorpho_fetch import NeuroMorpho
base, ca, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
urls, check = json.load(open(sys.argv[4])), sys.argv[5] == "1"
async def main():
    queue = asyncio.Queue()
    for item in urls:
        queue.put_nowait(item)
    async with NeuroMorpho(base, ca_file=ca, concurrency=32, rate=100000) as nm:
        async def worker():
            while not queue.empty():
                url, rel = queue.get_nowait()
                await nm.fetch_file(url, out / rel, check_swc=check)
        await asyncio.gather(*(worker() for _ in range(32)))
asyncio.run(main())
"""


def contenders(emu: Emulator, root: Path, listing: Path, n: int) -> list[Measure]:
    ca = emu.ca_file or ""
    runs = [
        measure("bare aiohttp loop", [PY, "-c", BARE, ca, str(root / "bare"), str(listing)], emu),
        measure(
            "fetch_file, no SWC check",
            [PY, "-c", LIBRARY, emu.base_url, ca, str(root / "lib0"), str(listing), "0"],
            emu,
        ),
        measure(
            "fetch_file, SWC check",
            [PY, "-c", LIBRARY, emu.base_url, ca, str(root / "lib1"), str(listing), "1"],
            emu,
        ),
        measure(
            "whole CLI (listing included)",
            cli(emu, root / "cli", "--all", "--concurrency", "32", "--rate", "100000"),
            emu,
        ),
    ]
    for m in runs:
        m.files = n
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    ram = Path("/dev/shm")
    if not ram.is_dir():
        raise SystemExit("needs /dev/shm (a RAM file system) to keep the disk out of the measurement")
    settings = ("--neurons", str(args.files), "--file-kb", "20", "--tls", "modern")
    with emulator(*settings) as emu, tempfile.TemporaryDirectory(dir=ram) as tmp:
        root = Path(tmp)
        urls = file_urls(emu)
        listing = root / "urls.json"
        listing.write_text(json.dumps(urls))
        rows: list[Measure] = []
        aria = run_aria2(emu, urls, root / "aria2") if shutil.which("aria2c") else None
        if aria is not None:
            rows.append(aria)
        rows += contenders(emu, root, listing, len(urls))
    print("| client | files/s | CPU ms per file |\n|---|---|---|")
    for m in rows:
        print(f"| {m.label} | {m.files_per_s:,.0f} | {m.cpu_per_1000:.2f} |")
    return 0 if all(m.exit_code == 0 for m in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
