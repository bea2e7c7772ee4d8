"""Issue 17 item 1: numbers are numbers in the catalogue and in pandas, placeholders are missing values,
and a numeric filter gives the answer computed from ``metadata.jsonl`` by hand."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pandas
import pytest

from neuromorpho_fetch.dataset import CATALOGUE_FILE, LocalMirror, finalize
from neuromorpho_fetch.dataset.catalogue import FIELD_COLUMNS, USER_VERSION
from neuromorpho_fetch.dataset.fieldtypes import FIELD_TYPES, SQL_TYPES, typed_value

NUMERIC = [name for name, kind in FIELD_TYPES.items() if kind in ("integer", "real")]


def served(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(root.glob("*/metadata.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def by_hand(value: Any) -> float | None:
    """A number as a scientist reads it off the record: anything that is not one is missing."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{root / CATALOGUE_FILE}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


def test_every_numeric_column_is_integer_real_or_null(mirror_root: Path) -> None:
    for name in NUMERIC:
        kinds = {k for (k,) in query(mirror_root, f'SELECT DISTINCT typeof("{name}") FROM neurons')}
        assert kinds <= {"integer", "real", "null"}, (name, kinds)
    # And the emulator's records do carry numbers as strings and placeholders, so this means something.
    records = served(mirror_root)
    assert any(isinstance(r.get("soma_surface"), str) for r in records)
    assert any(r.get("shrinkage_corrected") == "Not reported" for r in records)


@pytest.mark.parametrize("field", NUMERIC)
def test_numeric_filters_in_sql_and_pandas_equal_the_filter_on_the_records(
    mirror_root: Path, field: str
) -> None:
    records = served(mirror_root)
    values = sorted({v for r in records if (v := by_hand(r.get(field))) is not None})
    # The emulator fills every numeric field but the reported/corrected shrinkage values with several
    # values; those may all be null in a small mirror, where the filter selects nothing (still checked).
    threshold = values[len(values) // 2 - 1] if len(values) > 1 else 0.0
    expected = {r["neuron_id"] for r in records if (v := by_hand(r.get(field))) is not None and v > threshold}
    if field in ("soma_surface", "min_age", "max_age", "slicing_thickness", "magnification", "neuron_id"):
        assert 0 < len(expected) < len(records)
    in_sql = {
        nid for (nid,) in query(mirror_root, f'SELECT neuron_id FROM neurons WHERE "{field}" > {threshold}')
    }
    assert in_sql == expected
    (count,) = query(mirror_root, f'SELECT TOTAL("{field}" > {threshold}) FROM neurons')[0]
    assert count == len(expected)
    with LocalMirror(mirror_root) as mirror:
        frame = mirror.to_pandas()
    assert pandas.api.types.is_numeric_dtype(frame[field])
    assert set(frame.loc[frame[field] > threshold, "neuron_id"]) == expected
    missing = {r["neuron_id"] for r in records if by_hand(r.get(field)) is None}
    assert set(frame.loc[frame[field].isna(), "neuron_id"]) == missing


def test_pandas_types(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        frame = mirror.to_pandas()
    assert str(frame["neuron_id"].dtype) == "Int64"
    assert pandas.api.types.is_datetime64_any_dtype(frame["upload_date"])
    assert all(isinstance(v, list) for v in frame["brain_region"].dropna())
    placeholders = {
        r["neuron_id"] for r in served(mirror_root) if r.get("shrinkage_corrected") == "Not reported"
    }
    assert placeholders
    assert frame.set_index("neuron_id").loc[sorted(placeholders), "shrinkage_corrected"].isna().all()


def test_placeholders_become_null() -> None:
    assert typed_value("min_weight", "Not Reported") is None
    assert typed_value("slicing_thickness", "Not applicable") is None
    assert typed_value("slicing_thickness", " 350 ") == 350.0
    assert typed_value("objective_type", "Not reported") is None
    assert typed_value("note", "") is None
    assert typed_value("gender", "NA") is None
    assert typed_value("reference_pmid", ["-26"]) is None
    assert typed_value("reference_pmid", ["-26", "12204204"]) == '["12204204"]'
    assert typed_value("upload_date", "2006-08-01") == "2006-08-01"
    assert typed_value("upload_date", "sometime") is None
    assert typed_value("neuron_id", "7") == 7


def test_a_version_1_catalogue_is_migrated_in_place(mirror_root: Path, tmp_path: Path) -> None:
    """A catalogue written before the typed schema (fields as served, user_version 0) becomes typed on
    the next open, keeping its run history."""
    root = tmp_path / "out"
    shutil.copytree(mirror_root, root)
    db = root / CATALOGUE_FILE
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP VIEW IF EXISTS holdings")
        cols = ", ".join(f'"{c}"' for c in FIELD_COLUMNS)
        conn.execute("CREATE TABLE old AS SELECT * FROM neurons")
        conn.execute("DROP TABLE neurons")
        untyped = ", ".join(
            f'"{c}"' + (" INTEGER PRIMARY KEY" if c == "neuron_id" else "") for c in FIELD_COLUMNS
        )
        conn.execute(
            f"CREATE TABLE neurons ({untyped}, record TEXT NOT NULL, first_run INTEGER NOT NULL, "
            "changed_run INTEGER NOT NULL, gone_upstream INTEGER NOT NULL DEFAULT 0, gone_run INTEGER)"
        )
        served_cols = ", ".join(f"json_extract(record, '$.\"{c}\"')" for c in FIELD_COLUMNS)
        conn.execute(
            f"INSERT INTO neurons ({cols}, record, first_run, changed_run, gone_upstream, gone_run) "
            f"SELECT {served_cols}, record, first_run, 41, gone_upstream, gone_run FROM old"
        )
        conn.execute("DROP TABLE old")
        # The version-1 coverage table had neither column.
        conn.execute("ALTER TABLE coverage DROP COLUMN failed")
        conn.execute("ALTER TABLE coverage DROP COLUMN listing_complete")
        conn.execute("PRAGMA user_version=0")
        conn.commit()
        assert {k for (k,) in conn.execute("SELECT DISTINCT typeof(soma_surface) FROM neurons")} >= {"text"}
    finalize(root)
    assert query(root, "PRAGMA user_version") == [(USER_VERSION,)]
    kinds = {k for (k,) in query(root, "SELECT DISTINCT typeof(soma_surface) FROM neurons")}
    assert kinds <= {"real", "null"}
    assert query(root, "SELECT DISTINCT changed_run FROM neurons") == [(41,)]  # history kept
    assert not list(root.glob(f"{CATALOGUE_FILE}.corrupt-*"))  # migrated, not set aside
    (strict,) = query(root, "SELECT strict FROM pragma_table_list WHERE name='neurons'")[0]
    assert strict == 1


def test_the_schema_page_lists_every_column_with_its_type() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "dataset.md").read_text(encoding="utf-8")
    for name, kind in FIELD_TYPES.items():
        assert re.search(rf"^\| `{name}` \| {kind} \| `{SQL_TYPES[kind]}` \|", page, re.M), name
    for placeholder in ("Not reported", "Not Reported", "NA", "-26"):
        assert f'"{placeholder}"' in page
