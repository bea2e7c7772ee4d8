"""End-to-end: mirror a small archive from the emulator, re-run, dry-run, verify, refresh, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuromorpho_fetch.config import ClientConfig
from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.state import StateStore

from .conftest import base_args, data_files, expected_files, part_files, run_cli

ARCHIVE = "Siegert"


def test_mirror_then_rerun_makes_no_file_requests(
    server: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    report = tmp_path / "report.json"
    result = run_cli([*base_args(server, out, "--report", str(report)), "--archive", "siegert"], capsys)
    assert result.code == 0, result.err
    expected = expected_files(server, ARCHIVE)
    assert len(expected) >= 20
    assert data_files(out) == expected
    # metadata.jsonl: every record as served, one per line.
    lines = (out / "siegert" / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == len(expected)
    assert {json.loads(line)["archive"] for line in lines} == {ARCHIVE}
    data = json.loads(report.read_text())
    assert data["downloaded"] == len(expected) and data["failed"] == 0 and data["failures"] == []
    assert "downloaded" in result.out and "failed 0" in result.out
    assert not part_files(out)

    server.reset()
    again = run_cli([*base_args(server, out, "--report", str(report)), "--archive", "SIEGERT"], capsys)
    assert again.code == 0, again.err
    stats = server.stats()
    assert stats["file_requests"] == 0
    data = json.loads(report.read_text())
    assert data["downloaded"] == 0 and data["skipped"] == len(expected)
    store = StateStore(out / ".neuromorpho-fetch" / "state.sqlite", read_only=True)
    assert store.counts() == {"complete": len(expected)}
    assert [r["status"] for r in store.runs()] == ["complete", "complete"]
    store.close()


async def test_library_call_with_a_shared_client_and_progress(server: Emulator, tmp_path: Path) -> None:
    from neuromorpho_fetch import MirrorOptions, NeuroMorpho, ProgressEvent, mirror

    events: list[ProgressEvent] = []
    options = MirrorOptions(out=tmp_path / "lib", archives=("siegert",), config=ClientConfig(concurrency=4))
    async with NeuroMorpho(server.base_url, ca_file=server.ca_file, rate=1000, concurrency=4) as client:
        report = await mirror(options, client=client, progress=events.append)
    expected = expected_files(server, ARCHIVE)
    assert report.downloaded == len(expected) and report.exit_code == 0
    assert data_files(tmp_path / "lib") == expected
    kinds = [e.kind for e in events]
    assert kinds[-1] == "finished" and events[-1].report is report
    assert {"listed", "planned", "downloaded"} <= set(kinds)
    assert server.stats()["max_in_flight"] <= 4


async def test_cancelling_the_library_call_cleans_up_and_reports(server: Emulator, tmp_path: Path) -> None:
    import asyncio

    from neuromorpho_fetch import MirrorOptions, ProgressEvent, mirror

    events: list[ProgressEvent] = []
    first_download = asyncio.Event()

    def progress(event: ProgressEvent) -> None:
        events.append(event)
        if event.kind == "downloaded":
            first_download.set()

    out = tmp_path / "lib"
    config = ClientConfig().with_settings(base_url=server.base_url, ca_file=server.ca_file, rate=1000)
    options = MirrorOptions(out=out, archives=("Allen Cell Types",), config=config)
    task = asyncio.create_task(mirror(options, progress=progress))
    await asyncio.wait_for(first_download.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    final = events[-1]
    assert final.kind == "finished" and final.report is not None and final.report.interrupted
    assert final.report.exit_code == 130
    assert not part_files(out)
    store = StateStore(out / ".neuromorpho-fetch" / "state.sqlite", read_only=True)
    assert store.counts().get("complete", 0) == final.report.downloaded
    store.close()


async def test_a_shared_client_is_the_runs_client_and_its_retries_are_counted(tmp_path: Path) -> None:
    """``mirror(options, client=nm)``: the client's settings hold, its retries show in the report, and
    options asking for other client settings are refused instead of silently ignored."""
    from neuromorpho_fetch import MirrorOptions, NeuroMorpho, RetryEvent, RetryPolicy, UsageError, mirror
    from neuromorpho_fetch.emulator import EmulatorConfig, serve_in_thread

    config = EmulatorConfig(
        neurons=400, seed=7, tls="none", file_kb=4, fault_rate=0.3, faults=("503",), fault_max_per_url=1
    )
    policy = RetryPolicy(attempts=4, backoff_base=0.001, backoff_max=0.005, retry_after_max=0.01)
    seen: list[RetryEvent] = []
    with serve_in_thread(config) as emu:
        async with NeuroMorpho(
            emu.base_url, rate=1000, concurrency=4, retries=policy, on_retry=seen.append
        ) as nm:
            with pytest.raises(UsageError, match="rate"):
                await mirror(
                    MirrorOptions(out=tmp_path / "refused", archives=(ARCHIVE,), config=ClientConfig(rate=3)),
                    client=nm,
                )
            assert not (tmp_path / "refused").exists()
            # Settings equal to the client's (or left at their defaults) are fine.
            options = MirrorOptions(
                out=tmp_path / "m", archives=(ARCHIVE,), config=ClientConfig(concurrency=4)
            )
            report = await mirror(options, client=nm)
        expected = expected_files(emu, ARCHIVE)
    assert report.exit_code == 0 and report.downloaded == len(expected)
    assert data_files(tmp_path / "m") == expected
    assert emu.stats()["faults_injected"] > 0
    assert report.retries == len(seen) > 0  # was 0 while the client retried
