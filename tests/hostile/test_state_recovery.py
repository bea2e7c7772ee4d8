"""Issue 10 items 1 and 2, and issue 11's memory item: a damaged or lost state store loses nothing, and
damage is never adopted as the truth unnoticed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.errors import StateCorruptError
from neuromorpho_fetch.state import AsyncStateStore, StateStore

from .conftest import (
    ARCHIVE,
    assert_counts_add_up,
    assert_one_line,
    base_args,
    data_files,
    expected_files,
    read_report,
    run_cli,
)

STATE = Path(".neuromorpho-fetch") / "state.sqlite"


def corrupt_middle(db: Path) -> None:
    """Overwrite 8 KiB in the middle of the database with random bytes (issue 10's reproduction)."""
    size = db.stat().st_size
    assert size >= 4 * 8192, "the store must be larger than the damage for this test to mean anything"
    with db.open("r+b") as fh:
        fh.seek(size // 2 - 4096)
        fh.write(os.urandom(8192))


def test_corrupt_store_names_the_way_out_and_rebuild_loses_nothing(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = base_args(plain, out, "--all", "--with-logs")
    first = run_cli(args, capsys)
    assert first.code == 0
    corrupt_middle(out / STATE)
    plain.reset()

    # Every later run said "database disk image is malformed" with a traceback and no advice.
    broken = run_cli(args, capsys)
    assert broken.code == 2
    assert_one_line(broken.err, "is damaged", "--rebuild-state")
    assert plain.stats()["file_requests"] == 0

    report = tmp_path / "rebuild.json"
    rebuilt = run_cli([*args, "--rebuild-state", "--report", str(report)], capsys)
    assert rebuilt.code == 0, rebuilt.err
    aside = list((out / ".neuromorpho-fetch").glob("state.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0  # set aside, never deleted
    data = read_report(report)
    assert data["exit_code"] == 0 and data["error"] is None
    assert data["downloaded"] == 0 and data["adopted"] == data["files"]  # re-adopted from the tree
    assert_counts_add_up(data)
    assert plain.stats()["file_requests"] == 0
    # Adopted from disk: never checked against the server.
    with sqlite3.connect(out / STATE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM files WHERE verified = 0").fetchone()[0] == data["files"]


def test_lost_store_and_file_damaged_in_place_is_found_by_verify(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Delete the store, change bytes of one file (same size), re-run: the file is adopted *unverified*,
    and ``--verify`` checks it against the server, reports it damaged and repairs it."""
    out = tmp_path / "out"
    args = base_args(plain, out, "--archive", ARCHIVE)
    assert run_cli(args, capsys).code == 0
    for suffix in ("", "-wal", "-shm"):
        (out / STATE).with_name("state.sqlite" + suffix).unlink(missing_ok=True)
    victim = sorted(data_files(out))[3]
    original = (out / victim).read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x55
    (out / victim).write_bytes(bytes(damaged))

    adopted = run_cli([*args, "--report", str(tmp_path / "adopt.json")], capsys)
    assert adopted.code == 0
    # A plain run trusts the size: the damage is not seen, but the file is recorded as unverified.
    assert read_report(tmp_path / "adopt.json")["adopted"] >= 1
    with sqlite3.connect(out / STATE) as conn:
        row = conn.execute("SELECT verified FROM files WHERE path = ?", (victim,)).fetchone()
    assert row == (0,)

    plain.reset()
    report = tmp_path / "verify.json"
    verified = run_cli([*args, "--verify", "--report", str(report)], capsys)
    assert verified.code == 0
    data = read_report(report)
    assert victim in data["damaged"]
    assert_counts_add_up(data)
    assert data_files(out) == expected_files(plain, ARCHIVE)  # bytes equal to the server's
    with sqlite3.connect(out / STATE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM files WHERE verified = 0").fetchone()[0] == 0

    # Checked once, trusted after: a second --verify fetches nothing.
    plain.reset()
    again = run_cli([*args, "--verify", "--report", str(report)], capsys)
    assert again.code == 0
    assert read_report(report)["damaged"] == []
    assert plain.stats()["file_requests"] == 0


def test_corruption_is_detected_when_the_store_opens(tmp_path: Path) -> None:
    """Damage in the middle opens fine and used to fail at the first lookup, mid-run; ``quick_check``
    makes the open itself fail with the way out."""
    db = tmp_path / "state.sqlite"
    store = StateStore(db)
    store.begin_run("{}")
    row = ("p", "u", "a", "n", "cng", 10, "0" * 64, None, None, 1.0, 1)
    store.apply([("complete", (f"a/cng/{i:06d}-{'x' * 200}", *row[1:])) for i in range(2000)])
    store.close()
    corrupt_middle(db)
    with pytest.raises(StateCorruptError, match="--rebuild-state"):
        StateStore(db)


def test_old_store_is_migrated_in_place(tmp_path: Path) -> None:
    """A store from before the ``verified`` column keeps its rows, taken as verified (documented)."""
    db = tmp_path / "state.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, url TEXT NOT NULL, archive TEXT, neuron_name TEXT, "
            "version TEXT, size INTEGER, sha256 TEXT, etag TEXT, last_modified TEXT, status TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, updated_at REAL NOT NULL, run_id INTEGER)"
        )
        conn.execute(
            "INSERT INTO files (path, url, size, sha256, status, updated_at) "
            "VALUES ('a/cng/x.swc', 'u', 3, 'h', 'complete', 1.0)"
        )
    conn.close()
    store = StateStore(db)
    row = store.get("a/cng/x.swc")
    assert row is not None and row.verified and row.sha256 == "h"
    store.close()


async def test_completed_overlay_is_bounded_by_flushes(tmp_path: Path) -> None:
    """Issue 11: the overlay of completions kept a row per file forever (~0.7 KB each, ~230 MB at
    265,000 files). It holds only what no flush has written yet, and lookups still see every file."""
    store = AsyncStateStore(StateStore(tmp_path / "state.sqlite"))
    await store.call(lambda s: s.begin_run("{}"))
    peak = 0
    for batch in range(20):
        for i in range(500):
            path = f"a/cng/{batch:02d}-{i:04d}.swc"
            store.complete(path, "u", "a", "n", "cng", size=1, sha256="h", etag=None, last_modified=None)
        peak = max(peak, len(store._completed))
        await store.flush()
        assert len(store._completed) == 0
    assert peak == 500  # one batch between flushes, never the run's total (10,000)
    rows = await store.lookup(["a/cng/00-0000.swc", "a/cng/19-0499.swc"])
    assert set(rows) == {"a/cng/00-0000.swc", "a/cng/19-0499.swc"}
    await asyncio.to_thread(store.close)
