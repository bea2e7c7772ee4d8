"""The CLI as a subprocess: SIGKILL at several points then resume, Ctrl-C, and the --demo in a terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.state import StateStore

from .conftest import (
    base_args,
    cng_urls,
    expected_files,
    held_files,
    part_files,
    spawn,
    subprocess_env,
    tree,
)
from .test_mirror_progress import run_in_pty

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system

ARCHIVE = "Allen Cell Types"  # over 100 neurons with 400 in the catalogue (counted from the emulator)
FOLDER = "allen cell types/CNG"


@pytest.fixture(scope="module")
def throttled() -> Iterator[Emulator]:
    """Slow enough to be caught mid-run: 16 KiB files at 128 KiB/s per connection (~0.13 s each)."""
    config = EmulatorConfig(neurons=400, seed=7, tls="modern", file_kb=16, bandwidth_kbps=128)
    with serve_in_thread(config) as server:
        yield server


def args_for(server: Emulator, out: Path) -> list[str]:
    return [*base_args(server, out, "--concurrency", "4"), "--archive", ARCHIVE]


def finished_files(out: Path) -> set[str]:
    folder = out / FOLDER
    if not folder.is_dir():
        return set()
    return {f"{FOLDER}/{p.name}" for p in folder.iterdir() if not p.name.endswith(".part")}


def wait_for_files(proc: subprocess.Popen[str], out: Path, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(finished_files(out)) < n:
        assert proc.poll() is None, f"the run ended before {n} files: {proc.communicate()}"
        assert time.monotonic() < deadline, f"fewer than {n} files after {timeout}s"
        time.sleep(0.005)


def test_sigkill_at_several_points_then_resume(throttled: Emulator, tmp_path: Path) -> None:
    throttled.reset(faults=True)
    out = tmp_path / "m"
    urls = cng_urls(throttled, ARCHIVE)
    # path -> requests for it when a kill found it complete (an earlier killed run may have asked
    # once already without finishing it; what matters is that nobody asks after it was complete).
    done_before_kill: dict[str, int] = {}
    for n in (5, 40, 85):
        proc = spawn(args_for(throttled, out))
        wait_for_files(proc, out, n)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.communicate(timeout=10)
        asked = throttled.stats()["file_requests_by_path"]
        for path in finished_files(out):
            done_before_kill.setdefault(path, asked[urls[path].removeprefix(throttled.base_url)])
    assert 85 <= len(done_before_kill) < len(urls)
    final = spawn(args_for(throttled, out))
    stdout, stderr = final.communicate(timeout=60)
    assert final.returncode == 0, stdout + stderr
    by_path = throttled.stats()["file_requests_by_path"]
    # No file that had been completed before a kill was fetched again.
    again = [p for p, k in done_before_kill.items() if by_path[urls[p].removeprefix(throttled.base_url)] != k]
    assert again == []
    assert not part_files(out)
    # The same tree as one uninterrupted mirror (files and metadata.jsonl).
    reference = tmp_path / "ref"
    ref = subprocess.run(
        [sys.executable, "-m", "neuromorpho_fetch", *args_for(throttled, reference), "--concurrency", "16"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert ref.returncode == 0, ref.stderr
    assert tree(out) == tree(reference)
    assert {k: v for k, v in tree(out).items() if k.startswith(FOLDER)} == expected_files(throttled, ARCHIVE)
    store = StateStore(out / ".neuromorpho-fetch" / "state.sqlite", read_only=True)
    assert store.counts() == {"complete": len(urls)}
    assert [r["status"] for r in store.runs()] == ["killed", "killed", "killed", "complete"]
    store.close()


@pytest.mark.timing
def test_ctrl_c_stops_within_two_seconds(throttled: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = spawn(args_for(throttled, out))
    wait_for_files(proc, out, 10)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130
    assert elapsed < 2.0, f"took {elapsed:.2f}s to stop"


def test_ctrl_c_stops_cleanly(throttled: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = spawn(args_for(throttled, out))
    wait_for_files(proc, out, 10)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    assert "interrupted: re-run the same command to resume" in stdout
    assert "Traceback" not in stderr
    assert not part_files(out)
    present = finished_files(out)
    store = StateStore(out / ".neuromorpho-fetch" / "state.sqlite", read_only=True)
    rows = store.lookup(present)
    assert {p for p, r in rows.items() if r.status == "complete"} == present  # state committed
    assert store.runs()[-1]["status"] == "interrupted"
    store.close()


def test_sigterm_is_handled_like_ctrl_c(throttled: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = spawn(args_for(throttled, out))
    wait_for_files(proc, out, 3)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    assert not part_files(out)


def test_demo_in_a_terminal_shows_bars_and_the_tree(tmp_path: Path) -> None:
    """README's offline command: starts the bundled emulator, mirrors Siegert, prints the tree."""
    out = tmp_path / "demo"
    code = (
        "import os, sys; os.environ.pop('NEUROMORPHO_BASE_URL', None);"
        f"sys.argv = ['neuromorpho-fetch', '--demo', '--out', {str(out)!r}];"
        "from neuromorpho_fetch.cli import main; sys.exit(main())"
    )
    env_path = subprocess_env()["PYTHONPATH"]
    text = run_in_pty(f"import sys; sys.path.insert(0, {env_path.split(os.pathsep)[0]!r}); {code}")
    assert "mirroring Siegert" in text
    # tqdm bars on the terminal, with totals from the archive counts and live postfix counters.
    assert "neurons listed: 100%" in text and "140/140" in text
    assert "files: 100%" in text and "new=140, skipped=0, retries=0, failed=0" in text
    assert "bytes:" in text
    assert "downloaded 140, skipped 0, failed 0" in text
    assert f"{out}/" in text and "siegert/" in text and "metadata.jsonl  (140 records)" in text
    assert "CNG/  (140 files" in text
    assert len(held_files(out / "siegert" / "CNG")) == 140


def test_a_second_process_on_the_same_out_is_refused(throttled: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "m"
    first = spawn(args_for(throttled, out))
    try:
        wait_for_files(first, out, 2)
        second = subprocess.run(
            [sys.executable, "-m", "neuromorpho_fetch", *args_for(throttled, out)],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=30,
        )
        assert second.returncode == 2
        assert (
            second.stderr.strip()
            .splitlines()[-1]
            .startswith(f"neuromorpho-fetch: error: another neuromorpho-fetch run (pid {first.pid}) is using")
        )
        assert first.poll() is None  # the first run is unharmed
    finally:
        first.kill()
        first.communicate(timeout=10)


def test_the_report_is_written_before_the_lock_is_released(throttled: Emulator, tmp_path: Path) -> None:
    """Issue 16: the end of a run is ordered (state store, dataset, report, then the lock). A second run
    that gets the lock the first moment it is free finds the first run's report complete, and the state
    store closed (its WAL folded back), never a half-finished state."""
    import json

    from neuromorpho_fetch.errors import OutputDirError
    from neuromorpho_fetch.lock import DirLock

    out = tmp_path / "m"
    proc = spawn(args_for(throttled, out))
    wait_for_files(proc, out, 3)  # the run holds the lock now
    report = out / ".neuromorpho-fetch" / "last-report.json"
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the lock was never released"
        lock = DirLock(out)
        try:
            lock.acquire()
        except OutputDirError:
            time.sleep(0.002)
            continue
        try:
            data = json.loads(report.read_text(encoding="utf-8"))  # there, and whole
            assert data["exit_code"] == 0 and data["downloaded"] == data["files"] == len(
                cng_urls(throttled, ARCHIVE)
            )
            assert not (out / ".neuromorpho-fetch" / "state.sqlite-wal").exists()
        finally:
            lock.release()
        break
    assert proc.wait(timeout=30) == 0
