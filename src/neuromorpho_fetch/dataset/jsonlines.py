"""Reading the mirror's JSON-lines files into the catalogue: records in batches, and ``morphometry.jsonl``.

Apart from :mod:`.finalize` (which decides what changed) so that each stays small; both stream in
batches of :data:`~.summary.BATCH`, so memory never grows with the mirror.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..jsonio import loads_fast
from .catalogue import MORPHOMETRY_COLUMNS
from .summary import BATCH

_MORPH_COLS = ", ".join(f'"{c}"' for c in MORPHOMETRY_COLUMNS)
_UPSERT_MORPH = f"""
INSERT INTO morphometry (neuron_id, {_MORPH_COLS}, record)
VALUES (?, {", ".join("?" * len(MORPHOMETRY_COLUMNS))}, ?)
ON CONFLICT(neuron_id) DO UPDATE SET
    {", ".join(f'"{c}"=excluded."{c}"' for c in MORPHOMETRY_COLUMNS)}, record=excluded.record
"""


def line_batches(path: Path) -> Iterator[list[str]]:
    """The non-blank lines of a JSON-lines file, without their newline, in batches of :data:`BATCH`."""
    batch: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.strip():
                batch.append(line)
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def _batches(path: Path) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """``(line, record)`` pairs in batches; undecodable lines come through with an empty record."""
    for lines in line_batches(path):
        yield [(line, _object(line)) for line in lines]


def _object(line: str) -> dict[str, Any]:
    """The JSON object on ``line``; empty when it is not one."""
    try:
        record = loads_fast(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def read_morphometry(conn: sqlite3.Connection, path: Path) -> None:
    for batch in _batches(path):
        by_id: dict[int, tuple[str, dict[str, Any]]] = {}
        for line, record in batch:
            try:
                by_id[int(record["neuron_id"])] = (line, record)
            except (KeyError, TypeError, ValueError):
                continue
        if not by_id:
            continue
        marks = ",".join("?" * len(by_id))
        held = dict(
            conn.execute(
                f"SELECT neuron_id, record FROM morphometry WHERE neuron_id IN ({marks})", list(by_id)
            )
        )
        rows = [
            (nid, *(_number(record.get(c)) for c in MORPHOMETRY_COLUMNS), line)
            for nid, (line, record) in by_id.items()
            if held.get(nid) != line
        ]
        if rows:
            conn.executemany(_UPSERT_MORPH, rows)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
