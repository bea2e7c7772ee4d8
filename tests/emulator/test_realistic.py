"""Issue 18, items 2 and 3: recorded archives look recorded, neurons look like their cell type, records
agree with themselves, and real-world oddities are switches that are off by default."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import pytest

from neuromorpho_fetch.emulator import Catalogue, lmeasure, neurons, recorded
from neuromorpho_fetch.emulator._config import FileOddities
from neuromorpho_fetch.emulator.vocabulary import SYNTHETIC_ARCHIVES


@pytest.fixture(scope="module")
def cat(small_catalogue: Catalogue) -> Catalogue:
    """The session's catalogue (300 neurons, seed 7; it keeps the files it grows for other modules)."""
    return small_catalogue


def records(cat: Catalogue) -> list[dict[str, Any]]:
    found = [cat.record(neuron_id) for neuron_id in cat.neuron_ids()]
    return [r for r in found if r is not None] if all(found) else []


def points(cat: Catalogue, neuron_id: int) -> lmeasure.Points:
    found = cat.file_for(neuron_id, "CNG")
    assert found is not None
    return lmeasure.parse(found.body)


def stem_types(p: lmeasure.Points) -> list[int]:
    return [p.kind[i] for i in range(len(p.kind)) if p.kind[i] != 1 and (p.parent[i] < 0 or p.parent[i] == 0)]


# --- the shapes ---------------------------------------------------------------------------------------


def test_each_file_has_its_cell_types_shape(cat: Catalogue) -> None:
    seen: Counter[str] = Counter()
    for record in records(cat):
        neuron_id = int(record["neuron_id"])
        if neuron_id == 1:
            continue
        shape = neurons.shape_for(tuple(record["cell_type"]), record["domain"])
        seen[shape] += 1
        p = points(cat, neuron_id)
        kinds = set(p.kind) - {1}
        stems = stem_types(p)
        domain = str(record["domain"])
        if shape in ("microglia", "astrocyte"):
            assert kinds == {3}, record["neuron_name"]  # glia: no apical, no axon
        has_axon = "Axon" in domain and "No Axon" not in domain
        assert (2 in kinds) == has_axon, (record["neuron_name"], domain, kinds)
        if shape == "pyramidal" and "Dendrites, " in domain:
            assert stems.count(4) == 1 and stems.count(3) >= 3, record["neuron_name"]
        else:
            assert 4 not in kinds
        if shape == "purkinje" and "Dendrites, " in domain:
            assert len(p.kind) < 3000 or lmeasure.measure(p)["n_bifs"] >= 50
    # The catalogue has most shapes, and pyramidal cells are no longer two files in three.
    assert {"pyramidal", "interneuron", "microglia"} <= set(seen)
    assert seen["pyramidal"] < 0.5 * sum(seen.values())


def test_three_point_soma_is_exact_as_cng_writes_it(cat: Catalogue) -> None:
    for neuron_id in list(cat.neuron_ids())[1:60]:
        found = cat.file_for(neuron_id, "CNG")
        assert found is not None
        rows = [
            line.split() for line in found.body.splitlines() if line.strip() and not line.startswith(b"#")
        ]
        soma = [row for row in rows if row[1] == b"1"]
        assert len(soma) == 3
        (one, two, three) = soma
        r = one[5]
        assert one[2:5] == [b"0.0", b"0.0", b"0.0"] and one[6] == b"-1"
        assert two[2:7] == [b"0.0", r, b"0.0", r, b"1"] and three[2:7] == [b"0.0", b"-" + r, b"0.0", r, b"1"]


def test_cnic_001_keeps_its_head_points_and_recorded_counts(cat: Catalogue) -> None:
    found = cat.file_for(1, "CNG")
    assert found is not None
    assert found.body.startswith(recorded.CNIC_001_CNG_HEAD.encode())
    p = lmeasure.parse(found.body)
    assert len(p.kind) == recorded.CNIC_001_POINTS == 1274
    measured = lmeasure.measure(p)
    served = cat.morphometry(1)
    assert served == recorded.CNIC_001_MORPHOMETRY
    for key in ("n_stems", "n_bifs", "n_branch", "fragmentation"):
        assert measured[key] == served[key], key
    assert measured["length"] == pytest.approx(served["length"], rel=0.05)
    # Point 5 continues point 4's dendrite: no section changes type without a bifurcation.
    assert p.kind[4] == 3 and p.parent[4] == 3
    for i in range(3, len(p.kind)):
        q = p.parent[i]
        if p.kind[q] != 1:
            assert p.kind[i] == p.kind[q]


def test_every_section_keeps_its_type(cat: Catalogue) -> None:
    """MorphIO's "Section type changed without a bifurcation": a child has its parent's type unless the
    parent is the soma."""
    for neuron_id in list(cat.neuron_ids())[::7]:
        p = points(cat, neuron_id)
        for i in range(len(p.kind)):
            q = p.parent[i]
            if q >= 0 and p.kind[q] != 1:
                assert p.kind[i] == p.kind[q], (neuron_id, i)


def test_morphometry_is_the_files(cat: Catalogue) -> None:
    for neuron_id in list(cat.neuron_ids())[1::9]:
        served = cat.morphometry(neuron_id)
        if served is None:
            continue
        measured = lmeasure.measure(points(cat, neuron_id))
        record = cat.record(neuron_id)
        assert record is not None
        if record["soma_surface"] is None:
            measured["soma_Surface"] = None
        assert served == {"neuron_id": neuron_id, "neuron_name": record["neuron_name"], **measured}
        assert served["n_branch"] == 2 * served["n_bifs"] + served["n_stems"]  # binary trees
        assert 0 < served["contraction"] <= 1 and served["eucDistance"] <= served["pathDistance"]


def test_files_are_deterministic_and_sources_are_the_same_tree(cat: Catalogue) -> None:
    # Another catalogue with the same seed, asked in the reverse order, serves the same bytes (every
    # third neuron: growing them all again is most of this module's time).
    again = Catalogue(len(cat), seed=cat.seed)
    for neuron_id in list(cat.neuron_ids())[::-3]:
        for kind in ("source", "CNG"):
            assert cat.file_for(neuron_id, kind) == again.file_for(neuron_id, kind)
    checked: Counter[str] = Counter()
    for record in records(cat):
        neuron_id = int(record["neuron_id"])
        one = cat.file_for(neuron_id, "source")
        if one is None or neuron_id == 1:
            continue
        ext = str(record["original_format"]).rsplit(".", 1)[-1].lower()
        if checked[ext] >= 3:
            continue
        checked[ext] += 1
        cng = points(cat, neuron_id)
        neurite = sum(1 for k in cng.kind if k != 1)
        if ext == "xml":
            root = ET.fromstring(one.body)
            trees = root.findall("tree")
            assert trees and all(t.get("type") in {"Dendrite", "Apical", "Axon"} for t in trees)
            assert sum(len(t.findall(".//point")) for t in trees) == neurite
            bifs = lmeasure.measure(cng)["n_bifs"]
            assert sum(len(t.findall(".//branch")) for t in trees) == 2 * bifs
        elif ext == "asc":
            text = one.body.decode()
            assert "(Dendrite)" in text or "(Axon)" in text or "(Apical)" in text
            assert text.count("(") == text.count(")") and ("|" in text) == (
                lmeasure.measure(cng)["n_bifs"] > 0
            )
    assert {"xml", "asc"} <= set(checked)
    assert cat.file_for(1, "CNG") == again.file_for(1, "CNG")


# --- recorded archives look recorded -------------------------------------------------------------------


def test_awkward_names_and_latin1_live_only_in_the_synthetic_archive(cat: Catalogue) -> None:
    awkward = re.compile(r"[ ()+#%]|[^\x00-\x7f]")
    in_synthetic = 0
    for record in records(cat):
        name, archive = str(record["neuron_name"]), str(record["archive"])
        found = cat.file_for(int(record["neuron_id"]), "CNG")
        assert found is not None
        try:
            found.body.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        if archive in SYNTHETIC_ARCHIVES:
            in_synthetic += 1
            assert awkward.search(name) and not utf8
        else:
            assert utf8 and not awkward.search(name), name
        if (
            archive == "Siegert"
        ):  # like the recorded CB_CKp25_2w_F_Animal01_Trace001 and FC_5xFAD_..._Trace053
            assert re.fullmatch(r"(CB|FC)_[A-Za-z0-9]+_\w+_[FM]_Animal\d\d_Trace\d{3}", name), name
    assert in_synthetic >= 10


def test_latin1_rate_is_a_switch_for_real_archives(cat: Catalogue) -> None:
    plain = cat
    odd = Catalogue(len(cat), seed=cat.seed, oddities=FileOddities(latin1_rate=1.0))
    for neuron_id in list(plain.neuron_ids())[1:40]:
        record = plain.record(neuron_id)
        assert record is not None
        if record["archive"] in SYNTHETIC_ARCHIVES:
            continue
        a, b = plain.file_for(neuron_id, "CNG"), odd.file_for(neuron_id, "CNG")
        assert a is not None and b is not None
        a.body.decode("utf-8")
        with pytest.raises(UnicodeDecodeError):
            b.body.decode("utf-8")


def test_oddities_are_off_by_default_and_switchable(cat: Catalogue) -> None:
    plain = cat
    odd = Catalogue(len(cat), seed=cat.seed, oddities=FileOddities(type0_rate=1.0, soma_off_rate=1.0))
    for neuron_id in list(plain.neuron_ids())[1:30]:
        a, b = points(plain, neuron_id), points(odd, neuron_id)
        assert 0 not in set(a.kind) and 0 in set(b.kind)
        assert a.x[1] == 0.0 and b.x[1] != 0.0  # the soma's side points moved "a bit off"


# --- coherent records ----------------------------------------------------------------------------------


def test_metadata_is_coherent(cat: Catalogue) -> None:
    for record in records(cat):
        label, low = record["age_classification"], record["min_age"]
        if label == "Not reported":
            assert low is None and record["max_age"] is None
        elif int(record["neuron_id"]) != 1:
            days = float(low)
            assert float(record["max_age"]) >= days
            if record["species"] in ("mouse", "rat") and label in ("neonatal", "young", "adult", "old"):
                assert {"neonatal": days <= 10, "young": 14 <= days <= 45, "adult": 60 <= days <= 365,
                        "old": days >= 540}[label], record  # fmt: skip
            assert label != "embryonic"
        if record["min_weight"] is not None:
            grams = float(record["min_weight"])
            limit = {"Mus musculus": 60.0, "Rattus norvegicus": 700.0}.get(str(record["scientific_name"]))
            if limit is not None:
                assert grams <= limit, record
        cells = " ".join(record["cell_type"])
        region = record["brain_region"]
        if "Purkinje" in cells:
            assert region[0] == "cerebellum"
        if "ganglion" in cells:
            assert region[0] == "retina"
        if "glia" in cells:
            assert "Axon" not in str(record["domain"]) or "No Axon" in str(record["domain"])


def test_records_surface_is_mostly_the_files(cat: Catalogue) -> None:
    """Radii are scaled to the record's ``surface`` within 0.2-5 times (plausible radii); most files then
    measure the record's figure, and the soma the record's ``soma_surface``."""
    close = total = 0
    for neuron_id in list(cat.neuron_ids())[1:200]:
        served, record = cat.morphometry(neuron_id), cat.record(neuron_id)
        if served is None or record is None:
            continue
        total += 1
        close += abs(served["surface"] - float(record["surface"])) <= 0.01 * served["surface"]
        if record["soma_surface"] is not None:
            assert served["soma_Surface"] == pytest.approx(float(record["soma_surface"]), rel=1e-3)
    assert close >= 0.85 * total
