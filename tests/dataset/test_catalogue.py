"""The catalogue holds every mirrored record field for field, and every held file with its true hash."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch.dataset import CATALOGUE_FILE, FileFact, facts_from_state, finalize
from neuromorpho_fetch.dataset.catalogue import (
    FIELD_COLUMNS,
    MORPHOMETRY_COLUMNS,
    connect,
    row_to_record,
)
from neuromorpho_fetch.dataset.fieldtypes import typed_record
from neuromorpho_fetch.dataset.finalize import _relative
from neuromorpho_fetch.errors import NoSuchFileError
from neuromorpho_fetch.layout import relative_path
from neuromorpho_fetch.models import Neuron, Version
from neuromorpho_fetch.sqlitedb import create_schema

from .conftest import ARCHIVES

COMPLETE = "SELECT path, size, sha256, updated_at FROM files WHERE status='complete'"


def records(root: Path) -> dict[int, dict[str, Any]]:
    found = {}
    for path in root.glob("*/metadata.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            found[record["neuron_id"]] = record
    return found


def rows(root: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(root / CATALOGUE_FILE)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_rows_equal_the_mirrored_records_field_for_field(mirror_root: Path) -> None:
    mirrored = records(mirror_root)
    assert {r["archive"] for r in mirrored.values()} == set(ARCHIVES)
    held = {row["neuron_id"]: row for row in rows(mirror_root, "SELECT * FROM neurons")}
    assert held.keys() == mirrored.keys()
    for neuron_id, record in mirrored.items():
        row = held[neuron_id]
        assert json.loads(row["record"]) == record
        typed = dict(zip(FIELD_COLUMNS, typed_record(record), strict=True))
        assert dict(row) | typed == dict(row)  # each column holds the typed value of the served one
        assert row_to_record(dict(row))["brain_region"] == json.loads(typed["brain_region"] or "null")
        assert row["gone_upstream"] == 0


def test_every_file_row_names_an_existing_file_with_its_true_hash(mirror_root: Path) -> None:
    files = rows(mirror_root, "SELECT * FROM files")
    on_disk = {
        p.relative_to(mirror_root).as_posix()
        for p in mirror_root.glob("*/*/*")
        if p.name != "SHA256SUMS" and p.parent.name in ("CNG", "source")
    }
    assert {f["path"] for f in files} == on_disk
    mirrored = records(mirror_root)
    for f in files:
        body = (mirror_root / f["path"]).read_bytes()
        assert (f["size"], f["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert f["neuron_id"] in mirrored
        assert f["path"].split("/")[:2] == [f["archive"], f["version"]]


def test_morphometry_rows_equal_the_fetched_records(mirror_root: Path) -> None:
    fetched = {}
    for path in mirror_root.glob("*/morphometry.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            fetched[json.loads(line)["neuron_id"]] = json.loads(line)
    held = {row["neuron_id"]: row for row in rows(mirror_root, "SELECT * FROM morphometry")}
    assert held.keys() == fetched.keys() == records(mirror_root).keys()
    for neuron_id, record in fetched.items():
        row = held[neuron_id]
        assert {c: row[c] for c in MORPHOMETRY_COLUMNS} == {c: record[c] for c in MORPHOMETRY_COLUMNS}


def test_readable_without_our_code(mirror_root: Path) -> None:
    with sqlite3.connect(mirror_root / CATALOGUE_FILE) as conn:
        frame = pandas.read_sql("SELECT neuron_name, species, brain_region FROM neurons", conn)
    assert len(frame) == len(records(mirror_root))
    assert all(isinstance(json.loads(v), list) for v in frame["brain_region"])


def test_facts_from_the_state_store_are_recorded_as_given(mirror_copy: Path) -> None:
    """The run hands its hashes over (no re-hashing); a verified flag survives a later unverified fact."""
    with sqlite3.connect(mirror_copy / ".neuromorpho-fetch" / "state.sqlite") as store:
        state = list(store.execute(COMPLETE))
    (mirror_copy / CATALOGUE_FILE).unlink()
    # The mirror downloaded every file, so the store's ``verified`` column says each was checked.
    assert list(facts_from_state(mirror_copy / ".neuromorpho-fetch" / "state.sqlite")) == [
        FileFact(p, size, sha, when, verified=True) for p, size, sha, when in state
    ]
    facts = [FileFact(p, size, sha, when, verified=True) for p, size, sha, when in state]
    finalize(mirror_copy, files=facts)
    finalize(mirror_copy, files=[FileFact(p, s, h, w) for p, s, h, w in state])
    held = {r["path"]: r for r in rows(mirror_copy, "SELECT * FROM files")}
    assert {p: (r["size"], r["sha256"], r["fetched_at"]) for p, r in held.items()} == {
        p: (s, h, w) for p, s, h, w in state
    }
    assert all(r["verified"] == 1 for r in held.values())


def test_rebuilt_from_metadata_and_tree_when_missing(mirror_copy: Path) -> None:
    before = rows(mirror_copy, "SELECT * FROM neurons ORDER BY neuron_id")
    files_before = rows(mirror_copy, "SELECT path, sha256, size FROM files ORDER BY path")
    (mirror_copy / CATALOGUE_FILE).unlink()
    summary = finalize(mirror_copy)
    assert summary.rebuilt and summary.changes.baseline
    after = rows(mirror_copy, "SELECT * FROM neurons ORDER BY neuron_id")
    assert [json.loads(r["record"]) for r in after] == [json.loads(r["record"]) for r in before]
    assert [tuple(r) for r in rows(mirror_copy, "SELECT path, sha256, size FROM files ORDER BY path")] == [
        tuple(r) for r in files_before
    ]


def test_an_unreadable_catalogue_is_moved_aside_and_rebuilt(mirror_copy: Path) -> None:
    (mirror_copy / CATALOGUE_FILE).write_bytes(b"not a database" * 100)
    summary = finalize(mirror_copy)
    assert summary.rebuilt
    assert summary.neurons == len(records(mirror_copy))
    assert list(mirror_copy.glob(f"{CATALOGUE_FILE}.corrupt-*"))


def test_odd_values_are_stored_as_served(tmp_path: Path) -> None:
    """Values as the server sends them, whatever their type: a list field served as a scalar still
    decodes to that scalar, a missing key and null are both NULL, non-ASCII text is kept."""
    odd = {
        "neuron_id": 7,
        "neuron_name": "n ü",
        "archive": "A",
        "brain_region": "layer 5",
        "cell_type": [],
        "reference_pmid": None,
        "reference_doi": ["10.1000/ä"],
        "species": "Praying mantis (Hierodula membranacea)",
        "magnification": 100,
        "note": {"odd": [1, 2]},
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metadata.jsonl").write_text(
        json.dumps(odd, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    finalize(tmp_path)
    (row,) = rows(tmp_path, "SELECT * FROM neurons")
    assert json.loads(row["record"]) == odd  # the record as served, whatever the typed columns say
    assert row["note"] == '{"odd": [1, 2]}'  # an object outside the list fields is JSON text
    assert row["magnification"] == 100.0
    # A scalar in a list field is a one-element list; an empty list or null is NULL.
    assert (row["brain_region"], row["cell_type"], row["experiment_condition"]) == ('["layer 5"]', None, None)
    assert row_to_record(dict(row))["reference_doi"] == ["10.1000/ä"]


def test_an_escaped_lone_surrogate_in_metadata_is_skipped_and_the_rest_catalogued(tmp_path: Path) -> None:
    """A line of valid UTF-8 can still decode to text that is not valid Unicode (``\\ud800``): the
    catalogue takes a line as its record's encoding only without escapes, so such a line is skipped as
    not a neuron record, never written to SQLite (where it would fail the whole step), and an escaped
    control character is still a record."""
    (tmp_path / "a").mkdir()
    good = json.dumps({"neuron_id": 1, "neuron_name": "tab\there", "archive": "A"})
    bad = '{"neuron_id": 2, "neuron_name": "lone \\ud800", "archive": "A"}'
    (tmp_path / "a" / "metadata.jsonl").write_text(f"{good}\n{bad}\n", encoding="utf-8")
    summary = finalize(tmp_path)
    assert summary.skipped_lines == 1
    assert [(r["neuron_id"], r["neuron_name"]) for r in rows(tmp_path, "SELECT * FROM neurons")] == [
        (1, "tab\there")
    ]


def test_a_line_nested_too_deep_is_skipped_and_the_rest_catalogued(tmp_path: Path) -> None:
    """A line nested past the recursion limit (a file edited by hand, a broken tool) is not a record:
    skipped, counted, and the catalogue still made (json.loads's RecursionError had failed the whole
    step on every run)."""
    (tmp_path / "a").mkdir()
    good = json.dumps({"neuron_id": 1, "neuron_name": "n1", "archive": "A"})
    deep = '{"neuron_id": 2, "x": ' + "[" * 5000 + "]" * 5000 + "}"
    (tmp_path / "a" / "metadata.jsonl").write_text(f"{good}\n{deep}\n", encoding="utf-8")
    (tmp_path / "a" / "morphometry.jsonl").write_text(
        '{"neuron_id": 1, "soma_surface": 5.0}\n' + "[" * 5000 + "\n", encoding="utf-8"
    )
    summary = finalize(tmp_path)
    assert summary.skipped_lines == 1
    assert [r["neuron_id"] for r in rows(tmp_path, "SELECT * FROM neurons")] == [1]
    assert [r["neuron_id"] for r in rows(tmp_path, "SELECT * FROM morphometry")] == [1]


@given(
    # Any name a record may carry: non-blank, and valid Unicode (models.parse_record rejects the rest).
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=260).filter(str.strip),
    st.sampled_from(["Siegert", "Allen Cell Types", ".hidden", "a/b", "100%"]),
    st.sampled_from([None, "Neurolucida.DAT", "x.swc"]),
    st.sampled_from(list(Version)),
)
def test_the_fast_path_equals_relative_path(
    name: str, archive: str, fmt: str | None, version: Version
) -> None:
    record = {"neuron_id": 1, "neuron_name": name, "archive": archive, "original_format": fmt}
    record["png_url"] = f"http://neuromorpho.org/images/imageFiles/{archive}/{name}.png"
    neuron = Neuron.from_record(record)
    try:
        expected: str | None = relative_path(neuron, version).as_posix()
    except NoSuchFileError:
        expected = None
    assert _relative(neuron, version) == expected


def test_a_new_file_of_an_unchanged_neuron_gets_its_neuron(mirror_copy: Path) -> None:
    """A later run adds a version (--version source) for neurons whose records did not change."""
    with sqlite3.connect(mirror_copy / CATALOGUE_FILE) as conn:
        before = dict(conn.execute("SELECT path, neuron_id FROM files WHERE version='source'"))
        conn.execute("DELETE FROM files WHERE version='source'")
    assert before
    facts = [
        f for f in facts_from_state(mirror_copy / ".neuromorpho-fetch" / "state.sqlite") if f.path in before
    ]
    summary = finalize(mirror_copy, files=facts)
    assert summary.changes.counts == dict.fromkeys(summary.changes.counts, 0)
    assert {
        r[0]: r[1] for r in rows(mirror_copy, "SELECT path, neuron_id FROM files WHERE version='source'")
    } == before


def test_no_per_neuron_question_scans_a_whole_table(tmp_path: Path) -> None:
    """The holdings (every run's end, CITATION.md, coverage) ask per neuron whether it has a file and a
    problem of each kind. Each of those questions is an index search: a scan per neuron made the end of
    a mirror with many failed files quadratic (1,000 failed of 5,000 took 1.2 s; hours at full scale)."""
    from neuromorpho_fetch.dataset.coverage import _PER_NEURON

    conn, created = connect(tmp_path / CATALOGUE_FILE)
    assert created
    try:
        for sql in (_PER_NEURON, "SELECT * FROM holdings"):
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            inner = [step for step in plan if not step.startswith(("SCAN n", "CORRELATED"))]
            assert inner and all(step.startswith("SEARCH") for step in inner), plan
    finally:
        conn.close()


def test_a_schema_is_made_whole_or_not_at_all(tmp_path: Path) -> None:
    """Both databases create their schema in one transaction: a failure part way (here a bad
    statement after a good one; in life a kill or a full disk) leaves no half-made schema behind."""
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        create_schema(conn, "CREATE TABLE made (x);\nCREATE TABLE broken (;", user_version=7)
    conn.rollback()
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    assert conn.execute("PRAGMA user_version").fetchone() == (0,)
    conn.close()


def test_a_new_catalogue_has_every_table_and_its_version(tmp_path: Path) -> None:
    conn, created = connect(tmp_path / CATALOGUE_FILE)
    try:
        assert created
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        assert {"meta", "neurons", "files", "coverage", "file_problems", "holdings"} <= names
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2
        assert not conn.in_transaction
    finally:
        conn.close()
    again, created = connect(tmp_path / CATALOGUE_FILE)
    again.close()
    assert created  # no schema_version row yet: the first finalize has not committed


def test_the_holdings_give_each_neuron_one_reason_in_order(tmp_path: Path) -> None:
    """A neuron with a file present counts as with files, whatever else failed; without one, a failed
    file wins over an unfinished one, which wins over one the server does not have; a neuron gone
    upstream is not counted at all."""
    from neuromorpho_fetch.dataset.coverage import Holdings, _tally, holdings

    conn, _ = connect(tmp_path / CATALOGUE_FILE)
    problems = {  # neuron id: (has a file present, its problems)
        1: (True, ["failed"]),
        2: (False, ["missing", "failed"]),
        3: (False, ["missing", "pending"]),
        4: (False, ["missing"]),
        5: (False, []),
        6: (True, []),
    }
    for nid, (present, reasons) in problems.items():
        conn.execute(
            "INSERT INTO neurons (neuron_id, neuron_name, archive, record, first_run, changed_run) "
            "VALUES (?, ?, ?, '{}', 1, 1)",
            (nid, f"n{nid}", "A" if nid < 4 else "B"),
        )
        if present:
            conn.execute(
                "INSERT INTO files VALUES (?, ?, 'a', 'CNG', 1, 'x', 0, 1)", (f"a/CNG/n{nid}.swc", nid)
            )
        for i, reason in enumerate(reasons):
            conn.execute(
                "INSERT INTO file_problems VALUES (?, ?, 'a', 'CNG', ?, NULL)", (f"p{nid}-{i}", nid, reason)
            )
    conn.execute(
        "INSERT INTO neurons (neuron_id, neuron_name, archive, record, first_run, changed_run, "
        "gone_upstream) VALUES (7, 'gone', 'B', '{}', 1, 1, 1)"
    )
    try:
        assert holdings(conn) == Holdings(catalogued=6, with_files=2, failed=1, unfinished=1, missing=1)
        assert _tally(conn) == {"A": (3, 1, 1, 1, 0), "B": (3, 1, 0, 0, 1)}
    finally:
        conn.close()
