"""Issue 10 items 1, 6 (the run's part), 8 and 9: what the CLI says is what happened.

A crash never reports success; ``--max-duration`` is a hard bound; a full disk gets the right code and
advice; every planned file is in exactly one count however the run ends.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, HostileConfig, serve_in_thread
from neuromorpho_fetch.report import write_crash_log

from .conftest import (
    ARCHIVE,
    assert_counts_add_up,
    assert_one_line,
    base_args,
    part_files,
    read_report,
    run_cli,
    stderr_lines,
    subprocess_env,
)

#: Runs the CLI with one bug injected: ``plan_file`` raises. Fault injection, not a mock: everything
#: else (listing, state, report, the CLI's error path) is the real code against the real emulator.
CRASH = textwrap.dedent(
    """
    import importlib
    import sys

    plan = importlib.import_module("neuromorpho_fetch.mirror.plan")

    def plan_file(*args, **kwargs):
        raise RuntimeError("injected bug")

    plan.plan_file = plan_file
    from neuromorpho_fetch.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.system
def test_a_crash_is_one_line_exit_3_and_the_report_says_so(plain: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    args = base_args(plain, out, "--archive", ARCHIVE, "--report", str(report))
    done = subprocess.run(
        [sys.executable, "-c", CRASH, *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 3
    line = assert_one_line(done.stderr, "internal error: RuntimeError: injected bug", "crash-")
    crash_log = Path(line.split("the full traceback is in ", 1)[1].split(" (please report it)")[0])
    assert crash_log.parent == out / ".neuromorpho-fetch"
    assert "Traceback" in crash_log.read_text() and "injected bug" in crash_log.read_text()
    for path in (report, out / ".neuromorpho-fetch" / "last-report.json"):
        data = read_report(path)
        assert data["exit_code"] == 3
        assert data["internal_error"] is True
        assert "injected bug" in data["error"]
        assert data["crash_log"] == str(crash_log)


@pytest.mark.timeout(60)
@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
def test_max_duration_is_a_hard_bound_on_a_trickling_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file trickles a byte every 0.5 s: ``--max-duration 3s`` ends the run (the grace is 0.3 s),
    cancels what is in flight, leaves no ``.part``, exits 1 and says so. Bounded by the timeout mark."""
    hostile = HostileConfig(trickle=1.0, trickle_interval_s=0.5, stream_max_s=60)
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4, hostile=hostile)
    with serve_in_thread(config) as emu:
        out = tmp_path / "out"
        report = tmp_path / "report.json"
        args = base_args(emu, out, "--archive", ARCHIVE, "--max-duration", "3s", "--report", str(report))
        result = run_cli(args, capsys)
    assert result.code == 1
    assert "Traceback" not in result.err
    data = read_report(report)
    assert data["exit_code"] == 1
    assert data["stopped_by_deadline"] is True
    assert data["downloaded"] == 0 and data["not_started"] >= 1
    assert_counts_add_up(data)
    assert part_files(out) == []
    assert "stopped by --max-duration" in result.out


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (tmpfs; the tests run as root in the sandbox)."""
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_disk_full_mid_run_exits_1_and_every_file_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1 MiB file system and 64 KiB files: the disk fills mid-run. Issue 10 found 458 of 499 files in
    no count; now downloaded + skipped + failed + not_started == files, and the report agrees."""
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=64)
    with serve_in_thread(config) as emu, small_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "out"
        report = tmp_path / "report.json"
        result = run_cli(base_args(emu, out, "--all", "--report", str(report)), capsys)
        assert result.code == 1
        assert "Traceback" not in result.err
        errors = [ln for ln in stderr_lines(result.err) if "neuromorpho-fetch: error:" in ln]
        # Whichever write the disk refuses first (a file's or the state store's commit) says so.
        assert len(errors) == 1 and "the disk is full" in errors[0], result.err
        data = read_report(report)
        assert data["exit_code"] == 1 and "the disk is full" in data["error"]
        assert data["downloaded"] >= 1 and data["not_started"] >= 1
        assert_counts_add_up(data)
        assert part_files(out) == []


def test_disk_full_at_start_is_exit_2_with_advice_that_fits(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        out = disk / "out"
        (out / ".neuromorpho-fetch").mkdir(parents=True)
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        result = run_cli(base_args(plain, out, "--archive", ARCHIVE), capsys)
    assert result.code == 2
    line = assert_one_line(result.err, "full")
    assert "move it aside" not in line
    assert plain.stats()["file_requests"] == 0


def test_second_pass_is_announced_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10 item 9: "N files failed; trying them once more" was logged twice."""
    config = EmulatorConfig(
        neurons=400,
        seed=7,
        tls="none",
        file_kb=4,
        fault_rate=0.5,
        faults=("503",),
        fault_max_per_url=1,
        fault_scope="files",
    )
    with serve_in_thread(config) as emu:
        result = run_cli(base_args(emu, tmp_path / "out", "--archive", ARCHIVE, "--retries", "0"), capsys)
    assert result.code == 0
    assert result.err.count("trying them once more") == 1


def test_report_json_equals_the_process_outcome(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    result = run_cli(
        base_args(plain, tmp_path / "out", "--archive", ARCHIVE, "--report", str(report)), capsys
    )
    data = read_report(report)
    assert data["exit_code"] == result.code == 0
    assert json.loads((tmp_path / "out" / ".neuromorpho-fetch" / "last-report.json").read_text()) == data
    assert_counts_add_up(data)


def test_a_crash_log_falls_back_to_the_temp_folder(tmp_path: Path) -> None:
    """The state folder may be the problem: the traceback then goes to the system's temp folder."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    try:
        raise RuntimeError("injected bug")
    except RuntimeError as exc:
        path = write_crash_log(blocker / ".neuromorpho-fetch", exc)
    try:
        assert path.parent == Path(tempfile.gettempdir())
        assert "RuntimeError: injected bug" in path.read_text()
    finally:
        path.unlink()
