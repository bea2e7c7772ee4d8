"""What changed upstream: exactly the neurons added, removed and edited, recorded in CHANGES.jsonl."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch.dataset import (
    CATALOGUE_FILE,
    CHANGES_FILE,
    FileFact,
    LocalMirror,
    check_manifests,
    finalize,
)
from neuromorpho_fetch.dataset.changes import ChangeSet, changed_fields


def edit_metadata(root: Path, archive: str, edit: Any) -> None:
    path = root / archive / "metadata.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = edit(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def changes(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / CHANGES_FILE).read_text(encoding="utf-8").splitlines()]


def test_the_first_run_is_a_baseline(mirror_root: Path) -> None:
    (first,) = changes(mirror_root)
    assert first["baseline"] is True
    assert first["counts"]["new"] == sum(1 for _ in mirror_root.glob("*/metadata.jsonl") for _ in _.open())
    assert "new" not in first  # no list: there is no last run to compare with


def test_one_added_one_removed_one_edited_are_exactly_the_changes(mirror_copy: Path) -> None:
    removed: dict[str, Any] = {}
    edited: dict[str, Any] = {}
    added: dict[str, Any] = {}

    def edit(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        removed.update(records.pop(5))
        records[2]["species"] = "edited species"
        records[2]["brain_region"] = [*records[2]["brain_region"], "subiculum"]
        edited.update(records[2])
        added.update({**records[0], "neuron_id": 99_001, "neuron_name": "brand_new"})
        return [*records, added]

    edit_metadata(mirror_copy, "siegert", edit)
    summary = finalize(mirror_copy, archives=["Siegert"], complete_archives=["Siegert"])

    brief = ("neuron_id", "neuron_name", "archive")
    line = changes(mirror_copy)[-1]
    assert line["counts"] == {"new": 1, "gone": 1, "returned": 0, "changed": 1, "files_changed": 0}
    assert line["new"] == [{k: added[k] for k in brief}]
    assert line["gone"] == [{k: removed[k] for k in brief}]
    assert line["changed"] == [{**{k: edited[k] for k in brief}, "fields": ["brain_region", "species"]}]
    assert line["baseline"] is False and line["truncated"] is False
    assert summary.changes.counts == line["counts"]

    # Gone upstream: flagged, kept in the catalogue, its files still on disk and in the manifests.
    with sqlite3.connect(mirror_copy / CATALOGUE_FILE) as conn:
        gone = conn.execute(
            "SELECT gone_upstream, species FROM neurons WHERE neuron_id=?", (removed["neuron_id"],)
        ).fetchone()
        species = conn.execute(
            "SELECT species FROM neurons WHERE neuron_id=?", (edited["neuron_id"],)
        ).fetchone()
    assert gone == (1, removed["species"]) and species == ("edited species",)
    with LocalMirror(mirror_copy) as mirror:
        (kept,) = list(mirror.select(neuron_id=str(removed["neuron_id"])))
        assert kept.gone_upstream and kept.paths["CNG"].is_file()
        assert not list(mirror.select(neuron_id=str(removed["neuron_id"]), include_gone=False))
        assert [n.id for n in mirror.select(species="edited species")] == [edited["neuron_id"]]
    assert check_manifests(mirror_copy).bad == []

    # The same listing again: nothing new. The removed neuron back: "returned".
    finalize(mirror_copy, archives=["Siegert"], complete_archives=["Siegert"])
    assert changes(mirror_copy)[-1]["counts"] == dict.fromkeys(line["counts"], 0)
    edit_metadata(mirror_copy, "siegert", lambda records: [*records, removed])
    finalize(mirror_copy, archives=["Siegert"], complete_archives=["Siegert"])
    back = changes(mirror_copy)[-1]
    assert back["returned"] == [{k: removed[k] for k in brief}] and back["counts"]["gone"] == 0


def test_no_gone_without_a_complete_listing(mirror_copy: Path) -> None:
    """A --query run publishes a partial listing: its absentees are not gone upstream."""
    edit_metadata(mirror_copy, "amaral", lambda records: records[:3])
    finalize(mirror_copy, archives=["Amaral"])
    assert changes(mirror_copy)[-1]["counts"]["gone"] == 0


def test_a_refreshed_file_that_changed_is_recorded(mirror_copy: Path) -> None:
    path = next((mirror_copy / "siegert" / "CNG").glob("*.swc"))
    path.write_bytes(path.read_bytes() + b"# new upstream\n")
    rel = path.relative_to(mirror_copy).as_posix()
    fact = FileFact(rel, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest(), verified=True)
    finalize(mirror_copy, archives=[], files=[fact])
    assert changes(mirror_copy)[-1]["files_changed"] == [rel]
    assert check_manifests(mirror_copy).bad == []  # the manifest follows the new body


def test_links_alone_are_not_a_change(mirror_copy: Path) -> None:
    def relink(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            r["_links"] = {"self": {"href": "http://proxy.example/api/neuron/id/1"}}
        return records

    edit_metadata(mirror_copy, "siegert", relink)
    finalize(mirror_copy, archives=["Siegert"], complete_archives=["Siegert"])
    assert changes(mirror_copy)[-1]["counts"]["changed"] == 0


@pytest.mark.parametrize(
    ("old", "new", "fields"),
    [
        ({"a": 1}, {"a": 1}, ()),
        ({"a": 1}, {"a": 2}, ("a",)),
        ({"a": 1}, {"a": 1, "b": None}, ("b",)),  # a key that appears, even as null
        ({"a": 1, "b": 2}, {"a": 1}, ("b",)),
        ({"l": ["x", "y"]}, {"l": ["y", "x"]}, ("l",)),  # list order is part of the value
        ({"a": "1"}, {"a": 1}, ("a",)),  # a type change is a change
        ({"_links": 1, "a": 1}, {"_links": 2, "a": 1}, ()),
    ],
)
def test_changed_fields_table(old: dict[str, Any], new: dict[str, Any], fields: tuple[str, ...]) -> None:
    assert changed_fields(old, new) == fields


records = st.dictionaries(st.sampled_from(["a", "b", "c", "_links"]), st.none() | st.integers() | st.text())


@given(records, records)
def test_changed_fields_is_symmetric_and_empty_only_for_equal_records(
    old: dict[str, object], new: dict[str, object]
) -> None:
    fields = changed_fields(old, new)
    assert fields == changed_fields(new, old)
    strip = {k: v for k, v in old.items() if k != "_links"}, {k: v for k, v in new.items() if k != "_links"}
    assert (fields == ()) == (strip[0] == strip[1])


def test_lists_are_capped_but_counts_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("neuromorpho_fetch.dataset.changes.MAX_LISTED", 3)
    cs = ChangeSet()
    for i in range(5):
        cs.add("new", {"neuron_id": i})
    data = cs.to_json(1, 0.0)
    assert data["counts"]["new"] == 5 and len(data["new"]) == 3 and data["truncated"] is True


def test_a_rebuilt_catalogue_keeps_the_history_of_changes(mirror_copy: Path) -> None:
    edit_metadata(mirror_copy, "siegert", lambda records: records[1:])
    finalize(mirror_copy, archives=["Siegert"], complete_archives=["Siegert"])
    history = changes(mirror_copy)
    assert len(history) == 2 and history[1]["counts"]["gone"] == 1
    (mirror_copy / CATALOGUE_FILE).unlink()
    finalize(mirror_copy)
    after = changes(mirror_copy)
    assert after[:2] == history
    assert after[2]["baseline"] is True and after[2]["run"] == 3
