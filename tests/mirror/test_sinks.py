"""The archive folders' JSON-lines files: the merge rule, and no rewrite when nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

from neuromorpho_fetch.mirror.sinks import Sinks
from neuromorpho_fetch.paths import METADATA_FILE, MirrorPaths, is_temp_name


def line(neuron_id: int, archive: str = "Smith", note: str = "") -> bytes:
    record = {"neuron_id": neuron_id, "neuron_name": f"n{neuron_id}", "archive": archive, "note": note}
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def write(root: Path, lines: list[bytes], gone: frozenset[str] = frozenset()) -> list[str]:
    sinks = Sinks(MirrorPaths(root))
    sinks.add("smith", METADATA_FILE, lines, [json.loads(x)["neuron_id"] for x in lines])
    return sinks.publish(gone)


def held(root: Path) -> list[bytes]:
    return (root / "smith" / METADATA_FILE).read_bytes().splitlines(keepends=True)


def test_the_same_lines_leave_the_file_untouched(tmp_path: Path) -> None:
    lines = [line(i) for i in range(1, 2001)]
    assert write(tmp_path, lines) == ["smith"]
    before = (tmp_path / "smith" / METADATA_FILE).stat()
    assert write(tmp_path, lines) == []  # compared as they came: nothing written, nothing renamed
    after = (tmp_path / "smith" / METADATA_FILE).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [p for p in (tmp_path / "smith").iterdir() if is_temp_name(p.name)]


def test_a_change_in_the_middle_is_written_whole(tmp_path: Path) -> None:
    lines = [line(i) for i in range(1, 2001)]
    write(tmp_path, lines)
    lines[1500] = line(1501, note="edited upstream")
    assert write(tmp_path, lines) == ["smith"]
    assert held(tmp_path) == lines


def test_a_partial_listing_keeps_the_rows_it_did_not_see(tmp_path: Path) -> None:
    """Issue 15 item 1: 3 of 10 seen is not the archive; the 7 others stay."""
    full = [line(i) for i in range(1, 11)]
    write(tmp_path, full)
    assert write(tmp_path, full[:3]) == []  # a prefix of the old file, and nothing proved gone
    assert held(tmp_path) == full
    edited = [line(2, note="new"), full[4]]
    write(tmp_path, edited)
    assert sorted(held(tmp_path)) == sorted([*edited, *(x for i, x in enumerate(full) if i not in (1, 4))])


def test_only_a_complete_whole_listing_drops_rows(tmp_path: Path) -> None:
    full = [line(i) for i in range(1, 11)] + [line(99, archive="smith")]  # a case twin in the folder
    write(tmp_path, full)
    assert write(tmp_path, full[:3], gone=frozenset({"Smith"})) == ["smith"]
    assert held(tmp_path) == [*full[:3], full[-1]]  # Smith's unseen rows are gone; smith's kept
