"""Two versions of the CLI side by side, in the same run: scenarios 2 and 5, ratios of medians.

    python benchmarks/ab.py --before /path/to/old/checkout [--after /other/checkout] [--rounds 3]
                            [--only throughput|latency]

``--before`` is another checkout of this project (``git worktree add --detach DIR <commit>``); its
``src`` is put first on ``PYTHONPATH`` for the "before" runs, this checkout's for the "after" runs. Both
hit the same emulator (this checkout's, even with ``--after``, which compares two other checkouts, for
example the commits before and after one change), take turns (the order alternates each round) into fresh
folders, and the median round of each is compared: wall, CPU per file, and the ratio after/before. A
ratio is what carries across machines and across a busy machine's moods; absolute times do not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import LATENCY_EMULATOR, PY, byte_compiled, emulator, loop_args, measure

HERE = Path(__file__).resolve().parents[1]

SCENARIOS = {
    # name: (emulator flags, CLI flags, files)
    "throughput": (("--file-kb", "20", "--tls", "modern"), ["--concurrency", "32", "--rate", "100000"], 5000),
    "latency": (LATENCY_EMULATOR, ["--concurrency", "16", "--rate", "100000"], 1200),
}


def command(base_url: str, ca: str | None, out: Path, extra: list[str], src: Path) -> list[str]:
    """The CLI of the tree at ``src``, on asyncio's own loop (:func:`run.loop_args`)."""
    args = [PY, "-m", "neuromorpho_fetch", "--base-url", base_url, "--out", str(out), "--no-progress", "-q"]
    loop = loop_args(src)
    return [*args, *loop, *(["--ca-file", ca] if ca else []), "--all", *extra]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=HERE, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS))
    parser.add_argument("--concurrency", type=int, help="instead of the scenario's own")
    parser.add_argument("--files", type=int, help="instead of the scenario's own")
    args = parser.parse_args()
    trees = {
        label: byte_compiled(tree.resolve() / "src")
        for label, tree in (("before", args.before), ("after", args.after))
    }
    for name in args.only or list(SCENARIOS):
        emu_flags, extra, files = SCENARIOS[name]
        if args.concurrency is not None:
            extra = [*extra[:1], str(args.concurrency), *extra[2:]]
        files = args.files or files
        with (
            emulator("--neurons", str(files), *emu_flags, warm=True) as emu,
            tempfile.TemporaryDirectory() as tmp,
        ):
            runs: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
            for i in range(args.rounds):
                order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
                for label in order:
                    env = {**os.environ, "PYTHONPATH": str(trees[label])}
                    out = Path(tmp) / f"{label}{i}"
                    cmd = command(emu.base_url, emu.ca_file, out, extra, trees[label])
                    m = measure(label, cmd, emu, env=env)
                    assert m.exit_code == 0 and m.file_requests == files, (label, m)
                    runs[label].append((m.wall_s, m.cpu_s))
            med = {
                k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                for k, v in runs.items()
            }
            (bw, bc), (aw, ac) = med["before"], med["after"]
            print(f"{name}: {files} files, {args.rounds} rounds")
            for label, (w, c) in med.items():
                walls = ", ".join(f"{x:.2f}" for x, _ in runs[label])
                rate, per_file = files / w, 1000 * c / files
                print(
                    f"  {label:6} wall {w:6.2f} s ({rate:6.1f} files/s) CPU {per_file:5.2f} ms/file [{walls}]"
                )
            print(f"  after/before: wall {aw / bw:.3f}, CPU {ac / bc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
