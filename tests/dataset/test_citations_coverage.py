"""Citations from the mirrored records (offline), and coverage against the server's counts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch.dataset import BIB_FILE, CITATION_FILE, finalize
from neuromorpho_fetch.dataset.citations import collect_publications, publications_of
from neuromorpho_fetch.dataset.coverage import coverage_status
from neuromorpho_fetch.emulator import Emulator

from .conftest import ARCHIVES


def mirrored_records(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in root.glob("*/metadata.jsonl") for line in p.read_text().splitlines()]


def bib_entries(text: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"@\w+\{([^,]+),.*?\n\}", text, re.S)}


def test_references_bib_holds_the_required_entries_and_one_per_doi(mirror_root: Path) -> None:
    entries = bib_entries((mirror_root / BIB_FILE).read_text(encoding="utf-8"))
    assert "RRID:SCR_002145" in entries["neuromorpho_org"]
    assert "doi = {10.1096/fba.2024-00048}" in entries["tecuatl_2024_neuromorpho"]
    records = mirrored_records(mirror_root)
    dois = {d for r in records for d in r["reference_doi"] or []}
    assert len(dois) > 2
    cited = {re.search(r"doi = \{(.*?)\}", e).group(1) for k, e in entries.items() if k.startswith("doi_")}  # type: ignore[union-attr]
    assert cited == dois
    assert len(entries) == 3 + len(dois)  # every emulated DOI carries its PMID: no PMID-only entries
    for doi in dois:
        count = sum(doi in (r["reference_doi"] or []) for r in records)
        (entry,) = [e for e in entries.values() if f"doi = {{{doi}}}" in e]
        assert f"annote = {{Cited by {count} mirrored neurons" in entry


def test_citation_md_names_the_three_required_citations(mirror_root: Path) -> None:
    text = (mirror_root / CITATION_FILE).read_text(encoding="utf-8")
    assert "RRID:SCR_002145" in text and "doi:10.1096/fba.2024-00048" in text
    for doi in {d for r in mirrored_records(mirror_root) for d in r["reference_doi"] or []}:
        assert f"doi:{doi}" in text


def test_citations_are_rewritten_when_the_records_change(mirror_copy: Path) -> None:
    path = mirror_copy / "siegert" / "metadata.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for r in records:
        r["reference_doi"], r["reference_pmid"] = ["10.1000/Changed_DOI"], ["123"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = finalize(mirror_copy, archives=["Siegert"])
    assert summary.publications is not None
    bib = (mirror_copy / BIB_FILE).read_text()
    assert "doi = {10.1000/Changed_DOI}" in bib and f"by {len(records)} mirrored neurons (Siegert: " in bib


@pytest.mark.parametrize(
    ("dois", "pmids", "expected"),
    [
        (["10.1000/a", "10.2000/b"], ["1", "2"], [("10.1000/a", "1"), ("10.2000/b", "2")]),  # parallel lists
        (
            ["10.1000/a"],
            ["1", "2"],
            [("10.1000/a", None), (None, "1"), (None, "2")],
        ),  # not parallel: no pairing
        ([], ["7"], [(None, "7")]),
        (None, None, []),
        (["Not reported"], ["n/a"], []),
        (["https://doi.org/10.1000/A"], ["1"], [("10.1000/A", "1")]),
        ("10.1000/a", "1", [("10.1000/a", "1")]),  # a list field served as a scalar
        (["10.1000/a", "10.1000/a"], ["1", "1"], [("10.1000/a", "1")]),
    ],
)
def test_publications_of_table(dois: Any, pmids: Any, expected: list[tuple[str | None, str | None]]) -> None:
    assert publications_of(dois, pmids) == expected


def test_collect_merges_case_and_pmid_only_citations() -> None:
    pubs = collect_publications(
        [
            ("A", ["10.1000/x"], ["5"], 3),
            ("B", ["10.1000/X"], ["5"], 2),
            ("B", [], ["5"], 1),
            ("C", [], ["9"], 4),
        ]
    )
    assert [(p.doi, p.pmid, p.archives) for p in pubs] == [
        ("10.1000/x", "5", {"A": 3, "B": 3}),
        (None, "9", {"C": 4}),
    ]


def test_coverage_compares_server_counts_with_what_is_held(mirror_root: Path, emu: Emulator) -> None:
    summary = finalize(
        mirror_root, archives=[], server_counts=dict(emu.catalogue.archives()), complete_archives=ARCHIVES
    )
    by_archive = {c.archive: c for c in summary.coverage}
    for archive in ARCHIVES:
        cov = by_archive[archive]
        assert cov.server == dict(emu.catalogue.archives())[archive] == cov.held == cov.with_files
        assert cov.status == "complete"
    others = [c for c in summary.coverage if c.archive not in ARCHIVES]
    assert others and all(c.held == 0 and c.status.startswith("partial: 0 of ") for c in others)
    assert any("coverage Siegert:" in line and "complete" in line for line in summary.lines())


@pytest.mark.parametrize(
    ("server", "held", "with_files", "failed", "listed", "status"),
    [
        (10, 10, 10, 0, True, "complete"),
        (10, 10, 10, 0, False, "partial: 10 of 10, 0 failed, listing incomplete"),
        (10, 10, 9, 1, True, "partial: 9 of 10, 1 failed"),
        (10, 4, 4, 0, True, "partial: 4 of 10, 0 failed"),
        (10, 11, 11, 0, True, "ahead"),
        (None, 5, 5, 0, True, "unknown"),
        (0, 0, 0, 0, True, "complete"),
    ],
)
def test_coverage_status_table(
    server: int | None, held: int, with_files: int, failed: int, listed: bool, status: str
) -> None:
    assert coverage_status(server, held, with_files, failed, listed) == status
