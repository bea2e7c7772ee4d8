"""Soak: a long mirror run against a server that misbehaves in every way we know of, at once.

Issue 10's acceptance benchmark (not a CI test: a real run over sockets whose figures are a record, not a
gate). One emulator serves ``--neurons`` neurons with every fault kind of the emulator (503, 429, 500,
reset, truncate, html200, html404, stall) at ``--fault-rate`` combined, plus the hostile switches
(trickle, short and long ``Content-Length``, endless and oversized bodies; issue 15's trickled headers,
unasked gzip cut short, 304 without validators, non-UTF-8 validators, header overflows, https-to-http
redirects and listings that stop short) at a low rate, each URL
misbehaving at most ``--fault-max-per-url`` times so that a client with enough retries can always win.
Our CLI mirrors ``--version both`` of every archive, up to ``--files`` files, and afterwards the script
checks what a user relies on:

* every file the server holds is in the tree byte for byte, or is listed in the report's failures;
* no file in the tree differs from the server's (a damaged body never reaches a final name);
* no ``.part`` file is left;
* the report's counts add up (downloaded + skipped + failed + not_started == total) and its exit code is
  the process's;
* peak RSS and the RSS curve (first vs last quarter of the run: flat means no growth with the run).

The expected bytes come from a second, fault-free copy of the same catalogue (same seed) built in this
process with the emulator's own library, so the check does not trust anything the faulty server said.

    python benchmarks/soak.py                 # 2,000 files, about 30 s here (23.7 s on 2026-11-30)
    python benchmarks/soak.py --files 400     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import cli, emulator, measure, rss_summary  # noqa: E402

from neuromorpho_fetch import Neuron, NoSuchFileError, Version  # noqa: E402
from neuromorpho_fetch.emulator import FAULT_KINDS as emulator_fault_kinds  # noqa: E402
from neuromorpho_fetch.emulator.catalogue import Catalogue  # noqa: E402
from neuromorpho_fetch.layout import relative_path  # noqa: E402

FAULT_KINDS = ",".join(emulator_fault_kinds)  # every kind the emulator has, from its one list


def hostile_switches(rate: float) -> str:
    """The hostile switches (issues 10 and 15) at ``rate`` each; streams bounded so one bad file costs
    seconds, not minutes."""
    return ",".join(
        [
            f"trickle={rate}",
            "trickle_interval_s=0.05",
            f"short_length={rate}",
            f"long_length={rate}",
            f"endless={rate}",
            f"oversized={rate}",
            "oversized_bytes=300000000",
            "stream_max_s=3",
            "stream_max_bytes=40000000",
            # issue 15: each recoverable on a later attempt (the second pass for a refused redirect)
            f"header_trickle={rate}",
            f"unasked_gzip={rate}",
            f"not_modified={rate}",
            f"bad_validators={rate}",
            f"header_overflow={rate}",
            f"redirect={rate}",
            "redirect_to=http",
            f"short_listing={rate}",
            "max_per_url=1",
        ]
    )


def expected_bytes(neurons: int, seed: int, file_kb: int) -> dict[int, dict[str, bytes]]:
    """Neuron id → relative path → the bytes a fault-free server holds (both versions), same seed."""
    cat = Catalogue(neurons, seed, file_kb=file_kb)
    by_id: dict[int, dict[str, bytes]] = {}
    for neuron_id in cat.neuron_ids():
        record = cat.record(neuron_id)
        if record is None:
            continue
        neuron = Neuron.from_record(record)
        files = by_id.setdefault(neuron_id, {})
        for version in (Version.CNG, Version.SOURCE):
            held = cat.file_for(neuron_id, version.value)
            try:
                rel = relative_path(neuron, version)
            except NoSuchFileError:
                continue
            if held is not None:
                files[rel.as_posix()] = held.body
    return by_id


def check_tree(out: Path, expected: dict[str, bytes], report: dict[str, Any]) -> dict[str, Any]:
    failed = {f["path"] for f in report.get("failures", []) if f.get("path")}
    present = wrong = missing_unreported = 0
    for rel, body in expected.items():
        path = out / rel
        if path.is_file():
            if path.read_bytes() == body:
                present += 1
            else:
                wrong += 1
        elif rel not in failed:
            missing_unreported += 1
    parts = sorted(str(p.relative_to(out)) for p in out.rglob("*.part"))
    counts = {k: report.get(k, 0) for k in ("downloaded", "skipped", "failed", "not_started", "files")}
    return {
        "present_identical": present,
        "present_wrong_bytes": wrong,
        "missing_and_unreported": missing_unreported,
        "reported_failed": len(failed),
        "part_files": parts,
        "counts": counts,
        "counts_add_up": counts["downloaded"] + counts["skipped"] + counts["failed"] + counts["not_started"]
        == counts["files"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="files to mirror (both versions)")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--hostile-rate", type=float, default=0.01)
    parser.add_argument("--fault-max-per-url", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)

    neurons = max(200, args.files)  # about 1 source + 1 CNG file per neuron; --limit trims the rest
    file_kb = 8
    t0 = time.perf_counter()
    expected = expected_bytes(neurons, args.seed, file_kb)
    emu_args = [
        *("--neurons", str(neurons), "--seed", str(args.seed), "--tls", "legacy-dh"),
        *("--file-kb", str(file_kb), "--faults", FAULT_KINDS, "--fault-rate", str(args.fault_rate)),
        *("--fault-max-per-url", str(args.fault_max_per_url), "--stall-ms", "1500", "--retry-after", "0"),
        *("--hostile", hostile_switches(args.hostile_rate)),
    ]
    with tempfile.TemporaryDirectory() as tmp, emulator(*emu_args) as emu:
        out = Path(tmp) / "mirror"
        report_path = Path(tmp) / "report.json"
        cmd = cli(
            emu,
            out,
            *("--all", "--version", "both", "--limit", str(args.files // 2)),
            *("--rate", "2000", "--concurrency", "16", "--retries", "8", "--retry-wait", "0.05"),
            *("--retry-after-max", "0.2", "--cool-down", "0.1", "--timeout", "2", "--header-timeout", "1"),
            *("--report", str(report_path)),
        )
        m = measure("soak", cmd, emu, sample_rss_s=0.25)
        stats = emu.stats()
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        check = check_tree(out, owed(out, expected), report)
    result = {
        "files_asked": args.files,
        "exit_code": m.exit_code,
        "report_exit_code": report.get("exit_code"),
        "wall_s": round(m.wall_s, 1),
        "cpu_s": round(m.cpu_s, 1),
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "rss": rss_summary(m.rss_mb),
        "faults_served": sum((stats.get("faults_by_kind") or {}).values()),
        "faults_by_kind": stats.get("faults_by_kind"),
        "file_requests": stats.get("file_requests"),
        "check": check,
        "setup_s": round(time.perf_counter() - t0 - m.wall_s, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = (
        check["present_wrong_bytes"] == 0
        and check["missing_and_unreported"] == 0
        and not check["part_files"]
        and check["counts_add_up"]
        and report.get("exit_code") == m.exit_code
    )
    print("soak:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def owed(out: Path, expected: dict[int, dict[str, bytes]]) -> dict[str, bytes]:
    """The files of the neurons this run listed (``--limit`` stops the listing early).

    The run's ``metadata.jsonl`` files name every neuron it listed; their files are what it owed.
    """
    files: dict[str, bytes] = {}
    for meta in out.glob("*/metadata.jsonl"):
        for line in meta.read_text(encoding="utf-8").splitlines():
            if line.strip():
                files.update(expected.get(int(json.loads(line)["neuron_id"]), {}))
    return files


if __name__ == "__main__":
    raise SystemExit(main())
