"""Benchmarks: neuromorpho-fetch against the server's limits, aria2c and a sequential requests loop.

Run ``python benchmarks/run.py [--quick]`` after ``pip install -e '.[test,bench]'`` (requests for the
sequential baseline; uvloop for the event-loop comparison) and ``apt-get install aria2``. Every scenario
starts the emulator in its own process, runs the contenders as child processes, and reads their wall
time, CPU time and peak RSS from ``os.wait4``; request counts come from the emulator's
``/_emulator/stats``. Each timing is also a ratio to a reference measured in the same run (the ideal
schedule, aria2c, the sequential loop, the listing alone), so the figures compare across machines.

Our tool is driven only through its stable surfaces: the command line (``python -m neuromorpho_fetch``)
and the public library API (the URL list), so a refactoring of the package cannot break the benchmarks.

``--quick`` is a smoke test (under two minutes, small sizes): its exit code says only whether every
contender ran and the counts are right, never whether a timing target was met.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable


def loop_args(src: Path, loop: str = "asyncio") -> list[str]:
    """``--loop LOOP`` for the tree at ``src``, or nothing for a tree from before the flag (its only loop
    is asyncio's). Without it a tree with the flag takes uvloop wherever it is installed (``auto``, the
    default) and is compared on another loop than a tree without it (ab.py did, until 2026-12-03)."""
    return ["--loop", loop] if (src / "neuromorpho_fetch" / "loops.py").is_file() else []


def byte_compiled(src: Path) -> Path:
    """``src`` with its bytecode written, as ``pip install`` leaves an installed package, and returned.

    A checkout run in place has none when the environment sets ``PYTHONDONTWRITEBYTECODE`` (this
    benchmark machine does): every run would then compile each of the package's modules from source,
    about 60 ms of start-up that no installed copy pays. Writing it here (``__pycache__`` is ignored by
    git) measures the tool as users run it; every tree measured gets the same.
    """
    compileall.compile_dir(src, quiet=1, workers=0)
    return src


@dataclass
class Measure:
    """One child process: what it cost and what the emulator saw."""

    label: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    exit_code: int
    files: int = 0
    file_requests: int = 0
    api_requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, VmRSS)

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_s / self.files if self.files else 0.0


@dataclass
class Emulator:
    base_url: str
    ca_file: str | None
    process: subprocess.Popen[bytes]

    def _open(self, request: urllib.request.Request | str) -> Any:
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        if ctx is not None:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=1")
        return urllib.request.urlopen(request, context=ctx, timeout=30)

    def stats(self) -> dict[str, Any]:
        with self._open(f"{self.base_url}/_emulator/stats") as resp:
            stats: dict[str, Any] = json.load(resp)
            return stats

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.base_url}/_emulator/reset", data=b"", method="POST")
        with self._open(req):
            pass


@contextlib.contextmanager
def emulator(*args: str, warm: bool = False) -> Iterator[Emulator]:
    """The emulator in its own process, on one core when the machine allows it.

    ``warm``: every CNG file is fetched once before the caller times anything, into a big enough
    response cache (``--file-cache-mb``). The emulator grows each realistic neuron when its file is
    first asked for (issue 18: a few milliseconds for 20 KB, tens for a 200 KB file, on the emulator's
    one core), which would make the timed runs measure the emulator instead of the clients; warm, a
    file is one dictionary lookup, as it was when files were cut from shared master bodies.
    """
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        cache = ("--file-cache-mb", "4096") if warm else ()
        cmd = [
            PY,
            "-m",
            "neuromorpho_fetch.emulator",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            *args,
            *cache,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"emulator did not start: {' '.join(cmd)}")
                time.sleep(0.05)
            info = json.loads(ready.read_text())
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(proc.pid, {0})
            emu = Emulator(info["base_url"], info.get("ca_file"), proc)
            if warm:
                warm_up(emu, Path(tmp) / "warm")
            yield emu
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def warm_up(emu: Emulator, out: Path) -> None:
    """Every file asked for once (untimed, then deleted): see :func:`emulator`'s ``warm``."""
    cmd = cli(emu, out, "--all", "--concurrency", "16", "--rate", "100000")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(out, ignore_errors=True)
    emu.reset()


def vm_rss_mb(pid: int) -> float | None:
    """The process's resident set now (``VmRSS`` in ``/proc/<pid>/status``); None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _sample_rss(pid: int, every_s: float, start: float, out: list[tuple[float, float]]) -> None:
    while (rss := vm_rss_mb(pid)) is not None:
        out.append((round(time.perf_counter() - start, 2), round(rss, 1)))
        time.sleep(every_s)


def measure(
    label: str,
    cmd: Sequence[str],
    emu: Emulator | None = None,
    *,
    sample_rss_s: float | None = None,
    **popen: Any,
) -> Measure:
    """Run ``cmd`` to completion; wall time, CPU (user+sys, threads included) and peak RSS from wait4.

    With ``sample_rss_s`` a thread also reads the child's VmRSS at that interval (the curve, not just
    the peak: memory that grows with the run shows as a rising last quarter).
    """
    if emu is not None:
        emu.reset()
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), **popen)
    sampler = None
    if sample_rss_s is not None:
        sampler = threading.Thread(target=_sample_rss, args=(proc.pid, sample_rss_s, start, samples))
        sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if sampler is not None:
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    m = Measure(
        label=label,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        exit_code=proc.returncode,
        rss_mb=samples,
    )
    if emu is not None:
        stats = emu.stats()
        m.file_requests = int(stats["file_requests"])
        m.api_requests = int(stats["api_requests"])
        m.extra["server_max_in_flight"] = stats.get("max_in_flight")
    return m


def have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def cli(emu: Emulator, out: Path, *extra: str, uvloop: bool = False) -> list[str]:
    """The command line of our tool on asyncio's loop, or with ``uvloop`` on uvloop's (``--loop``)."""
    ca = ["--ca-file", emu.ca_file] if emu.ca_file else []
    return [
        PY,
        "-m",
        "neuromorpho_fetch",
        "--loop",
        "uvloop" if uvloop else "asyncio",
        "--base-url",
        emu.base_url,
        *ca,
        "--out",
        str(out),
        "--no-progress",
        "-q",
        *extra,
    ]


def file_urls(emu: Emulator) -> list[tuple[str, str]]:
    """(url, relative path) of every CNG file, listed with the library before any timing starts."""
    code = (
        "import asyncio, json, sys\n"
        "from neuromorpho_fetch import NeuroMorpho, Version, file_task\n"
        "async def main():\n"
        "    ca = sys.argv[2] or None\n"
        "    async with NeuroMorpho(sys.argv[1], ca_file=ca, rate=1000, concurrency=4) as nm:\n"
        "        out = []\n"
        "        async for n in nm.select(q='*:*'):\n"
        "            t = file_task(sys.argv[1], n, Version.CNG)\n"
        "            out.append([t.url, str(t.path)])\n"
        "    json.dump(out, sys.stdout)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [PY, "-c", code, emu.base_url, emu.ca_file or ""], capture_output=True, text=True, check=True
    )
    return [(u, p) for u, p in json.loads(done.stdout)]


def scenario_polite(quick: bool) -> dict[str, Any]:
    """600 CNG files at 100 ms latency, --concurrency 8 --rate 20: how close to the ideal schedule."""
    files, latency, jitter, conc, rate = (100 if quick else 600), 0.100, 0.020, 8, 20.0
    slow = ("--neurons", str(files), "--latency-ms", "100", "--jitter-ms", "20")
    with emulator(*slow, warm=True) as emu, tempfile.TemporaryDirectory() as tmp:
        limits = ["--all", "--concurrency", str(conc), "--rate", str(rate)]
        dry = cli(emu, Path(tmp) / "dry", *limits, "--dry-run")
        listing = measure("listing only (--dry-run)", dry, emu)
        run = measure("neuromorpho-fetch", cli(emu, Path(tmp) / "out", *limits), emu)
    run.files = files
    mean_latency = latency + jitter / 2
    ideal = files / min(rate, conc / mean_latency) + listing.wall_s
    efficiency = ideal / run.wall_s
    return {
        "name": "1. polite overnight run",
        "files": files,
        "ideal_s": round(ideal, 2),
        "listing_s": round(listing.wall_s, 2),
        "actual_s": round(run.wall_s, 2),
        "efficiency": round(efficiency, 3),
        "target": "efficiency >= 0.95",
        "ok": run.exit_code == 0 and listing.exit_code == 0 and run.file_requests == files,
        "met": efficiency >= 0.95 and run.exit_code == 0,
        "runs": [asdict(listing), asdict(run)],
    }


def median_run(runs: list[Measure]) -> Measure:
    """The run with the median wall time (the disk here is shared and noisy: one run proves little)."""
    ordered = sorted(runs, key=lambda m: m.wall_s)
    best = ordered[len(ordered) // 2]
    best.extra["walls_s"] = [round(m.wall_s, 2) for m in runs]
    return best


def contender_row(m: Measure) -> dict[str, Any]:
    row = asdict(m)
    del row["rss_mb"]
    return {**row, "files_per_s": round(m.files_per_s, 1), "cpu_s_per_1000_files": round(m.cpu_per_1000, 2)}


def with_dataset_share(m: Measure, out: Path) -> Measure:
    """``m`` with the dataset step's seconds (from the run's own report) and their share of the wall."""
    try:
        report = json.loads((out / ".neuromorpho-fetch" / "last-report.json").read_text())
        seconds = float(report["dataset"]["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return m
    m.extra.update(dataset_s=round(seconds, 3), dataset_share=round(seconds / m.wall_s, 3))
    return m


def take_turns(rounds: int, contenders: dict[str, Any], files: int) -> dict[str, Measure]:
    """Each contender once per round, in turn, into a fresh folder; the median round of each.

    ``contenders`` maps a label to ``f(round) -> Measure | None``. The order rotates from round to round,
    so no contender always runs first (into the emulator's coldest caches). Nothing is deleted until the
    caller's temporary folder goes, so no contender pays for another's deletes.
    """
    runs: dict[str, list[Measure]] = {label: [] for label in contenders}
    labels = list(contenders)
    for i in range(rounds):
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            m = contenders[label](i)
            if m is not None:
                m.files = m.files or files
                runs[label].append(m)
    return {label: median_run(ms) for label, ms in runs.items() if ms}


def scenario_throughput_and_rerun(quick: bool) -> list[dict[str, Any]]:
    """5,000 files of 20 KB, no latency, no rate limit, concurrency 32, modern TLS; then a re-run.

    neuromorpho-fetch, the same under uvloop, and aria2c take turns (see :func:`take_turns`), each
    round into a fresh folder; the median round of each is compared.
    """
    files = 1000 if quick else 5000
    seq_files = 100 if quick else 500
    rounds = 1 if quick else 3
    with emulator("--neurons", str(files), "--file-kb", "20", "--tls", "modern", warm=True) as emu:
        urls = file_urls(emu)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            fast = ["--all", "--concurrency", "32", "--rate", "100000"]
            contenders: dict[str, Any] = {
                "ours": lambda i: with_dataset_share(
                    measure("neuromorpho-fetch -j 32", cli(emu, root / f"ours{i}", *fast), emu),
                    root / f"ours{i}",
                ),
                "aria2c": lambda i: run_aria2(emu, urls, root / f"aria2-{i}", jobs=32),
            }
            if have_uvloop():
                contenders["uvloop"] = lambda i: measure(
                    "neuromorpho-fetch -j 32, uvloop", cli(emu, root / f"uv{i}", *fast, uvloop=True), emu
                )
            best = take_turns(rounds, contenders, files)
            seq = run_sequential(emu, urls[:seq_files], root / "seq")
            # Scenario 4, also `rounds` rounds: a re-run over each round's complete mirror beside a
            # listing alone (taking turns), compared round by round; the median ratio is the result.
            pairs = []
            for i in range(rounds):
                rerun_cmd = cli(emu, root / f"ours{i}", *fast)
                dry_cmd = cli(emu, root / f"dry{i}", *fast, "--dry-run")
                if i % 2:
                    listing = measure("listing only (--dry-run)", dry_cmd, emu)
                    rerun = measure("re-run over the complete mirror", rerun_cmd, emu)
                else:
                    rerun = measure("re-run over the complete mirror", rerun_cmd, emu)
                    listing = measure("listing only (--dry-run)", dry_cmd, emu)
                pairs.append((rerun, listing))
            rerun, listing = sorted(pairs, key=lambda pair: pair[0].wall_s / pair[1].wall_s)[len(pairs) // 2]
    ours, aria, uv = best["ours"], best.get("aria2c"), best.get("uvloop")
    rows = [m for m in (ours, uv, aria, seq) if m is not None]
    throughput = {
        "name": "2. raw throughput",
        "files": files,
        "contenders": [contender_row(m) for m in rows],
        "wall_vs_aria2c": round(ours.wall_s / aria.wall_s, 3) if aria else None,
        "uvloop_wall_vs_asyncio": round(uv.wall_s / ours.wall_s, 3) if uv else None,
        "speedup_vs_sequential": round(ours.files_per_s / seq.files_per_s, 1) if seq.files_per_s else None,
        # Issue 17: the catalogue step (its seconds in the run's report) within 10% of this wall.
        "dataset_s": ours.extra.get("dataset_s"),
        "dataset_share": ours.extra.get("dataset_share"),
        # Issue 19: wall within 5% of aria2c's and at most 1.2 CPU ms a file; the old ">= 10x the
        # sequential loop" is dropped here (no client meets it on this disk: aria2c is 2.6x), kept in 5.
        "target": "wall <= 1.05x aria2c's; CPU <= 1.2 ms per file",
        "ok": all(m.exit_code == 0 for m in rows),
    }
    throughput["met"] = (
        throughput["ok"]
        and aria is not None
        and ours.wall_s <= 1.05 * aria.wall_s
        and ours.cpu_per_1000 <= 1.2
    )
    rerun_ratio = rerun.wall_s / listing.wall_s
    rerun_row = {
        "name": "4. re-run cost",
        "files": files,
        "rerun_s": round(rerun.wall_s, 2),
        "listing_s": round(listing.wall_s, 2),
        "ratio_to_listing": round(rerun_ratio, 3),
        "ratios_by_round": [round(a.wall_s / b.wall_s, 3) for a, b in pairs],
        "file_requests": rerun.file_requests,
        "target": "0 file requests; wall <= 1.2x the listing alone",
        "ok": all(a.file_requests == 0 and a.exit_code == 0 and b.exit_code == 0 for a, b in pairs),
        "runs": [asdict(m) for pair in pairs for m in pair],
    }
    rerun_row["met"] = rerun_row["ok"] and rerun_ratio <= 1.2
    return [throughput, rerun_row]


def run_aria2(emu: Emulator, urls: list[tuple[str, str]], out: Path, jobs: int = 32) -> Measure | None:
    if shutil.which("aria2c") is None:
        print("aria2c not found: apt-get install aria2 (the comparison is skipped)", file=sys.stderr)
        return None
    out.mkdir(parents=True)
    listing = out.parent / f"{out.name}-input.txt"
    with listing.open("w") as fh:
        for url, rel in urls:
            rel_path = Path(rel)
            fh.write(f"{url}\n  dir={out / rel_path.parent}\n  out={rel_path.name}\n")
    cmd = [
        "aria2c",
        "-i",
        str(listing),
        "-j",
        str(jobs),
        "--max-connection-per-server=1",
        "--console-log-level=error",
        "--summary-interval=0",
        "--download-result=hide",
        "--file-allocation=none",
        "--auto-file-renaming=false",
        "--allow-overwrite=true",
        "--http-accept-gzip=false",
    ]
    if emu.ca_file:
        cmd.append(f"--ca-certificate={emu.ca_file}")
    m = measure(f"aria2c -j {jobs}", cmd, emu, stdout=subprocess.DEVNULL)
    m.files = len(urls)
    return m


SEQUENTIAL = """
import sys, json, pathlib, requests
ca, out, listing = sys.argv[1], pathlib.Path(sys.argv[2]), json.load(open(sys.argv[3]))
for url, rel in listing:                      # the seed tutorial's loop: one requests.get per file
    r = requests.get(url, verify=ca or True)
    r.raise_for_status()
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(r.content)
"""


def run_sequential(emu: Emulator, urls: list[tuple[str, str]], out: Path) -> Measure:
    out.mkdir(parents=True)
    listing = out.parent / "seq-input.json"
    listing.write_text(json.dumps(urls))
    cmd = [PY, "-c", SEQUENTIAL, emu.ca_file or "", str(out), str(listing)]
    m = measure(f"sequential requests loop (first {len(urls)} files)", cmd, emu)
    m.files = len(urls)
    return m


def scenario_memory(quick: bool) -> dict[str, Any]:
    """--dry-run --all over the full 265,000-neuron catalogue, against 10,000 as the reference."""
    sizes = (2_000, 20_000) if quick else (10_000, 265_000)
    runs: dict[int, Measure] = {}
    for n in sizes:
        with emulator("--neurons", str(n), "--tls", "none") as emu, tempfile.TemporaryDirectory() as tmp:
            cmd = cli(emu, Path(tmp), "--all", "--dry-run", "--rate", "1000", "--concurrency", "4")
            runs[n] = measure(f"--dry-run --all, {n:,} neurons", cmd, emu)
            runs[n].files = n
    small, big = runs[sizes[0]].peak_rss_mb, runs[sizes[1]].peak_rss_mb
    ratio = big / small
    return {
        "name": "3. memory at full scale",
        "sizes": list(sizes),
        "peak_rss_mb_big": round(big, 1),
        "peak_rss_mb_small": round(small, 1),
        "ratio": round(ratio, 3),
        "target": "peak RSS < 100 MB; RSS(265k) <= 1.2x RSS(10k)",
        "ok": all(r.exit_code == 0 and r.file_requests == 0 for r in runs.values()),
        "met": big < 100 and ratio <= 1.2 and all(r.exit_code == 0 for r in runs.values()),
        "runs": [asdict(r) for r in runs.values()],
    }


# Scenario 5: the emulator's latency, not a rate limit, decides.
LATENCY_EMULATOR = ("--tls", "modern", "--latency-ms", "50", "--jitter-ms", "10")
MEAN_LATENCY_S = 0.050 + 0.010 / 2  # uniform jitter: half of it on average
SWEEP = (1, 4, 16, 64)


def ideal_s(files: int, concurrency: int, rate: float = 100_000.0) -> float:
    """The schedule no client can beat: ``files / min(rate, concurrency / mean latency)``."""
    return files / min(rate, concurrency / MEAN_LATENCY_S)


def sweep_files(concurrency: int, files: int, quick: bool) -> int:
    """Files per sweep point: ~4 s of ideal work each (1,200 at 16 and 64; fewer where it would drag)."""
    return min(files, concurrency * 20 if quick else max(concurrency * 75, 100))


def scenario_latency(quick: bool, plot: Path | None) -> dict[str, Any]:
    """1,200 CNG files, 50 ms latency + up to 10 ms jitter, modern TLS, 16 in flight, no rate limit.

    Ours (listing included), the same under uvloop, and aria2c ``-j 16`` (the URL list, no listing)
    take turns; the sequential loop fetches the first 200 files. Then the concurrency sweep (1, 4, 16,
    64) for ours and aria2c, one run per point, plotted into ``plot``.
    """
    files, conc = (300 if quick else 1200), 16
    rounds, seq_files = (1, 30) if quick else (3, 200)
    opts = ["--all", "--concurrency", str(conc), "--rate", "100000"]
    with emulator("--neurons", str(files), *LATENCY_EMULATOR, warm=True) as emu:
        urls = file_urls(emu)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            listing = measure("listing only (--dry-run)", cli(emu, root / "dry", *opts, "--dry-run"), emu)
            contenders: dict[str, Any] = {
                "ours": lambda i: measure(
                    f"neuromorpho-fetch -j {conc}", cli(emu, root / f"o{i}", *opts), emu
                ),
                "aria2c": lambda i: run_aria2(emu, urls, root / f"a{i}", jobs=conc),
            }
            if have_uvloop():
                contenders["uvloop"] = lambda i: measure(
                    f"neuromorpho-fetch -j {conc}, uvloop", cli(emu, root / f"u{i}", *opts, uvloop=True), emu
                )
            best = take_turns(rounds, contenders, files)
            seq = run_sequential(emu, urls[:seq_files], root / "seq")
            sweep: dict[str, dict[int, Measure]] = {"ours": {}, "aria2c": {}}
            for c in SWEEP:
                if c == conc:
                    sweep["ours"][c] = best["ours"]
                    if "aria2c" in best:
                        sweep["aria2c"][c] = best["aria2c"]
                    continue
                n = sweep_files(c, files, quick)
                limited = ["--all", "--limit", str(n), "--concurrency", str(c), "--rate", "100000"]
                m = measure(f"neuromorpho-fetch -j {c}", cli(emu, root / f"sweep-o{c}", *limited), emu)
                m.files = n
                sweep["ours"][c] = m
                a = run_aria2(emu, urls[:n], root / f"sweep-a{c}", jobs=c)
                if a is not None:
                    sweep["aria2c"][c] = a
    ours, aria, uv = best["ours"], best.get("aria2c"), best.get("uvloop")
    ideal = ideal_s(files, conc)
    rows = [m for m in (ours, uv, aria, seq) if m is not None]
    points = {
        who: [
            {
                "concurrency": c,
                "files": m.files,
                "files_per_s": round(m.files_per_s, 1),
                "ok": m.exit_code == 0,
            }
            for c, m in sorted(by_c.items())
        ]
        for who, by_c in sweep.items()
    }
    points["ideal"] = [
        {"concurrency": c, "files_per_s": round(min(1e5, c / MEAN_LATENCY_S), 1)} for c in SWEEP
    ]
    result: dict[str, Any] = {
        "name": "5. latency-bound",
        "files": files,
        "ideal_s": round(ideal, 2),
        "listing_s": round(listing.wall_s, 2),
        "actual_s": round(ours.wall_s, 2),
        # The target's figure: the ideal download schedule over our whole wall (start-up and listing in).
        "efficiency": round(ideal / ours.wall_s, 3),
        # Scenario 1's convention, for comparison: the listing alone added to the ideal.
        "efficiency_listing_in_ideal": round((ideal + listing.wall_s) / ours.wall_s, 3),
        "vs_aria2c": round(ours.files_per_s / aria.files_per_s, 3) if aria else None,
        "uvloop_vs_aria2c": round(uv.files_per_s / aria.files_per_s, 3) if uv and aria else None,
        "uvloop_wall_vs_asyncio": round(uv.wall_s / ours.wall_s, 3) if uv else None,
        "speedup_vs_sequential": round(ours.files_per_s / seq.files_per_s, 1) if seq.files_per_s else None,
        # Issue 17: the catalogue step (its seconds in the run's report) within 10% of this wall.
        "dataset_s": ours.extra.get("dataset_s"),
        "dataset_share": ours.extra.get("dataset_share"),
        "contenders": [contender_row(m) for m in rows],
        "sweep": points,
        # Issue 19: efficiency with the listing in the ideal (scenario 1's convention) >= 0.85.
        "target": "files/s >= aria2c's; efficiency (listing in the ideal) >= 0.85; >= 10x the loop",
        "ok": all(m.exit_code == 0 for m in rows)
        and ours.file_requests == files
        and all(p["ok"] for who in ("ours", "aria2c") for p in points[who]),
    }
    result["met"] = (
        result["ok"]
        and result["efficiency_listing_in_ideal"] >= 0.85
        and aria is not None
        and ours.files_per_s >= aria.files_per_s
        and (result["speedup_vs_sequential"] or 0) >= 10
    )
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        when = time.strftime("%Y-%m-%d")
        note = f"{files:,} CNG files, 50 ms + up to 10 ms jitter, modern TLS; measured {when}"
        plot.write_text(sweep_svg(points, title=note))
        result["plot"] = str(plot)
    return result


def sweep_svg(points: dict[str, list[dict[str, Any]]], *, title: str) -> str:
    """Files/s against concurrency as a small hand-written SVG line chart, both axes logarithmic.

    Log-log because the ideal ``c / latency`` then is a straight line and a client that stops scaling
    bends away from it at once. Hand-written rather than matplotlib: three lines of four points need no
    plotting stack (matplotlib brings numpy, pillow and font files into the bench extra), and the output
    is a few kilobytes of readable, byte-stable text that diffs cleanly when the figures change.
    """
    import math

    w, h, left, right, top, bottom = 640, 400, 70, 180, 56, 50
    pw, ph = w - left - right, h - top - bottom
    values = [p["files_per_s"] for series in points.values() for p in series if p["files_per_s"] > 0]
    ticks = [m * 10**e for e in range(-1, 6) for m in (1, 2, 5)]
    lo = max(t for t in ticks if t <= min(values))
    hi = min(t for t in ticks if t >= max(values))
    x0, x1 = math.log2(SWEEP[0]), math.log2(SWEEP[-1])

    def x(c: int) -> float:
        return left + pw * (math.log2(c) - x0) / (x1 - x0)

    def y(v: float) -> float:
        return top + ph * (1 - math.log(v / lo) / math.log(hi / lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">Latency-bound: files/s against requests in flight</text>',
        f'<text x="{left}" y="40" font-size="11" fill="#555">{title}</text>',
    ]
    for tick in (t for t in ticks if lo <= t <= hi):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for c in SWEEP:
        out.append(f'<text x="{x(c):.1f}" y="{top + ph + 18}" text-anchor="middle">{c}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 10}" text-anchor="middle">requests in flight</text>')
    out.append(
        f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" text-anchor="middle">files/s</text>'
    )
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    styles = {
        "ideal": ("#888", ' stroke-dasharray="5 4"', "ideal: c / mean latency"),
        "aria2c": ("#d62728", "", "aria2c -j c"),
        "ours": ("#1f77b4", "", "neuromorpho-fetch"),
    }
    for n, (who, (colour, dash, label)) in enumerate(styles.items()):
        series = [p for p in points.get(who, []) if p["files_per_s"] > 0]
        if not series:
            continue
        path = " ".join(f"{x(p['concurrency']):.1f},{y(p['files_per_s']):.1f}" for p in series)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for p in series:
            cx, cy = x(p["concurrency"]), y(p["files_per_s"])
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"/>')
        ly = top + 14 + 18 * n
        out.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 30}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')  # fmt: skip
        out.append(f'<text x="{left + pw + 34}" y="{ly + 4}" font-size="11">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def rss_summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """Quantiles of a VmRSS curve, and its first quarter (by time) against its last."""
    if not samples:
        return {}
    values = sorted(v for _, v in samples)

    def q(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))]

    end = samples[-1][0] or 1.0
    first = sorted(v for t, v in samples if t <= end / 4) or values
    last = sorted(v for t, v in samples if t >= 3 * end / 4) or values
    first_median, last_median = first[len(first) // 2], last[len(last) // 2]
    stride = max(1, len(samples) // 100)
    return {
        "samples": len(samples),
        "p10": q(0.10),
        "p50": q(0.50),
        "p90": q(0.90),
        "max": values[-1],
        "first_quarter_median": first_median,
        "last_quarter_median": last_median,
        "last_vs_first": round(last_median / first_median, 3),
        "curve": samples[::stride],
    }


def scenario_scale(quick: bool, scale: int | None) -> dict[str, Any]:
    """A complete ``--all`` mirror of a full-size catalogue of small files, then its no-change re-run.

    265,000 neurons by default (NeuroMorpho.Org's size), 2 KB files so that the disk and the network are
    not what is measured but everything that grows with the catalogue: the state store, the listing, the
    sweeps, metadata and report writing. Plain HTTP (TLS costs per byte, not per neuron), 32 in flight,
    no rate limit, so that it completes in minutes rather than the hours the polite default would take.
    The CLI's VmRSS is sampled throughout.
    """
    neurons = scale or (3000 if quick else 265_000)
    every = 0.1 if neurons <= 20_000 else 0.5
    opts = ["--all", "--concurrency", "32", "--rate", "100000"]
    settings = ("--neurons", str(neurons), "--file-kb", "2", "--tls", "none")
    with emulator(*settings) as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        full = measure("complete --all mirror", cli(emu, root / "out", *opts), emu, sample_rss_s=every)
        full.files = neurons
        rerun = measure("no-change re-run", cli(emu, root / "out", *opts), emu, sample_rss_s=every)
        listing = measure("listing only (--dry-run)", cli(emu, root / "dry", *opts, "--dry-run"), emu)
        cleanup_started = time.monotonic()
    cleanup_s = time.monotonic() - cleanup_started
    rss = rss_summary(full.rss_mb)
    rerun_ratio = rerun.wall_s / listing.wall_s
    runs = [full, rerun, listing]
    result: dict[str, Any] = {
        "name": "6. full scale",
        "neurons": neurons,
        "mirror_s": round(full.wall_s, 1),
        "files_per_s": round(full.files_per_s, 1),
        "cpu_ms_per_file": round(full.cpu_per_1000, 3),
        "peak_rss_mb": round(full.peak_rss_mb, 1),
        "rss_mb": rss,
        "rerun_s": round(rerun.wall_s, 2),
        "rerun_peak_rss_mb": round(rerun.peak_rss_mb, 1),
        "rerun_file_requests": rerun.file_requests,
        "listing_s": round(listing.wall_s, 2),
        "rerun_vs_listing": round(rerun_ratio, 3),
        "cleanup_s": round(cleanup_s, 1),
        "target": "peak RSS < 150 MB, flat (last/first quarter <= 1.2); re-run: 0 file requests, "
        "<= 1.2x the listing",
        "ok": all(m.exit_code == 0 for m in runs)
        and full.file_requests == neurons
        and rerun.file_requests == 0,
        "runs": [{k: v for k, v in asdict(m).items() if k != "rss_mb"} for m in runs],
    }
    result["met"] = (
        result["ok"]
        and full.peak_rss_mb < 150
        and rerun.peak_rss_mb < 150
        and rss.get("last_vs_first", 9) <= 1.2
        and rerun_ratio <= 1.2
    )
    return result


COST_FILES = 1000  # the marginal per-file figures: a run of this many against one of 10


@dataclass(frozen=True)
class Tree:
    """One contender of the per-file cost table: a checkout (None: this one) and its event loop."""

    label: str
    src: Path | None = None
    loop: str = "asyncio"  # passed only to a tree that has ``--loop`` (:func:`loop_args`)

    def command(self, *args: str, wrap: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
        """``python [wrap] -m neuromorpho_fetch`` with this tree's ``src`` first on the path."""
        env = dict(os.environ)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        loop = loop_args(self.src or HERE.parent / "src", self.loop)
        head = [PY, *wrap] if wrap else [PY, "-m", "neuromorpho_fetch"]
        return [*head, *loop, *args], env


def _run_args(emu: Emulator, out: Path, *extra: str) -> list[str]:
    ca = ["--ca-file", emu.ca_file] if emu.ca_file else []
    fast = ["--concurrency", "32", "--rate", "100000"]  # scenario 2's limits: per-file cost, not pacing
    return ["--base-url", emu.base_url, *ca, "--out", str(out), "--no-progress", "-q", *fast, *extra]


def strace_total(path: Path) -> int:
    """The ``total`` calls of an ``strace -c`` summary (its last line)."""
    for line in reversed(path.read_text().splitlines()):
        if line.rstrip().endswith("total"):
            return int(line.split()[3])
    raise ValueError(f"no total in {path}")


def import_ms(stderr: str) -> float:
    """The sum of the top-level imports' cumulative times in a ``-X importtime`` log, in ms."""
    total = 0
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  ") and cumulative.strip().isdigit():
                total += int(cumulative)
    return total / 1000


def tree_costs(t: Tree, emu_small: Emulator, emu: Emulator, root: Path, quick: bool) -> dict[str, Any]:
    """One tree's row: start-up, a 10-file run's fixed cost, and the marginal per-file figures."""
    rounds = 1 if quick else 3
    hop_script = str(HERE / "count_hops.py")
    cmd, env = t.command("-V")
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL}
    version = [measure("-V", cmd, env=env, **quiet).wall_s for _ in range(3 if quick else 7)]
    tens = []
    for i in range(2 if quick else 5):
        cmd, env = t.command(*_run_args(emu_small, root / f"{t.label}-ten{i}", "--all"))
        m = measure("10 files", cmd, emu_small, env=env)
        assert m.exit_code == 0 and m.file_requests == 10, (t.label, m)
        tens.append(m.wall_s)
    cmd, env = t.command(*_run_args(emu_small, root / f"{t.label}-imp", "--all"))
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True)
    imports = import_ms(done.stderr)

    def counted(n: int, tag: str) -> tuple[Measure, int, int]:
        """A run of ``n`` files: its Measure, thread hops and syscalls (the last under strace)."""
        hops_file, trace = root / f"{tag}.hops", root / f"{tag}.strace"
        limit = ["--limit", str(n)] if n < COST_FILES else []
        args = _run_args(emu, root / tag, "--all", *limit)
        cmd, env = t.command(*args, wrap=[hop_script, str(hops_file), "--"])
        m = measure(tag, cmd, emu, env=env)
        assert m.exit_code == 0 and m.file_requests == n, (tag, m)
        cmd, env = t.command(*_run_args(emu, root / f"{tag}-strace", "--all", *limit))
        traced = measure(tag, ["strace", "-f", "-c", "-o", str(trace), *cmd], emu, env=env)
        assert traced.exit_code == 0, (tag, traced)
        return m, int(hops_file.read_text()), strace_total(trace)

    cpu, hops, calls = [], [], []
    for i in range(rounds):
        big, big_hops, big_calls = counted(COST_FILES, f"{t.label}-big{i}")
        small, small_hops, small_calls = counted(10, f"{t.label}-small{i}")
        span = COST_FILES - 10
        cpu.append(1000 * (big.cpu_s - small.cpu_s) / span)
        hops.append((big_hops - small_hops) / span)
        calls.append((big_calls - small_calls) / span)
    mid = sorted(range(rounds), key=lambda i: cpu[i])[rounds // 2]
    return {
        "label": t.label,
        "version_ms": round(1000 * sorted(version)[len(version) // 2], 1),
        "ten_files_s": round(sorted(tens)[len(tens) // 2], 3),
        "import_ms": round(imports, 1),
        "cpu_ms_per_file": round(cpu[mid], 3),
        "hops_per_file": round(hops[mid], 3),
        "syscalls_per_file": round(calls[mid], 1),
    }


def aria2_costs(emu_small: Emulator, emu: Emulator, root: Path) -> dict[str, Any] | None:
    """aria2c's marginal CPU and syscalls per file over the same URLs (no listing: it has none)."""
    if shutil.which("aria2c") is None:
        return None
    small_urls, urls = file_urls(emu_small), file_urls(emu)
    ten = run_aria2(emu_small, small_urls, root / "aria2-ten")
    big = run_aria2(emu, urls, root / "aria2-big")
    small = run_aria2(emu, urls[:10], root / "aria2-small")
    assert ten is not None and big is not None and small is not None
    calls = {}
    for tag, chosen in (("big", urls), ("small", urls[:10])):
        trace = root / f"aria2-{tag}.strace"
        listing = root / f"aria2-{tag}-input.txt"  # run_aria2 wrote it
        out = root / f"aria2-{tag}-strace"
        out.mkdir()
        listing.write_text(
            "".join(f"{u}\n  dir={out / Path(r).parent}\n  out={Path(r).name}\n" for u, r in chosen)
        )
        cmd = ["aria2c", "-i", str(listing), "-j", "32", "--console-log-level=error", "--summary-interval=0"]
        cmd += ["--download-result=hide", "--file-allocation=none", "--http-accept-gzip=false"]
        cmd += [f"--ca-certificate={emu.ca_file}"] if emu.ca_file else []
        traced = ["strace", "-f", "-c", "-o", str(trace), *cmd]
        measure("aria2c strace", traced, emu, stdout=subprocess.DEVNULL)
        calls[tag] = strace_total(trace)
    span = len(urls) - 10
    return {
        "label": "aria2c -j 32",
        "ten_files_s": round(ten.wall_s, 3),
        "cpu_ms_per_file": round(1000 * (big.cpu_s - small.cpu_s) / span, 3),
        "hops_per_file": None,
        "syscalls_per_file": round((calls["big"] - calls["small"]) / span, 1),
    }


def scenario_costs(quick: bool, before: Path | None) -> dict[str, Any]:
    """The per-file cost table: what one more file costs, and what any run costs before the first.

    Marginal figures are a run of 1,000 files of 20 KB (modern TLS, 32 in flight, no rate limit) less a
    run of 10 on the same emulator, over 990: start-up and the listing cancel out. Thread hops come from
    ``count_hops.py`` (every worker-thread job), syscalls from ``strace -f -c`` (a separate run, since
    tracing slows it). Start-up is ``-V``'s wall (median of 7), the top-level imports of a 10-file run
    (``-X importtime``), and a 10-file mirror's wall against its own emulator (median of 5). With
    ``before``, the same for another checkout, side by side.
    """
    trees = [Tree("ours")]
    if have_uvloop():
        trees.append(Tree("ours, uvloop", loop="uvloop"))
    if before is not None:
        trees.insert(0, Tree("before", before.resolve() / "src"))
    tiny = ("--neurons", "10", "--tls", "modern")
    big = ("--neurons", str(COST_FILES), "--file-kb", "20", "--tls", "modern")
    with (
        emulator(*tiny, warm=True) as emu_small,
        emulator(*big, warm=True) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        rows = [tree_costs(t, emu_small, emu, Path(tmp), quick) for t in trees]
        aria = aria2_costs(emu_small, emu, Path(tmp))
    if aria is not None:
        rows.append(aria)
    ours = next(r for r in rows if r["label"] == "ours")
    return {
        "name": "7. per-file cost",
        "rows": rows,
        "target": "-V < 150 ms; a 10-file mirror < 0.3 s",
        "ok": True,
        "met": ours["version_ms"] < 150 and ours["ten_files_s"] < 0.3,
    }


def cost_table(r: dict[str, Any], sources: list[dict[str, Any]]) -> list[str]:
    """The per-file cost table, one column per contender; scenario 2 and 5's CPU when they ran."""
    rows = r["rows"]
    cols = [row["label"] for row in rows]

    def cell(row: dict[str, Any], key: str, fmt: str = "{}") -> str:
        value = row.get(key)
        return "—" if value is None else fmt.format(value)

    lines = [
        "",
        "Per-file cost (marginal figures: a 1,000-file run less a 10-file run, over 990):",
        "",
        "| | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    by_label = {
        "2": "CPU ms per file, scenario 2 (median round)",
        "5": "CPU ms per file, scenario 5 (median round)",
    }
    for s in sources:
        n = s["name"][0]
        if n in by_label:
            per: dict[str, str] = {}
            for c in s["contenders"]:
                who = (
                    "aria2c -j 32"
                    if c["label"].startswith("aria2c")
                    else ("ours, uvloop" if "uvloop" in c["label"] else "ours")
                )
                if not c["label"].startswith("sequential"):
                    per[who] = f"{c['cpu_s_per_1000_files']:.2f}"
            lines.append(f"| {by_label[n]} | " + " | ".join(per.get(col, "—") for col in cols) + " |")
    for key, label, fmt in (
        ("cpu_ms_per_file", "CPU ms per file, 1,000 x 20 KB", "{:.2f}"),
        ("hops_per_file", "thread hops per file", "{:.2f}"),
        ("syscalls_per_file", "syscalls per file (strace -f -c)", "{:.0f}"),
        ("version_ms", "start-up: `-V` wall, ms", "{:.0f}"),
        ("import_ms", "start-up: top-level imports of a run, ms", "{:.0f}"),
        ("ten_files_s", "fixed cost: a 10-file mirror's wall, s", "{:.2f}"),
    ):
        lines.append(f"| {label} | " + " | ".join(cell(row, key, fmt) for row in rows) + " |")
    return lines


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    yes = {True: "met", False: "**MISSED**"}
    lines = [
        f"Ran {meta['date']} on {meta['machine']} ({'quick' if meta['quick'] else 'full'} mode, "
        f"{meta['total_s']:.0f} s in all).",
        "",
        "| scenario | figures | ratio | target | result |",
        "|---|---|---|---|---|",
    ]
    rounds: list[str] = []
    for r in results:
        n = r["name"][0]
        if n == "1":
            figs = (
                f"{r['files']} files in {r['actual_s']} s "
                f"(ideal {r['ideal_s']} s, listing {r['listing_s']} s)"
            )
            ratio = f"efficiency {r['efficiency']}"
        elif n in "25":
            figs = "<br>".join(
                f"{c['label']}: {c['files_per_s']} files/s, {c['cpu_s_per_1000_files']} CPU s/1000 files, "
                f"{c['peak_rss_mb']:.0f} MB peak RSS"
                for c in r["contenders"]
            )
            uv = f"; uvloop/asyncio wall {r['uvloop_wall_vs_asyncio']}" if r["uvloop_wall_vs_asyncio"] else ""
            if n == "2":
                ratio = f"wall/aria2c {r['wall_vs_aria2c']}; {r['speedup_vs_sequential']}x sequential{uv}"
                if r.get("uvloop_wall_vs_aria2c") is not None:
                    ratio += f"; uvloop wall/aria2c {r['uvloop_wall_vs_aria2c']}"
                if r.get("dataset_share") is not None:
                    ratio += f"; catalogue step {r['dataset_s']} s = {r['dataset_share']:.1%} of the wall"
            else:
                figs += (
                    f"<br>ideal {r['ideal_s']} s, ours {r['actual_s']} s, listing alone {r['listing_s']} s"
                )
                ratio = (
                    f"efficiency {r['efficiency']} ({r['efficiency_listing_in_ideal']} with the listing "
                    f"in the ideal); files/s vs aria2c {r['vs_aria2c']}; "
                    f"{r['speedup_vs_sequential']}x sequential{uv}"
                )
                if r.get("uvloop_vs_aria2c") is not None:
                    ratio += f"; uvloop files/s vs aria2c {r['uvloop_vs_aria2c']}"
                sweep = "; ".join(
                    f"{who} " + ", ".join(f"{p['concurrency']}: {p['files_per_s']}" for p in r["sweep"][who])
                    for who in ("ours", "aria2c", "ideal")
                )
                rounds.append(f"- Scenario 5 sweep, files/s by concurrency: {sweep}.")
            for c in r["contenders"]:
                if "walls_s" in c["extra"]:
                    rounds.append(f"- Scenario {n}, {c['label']}, wall s by round: {c['extra']['walls_s']}")
        elif n == "3":
            small, big = r["sizes"]
            figs = f"peak RSS {r['peak_rss_mb_big']} MB at {big:,}; {r['peak_rss_mb_small']} MB at {small:,}"
            ratio = f"RSS {big:,}/{small:,}: {r['ratio']}"
        elif n == "4":
            figs = f"re-run {r['rerun_s']} s, {r['file_requests']} file requests; listing {r['listing_s']} s"
            ratio = f"re-run/listing {r['ratio_to_listing']} (median round)"
            if len(r.get("ratios_by_round", [])) > 1:
                rounds.append(f"- Scenario 4, re-run/listing by round: {r['ratios_by_round']}")
        elif n == "7":
            rounds += cost_table(r, results)
            lines.append(f"| {r['name']} | the table below | — | {r['target']} | {yes[bool(r['met'])]} |")
            continue
        else:
            rss = r["rss_mb"]
            figs = (
                f"{r['neurons']:,} neurons mirrored in {r['mirror_s']} s ({r['files_per_s']} files/s, "
                f"{r['cpu_ms_per_file']} CPU ms/file); RSS p50 {rss.get('p50')} / p90 {rss.get('p90')} / "
                f"peak {r['peak_rss_mb']} MB; re-run {r['rerun_s']} s with {r['rerun_file_requests']} file "
                f"requests; listing alone {r['listing_s']} s"
            )
            ratio = (
                f"RSS last/first quarter {rss.get('last_vs_first')}; re-run/listing {r['rerun_vs_listing']}"
            )
        lines.append(f"| {r['name']} | {figs} | {ratio} | {r['target']} | {yes[bool(r['met'])]} |")
    if rounds:
        lines += ["", *rounds]
    return "\n".join(lines)


def update_between_markers(path: Path, table: str) -> None:
    text = path.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    head, found, rest = text.partition(start)
    if not found:
        return
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{table}\n{end}{tail}")


SCENARIOS = ("polite", "throughput", "memory", "latency", "scale", "costs")
PLOT = HERE.parent / "docs" / "img" / "latency-bound.svg"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: small sizes, under 2 minutes")
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None)
    parser.add_argument(
        "--scale", type=int, default=None, help="neurons in scenario 6 (default 265,000; --quick 3,000)"
    )
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the JSON")
    parser.add_argument(
        "--plot", type=Path, default=None, help=f"scenario 5's SVG (full mode default: {PLOT})"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (git worktree) measured beside this one in the per-file cost table",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="store the table in benchmarks/README.md and docs/benchmarks.md",
    )
    args = parser.parse_args(argv)
    byte_compiled(HERE.parent / "src")
    if args.before is not None:
        byte_compiled(args.before.resolve() / "src")
    chosen = args.only or list(SCENARIOS)
    plot = args.plot or (None if args.quick else PLOT)
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}",
        "quick": args.quick,
        "aria2c": shutil.which("aria2c") is not None,
        "uvloop": have_uvloop(),
        "seconds": {},
    }
    runners: dict[str, Any] = {
        "polite": lambda: [scenario_polite(args.quick)],
        "throughput": lambda: scenario_throughput_and_rerun(args.quick),
        "memory": lambda: [scenario_memory(args.quick)],
        "latency": lambda: [scenario_latency(args.quick, plot)],
        "scale": lambda: [scenario_scale(args.quick, args.scale)],
        "costs": lambda: [scenario_costs(args.quick, args.before)],
    }
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    for name in SCENARIOS:
        if name in chosen:
            began = time.monotonic()
            results.extend(runners[name]())
            meta["seconds"][name] = round(time.monotonic() - began, 1)
            print(f"{name}: {meta['seconds'][name]} s", file=sys.stderr, flush=True)
    results.sort(key=lambda r: r["name"])
    meta["total_s"] = round(time.monotonic() - started, 1)
    table = markdown(results, meta)
    print(table)
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\nJSON: {args.json}  ({meta['total_s']} s)")
    if args.update_readme:
        update_between_markers(HERE / "README.md", table)
        update_between_markers(HERE.parent / "docs" / "benchmarks.md", table)
    if args.quick:  # a smoke test: everything ran and counted right; timings decide nothing
        return 0 if all(r["ok"] for r in results) else 1
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
