"""The emulator agrees with what the real server was seen to answer (reference A7, A8 and E), over sockets.

Each test names the recorded fact it checks; the values come from the reference, typed out here, not read
back from the emulator's own tables, so a drift in either shows up.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from neuromorpho_fetch.emulator import Catalogue, Emulator
from neuromorpho_fetch.emulator.search import select

from .conftest import Start

TRACES = [f"CB_CKp25_2w_F_Animal01_Trace{k:03d}" for k in range(1, 16)]

#: Record 1 as A7 prints it (E: "exactly the record in A7"), without ``_links``.
RECORD_1: dict[str, Any] = {
    "neuron_id": 1,
    "neuron_name": "cnic_001",
    "archive": "Wearne_Hof",
    "note": "When originally released, this reconstruction had been incompletely processed, and this issue "
    "was fixed in release 6.1 (May 2015). The pre-6.1 version of the processed file is available for "
    'download <a href=" dableFiles/previous/v6.1/wearne_hof/cnic_001.CNG.swc ">here</a>.',
    "age_scale": "Year",
    "gender": "Male/Female",
    "age_classification": "old",
    "brain_region": ["neocortex", "prefrontal", "layer 3"],
    "cell_type": ["Local projecting", "pyramidal", "principal cell"],
    "species": "monkey",
    "strain": "Rhesus",
    "scientific_name": "Macaca mulatta",
    "stain": "lucifer yellow",
    "experiment_condition": ["Control"],
    "protocol": "in vivo",
    "slicing_direction": "custom",
    "reconstruction_software": "Neurozoom",
    "objective_type": "Not reported",
    "original_format": "Neurozoom.swc",
    "domain": "Dendrites, Soma, No Axon",
    "attributes": "Diameter, 3D, Angles",
    "magnification": "100",
    "upload_date": "2006-08-01",
    "deposition_date": "2005-12-31",
    "shrinkage_reported": "Reported",
    "shrinkage_corrected": "Not Corrected",
    "reported_value": None,
    "reported_xy": None,
    "reported_z": None,
    "corrected_value": None,
    "corrected_xy": None,
    "corrected_z": None,
    "soma_surface": "834.0",
    "surface": "8842.91",
    "volume": "4725.89",
    "slicing_thickness": "400",
    "min_age": "24.0",
    "max_age": "25.0",
    "min_weight": "4500.0",
    "max_weight": "10000.0",
    "png_url": "http://neuromorpho.org/images/imageFiles/Wearne_Hof/cnic_001.png",
    "reference_pmid": ["12204204", "12902394"],
    "reference_doi": ["10.1016/S0306-4522(02)00305-6", "10.1093/cercor/13.9.950"],
    "physical_Integrity": "Dendrites Moderate",
}


def get(emu: Emulator, path: str, **params: Any) -> requests.Response:
    return requests.get(emu.base_url + path, params=params or None, timeout=10)


def data_lines(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line.strip() and not line.startswith(b"#")]


def test_record_1_is_cnic_001_verbatim(plain: Emulator) -> None:
    for path in ("/api/neuron/id/1", "/api/neuron/id/1/", "/api/neuron/name/cnic_001"):
        body = get(plain, path).json()
        links = body.pop("_links")
        assert body == RECORD_1 and list(body) == list(RECORD_1), path  # values, types and key order
        assert links["measurements"]["href"].endswith("/api/morphometry/id/1")


def test_record_1_morphometry_is_the_recorded_numbers(plain: Emulator) -> None:
    """E: numbers, not strings; fragmentation 1274.0, n_stems 6, n_bifs 47, n_branch 100, ..."""
    body = get(plain, "/api/morphometry/id/1").json()
    recorded = {"fragmentation": 1274.0, "n_stems": 6, "n_bifs": 47, "n_branch": 100, "length": 4911.5,
                "surface": 8842.91, "volume": 4725.89, "soma_Surface": 834.0}  # fmt: skip
    assert {k: body[k] for k in recorded} == recorded
    assert all(isinstance(v, float) for k, v in body.items() if k not in ("neuron_id", "neuron_name"))
    assert get(plain, "/api/morphometry/name/cnic_001/").json() == body


def test_record_1_files(plain: Emulator) -> None:
    """A8 head of cnic_001.CNG.swc, 1,274 points (its fragmentation), and the pre-6.1 file its note links."""
    cng = get(plain, "/dableFiles/wearne_hof/CNG%20version/cnic_001.CNG.swc")
    assert cng.status_code == 200
    assert cng.content.startswith(
        b"# Original file cnic_001.swc edited using StdSwc version 1.31 on 9/25/13.\n"
        b"# Irregularities and fixes documented in cnic_001.swc.std.\n#\n"
        b"1 1 0.0 0.0 0.0 8.1498 -1\n2 1 0.67 8.12 0.0 8.1498 1\n3 1 -0.67 -8.12 0.0 8.1498 1\n"
        b"4 3 1.84 8.82 -6.15 0.76016 1\n"
    )
    assert len(data_lines(cng.content)) == 1274
    previous = get(plain, "/dableFiles/previous/v6.1/wearne_hof/cnic_001.CNG.swc")
    assert previous.status_code == 200 and len(data_lines(previous.content)) == 1274
    assert previous.content != cng.content
    assert get(plain, "/dableFiles/wearne_hof/Source-Version/cnic_001.swc").status_code == 200
    png = get(plain, "/images/imageFiles/Wearne_Hof/cnic_001.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_siegert_traces(plain: Emulator) -> None:
    """E [TUT]: the wildcard selects exactly the 15 Traces; their SWC originals' lines start with a space."""
    resp = get(plain, "/api/neuron/select/", q="neuron_name:CB_CKp25_2w_F_Animal01_*")
    assert resp.status_code == 200
    records = resp.json()["_embedded"]["neuronResources"]
    assert sorted(r["neuron_name"] for r in records) == TRACES
    assert {r["archive"] for r in records} == {"Siegert"}
    for record in records:
        assert record["original_format"].endswith(".swc")
        body = get(plain, f"/dableFiles/siegert/Source-Version/{record['neuron_name']}.swc").content
        lines = body.splitlines()
        assert lines and all(line.startswith(b" ") for line in lines)
        if record["neuron_name"].endswith("Trace009"):
            assert len(lines) == 2042


def test_every_api_route_takes_a_trailing_slash(plain: Emulator) -> None:
    """E: ``select/`` answered 200; every route answers the same with or without the slash, GET and POST."""
    article = get(plain, "/api/literature", size=1).json()["_embedded"]["publicationResources"][0]
    routes = [
        ("/api/health", {}), ("/api/neuron", {}), ("/api/neuron/id/1", {}), ("/api/neuron/name/cnic_001", {}),
        ("/api/neuron/select", {"q": "species:monkey"}), ("/api/neuron/fields", {}),
        ("/api/neuron/fields/species", {}), ("/api/neuron/partition/species", {}), ("/api/morphometry", {}),
        ("/api/morphometry/id/1", {}), ("/api/morphometry/name/cnic_001", {}), ("/api/pvec", {}),
        ("/api/pvec/id/1", {}), ("/api/literature", {}), (f"/api/literature/id/{article['article_id']}", {}),
        ("/api/literature/select", {"q": "species:mouse"}), ("/api/literature/fields", {}),
        ("/api/literature/fields/species", {}), ("/api/literature/partition/species", {}),
    ]  # fmt: skip
    for path, params in routes:
        bare, slashed = get(plain, path, **params), get(plain, path + "/", **params)
        assert bare.status_code == slashed.status_code == 200, path
        assert bare.json() == slashed.json(), path
    body = {"species": ["monkey"]}
    bare = requests.post(plain.base_url + "/api/neuron/select", json=body, timeout=10)
    slashed = requests.post(plain.base_url + "/api/neuron/select/", json=body, timeout=10)
    assert bare.status_code == slashed.status_code == 200
    assert bare.json() == slashed.json()


def test_list_routes_for_morphometry_and_pvec(plain: Emulator) -> None:
    cat = plain.catalogue
    """A2 routes; F, "Batch selects": "So the embedded keys are measurements and pvecs, not
    morphometryResources/pvecResources" (the list routes use them too, inferred)."""
    with_morphometry = [i for i in cat.neuron_ids() if cat.has_morphometry(i)]  # no file grown
    morph = get(plain, "/api/morphometry", size=3).json()
    assert morph["page"]["totalElements"] == len(with_morphometry)
    assert morph["_embedded"]["measurements"][0] == cat.morphometry(1)
    pvec = get(plain, "/api/pvec", page=1, size=2).json()
    assert [v["neuron_id"] for v in pvec["_embedded"]["pvecs"]] == list(cat.neuron_ids())[2:4]


def test_literature_family(plain: Emulator) -> None:
    """A2/A7: 24-hex ids, ``_embedded.publicationResources``, fields, field values and partitions."""
    first = get(plain, "/api/literature").json()
    records = first["_embedded"]["publicationResources"]
    assert first["page"]["size"] == 50 and len(records) == min(50, first["page"]["totalElements"])
    one = records[0]
    assert len(one["article_id"]) == 24 and int(one["article_id"], 16) >= 0
    for key in ("pmid", "doi", "journal", "title", "authors", "brainRegion", "cellType", "tracingSystem"):
        assert key in one
    assert get(plain, f"/api/literature/id/{one['article_id']}").json() == one
    assert get(plain, "/api/literature/id/56e9c95de4b0355017b314d2").status_code == 404
    fields = get(plain, "/api/literature/fields").json()["Literature Fields"]
    assert {"brainRegion", "cellType", "tracingSystem"} <= set(fields)
    species = one["species"][0]
    found = get(plain, "/api/literature/select", q=f"species:{species}", size=500).json()
    assert all(species in r["species"] for r in found["_embedded"]["publicationResources"])
    counts = get(plain, "/api/literature/partition/species").json()["fields"]
    assert found["page"]["totalElements"] == counts[species]
    values = get(plain, "/api/literature/fields/species").json()
    assert values["field_name"] == "species" and set(values["fields"]) == set(counts)
    assert get(plain, "/api/literature/select", q="nofield:x").status_code == 400


@pytest.mark.parametrize("path", ["/", "/index.html", "/neuron_info", "/dableFiles/only-two", "/x/y.swc"])
def test_outside_the_api_is_tomcats_html_404(plain: Emulator, path: str) -> None:
    resp = get(plain, path)
    assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/html")
    assert b"Apache Tomcat" in resp.content


def test_zero_hit_multi_word_species_unquoted_is_404(plain: Emulator) -> None:
    """E: an unquoted multi-word value matches on its trailing token, and no hits answer 404."""
    assert get(plain, "/api/neuron/select", q="species:drosophila melanogaster").status_code == 404
    assert get(plain, "/api/neuron/select", q='species:"drosophila melanogaster"').status_code == 200


def test_the_2026_catalogue_shape(full_catalogue: Catalogue) -> None:
    """E: sparse ids (highest about 1.27 x count), ~95 species led by mouse/rat/human, ~35% glia,
    soma_surface null for about one in five; species in server order with the database's case."""
    full = full_catalogue
    ids = full.neuron_ids()
    assert ids[0] == 1 and 1.2 < ids[-1] / len(full) < 1.35
    species = full.field_values("species")
    assert 90 <= len(species) <= 100 and species[:3] == ["mouse", "rat", "human"]
    assert species != sorted(species)
    assert {"Hamster", "dragonfly ", "Praying mantis (Hierodula membranacea)", "C. elegans"} <= set(species)
    counts = full.partition("species")
    share = {name: counts[name] / len(full) for name in ("mouse", "rat", "human")}
    assert 0.58 < share["mouse"] < 0.68 and 0.2 < share["rat"] < 0.28 and 0.04 < share["human"] < 0.08
    # E: 54 single-word species; every multi-word one is lost when sent unquoted (404), found when quoted.
    multi = [s for s in species if " " in s.strip()]
    assert len(species) - len(multi) == 54 and len(multi) == 41
    for name in multi:
        assert not select(full, q=f"species:{name}"), name
        assert select(full, q=f'species:"{name}"'), name
    assert 0.3 < full.partition("cell_type")["glia"] / len(full) < 0.4
    assert 0.17 < 1 - sum(full.partition("soma_surface").values()) / len(full) < 0.23


def test_small_catalogues_keep_the_recorded_neurons(start: Start) -> None:
    """The mirror tests' 400-neuron catalogue and the demo's 2,000 both hold record 1 and the 15 Traces."""
    for size in (400, 2000):
        cat = Catalogue(size, seed=7)
        assert cat.record(1) is not None and cat.record(1)["neuron_name"] == "cnic_001"  # type: ignore[index]
        assert all(cat.id_by_name(name) is not None for name in TRACES)
