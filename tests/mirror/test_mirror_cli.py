"""Every flag and every bad-input case of the mirror command, against the emulator over TLS."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.layout import relative_path
from neuromorpho_fetch.lock import DirLock
from neuromorpho_fetch.models import Version
from neuromorpho_fetch.state import StateStore

from .conftest import (
    DATASET_FILES,
    archive_neurons,
    base_args,
    data_files,
    expected_files,
    held_files,
    part_files,
    run_cli,
    spawn,
    tree,
)

ARCHIVE = "Siegert"


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("neuromorpho-fetch: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture
def mirrored(server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "m"
    assert run_cli([*base_args(server, out), "--archive", ARCHIVE], capsys).code == 0
    server.reset()
    return out


def test_dry_run_writes_nothing_and_makes_no_file_requests(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fresh"
    result = run_cli([*base_args(server, out, "--dry-run"), "--archive", ARCHIVE], capsys)
    assert result.code == 0, result.err
    n = len(expected_files(server, ARCHIVE))
    assert f"would download {n}, would skip 0" in result.out
    assert not out.exists()
    assert server.stats()["file_requests"] == 0


def test_dry_run_on_a_partial_mirror_counts_what_is_left(
    mirrored: Path, server: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    files = held_files(mirrored / "siegert" / "CNG")
    for path in files[:3]:
        path.unlink()
    before = {p: p.stat().st_mtime_ns for p in mirrored.rglob("*")}
    report = mirrored.parent / "dry.json"
    result = run_cli(
        [*base_args(server, mirrored, "--dry-run", "--report", str(report)), "--archive", ARCHIVE], capsys
    )
    assert result.code == 0, result.err
    assert f"would download 3, would skip {len(files) - 3}" in result.out
    assert server.stats()["file_requests"] == 0
    assert {p: p.stat().st_mtime_ns for p in mirrored.rglob("*")} == before  # nothing written in --out
    assert json.loads(report.read_text())["dry_run"] is True


def test_verify_refetches_a_damaged_file_and_records_it(
    mirrored: Path, server: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = sorted((mirrored / "siegert" / "CNG").iterdir())[5]
    data = bytearray(victim.read_bytes())
    data[-2] ^= 0x01  # same size, different bytes: only a hash can tell
    victim.write_bytes(bytes(data))
    report = mirrored.parent / "v.json"
    plain = run_cli([*base_args(server, mirrored), "--archive", ARCHIVE], capsys)
    assert plain.code == 0 and server.stats()["file_requests"] == 0  # without --verify: trusted
    result = run_cli(
        [*base_args(server, mirrored, "--verify", "--report", str(report)), "--archive", ARCHIVE], capsys
    )
    assert result.code == 0, result.err
    assert server.stats()["file_requests"] == 1
    rel = victim.relative_to(mirrored).as_posix()
    assert json.loads(report.read_text())["damaged"] == [rel]
    assert data_files(mirrored) == expected_files(server, ARCHIVE)
    assert "damaged" in result.err or "damaged" in result.out


def test_refresh_revalidates_with_conditional_requests(
    mirrored: Path, server: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    files = held_files(mirrored / "siegert" / "CNG")
    inodes = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    result = run_cli([*base_args(server, mirrored, "--refresh"), "--archive", ARCHIVE], capsys)
    assert result.code == 0, result.err
    stats = server.stats()
    assert stats["file_requests"] == len(files)
    assert stats["by_status"].get("304") == len(files)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == inodes  # nothing rewritten
    assert f"{len(files)} unchanged upstream (304)" in result.out
    # A file whose recorded validators no longer match upstream is fetched again.
    store = StateStore(mirrored / ".neuromorpho-fetch" / "state.sqlite")
    rel = files[0].relative_to(mirrored).as_posix()
    store.conn.execute("UPDATE files SET etag='\"stale\"', last_modified=NULL WHERE path=?", (rel,))
    store.close()
    server.reset()
    again = run_cli([*base_args(server, mirrored, "--refresh"), "--archive", ARCHIVE], capsys)
    assert again.code == 0
    assert server.stats()["by_status"] == {"200": 1 + 3, "304": len(files) - 1}  # +3 API requests
    assert files[0].stat().st_ino != inodes[files[0]][0]
    assert data_files(mirrored) == expected_files(server, ARCHIVE)


def test_list_archives(server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli([*base_args(server, tmp_path / "unused"), "--list-archives"], capsys)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    catalogue = server.catalogue.archives()
    for name, count in catalogue:
        assert any(line.startswith(name) and line.split()[-1] == str(count) for line in lines), name
    assert lines[-1] == f"{len(catalogue)} archives, {sum(c for _, c in catalogue)} neurons"
    assert not (tmp_path / "unused").exists()


@pytest.mark.system  # a real process: the command's own exit (cli.console_main)
def test_the_command_leaves_its_output_and_exit_code(server: Emulator, tmp_path: Path) -> None:
    """The command's exit (``gc.freeze()`` first, cli.console_main): what it wrote to a pipe is all
    there, and the exit code is the run's, a usage error's included."""
    listed = spawn([*base_args(server, tmp_path / "unused"), "--list-archives"])
    out, err = listed.communicate(timeout=60)
    catalogue = server.catalogue.archives()
    assert listed.returncode == 0, err
    assert out.splitlines()[-1] == f"{len(catalogue)} archives, {sum(c for _, c in catalogue)} neurons"
    bad = spawn([*base_args(server, tmp_path / "m"), "--archive", ARCHIVE, "--rate", "-1"])
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and one_line_error(err)
    mirrored = spawn([*base_args(server, tmp_path / "m"), "--archive", ARCHIVE, "--limit", "3"])
    out, err = mirrored.communicate(timeout=60)
    assert mirrored.returncode == 0, err
    report = json.loads((tmp_path / "m" / ".neuromorpho-fetch" / "last-report.json").read_text())
    assert report["downloaded"] == 3 and out.strip()


def test_limit_and_query_and_extra_versions(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    args = [
        *base_args(server, out, "--version", "BOTH", "--with-logs", "--with-images", "--with-morphometry")
    ]
    result = run_cli([*args, "--archive", ARCHIVE, "--limit", "4"], capsys)
    assert result.code == 0, result.out + result.err
    folders = {p.name: len(held_files(p)) for p in (out / "siegert").iterdir() if p.is_dir()}
    assert folders.keys() <= {"CNG", "source", "remaining-issues", "standardization-log", "images"}
    assert folders["CNG"] == 4 and folders["remaining-issues"] == 4 and "images" in folders
    assert len((out / "siegert" / "metadata.jsonl").read_text().splitlines()) == 4
    morph = [json.loads(line) for line in (out / "siegert" / "morphometry.jsonl").read_text().splitlines()]
    assert len(morph) == 4 and all("n_bifs" in m or "neuron_id" in m for m in morph)
    # --archive with --query: both must hold. Every Siegert neuron is a mouse, but their age classes
    # split the archive, so an ignored --query would fetch too much.
    neurons = archive_neurons(server, ARCHIVE)
    wanted = {
        relative_path(n, Version.CNG).as_posix() for n in neurons if n.record["age_classification"] == "young"
    }
    assert 0 < len(wanted) < len(neurons)
    aq_out = tmp_path / "aq"
    result = run_cli(
        [*base_args(server, aq_out), "--archive", ARCHIVE, "--query", "age_classification:young"], capsys
    )
    assert result.code == 0, result.err
    assert data_files(aq_out) == {p: b for p, b in expected_files(server, ARCHIVE).items() if p in wanted}
    # --query alone: every archive; here: every Siegert neuron by its archive field.
    q_out = tmp_path / "q"
    result = run_cli([*base_args(server, q_out), "--query", f"archive:{ARCHIVE}"], capsys)
    assert result.code == 0, result.err
    assert data_files(q_out) == expected_files(server, ARCHIVE)


@pytest.mark.system
def test_max_duration_stops_scheduling_and_a_rerun_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = EmulatorConfig(neurons=400, seed=7, tls="modern", latency_ms=50, file_kb=2)
    with serve_in_thread(config) as slow:
        out = tmp_path / "m"
        report = tmp_path / "r.json"
        args = [
            *base_args(slow, out, "--concurrency", "2", "--report", str(report)),
            "--archive",
            "Allen Cell Types",
        ]
        result = run_cli([*args, "--max-duration", "1.2s"], capsys)
        assert result.code == 1, result.err
        data = json.loads(report.read_text())
        assert data["stopped_by_deadline"] is True and data["not_started"] > 0 and data["downloaded"] > 0
        assert data["failed"] == 0
        owed = len(archive_neurons(slow, "Allen Cell Types"))
        assert data["downloaded"] + data["not_started"] == data["files"] == owed  # in-flight ones finished
        assert "stopped by --max-duration" in result.out
        assert len(data_files(out)) == data["downloaded"]
        assert not part_files(out)
        assert len((out / "allen cell types" / "metadata.jsonl").read_text().splitlines()) == len(
            archive_neurons(slow, "Allen Cell Types")
        )  # listing went on after the deadline: metadata is complete
        again = run_cli(args, capsys)
        assert again.code == 0
        assert data_files(out) == expected_files(slow, "Allen Cell Types")


def test_a_second_run_on_the_same_out_exits_2(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    with DirLock(out):
        result = run_cli([*base_args(server, out), "--archive", ARCHIVE], capsys)
    assert result.code == 2
    assert "another neuromorpho-fetch run" in one_line_error(result.err)
    assert server.stats()["requests_total"] == 0


@pytest.fixture(scope="module")
def hostile() -> Iterator[Emulator]:
    with serve_in_thread(
        EmulatorConfig(neurons=400, seed=7, tls="modern", hostile_names=True, file_kb=2)
    ) as s:
        yield s


def test_hostile_names_never_leave_out(
    hostile: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deep" / "m"
    out.parent.mkdir()
    args = [
        *base_args(hostile, out, "--version", "both", "--with-logs", "--with-images"),
        "--archive",
        "Allen Cell Types",
    ]
    result = run_cli(args, capsys)
    assert result.code == 0, result.out + result.err
    names = {n.name for n in archive_neurons(hostile, "Allen Cell Types")}
    assert any(".." in n or "/" in n for n in names)  # the catalogue really is hostile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]
    root = out.resolve()
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(root), path
        assert not path.is_symlink()
    top = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in DATASET_FILES)
    assert top == ["allen cell types"]
    assert data_files(out) == expected_files(hostile, "Allen Cell Types", _all_versions())


def _all_versions() -> tuple:  # type: ignore[type-arg]
    from neuromorpho_fetch.models import Version

    return tuple(Version)


# -- bad input ------------------------------------------------------------------------------------------
def test_unknown_archive_suggests_close_names(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli([*base_args(server, tmp_path / "m"), "--archive", "siegrt"], capsys)
    assert result.code == 2
    line = one_line_error(result.err)
    assert "siegrt" in line and "Siegert" in line
    assert server.stats()["file_requests"] == 0


def test_bad_query_field_names_the_valid_ones(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli(
        [*base_args(server, tmp_path / "m"), "--archive", ARCHIVE, "--query", "specis:rat"], capsys
    )
    assert result.code == 2
    line = one_line_error(result.err)
    assert "specis" in line and "species" in line and "brain_region" in line
    assert server.stats()["file_requests"] == 0


def test_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    args = ["--base-url", f"https://127.0.0.1:{port}", "--out", str(tmp_path / "m"), "--no-progress"]
    result = run_cli([*args, "--retries", "1", "--retry-wait", "0.01", "--archive", ARCHIVE], capsys)
    assert result.code == 4  # unreachable is not "some files failed" (issue 15 item 16)
    line = one_line_error(result.err)
    assert f"127.0.0.1:{port}" in line and "SSLContext" not in line


@pytest.mark.parametrize("tls", ["modern", "legacy-dh"])
@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
def test_tls_failure_names_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str], tls: str) -> None:
    with serve_in_thread(EmulatorConfig(neurons=50, seed=7, tls=tls)) as strict:  # type: ignore[arg-type]
        args = ["--base-url", strict.base_url, "--out", str(tmp_path / "m"), "--no-progress"]
        result = run_cli([*args, "--archive", "Amaral"], capsys)
        assert result.code == 2
        line = one_line_error(result.err)
        assert "--ca-file" in line and "--insecure" in line
        # ... and --insecure is the documented way through (with a warning).
        ok = run_cli([*args, "--insecure", "--rate", "500", "--archive", "Amaral"], capsys)
        assert ok.code == 0, ok.err


def test_a_missing_ca_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command builds its TLS context while it imports (tls.build_early); a CA file that is not
    there is still the one-line usage error it was, raised before any request."""
    missing = tmp_path / "no-such-ca.pem"
    args = ["--base-url", "https://127.0.0.1:9", "--ca-file", str(missing), "--out", str(tmp_path / "m")]
    result = run_cli([*args, "--no-progress", "--archive", ARCHIVE], capsys)
    assert result.code == 2
    line = one_line_error(result.err)
    assert str(missing) in line and "--ca-file" in line


def test_unwritable_out(server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("precious")
    result = run_cli([*base_args(server, blocker / "m"), "--archive", ARCHIVE], capsys)
    assert result.code == 2
    assert "cannot be written" in one_line_error(result.err)
    assert blocker.read_text() == "precious"
    assert server.stats()["requests_total"] == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real ENOSPC (we run as root here; skipped where mounting is not allowed). Room for
    a small first mirror with its dataset layer (realistic files, a typed catalogue), not for a second."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.system
def test_full_disk_is_one_line_and_damages_nothing(
    server: Emulator, tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny_disk / "m"
    first = run_cli([*base_args(server, out), "--archive", "Wearne_Hof", "--limit", "5"], capsys)
    assert first.code == 0, first.err
    before = tree(out)
    result = run_cli([*base_args(server, out), "--archive", "Allen Cell Types"], capsys)
    assert result.code == 1  # the run started: exit 1 (a disk full before it starts is exit 2)
    line = one_line_error(result.err)
    assert "No space left on device" in line or "disk is full" in line, line
    after = tree(out)
    assert {k: after.get(k) for k in before} == before  # what was there is intact
    assert not part_files(out)
    # Read as the next run will, WAL included: on a full disk the run may not fold its WAL back.
    db = out / ".neuromorpho-fetch" / "state.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (complete,) = conn.execute("SELECT COUNT(*) FROM files WHERE status = 'complete'").fetchone()
    assert complete >= 5
    store = StateStore(db, read_only=True)  # what --dry-run reads: the same rows
    assert store.counts().get("complete", 0) == complete
    store.close()
    os.sync()


def test_all_archives_dry_run_plans_every_neuron(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli([*base_args(server, tmp_path / "all", "--dry-run"), "--all"], capsys)
    assert result.code == 0, result.err
    total = sum(count for _, count in server.catalogue.archives())
    assert f"would download {total}, would skip 0 of {total} files ({total} neurons)" in result.out
    assert server.stats()["file_requests"] == 0
    assert not (tmp_path / "all").exists()


def test_usage_errors_before_anything_happens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nothing = run_cli(["--out", str(tmp_path / "m")], capsys)
    assert nothing.code == 2 and "say what to mirror" in one_line_error(nothing.err)
    both = run_cli(["--out", str(tmp_path / "m"), "--archive", "a", "--retry-failed", "r.json"], capsys)
    assert both.code == 2 and "--retry-failed" in one_line_error(both.err)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    report = run_cli(["--out", str(tmp_path / "m"), "--all", "--report", str(blocker / "r.json")], capsys)
    assert report.code == 2 and "--report" in one_line_error(report.err)
    missing = run_cli(["--out", str(tmp_path / "m"), "--retry-failed", str(tmp_path / "nope.json")], capsys)
    assert missing.code == 2 and "does not exist" in one_line_error(missing.err)
    with pytest.raises(SystemExit) as bad_flag:  # argparse's own usage error: also exit 2
        run_cli(["--max-duration", "soon", "--all"], capsys)
    assert bad_flag.value.code == 2
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--archive", "x", "--concurrency", "0"], "--concurrency: must be >= 1"),
        (["--archive", "x", "--rate", "fast"], "--rate"),
        (["--archive", "x", "--version", "zip"], "--version"),
        (["--archive", "x", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli([*args, "--out", str(tmp_path / "out")], capsys)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "--help" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_retry_failed_from_another_folder_lands_in_the_reports_mirror(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 item 3: the report records its mirror; ``--retry-failed`` without ``--out`` works on it
    and creates nothing where it is run; an ``--out`` that differs is used, with a warning."""
    config = EmulatorConfig(
        neurons=400,
        seed=7,
        tls="none",
        file_kb=4,
        fault_rate=0.4,
        faults=("503",),
        fault_max_per_url=2,
        fault_scope="files",
    )
    with serve_in_thread(config) as flaky:
        out, report = tmp_path / "mirror", tmp_path / "run.json"
        first = run_cli(
            [*base_args(flaky, out, "--retries", "0", "--report", str(report)), "--archive", ARCHIVE], capsys
        )
        failed = json.loads(report.read_text())["failures"]
        assert first.code == 1 and failed
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        args = [
            "--base-url",
            flaky.base_url,
            "--no-progress",
            "--rate",
            "2000",
            "--retry-failed",
            str(report),
        ]
        again = run_cli(args, capsys)
        assert again.code == 0, again.err
        assert list(elsewhere.iterdir()) == []  # no second, empty mirror here
        for failure in failed:
            assert (out / failure["path"]).is_file()
        other = run_cli([*args, "--out", str(tmp_path / "other")], capsys)
        assert "belongs to the mirror" in other.err


def test_dry_run_says_what_it_would_download_per_archive_and_every_path_with_v(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17 item 9: a count per archive, and with ``-v`` every path; sizes where known."""
    out = tmp_path / "fresh"
    result = run_cli([*base_args(server, out, "--dry-run", "-v"), "--archive", ARCHIVE], capsys)
    n = len(expected_files(server, ARCHIVE))
    assert result.code == 0 and f"would download per archive: siegert {n}" in result.out
    assert f"size: {n} of unknown size" in result.out and "files of known size" not in result.out
    for path in expected_files(server, ARCHIVE):
        assert f"would download {path}" in result.err
