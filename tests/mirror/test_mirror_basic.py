"""End-to-end: mirror a small archive from the emulator, re-run, dry-run, verify, refresh, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
