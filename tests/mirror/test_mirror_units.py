"""Pure decisions of the mirror, the state store, the lock and the report: no sockets."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from neuromorpho_fetch.config import ClientConfig
from neuromorpho_fetch.errors import OutputDirError, UsageError
from neuromorpho_fetch.lock import DirLock
from neuromorpho_fetch.mirror.options import MirrorOptions, parse_duration
from neuromorpho_fetch.mirror.plan import Action, plan_file
from neuromorpho_fetch.paths import safe_target
from neuromorpho_fetch.report import Failure, MirrorReport, read_report, write_json_atomic
from neuromorpho_fetch.state import AsyncStateStore, FileRow, StateStore


def row(status: str = "complete", size: int | None = 10, sha: str | None = "ab") -> FileRow:
    return FileRow("a/CNG/x.CNG.swc", "u", size, sha, '"e"', None, status, 1, None, 0.0)


# -- plan_file ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "local", "verify", "refresh", "expected"),
    [
        (None, None, False, False, Action.FETCH),
        (row(), None, False, False, Action.FETCH),  # recorded but deleted locally
        (row(), 10, False, False, Action.SKIP),
        (row(), 9, False, False, Action.FETCH),  # truncated on disk
        (row(), 10, True, False, Action.VERIFY),
        (row(), 10, False, True, Action.REVALIDATE),
        (row(), 10, True, True, Action.VERIFY),  # verify first, then revalidate
        (None, 10, False, False, Action.ADOPT),  # renamed into place, row lost to a crash
        (row("downloading"), 10, False, False, Action.ADOPT),
        (row("failed"), 10, True, False, Action.ADOPT),
        (row("failed"), None, False, False, Action.FETCH),
    ],
)
def test_plan_file(
    state: FileRow | None, local: int | None, verify: bool, refresh: bool, expected: Action
) -> None:
    assert plan_file(state, local, verify=verify, refresh=refresh) is expected


@pytest.mark.parametrize(
    ("sha", "refresh", "expected"),
    [
        ("ab", False, Action.SKIP),  # same bytes as recorded
        ("ab", True, Action.REVALIDATE),  # intact, then asked upstream (--verify --refresh)
        ("cd", False, Action.FETCH),  # damaged: same size, other bytes
        ("cd", True, Action.FETCH),
    ],
)
def test_plan_file_with_the_hash_is_final(sha: str, refresh: bool, expected: Action) -> None:
    """--verify's second question: with the file's hash, the answer never asks for the hash again."""
    assert plan_file(row(), 10, verify=True, refresh=refresh, sha256=sha) is expected
    assert plan_file(None, 10, verify=True, refresh=refresh, sha256=sha) is Action.ADOPT


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7h", 25200),
        ("30m", 1800),
        ("90s", 90),
        ("45", 45),
        ("1h30m", 5400),
        ("0.5s", 0.5),
        ("2d", 172800),
        (" 10 M ", 600),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "7x", "-5m", "0", "7h junk", "1.2.3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="max-duration"):
        parse_duration(text)


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/./b", "", "a\\..\\b"])
def test_safe_target_refuses_escapes(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ValueError):
        safe_target(tmp_path, rel)


def test_safe_target_accepts_layout_paths(tmp_path: Path) -> None:
    assert (
        safe_target(tmp_path, "siegert/CNG/a b%2F.CNG.swc") == tmp_path / "siegert" / "CNG" / "a b%2F.CNG.swc"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "say what to mirror"),
        ({"archives": ("a",), "all_archives": True}, "exclude"),
        ({"archives": ("a",), "retry_failed": Path("r.json")}, "retry-failed"),
        ({"archives": ("a",), "limit": 0}, "--limit"),
        ({"archives": ("a",), "versions": ()}, "versions"),
    ],
)
def test_options_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        MirrorOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"concurrency": 0}, "--concurrency"),
        ({"rate": 0}, "--rate"),
        ({"retries": -1}, "--retries"),
        ({"idle_timeout": 0}, "--idle-timeout"),
        ({"attempt_timeout": 0}, "--attempt-timeout"),
        ({"header_timeout": 0}, "--header-timeout"),
        ({"no_such_setting": 1}, "unknown client setting"),
    ],
)
def test_settings_validation(settings: dict[str, object], message: str) -> None:
    """Named settings go through the one overlay; each bad value is one line naming its flag."""
    with pytest.raises(UsageError, match=message):
        ClientConfig().with_settings(**settings)


def test_options_retry_policy_and_timeouts() -> None:
    config = ClientConfig().with_settings(retries=2, retry_wait=0.01, idle_timeout=3)
    opts = MirrorOptions(query=("species:rat",), config=config)
    assert opts.config.retry.attempts == 3
    assert opts.config.retry.backoff_base == 0.01
    assert opts.config.timeouts.idle == 3 and opts.config.timeouts.attempt >= 600
    json.loads(opts.describe())
    # The two timeouts have two names: the attempt bound lowers the others, never the reverse.
    short = ClientConfig().with_settings(attempt_timeout=5).timeouts
    assert short.attempt == 5 and short.idle == 5 and short.connect == 5
    assert MirrorOptions(all_archives=True).config == ClientConfig()
    assert MirrorOptions(all_archives=True, config=ClientConfig(rate=2.0)).config.rate == 2.0


# -- state store -------------------------------------------------------------------------------------
def test_state_store_roundtrip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    store.begin_run("{}")
    store.apply(
        [
            ("complete", ("a/x", "u1", "A", "x", "CNG", 5, "h", '"e"', "lm", time.time(), 1)),
            ("failed", ("a/y", "u2", "A", "y", "CNG", "HTTP 404", time.time(), 1)),
        ]
    )
    rows = store.lookup(["a/x", "a/y", "a/z"])
    assert set(rows) == {"a/x", "a/y"}
    assert rows["a/x"].status == "complete" and rows["a/x"].size == 5 and rows["a/x"].etag == '"e"'
    assert rows["a/y"].status == "failed"
    assert rows["a/y"].last_error == "HTTP 404"
    store.end_run("complete", 1, 0, 1, 5)
    assert store.runs()[0]["status"] == "complete"
    store.close()
    # WAL folded back on close; the file is readable by a plain sqlite3 connection.
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 2


def test_state_store_read_only_view_writes_nothing(tmp_path: Path) -> None:
    """--dry-run's view: the store as the last run left it, without creating -wal/-shm files."""
    db = tmp_path / "s.sqlite"
    store = StateStore(db)
    store.apply([("complete", ("a/x", "u", "A", "x", "CNG", 1, "h", None, None, 0.0, None))])
    store.close()  # checkpoints the WAL into the main file
    before = sorted(p.name for p in tmp_path.iterdir())
    ro = StateStore(db, read_only=True)
    assert ro.get("a/x") is not None
    ro.apply([("failed", ("a/x", "u", "A", "x", "CNG", "e", 0.0, None))])  # a no-op, never an error
    assert ro.get("a/x").status == "complete"  # type: ignore[union-attr]
    ro.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["s.sqlite"]


def test_state_store_rejects_garbage(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutputDirError, match="move it aside"):
        StateStore(db)


async def test_async_store_batches_and_sees_unflushed_rows(tmp_path: Path) -> None:
    """5,000 completions are one transaction; prints the loop and commit times (quoted in docs/cli.md)."""
    store = AsyncStateStore(StateStore(tmp_path / "s.sqlite"))
    n = 5000
    started = time.perf_counter()
    for i in range(n):
        store.complete(
            f"a/{i}", f"u{i}", "A", str(i), "CNG", size=i, sha256="h", etag=None, last_modified=None
        )
    on_loop = time.perf_counter() - started
    # Not flushed yet, but a lookup already sees them (no re-planning within a run).
    rows = await store.lookup(["a/1", "a/4999"])
    assert rows["a/4999"].status == "complete"
    await store.flush()
    assert store.flushes == 1
    print(f"5,000 files: {on_loop * 1e3:.1f} ms on the loop, {store.flush_seconds * 1e3:.1f} ms in commits")
    # The background flusher writes what is recorded later, without being asked.
    store.flush_interval = 0.01
    flusher = asyncio.create_task(store.flusher())
    store.failed("a/1", "u1", "A", "1", "CNG", "HTTP 404")
    for _ in range(500):
        await asyncio.sleep(0.005)
        if store.flushes == 2:
            break
    flusher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flusher
    assert store.flushes == 2
    store.close()
    check = StateStore(tmp_path / "s.sqlite")
    assert check.counts() == {"complete": n - 1, "failed": 1}
    check.close()


# -- lock ----------------------------------------------------------------------------------------------
def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with DirLock(tmp_path / "out"), pytest.raises(OutputDirError, match=f"pid {os.getpid()}"):
        DirLock(tmp_path / "out").acquire()
    with DirLock(tmp_path / "out"):  # released: a new run may start
        pass


def test_lock_on_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputDirError, match="cannot be written"):
        DirLock(blocker / "out").acquire()


# -- report --------------------------------------------------------------------------------------------
def test_report_json_and_retry_roundtrip(tmp_path: Path) -> None:
    failure = Failure("n1", "https://x/n1.CNG.swc", "HTTP 404", "a/CNG/n1.CNG.swc", "A", "CNG")
    report = MirrorReport(
        downloaded=3,
        skipped=2,
        bytes=2048,
        elapsed_s=1.5,
        files=6,
        neurons=6,
        report_path=str(tmp_path / "r.json"),
        failures=(failure,),
        failed=1,
        out=str(tmp_path / "mirror"),
    )
    data = report.to_json()
    for key in ("downloaded", "skipped", "failed", "bytes", "elapsed_s", "failures"):
        assert key in data
    assert data["failures"][0]["neuron_name"] == "n1" and data["exit_code"] == 1
    path = tmp_path / "r.json"
    write_json_atomic(path, data)
    assert read_report(path).failures == report.failures
    assert read_report(path).out == tmp_path / "mirror"  # --retry-failed works on the report's mirror
    assert "full list of failures" in report.summary()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_report_exit_codes() -> None:
    assert MirrorReport().exit_code == 0
    assert MirrorReport(failed=1).exit_code == 1
    assert MirrorReport(stopped_by_deadline=True).exit_code == 1
    assert MirrorReport(interrupted=True, failed=3).exit_code == 130
    # The stopping error's own code, from the same policy the CLI uses (issue 15 item 3).
    assert MirrorReport(error="TLS failure", error_exit=2).exit_code == 2
    assert MirrorReport(unreachable=True, error="refused").exit_code == 4
    assert MirrorReport(rejected=1).exit_code == 1


@pytest.mark.parametrize("content", ["not json", "[]", '{"failures": [{"url": "x"}]}'])
def test_read_failures_rejects_bad_reports(tmp_path: Path, content: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(UsageError, match="retry-failed"):
        read_report(path)
    with pytest.raises(UsageError, match="does not exist"):
        read_report(tmp_path / "missing.json")


async def test_the_unflushed_overlay_holds_exactly_what_is_not_committed(tmp_path: Path) -> None:
    """No size limit that could drop a completion before its commit: a flush empties the overlay of
    what it wrote, and lookups find those rows in the database instead."""
    store = AsyncStateStore(StateStore(tmp_path / "s.sqlite"))
    store.complete("a/1", "u1", "A", "1", "CNG", size=1, sha256="h", etag=None, last_modified=None)
    assert (await store.lookup(["a/1"]))["a/1"].status == "complete"
    await store.flush()
    assert store._completed == {}
    store.complete("a/2", "u2", "A", "2", "CNG", size=2, sha256="h", etag=None, last_modified=None)
    rows = await store.lookup(["a/1", "a/2"])
    assert rows["a/1"].status == rows["a/2"].status == "complete"
    store.close()
