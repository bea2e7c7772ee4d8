"""Issue 15 items 3, 4, 11, 13 and 14 through the CLI: the output folder is ours alone, with real files,
real links, a real full file system, real SQLite connections held by another process and real signals.

Every test plants the sentinel folder next to ``--out`` (``outside``) and proves it unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import CatalogueChanges, Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.sqlitedb import BUSY_TIMEOUT_S

from .conftest import (
    ARCHIVE,
    assert_counts_add_up,
    assert_one_line,
    base_args,
    data_files,
    expected_files,
    loud_lines,
    outside,
    part_files,
    read_report,
    run_checked,
    run_cli,
    spawn,
)
from .test_cli_honesty import small_disk

pytestmark = pytest.mark.system  # real files systems, processes, signals and sockets

STATE = ".neuromorpho-fetch"


def _archive_folder(out: Path) -> Path:
    return next(p for p in out.iterdir() if p.is_dir() and p.name.lower() == ARCHIVE.lower())


# -- item 3: the report's exit code is the process's -------------------------------------------------


def test_after_a_tls_failure_the_report_says_the_processs_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A private CA the client was not told about: exit 2, one line, and the report says 2 too."""
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="modern", file_kb=4)) as server:
        out = tmp_path / "m"
        report = tmp_path / "m.json"
        before = outside(out, report)
        args = ["--base-url", server.base_url, "--out", str(out), "--no-progress", "--report", str(report)]
        result = run_cli([*args, "--archive", ARCHIVE], capsys)
    assert result.code == 2
    assert_one_line(result.err, "certificate")
    data = read_report(report)
    assert data["exit_code"] == 2
    assert_counts_add_up(data)
    assert outside(out, report) == before


# -- item 4: an existing mirror on a full disk -------------------------------------------------------


def test_an_existing_mirror_on_a_full_disk_is_exit_2_with_the_disk_advice(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole mirror on a 2 MiB file system, then the disk filled by someone else: the next run says
    the disk is full (exit 2), not "state store could not be written" (exit 1), and loses nothing."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        out = disk / "out"
        result = run_cli([*base_args(plain, out), "--archive", ARCHIVE], capsys)
        assert result.code == 0, result.err
        held = data_files(out)
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        result = run_cli([*base_args(plain, out, "--refresh"), "--archive", ARCHIVE], capsys)
        assert result.code == 2, result.err
        line = assert_one_line(result.err, "full")
        assert "state store could not be written" not in line and "move it aside" not in line
        assert data_files(out) == held
        assert not part_files(out)


# -- item 11: links planted in the tree --------------------------------------------------------------


def test_a_lock_file_planted_as_a_link_is_never_written_through(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    before = outside(out)  # plants the sentinel folder
    (out / STATE).mkdir(parents=True)
    target = tmp_path / "sentinel" / "keep.txt"
    (out / STATE / "lock").symlink_to(target)
    result = run_cli([*base_args(plain, out), "--archive", ARCHIVE], capsys)
    assert result.code == 2
    assert_one_line(result.err, "link")
    assert outside(out) == before  # the target was not truncated nor given our pid
    assert plain.stats()["file_requests"] == 0


def test_delete_gone_never_deletes_through_an_archive_folder_that_is_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole mirror; the user moves the archive's folder elsewhere and leaves a link in its place;
    upstream removes a neuron; ``--delete-gone``: nothing in the link's target is deleted or written."""
    out = tmp_path / "m"
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4)
    with serve_in_thread(config) as server:
        code, _, _ = run_checked(server, out, capsys)
        assert code == 0
    folder = _archive_folder(out)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)
    moved = {p.relative_to(elsewhere).as_posix(): p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()}
    assert moved
    ids = [int(str(n["neuron_id"])) for n in _records(elsewhere)]
    changes = CatalogueChanges(remove=(ids[2],))
    with serve_in_thread(dataclasses.replace(config, catalogue_changes=changes)) as changed:
        report = tmp_path / "m.json"
        result = run_cli(
            [*base_args(changed, out, "--report", str(report), "--delete-gone"), "--archive", ARCHIVE], capsys
        )
    assert "Traceback" not in result.err
    assert read_report(report)["exit_code"] == result.code
    after = {p.relative_to(elsewhere).as_posix(): p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()}
    assert after == moved  # nothing deleted, truncated or rewritten through the link
    assert folder.is_symlink()


def _records(folder: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines() if x]


# -- item 13: a database held by another program -----------------------------------------------------

HOLD = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[3] == "read":  # a read transaction left open, as a notebook or a sqlite3 shell leaves it
        conn.execute("BEGIN")
        conn.execute("SELECT * FROM sqlite_master").fetchall()
    else:
        conn.execute("BEGIN EXCLUSIVE")
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


@contextlib.contextmanager
def held(path: Path, seconds: float, how: str = "exclusive") -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``path`` in an exclusive or a read transaction (a ``sqlite3`` shell, a
    notebook)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds), how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("state.sqlite", "exclusive"),
        ("state.sqlite", "read"),
        ("catalogue.sqlite", "exclusive"),
        ("catalogue.sqlite", "read"),
    ],
)
def test_a_database_held_by_another_process_is_busy_not_corrupt(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, how: str
) -> None:
    """A whole mirror, then its state store or catalogue held by another process: after the bounded
    wait the run stops that step with one line saying it is locked; the database is never moved aside
    nor rebuilt, and the next run (the holder gone) works. A reader of the state store (a WAL
    database: readers never block the writer) is no obstacle at all."""
    out = tmp_path / "m"
    code, _, _ = run_checked(plain, out, capsys)
    assert code == 0
    db = next(out.rglob(name))
    siblings = sorted(p.name for p in db.parent.iterdir())
    lost = next(iter(sorted(data_files(out))))
    (out / lost).unlink()  # one file to fetch again, so the run needs the dataset step too
    with held(db, 4 * BUSY_TIMEOUT_S, how):
        code, err, report = run_checked(plain, out, capsys)
    if (name, how) == ("state.sqlite", "read"):
        assert code == 0 and loud_lines(err) == [], err
        assert report["downloaded"] == 1 and not report["dataset"]["rebuilt"]
    else:
        line = assert_one_line(err, "locked by another program", db.name)
        assert "corrupt" not in line
    if name == "state.sqlite" and how == "exclusive":  # cannot start: exit 2, its own report written
        assert code == 2 and report["files"] == 0
    elif name == "catalogue.sqlite":  # every file is there; the dataset step failed, says so, exits 1
        assert code == 1 and report["exit_code"] == 1 and "locked" in report["dataset"]["error"]
        assert report["failed"] == 0
    sidecars = ("-wal", "-shm", "-journal")  # the holder's own: SQLite's files beside a database
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.endswith(sidecars)) == siblings
    assert not [p for p in db.parent.iterdir() if "corrupt" in p.name or "damaged" in p.name]
    code, _, _ = run_checked(plain, out, capsys)
    assert code == 0
    assert data_files(out) == expected_files(plain, ARCHIVE)


# -- item 14: SIGHUP -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def throttled() -> Iterator[Emulator]:
    """Slow enough to be caught mid-run: 16 KiB files at 128 KiB/s per connection."""
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=16, bandwidth_kbps=128)
    with serve_in_thread(config) as server:
        yield server


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_ends_a_run_like_sigterm_with_its_own_report(
    throttled: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], sig: signal.Signals
) -> None:
    """A finished run leaves ``exit_code: 0`` in the report; the next run, caught mid-way by the
    signal, overwrites it with its own (interrupted, 130), counts that add up, and no ``.part``."""
    out = tmp_path / "m"
    report = tmp_path / "m.json"
    first = run_cli([*base_args(throttled, out, "--report", str(report)), "--archive", ARCHIVE], capsys)
    assert first.code == 0 and read_report(report)["exit_code"] == 0
    before = outside(out, report)
    proc = spawn([*base_args(throttled, out, "--concurrency", "2", "--report", str(report)), "--all"])
    deadline = time.monotonic() + 30
    start = len(data_files(out))
    while len(data_files(out)) < start + 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    _stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = read_report(report)
    assert data["exit_code"] == 130 and data["interrupted"]
    assert_counts_add_up(data)
    assert not part_files(out)
    assert outside(out, report) == before
