"""Where the CLI's CPU (or memory) goes in one benchmark setting, summarised per file.

    python benchmarks/profile_cli.py throughput [--files 3000]      # scenario 2: no latency, 32 in flight
    python benchmarks/profile_cli.py latency [--files 1200]         # scenario 5: 50 ms, 16 in flight
    python benchmarks/profile_cli.py rerun [--files 20000]          # scenario 6's no-change re-run
    python benchmarks/profile_cli.py growth [--files 10000]         # scenario 6: what the heap gains
    ... [--uvloop] [--keep DIR]

The CPU modes run ``python -m neuromorpho_fetch`` under ``py-spy record`` (sampling, all threads, idle
excluded, so a sample is a moment some thread was on the CPU or holding the GIL) and print, per file:
the milliseconds a thread held the GIL (``--gil``: Python running; C work that releases the GIL, such as
fsync or hashing a large buffer, is not counted), the top leaf frames ("self" time, with line numbers),
the package functions that were on the stack ("inclusive", each counted once per sample), and the event
loop's share against the worker threads'. ``growth`` runs the CLI
with tracemalloc on and prints the allocation sites that grew most between a quarter of the way
through the run and its end. Ratios within one profile hold on a busy machine; absolute times do not.
The raw py-spy output (collapsed stacks, ``flamegraph.pl``-ready) is kept with ``--keep``.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import LATENCY_EMULATOR, PY, cli, emulator, measure

RATE_HZ = 250
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
LOOP_MARK = "run_cli_mirror"  # a frame only the event-loop (main) thread has (the CLI's run)

SETTINGS = {
    "throughput": (("--file-kb", "20", "--tls", "modern"), ["--concurrency", "32"], 3000),
    "latency": (LATENCY_EMULATOR, ["--concurrency", "16"], 1200),
    "rerun": (("--file-kb", "2", "--tls", "none"), ["--concurrency", "32"], 20000),
    "growth": (("--file-kb", "2", "--tls", "none"), ["--concurrency", "32"], 10000),
}

GROWTH = """
import atexit, runpy, sys, threading, time, tracemalloc
tracemalloc.start(8)
marks = {}
def watch():
    time.sleep(float(sys.argv.pop(1)))
    marks["first"] = tracemalloc.take_snapshot()
    while True:
        time.sleep(2)
        marks["last"] = tracemalloc.take_snapshot()
threading.Thread(target=watch, daemon=True).start()
def report():
    if "last" not in marks:
        return print("run too short for two snapshots", file=sys.stderr)
    diff = marks["last"].compare_to(marks["first"], "traceback")
    print("heap growth between the snapshots, top sites:", file=sys.stderr)
    for stat in diff[:12]:
        print(f"{stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+9d} blocks", file=sys.stderr)
        for line in stat.traceback.format()[-6:]:
            print("      " + line, file=sys.stderr)
atexit.register(report)
runpy.run_module("neuromorpho_fetch", run_name="__main__", alter_sys=True)
"""


def label(frame: str, line: bool = False) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    short = path.split("site-packages/")[-1].split("/src/")[-1].split("lib/python3")[-1]
    where = short.lstrip(".0123456789/") + (frame[frame.rindex(":") : -1] if line and ":" in frame else "")
    return f"{m['func']} ({where})"


def summarise(raw: Path, files: int, top: int) -> None:
    leaf: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")[1:]  # --threads: the first "frame" names the thread
        total += n
        loop = any(LOOP_MARK in f for f in frames)
        threads["event loop (main thread)" if loop else "other threads (to_thread, executor)"] += n
        if frames:
            leaf[label(frames[-1], line=True)] += n
        for name in {label(f) for f in frames if "neuromorpho_fetch" in f}:
            inclusive[name] += n

    def ms(n: int) -> str:
        return f"{1000 * n / RATE_HZ / files:6.3f} ms/file {100 * n / total:5.1f}%"

    print(f"\n{total} samples at {RATE_HZ} Hz over {files} files: {ms(total)} holding the GIL")
    print("\nthreads:")
    for name, n in threads.most_common(4):
        print(f"  {ms(n)}  {name}")
    print(f"\ntop {top} leaf frames (self):")
    for name, n in leaf.most_common(top):
        print(f"  {ms(n)}  {name}")
    print(f"\ntop {top} package functions on the stack (inclusive):")
    for name, n in inclusive.most_common(top):
        print(f"  {ms(n)}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", choices=sorted(SETTINGS))
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--uvloop", action="store_true", help="the CLI on uvloop (--loop uvloop)")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="copy the raw py-spy output here")
    args = parser.parse_args()
    emu_args, conc, default_files = SETTINGS[args.setting]
    files = args.files or default_files
    if args.setting != "growth" and shutil.which("py-spy") is None:
        raise SystemExit("py-spy not found: pip install -e '.[bench]'")
    with emulator("--neurons", str(files), *emu_args) as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        opts = ["--all", *conc, "--rate", "100000"]
        if args.setting == "rerun":
            measure("complete mirror first", cli(emu, root / "out", *opts), emu)
        command = cli(emu, root / "out", *opts, uvloop=args.uvloop)
        if args.setting == "growth":
            warm = str(max(2.0, files / 2000))  # about a quarter of the run at ~500 files/s
            m = measure(
                "CLI under tracemalloc",
                [PY, "-c", GROWTH, warm, *command[command.index("--base-url") :]],
                emu,
            )
            print(f"{m.label}: {m.wall_s:.1f} s, exit {m.exit_code}, {m.file_requests} file requests")
            return m.exit_code
        raw = root / "pyspy.txt"
        # --gil: only samples where a thread holds the GIL, i.e. runs Python (py-spy's idle detection
        # counts threads blocked in a queue or in fsync as busy on these VMs).
        spy = ["py-spy", "record", "--format", "raw", "--threads", "--gil", "--rate", str(RATE_HZ)]
        spy += ["-o", str(raw)]
        m = measure("CLI under py-spy", [*spy, "--", *command], emu, stderr=subprocess.DEVNULL)
        print(
            f"{args.setting}{' (uvloop)' if args.uvloop else ''}: {files} neurons, {m.wall_s:.2f} s wall, "
            f"{1000 * m.cpu_s / files:.3f} CPU ms/file (wait4: CLI + py-spy), "
            f"{m.file_requests} file requests, exit {m.exit_code}"
        )
        summarise(raw, files, args.top)
        if args.keep is not None:
            shutil.copy(raw, args.keep)
    return m.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
