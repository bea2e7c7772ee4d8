"""Issue 17 item 2: after a run cut short and after one with files missing upstream, CITATION.md, the
coverage line and the report count exactly the neurons whose files are on disk (counted here by walking
the tree), and say how many are catalogued without files."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch.dataset import CITATION_FILE, MANIFEST
from neuromorpho_fetch.emulator import EmulatorConfig, serve_in_thread

from .test_mirror_integration import archive_args, run

pytestmark = pytest.mark.system

ARCHIVE = "Amaral"


def on_disk(root: Path) -> set[str]:
    """Neuron files on disk, walking the tree (CNG only is requested: one file per neuron)."""
    return {
        p.name for p in root.glob("*/CNG/*") if p.is_file() and p.name != MANIFEST and ".part" not in p.name
    }


def catalogued(root: Path) -> int:
    return sum(
        1 for p in root.glob("*/metadata.jsonl") for line in p.read_text().splitlines() if line.strip()
    )


def check_counts(root: Path, printed: str, report: dict[str, Any]) -> tuple[int, int]:
    held = len(on_disk(root))
    total = catalogued(root)
    citation = (root / CITATION_FILE).read_text(encoding="utf-8")
    assert f"From NeuroMorpho.Org: {held} neurons with files present" in citation
    holdings = report["dataset"]["holdings"]
    assert holdings["with_files"] == held and holdings["catalogued"] == total
    assert report["dataset"]["listing_complete"] == [ARCHIVE]  # the listing finished; the files did not
    assert holdings["without_files"] == total - held
    if total > held:
        assert f"{total - held} more catalogued without files" in citation
    (cov,) = [c for c in report["dataset"]["coverage"] if c["archive"] == ARCHIVE]
    assert cov["with_files"] == held
    line = next(line for line in printed.splitlines() if f"coverage {ARCHIVE}:" in line)
    if held < cov["server"]:
        assert f"partial: {held} of {cov['server']}, {cov['failed']} failed" in line
    else:
        assert "complete" in line
    assert f"dataset: {held} neurons with files present" in printed
    return held, total


def test_a_run_cut_by_max_duration_counts_only_the_files_on_disk(tmp_path: Path) -> None:
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=16, bandwidth_kbps=64)
    with serve_in_thread(config) as emu:
        root = tmp_path / "out"
        code, printed, report = run(
            emu, root, *archive_args(ARCHIVE), "--concurrency", "2", "--max-duration", "3s"
        )
    assert code != 0 and report, printed
    held, total = check_counts(root, printed, report)
    assert 0 < held < total  # cut short: some files, not all (else the test proves nothing)


def test_a_run_with_files_missing_upstream_counts_them_as_unavailable(tmp_path: Path) -> None:
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4, missing_rate=0.2)
    with serve_in_thread(config) as emu:
        root = tmp_path / "out"
        code, printed, report = run(emu, root, *archive_args(ARCHIVE))
    assert code != 0 and report, printed
    held, total = check_counts(root, printed, report)
    assert 0 < held < total
    holdings = report["dataset"]["holdings"]
    # Every neuron without a file is one the server answered 404 for: unavailable upstream, not "failed".
    assert holdings["missing_upstream"] == total - held and holdings["failed"] == 0
    citation = (root / CITATION_FILE).read_text(encoding="utf-8")
    assert re.search(rf"{total - held} unavailable upstream", citation)
    assert f"{total - held} unavailable upstream" in printed
    # The run's report lists each of them as a failure all the same (asked for, not got: exit 1).
    assert report["failed"] == total - held
    # The catalogue says so per neuron and version too.
    with sqlite3.connect(root / "catalogue.sqlite") as db:
        present = db.execute('SELECT COUNT(*) FROM holdings WHERE "CNG_present"').fetchone()[0]
        problems = db.execute(
            "SELECT COUNT(DISTINCT neuron_id) FROM file_problems WHERE reason='missing'"
        ).fetchone()
    assert present == held and problems[0] == total - held
    assert json.dumps(report["dataset"]["holdings"])  # plain JSON in the report
