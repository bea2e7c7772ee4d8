"""Issue 12's acceptance through the command line alone: a mirror run ends with the dataset layer.

No test here calls ``finalize``: every catalogue, manifest, citation file and ``CHANGES.jsonl`` line is
what ``neuromorpho-fetch`` itself wrote, against the emulator over real sockets.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import cli
from neuromorpho_fetch.dataset import (
    BIB_FILE,
    CATALOGUE_FILE,
    CHANGES_FILE,
    CITATION_FILE,
    MANIFEST,
    check_manifests,
)
from neuromorpho_fetch.dataset.catalogue import FIELD_COLUMNS
from neuromorpho_fetch.dataset.fieldtypes import typed_value
from neuromorpho_fetch.dataset.manifests import read_manifest
from neuromorpho_fetch.emulator import CatalogueChanges, Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.layout import relative_path
from neuromorpho_fetch.models import Neuron, Version
from neuromorpho_fetch.paths import STATE_DIR, STATE_FILE

from .conftest import ARCHIVES
from .test_citations_coverage import bib_entries, mirrored_records

SHA256SUM = shutil.which("sha256sum")
FAST = ["--no-progress", "--rate", "2000", "--concurrency", "8", "--retry-wait", "0.01", "--cool-down", "0"]


def run(emulator: Emulator, out: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """The CLI in this process: exit code, what it printed, and its report."""
    report = out.parent / f"{out.name}-report.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(
            ["--base-url", emulator.base_url, "--out", str(out), *FAST, "--report", str(report), *extra]
        )
    data = json.loads(report.read_text()) if report.is_file() else {}
    return code, printed.getvalue(), data


def archive_args(*archives: str) -> list[str]:
    return [arg for name in archives for arg in ("--archive", name)]


def version_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not p.parent.name.startswith("."))


def changes_lines(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / CHANGES_FILE).read_text().splitlines()]


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def mirrored(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    """Two archives, CNG and source files, mirrored by the CLI alone."""
    root = tmp_path_factory.mktemp("cli-mirror") / "out"
    code, printed, report = run(emu, root, *archive_args(*ARCHIVES), "--version", "both")
    assert code == 0, printed
    return root, printed, report


@pytest.fixture
def copy(mirrored: tuple[Path, str, dict[str, Any]], tmp_path: Path) -> Path:
    root = tmp_path / "out"
    shutil.copytree(mirrored[0], root)
    return root


def test_the_catalogue_rows_are_the_mirrored_records_and_its_paths_exist(
    mirrored: tuple[Path, str, dict[str, Any]], emu: Emulator
) -> None:
    root, _, _ = mirrored
    lines = {
        json.loads(line)["neuron_id"]: line
        for path in root.glob("*/metadata.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    }
    served = {a: n for a, n in emu.catalogue.archives() if a in ARCHIVES}
    assert len(lines) == sum(served.values())
    db = sqlite3.connect(root / CATALOGUE_FILE)
    db.row_factory = sqlite3.Row
    with contextlib.closing(db):
        rows = {row["neuron_id"]: row for row in db.execute("SELECT * FROM neurons")}
        assert rows.keys() == lines.keys()
        for neuron_id, line in lines.items():
            record, row = json.loads(line), rows[neuron_id]
            assert row["record"] == line and row["gone_upstream"] == 0
            assert set(record) - {"_links"} <= set(FIELD_COLUMNS)  # every field has its column
            for key in FIELD_COLUMNS:
                assert row[key] == typed_value(key, record.get(key)), (neuron_id, key)
        files = db.execute("SELECT path, neuron_id, size, sha256, verified FROM files").fetchall()
    on_disk = {
        p.relative_to(root).as_posix()
        for folder in version_folders(root)
        for p in folder.iterdir()
        if p.name != MANIFEST
    }
    assert {f["path"] for f in files} == on_disk
    for f in files:
        body = (root / f["path"]).read_bytes()
        assert (len(body), hashlib.sha256(body).hexdigest()) == (f["size"], f["sha256"])
        neuron = Neuron.from_record(json.loads(lines[f["neuron_id"]]))
        version = Version.parse(f["path"].split("/")[1])
        assert relative_path(neuron, version).as_posix() == f["path"]


def test_the_run_reports_coverage_and_prints_the_dataset_summary(
    mirrored: tuple[Path, str, dict[str, Any]], emu: Emulator
) -> None:
    root, printed, report = mirrored
    dataset = report["dataset"]
    assert dataset["catalogue"] == str(root / CATALOGUE_FILE) and "error" not in dataset
    coverage = {c["archive"]: c for c in dataset["coverage"]}
    for archive, count in emu.catalogue.archives():
        if archive in ARCHIVES:
            assert coverage.pop(archive) == {
                "archive": archive,
                "server": count,
                "held": count,
                "with_files": count,
                "failed": 0,
                "listing_complete": True,
                "status": "complete",
            }
    assert coverage == {}  # only the archives this run listed
    siegert = dict(emu.catalogue.archives())["Siegert"]
    assert f"coverage Siegert: complete ({siegert} of {siegert} neurons with files)" in printed
    assert "catalogue:" in printed and dataset["changes"]["baseline"] is True


@pytest.mark.skipif(SHA256SUM is None, reason="coreutils' sha256sum is not installed")
@pytest.mark.system
def test_sha256sum_c_passes_in_every_version_folder_and_fails_after_a_byte_changes(copy: Path) -> None:
    folders = version_folders(copy)
    assert {f.name for f in folders} == {"CNG", "source"} and len(folders) == 2 * len(ARCHIVES)
    for folder in folders:
        check = subprocess.run([SHA256SUM, "-c", MANIFEST], cwd=folder, capture_output=True, text=True)  # type: ignore[list-item]
        assert check.returncode == 0, check.stdout + check.stderr
        assert len(read_manifest(folder / MANIFEST)) == sum(1 for p in folder.iterdir() if p.name != MANIFEST)
    victim = sorted(p for p in folders[0].iterdir() if p.name != MANIFEST)[3]
    flip_a_byte(victim)
    check = subprocess.run([SHA256SUM, "-c", MANIFEST], cwd=folders[0], capture_output=True, text=True)  # type: ignore[list-item]
    assert check.returncode == 1 and f"{victim.name}: FAILED" in check.stdout


def test_verify_without_a_state_store_repairs_a_corrupt_file_from_the_manifests(
    copy: Path, emu: Emulator
) -> None:
    for leftover in (copy / STATE_DIR).glob(f"{STATE_FILE}*"):
        leftover.unlink()
    folder = copy / "siegert" / "CNG"
    victim = sorted(p for p in folder.iterdir() if p.name != MANIFEST)[2]
    good = victim.read_bytes()
    flip_a_byte(victim)
    rel = victim.relative_to(copy).as_posix()
    assert check_manifests(copy).bad == [rel]
    code, printed, report = run(emu, copy, *archive_args(*ARCHIVES), "--version", "both", "--verify")
    assert code == 0, printed
    assert victim.read_bytes() == good
    assert report["damaged"] == [rel]
    # The catalogue vouches for the other hashes (checked against the server when fetched): only the
    # corrupt file is fetched; the rest is re-hashed locally.
    assert report["downloaded"] == 1
    assert check_manifests(copy).bad == []
    # The state store was rebuilt: a plain run afterwards asks the server for no file.
    code, printed, report = run(emu, copy, *archive_args(*ARCHIVES), "--version", "both")
    assert code == 0 and report["downloaded"] == 0 and report["adopted"] == 0, printed


def test_references_bib_holds_the_two_required_entries_and_one_per_doi(
    mirrored: tuple[Path, str, dict[str, Any]],
) -> None:
    root, _, _ = mirrored
    entries = bib_entries((root / BIB_FILE).read_text(encoding="utf-8"))
    assert "RRID:SCR_002145" in entries["neuromorpho_org"]
    assert "doi = {10.1096/fba.2024-00048}" in entries["tecuatl_2024_neuromorpho"]
    dois = {d.lower() for r in mirrored_records(root) for d in r["reference_doi"] or []}
    cited = [e for k, e in entries.items() if k.startswith("doi_")]
    assert len(cited) == len(dois) > 2
    assert len(entries) == 3 + len(dois)
    for doi in dois:
        assert sum(doi in e.lower() for e in cited) == 1, doi
    assert "RRID:SCR_002145" in (root / CITATION_FILE).read_text(encoding="utf-8")


# -- what changed upstream ---------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator(**changes: Any) -> Iterator[Emulator]:
    """The session emulator's catalogue (same seed), with ``changes`` on top."""
    settings: dict[str, Any] = {"neurons": 400, "seed": 7, "tls": "none", "file_kb": 4, **changes}
    config = EmulatorConfig(**settings)
    with serve_in_thread(config) as server:
        yield server


def archive_ids(emulator: Emulator, archive: str) -> list[int]:
    cat = emulator.catalogue
    return [i for i in cat.neuron_ids() if (cat.record(i) or {}).get("archive") == archive]


def brief(emulator: Emulator, neuron_id: int) -> dict[str, Any]:
    record = emulator.catalogue.record(neuron_id)
    assert record is not None
    return {"neuron_id": neuron_id, "neuron_name": record["neuron_name"], "archive": record["archive"]}


def test_a_changed_catalogue_records_exactly_the_three_changes(emu: Emulator, tmp_path: Path) -> None:
    root = tmp_path / "out"
    ids = archive_ids(emu, "Siegert")
    removed, edited = ids[4], ids[6]
    code, printed, _ = run(emu, root, "--archive", "Siegert")
    assert code == 0, printed
    gone_file = root / relative_path(Neuron.from_record(emu.catalogue.record(removed) or {}), Version.CNG)
    assert gone_file.is_file()
    changes = CatalogueChanges(
        add=(("Siegert", 1),), remove=(removed,), edit=((edited, "species", "guinea pig"),)
    )
    with emulator(catalogue_changes=changes) as changed:
        (added,) = sorted(set(archive_ids(changed, "Siegert")) - set(ids))
        code, printed, report = run(changed, root, "--archive", "Siegert")
        assert code == 0, printed
        expected_new, expected_changed = (
            brief(changed, added),
            {**brief(changed, edited), "fields": ["species"]},
        )
    expected_gone = brief(emu, removed)
    first, second = changes_lines(root)
    assert first["baseline"] is True and second["baseline"] is False
    assert second["counts"] == {"new": 1, "gone": 1, "returned": 0, "changed": 1, "files_changed": 0}
    assert second["new"] == [expected_new] and second["gone"] == [expected_gone]
    assert second["changed"] == [expected_changed] and second["returned"] == second["files_changed"] == []
    assert report["dataset"]["changes"]["counts"] == second["counts"]
    assert report["dataset"]["changes"]["gone"] == [expected_gone]
    assert "since the last run: 1 new, 1 gone upstream (kept), 0 back, 1 with changed metadata" in printed
    # The gone neuron is kept and flagged, with its file and its manifest line.
    assert gone_file.is_file()
    with contextlib.closing(sqlite3.connect(root / CATALOGUE_FILE)) as db:
        assert db.execute("SELECT gone_upstream FROM neurons WHERE neuron_id=?", (removed,)).fetchone() == (
            1,
        )
        (held,) = db.execute(
            "SELECT COUNT(*) FROM neurons WHERE archive='Siegert' AND gone_upstream=0"
        ).fetchone()
    assert held == len(ids)  # +1 -1
    assert gone_file.name in read_manifest(gone_file.parent / MANIFEST)
    coverage = {c["archive"]: c for c in report["dataset"]["coverage"]}
    assert coverage["Siegert"]["status"] == "complete" and coverage["Siegert"]["server"] == len(ids)


def test_delete_gone_deletes_the_files_of_gone_neurons_only_when_asked(emu: Emulator, tmp_path: Path) -> None:
    root = tmp_path / "out"
    assert run(emu, root, "--archive", "Siegert", "--version", "both")[0] == 0
    ids = archive_ids(emu, "Siegert")
    neuron = Neuron.from_record(emu.catalogue.record(ids[2]) or {})
    files = [root / relative_path(neuron, v) for v in (Version.CNG, Version.SOURCE)]
    with emulator(catalogue_changes=CatalogueChanges(remove=(ids[2],))) as changed:
        code, printed, report = run(changed, root, "--archive", "Siegert", "--version", "both")
        assert code == 0 and all(f.is_file() for f in files), printed  # flagged, kept
        assert report["dataset"]["changes"]["counts"]["gone"] == 1
        code, printed, report = run(
            changed, root, "--archive", "Siegert", "--version", "both", "--delete-gone"
        )
    assert code == 0, printed
    assert not any(f.exists() for f in files)
    assert report["dataset"]["deleted_gone"] == sorted(f.relative_to(root).as_posix() for f in files)
    assert "--delete-gone: 2 files of neurons gone upstream deleted" in printed
    assert check_manifests(root).bad == [] and all(
        f.name not in read_manifest(f.parent / MANIFEST) for f in files
    )
    with contextlib.closing(sqlite3.connect(root / CATALOGUE_FILE)) as db:
        assert db.execute("SELECT gone_upstream FROM neurons WHERE neuron_id=?", (ids[2],)).fetchone() == (1,)
    with contextlib.closing(sqlite3.connect(root / STATE_DIR / STATE_FILE)) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM files WHERE path LIKE ?", (f"%{neuron.name}%",)).fetchone()
    assert rows == 0
    # The next run neither fetches them again nor brings them back into the catalogue.
    with emulator(catalogue_changes=CatalogueChanges(remove=(ids[2],))) as changed:
        code, printed, report = run(changed, root, "--archive", "Siegert", "--version", "both")
    assert code == 0 and report["downloaded"] == 0 and report["dataset"]["files"] == 2 * (len(ids) - 1), (
        printed
    )


def test_a_query_run_declares_nothing_gone(emu: Emulator, tmp_path: Path) -> None:
    root = tmp_path / "out"
    assert run(emu, root, "--archive", "Siegert")[0] == 0
    ids = archive_ids(emu, "Siegert")
    with emulator(catalogue_changes=CatalogueChanges(remove=(ids[1],))) as changed:
        code, printed, report = run(changed, root, "--query", "archive:Siegert", "--limit", "5")
    assert code == 0, printed
    assert report["dataset"]["changes"]["counts"]["gone"] == 0


def test_refresh_records_the_files_that_changed_upstream(emu: Emulator, tmp_path: Path) -> None:
    root = tmp_path / "out"
    assert run(emu, root, "--archive", "Siegert")[0] == 0
    paths = sorted(
        p.relative_to(root).as_posix() for p in (root / "siegert" / "CNG").iterdir() if p.name != MANIFEST
    )
    # Same records, other file sizes: every body (and its ETag) changed upstream.
    with emulator(file_kb=5) as changed:
        code, printed, _ = run(changed, root, "--archive", "Siegert", "--refresh")
    assert code == 0, printed
    last = changes_lines(root)[-1]
    assert last["files_changed"] == paths and last["counts"]["files_changed"] == len(paths)
    assert last["counts"]["new"] == last["counts"]["changed"] == last["counts"]["gone"] == 0
    assert check_manifests(root).bad == []


# -- kill -9 while the dataset layer is written ------------------------------------------------------------


def consistent(root: Path) -> None:
    """What a finished run guarantees: catalogue = records, manifests = files, citations and changes there."""
    records = {r["neuron_id"]: r for r in mirrored_records(root)}
    with contextlib.closing(sqlite3.connect(root / CATALOGUE_FILE)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        held = {nid for (nid,) in db.execute("SELECT neuron_id FROM neurons WHERE gone_upstream=0")}
        (logged,) = db.execute("SELECT COUNT(*) FROM changes").fetchone()
    assert held == set(records)
    result = check_manifests(root)
    assert result.bad == [] and result.checked == sum(
        1 for f in version_folders(root) for p in f.iterdir() if p.name != MANIFEST
    )
    assert (root / CITATION_FILE).is_file() and (root / BIB_FILE).is_file()
    assert len(changes_lines(root)) == logged


def no_half_written_files(root: Path) -> None:
    """Right after a ``kill -9``: every dataset file there is whole (old or new), never a mix."""
    for manifest in root.glob(f"*/*/{MANIFEST}"):
        for line in manifest.read_text().splitlines():
            assert len(line) > 66 and line[64:66] == "  ", manifest
    if (root / CHANGES_FILE).is_file():
        changes_lines(root)  # every line parses
    if (root / CATALOGUE_FILE).is_file():
        with contextlib.closing(sqlite3.connect(root / CATALOGUE_FILE)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def spawn_cli(emulator: Emulator, root: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(cli.__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    args = [sys.executable, "-m", "neuromorpho_fetch", "--base-url", emulator.base_url, "--out", str(root)]
    return subprocess.Popen(
        [*args, *FAST, "--quiet", *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.system
def test_kill_9_while_the_catalogue_and_manifests_are_written_and_the_next_run_repairs(
    tmp_path: Path,
) -> None:
    """Kill at random moments of the run's last part, where it writes the dataset layer.

    Each round forces real work there (the catalogue, the manifests and the citations are deleted, so
    the run rebuilds them from the tree) and kills the process at a random moment of the stretch the
    first, timed round spent after its files were settled. Each kill must leave whole files, and the
    next run must leave everything consistent. At least one kill must land inside the dataset step
    (seen as a catalogue that exists again but was left without a finished run).
    """
    rng = random.Random(12)
    with emulator() as server:
        root = tmp_path / "out"
        args = ["--all", "--version", "both"]
        assert run(server, root, *args)[0] == 0

        def reset() -> None:
            for name in (CATALOGUE_FILE, CITATION_FILE, BIB_FILE):
                (root / name).unlink(missing_ok=True)
            for manifest in root.glob(f"*/*/{MANIFEST}"):
                manifest.unlink()

        reset()
        started = time.monotonic()
        timed = spawn_cli(server, root, *args)
        assert timed.wait(120) == 0, timed.stderr.read() if timed.stderr else ""
        wall = time.monotonic() - started
        report = json.loads((root / STATE_DIR / "last-report.json").read_text())
        finalize_s = report["dataset"]["seconds"]
        consistent(root)
        inside = 0
        step = wall - finalize_s  # where the dataset step starts, as timed; corrected round by round
        for _ in range(10):
            reset()
            proc = spawn_cli(server, root, *args)
            when = max(0.0, step + rng.uniform(-0.05, finalize_s))
            time.sleep(when)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(60)
            no_half_written_files(root)
            killed = proc.returncode == -signal.SIGKILL
            if killed and (root / CATALOGUE_FILE).is_file():
                inside += 1
            elif killed:
                step += 0.05  # too early this time (the machine is slower than when timed)
            else:
                step -= 0.1  # the run had finished
            code, printed, _ = run(server, root, *args)
            assert code == 0, printed
            consistent(root)
        assert inside >= 2, (
            f"no kill landed in the dataset step (wall {wall:.2f}s, finalize {finalize_s:.2f}s)"
        )
