"""Issue 17 items 4, 6, 7: references.bib formats with a real BibTeX library, ``--cite`` cites only the
selected neurons, ``--format`` exports typed tables, and ``read_swc`` reads every mirrored file, the
Latin-1 headers included."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet
import pytest
from pybtex.backends.plaintext import Backend
from pybtex.database import parse_string
from pybtex.style.formatting.plain import Style

from neuromorpho_fetch.dataset import BIB_FILE, LocalMirror, read_swc
from neuromorpho_fetch.dataset.cli import main as find_main
from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.swcread import parse_swc

from .conftest import run_mirror


def find(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = find_main(list(argv))
    return code, out.getvalue()


def formatted(bib: str) -> dict[str, str]:
    """Every entry formatted by pybtex's ``plain`` style (it raises on an entry missing what it needs)."""
    data = parse_string(bib, "bibtex")
    return {e.key: e.text.render(Backend()) for e in Style().format_entries(data.entries.values())}


def test_references_bib_parses_and_formats_with_pybtex(mirror_root: Path) -> None:
    bib = (mirror_root / BIB_FILE).read_text(encoding="utf-8")
    entries = parse_string(bib, "bibtex").entries
    text = formatted(bib)
    tecuatl = entries["tecuatl_2024_neuromorpho"]
    assert [str(p) for p in tecuatl.persons["author"]] == [
        "Tecuatl, Carolina",
        "Ljungquist, Bengt",
        "Ascoli, Giorgio A.",
    ]
    assert (tecuatl.fields["volume"], tecuatl.fields["number"], tecuatl.fields["pages"]) == (
        "6",
        "7",
        "207--221",
    )
    assert (
        "Accelerating the continuous community sharing of digital neuromorphology data" in text[tecuatl.key]
    )
    assert "FASEB BioAdvances, 6(7):207–221, 2024" in text[tecuatl.key]
    ascoli = text["ascoli_2007_neuromorpho"]
    assert "NeuroMorpho.Org: a central resource for neuronal morphologies" in ascoli
    assert "27(35):9247–9251, 2007" in ascoli and "10.1523/JNEUROSCI.2055-07.2007" in ascoli
    assert "RRID:SCR_002145" in text["neuromorpho_org"]
    originals = [e for k, e in entries.items() if k.startswith(("doi_", "pmid_"))]
    assert originals and all("annote" in e.fields and "note" not in e.fields for e in originals)


def test_cite_prints_only_the_selected_neurons_papers(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        one = next(iter(mirror.select(neuron_name="*1*")))
    code, bib = find("--root", str(mirror_root), "--neuron_name", one.name, "--cite")
    assert code == 0
    entries = parse_string(bib, "bibtex").entries
    dois = {d.lower() for d in one.neuron.record["reference_doi"]}
    cited = {e.fields["doi"].lower() for k, e in entries.items() if k.startswith("doi_")}
    assert cited == dois
    assert {"neuromorpho_org", "tecuatl_2024_neuromorpho", "ascoli_2007_neuromorpho"} <= set(entries)
    formatted(bib)
    code, md = find("--root", str(mirror_root), "--neuron_name", one.name, "--cite", "markdown")
    assert code == 0 and "1 neurons selected" in md and all(d in md.lower() for d in dois)


def served(root: Path) -> dict[int, dict[str, Any]]:
    return {
        (r := json.loads(line))["neuron_id"]: r
        for p in root.glob("*/metadata.jsonl")
        for line in p.read_text(encoding="utf-8").splitlines()
    }


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_format_exports_typed_rows(mirror_root: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"neurons.{fmt}"
    code, _ = find("--root", str(mirror_root), "--format", fmt, "--output", str(target))
    assert code == 0
    records = served(mirror_root)
    if fmt == "jsonl":
        rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    elif fmt == "csv":
        with target.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row["neuron_id"] = int(row["neuron_id"])
            row["soma_surface"] = float(row["soma_surface"]) if row["soma_surface"] else None
    else:
        table = pyarrow.parquet.read_table(target)
        assert str(table.schema.field("soma_surface").type) == "double"
        assert str(table.schema.field("neuron_id").type) == "int64"
        assert str(table.schema.field("upload_date").type) == "date32[day]"
        rows = table.to_pylist()
    assert {r["neuron_id"] for r in rows} == set(records)
    for row in rows:
        raw = records[row["neuron_id"]].get("soma_surface")
        try:
            expected = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            expected = None
        assert row["soma_surface"] == expected
        assert row["path_CNG"]


def test_read_swc_reads_every_mirrored_file_latin1_headers_included(
    mirror_root: Path, emu: Emulator, tmp_path: Path
) -> None:
    # The emulator's Synthetic_Awkward archive has Latin-1 header comments in every file.
    root = tmp_path / "out"
    shutil.copytree(mirror_root, root)
    run_mirror(emu, root, "--archive", "Synthetic_Awkward")
    files = sorted(root.glob("*/CNG/*.swc"))
    assert files
    latin1 = 0
    with LocalMirror(root) as mirror:
        for item in mirror.select():
            swc = item.read_swc()
            assert swc.points and all(len(p) == 7 for p in swc.points)
            frame = item.read_swc(as_frame=True)
            assert len(frame) == len(swc.points) and str(frame["x"].dtype) == "float64"
            data = item.path().read_bytes()  # type: ignore[union-attr]
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                latin1 += 1
                assert any("é" in c for c in swc.comments), swc.comments
    assert len(files) == len(list(root.glob("*/CNG/*"))) - 3  # minus the three manifests
    # And the parser on its own.
    raw = "# Traced at the Université de Montréal (µm)\n1 1 0 0 0 5 -1\n2 3 1.5 2 3 0.5 1\n".encode("latin-1")
    swc = parse_swc(raw)
    assert swc.comments == ["Traced at the Université de Montréal (µm)"]
    assert swc.points[1] == (2, 3, 1.5, 2.0, 3.0, 0.5, 1)
    assert read_swc(files[0]).points
    assert latin1 >= 10  # Synthetic_Awkward's files: the mirror path is exercised
