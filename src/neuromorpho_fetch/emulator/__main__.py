"""``python -m neuromorpho_fetch.emulator``: the emulator as a process, for scripts and benchmarks.

The flag names are a contract (benchmarks and other people's CI call them). Once the server accepts
connections it prints the base URL (and the CA file), and with ``--ready-file`` writes
``{"base_url", "ca_file", "http_url", "pid"}`` atomically, so a parent can poll for the file instead of
parsing output. SIGINT and SIGTERM stop it cleanly; a bad flag is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from .._argparse import OneLineParser
from ._config import (
    FAULT_KINDS,
    MAX_PAGE_SIZE,
    BatchSelect,
    EmulatorConfig,
    FaultScope,
    FileOddities,
    HostileConfig,
    JspMode,
    NoHits,
    Oversize,
    PastLast,
    PathCase,
    TLSMode,
    UnquotedWords,
)
from .hostile import parse_hostile
from .runner import Emulator, run_emulator


def _fault_list(text: str) -> tuple[str, ...]:
    """Comma-separated kinds; EmulatorConfig rejects an unknown one (one line, exit 2, like every flag)."""
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _hostile(text: str) -> HostileConfig:
    """``name=value,...`` of HostileConfig fields; a problem becomes argparse's one-line error."""
    try:
        return parse_hostile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> OneLineParser:
    p = OneLineParser(prog="python -m neuromorpho_fetch.emulator", description="An offline NeuroMorpho.Org.")
    add = p.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=8443, help="port; 0 = any free port (default 8443)")
    add("--neurons", type=int, default=2000, help="catalogue size (default 2000)")
    add("--seed", type=int, default=7, help="seed of the catalogue and of every fault (default 7)")
    add("--tls", choices=get_args(TLSMode), default="legacy-dh", help="default legacy-dh")
    add("--redirect-http", action="store_true", help="also listen on plain HTTP and 301 to HTTPS")
    add("--compare", type=Path, metavar="FILE", help="print how a --doctor --record FILE differs from this")
    add("--ready-file", type=Path, help="write {base_url, ca_file, http_url, pid} JSON here once serving")
    add("--latency-ms", type=float, default=0.0, help="added to every response")
    add("--jitter-ms", type=float, default=0.0, help="uniform random extra latency, up to this")
    add("--bandwidth-kbps", type=float, default=0.0, help="KiB/s per connection (0 = unlimited)")
    add("--max-in-flight", type=int, default=0, help="beyond this many concurrent requests: 503 (0 = off)")
    add("--fault-rate", type=float, default=0.0, help="share of requests that get a fault (0..1)")
    add("--faults", type=_fault_list, default=FAULT_KINDS, help=f"fault kinds: {','.join(FAULT_KINDS)}")
    add("--fault-max-per-url", type=int, default=3, help="a URL sees at most this many faults (default 3)")
    add("--fault-scope", choices=get_args(FaultScope), default="all", help="which routes fault")
    add("--missing-rate", type=float, default=0.0, help="share of files that 404 for good (0..1)")
    add("--stall-ms", type=float, default=30000.0, help="how long a 'stall' fault sends nothing")
    add("--retry-after", type=int, default=1, dest="retry_after_s", help="Retry-After of 503/429 (s)")
    add(
        "--max-page-size",
        type=int,
        default=MAX_PAGE_SIZE,
        help=f"largest page (default {MAX_PAGE_SIZE}, as real)",
    )
    add("--oversize", choices=get_args(Oversize), default="clamp", help="page size above the largest")
    add("--no-hits", choices=get_args(NoHits), default="404", help="select with no match")
    add("--past-last", choices=get_args(PastLast), default="empty", help="page past the last one")
    add("--path-case", choices=get_args(PathCase), default="sensitive", help="/dableFiles paths")
    add("--jsp", choices=get_args(JspMode), default="page", help="neuron_info.jsp: HTML page or 403")
    add("--empty-selects", action="store_true", help="health says UP but selects find nothing")
    add("--page-links", action="store_true", help="pages carry the documented first/self/next/last _links")
    add(
        "--batch-select",
        choices=get_args(BatchSelect),
        default="ok",
        help="/api/morphometry/select and /api/pvec/select: answer, or refuse with 400 or 404",
    )
    add(
        "--unquoted-words",
        choices=get_args(UnquotedWords),
        default="last-word",
        help="an unquoted value with spaces: only its last word counts, or each word OR-ed",
    )
    add("--shape-drift", action="store_true", help="pages in another shape: an API that changed (--doctor)")
    add("--hostile-names", action="store_true", help="neuron names with /, %%, #, + and such")
    add("--file-kb", type=float, default=None, help="make every morphology file about this size")
    add(
        "--file-cache-mb",
        type=float,
        default=32.0,
        help="prepared file responses kept in memory (benchmarks: enough for every file, then warm up)",
    )
    add(
        "--latin1-rate",
        type=float,
        default=0.0,
        help="share of real archives' CNG files with a Latin-1 header line",
    )
    add("--type0-rate", type=float, default=0.0, help="share of files whose last section has SWC type 0")
    add("--soma-off-rate", type=float, default=0.0, help="share of files whose three-point soma is a bit off")
    add(
        "--hostile",
        type=_hostile,
        default=HostileConfig(),
        help="issue 10 switches, e.g. trickle=1,paths=swc$",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, Path | None]:
    """Flags to a validated config; exits 2 with one line on any problem."""
    config, ready_file, _compare = _parse(argv)
    return config, ready_file


def _parse(argv: Sequence[str] | None) -> tuple[EmulatorConfig, Path | None, Path | None]:
    parser = _parser()
    args = vars(parser.parse_args(argv))
    ready_file, compare_file = args.pop("ready_file"), args.pop("compare")
    try:
        rates = {k: args.pop(k) for k in ("latin1_rate", "type0_rate", "soma_off_rate")}
        config = EmulatorConfig(**args, oddities=FileOddities(**rates))
    except ValueError as exc:
        parser.error(str(exc))
    return config, ready_file, compare_file


def _write_ready(path: Path, emu: Emulator) -> None:
    """Write-then-rename, so a poller never reads half a file."""
    info = {"base_url": emu.base_url, "ca_file": emu.ca_file, "http_url": emu.http_url, "pid": os.getpid()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    tmp.replace(path)


async def _serve(config: EmulatorConfig, ready_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_emulator(config) as emu:
        lines = [f"NeuroMorpho.Org emulator serving {len(emu.catalogue)} neurons at {emu.base_url}"]
        if emu.ca_file:
            lines.append(f"CA file: {emu.ca_file}")
        if config.redirect_http and emu.http_url:
            lines.append(f"HTTP redirect: {emu.http_url}")
        print("\n".join(lines), flush=True)
        if ready_file is not None:
            await asyncio.to_thread(_write_ready, ready_file, emu)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    config, ready_file, compare_file = _parse(argv)
    if compare_file is not None:  # the emulator's answers against a --doctor recording (compare.py)
        from .compare import compare

        return asyncio.run(compare(compare_file, config))
    try:
        asyncio.run(_serve(config, ready_file))
    except (OSError, RuntimeError) as exc:  # port in use, trustme missing
        print(f"neuromorpho_fetch.emulator: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if ready_file is not None:
            with contextlib.suppress(OSError):
                ready_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
