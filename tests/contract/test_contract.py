"""The shapes the client relies on, asserted against the emulator and, with ``NEUROMORPHO_LIVE=1``, against
the real server (issue 18 item 7; ``docs/emulator.md``, "Checking the emulator against the real server").

Each test reads an answer twice: as raw JSON (the keys, types and orders that reference sections E and F
recorded), and through the client's own parser, which is what breaks first when the server drifts. They
ask only for what the real server is known to hold: neuron 1 (``cnic_001``, reference E) and ids 1-3.
About 20 requests in all (the live budget is 30).
"""

from __future__ import annotations

from typing import Any

from neuromorpho_fetch.layout import file_url
from neuromorpho_fetch.models import Neuron, Version, parse_record
from neuromorpho_fetch.protocol import parse_counts, parse_fields, parse_page
from neuromorpho_fetch.swc import check_swc, looks_like_html

from .conftest import Api

#: Reference F, "Morphometry record of neuron 1, complete": the keys in server order.
MORPHOMETRY_KEYS = (
    "neuron_name", "bif_ampl_remote", "neuron_id", "surface", "volume", "contraction", "fragmentation",
    "partition_asymmetry", "pk_classic", "bif_ampl_local", "fractal_Dim", "soma_Surface", "n_stems",
    "n_bifs", "n_branch", "width", "height", "depth", "diameter", "eucDistance", "pathDistance",
    "branch_Order", "length",
)  # fmt: skip
#: Reference F, "Select page envelope": select pages order ``page`` keys so; ``fields/{f}`` differently.
SELECT_PAGE_KEYS = ["size", "totalElements", "totalPages", "number"]
FIELD_PAGE_KEYS = ["size", "totalPages", "totalElements", "number"]
IDS = "1,2,3"


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def neuron(record: Any) -> Neuron:
    parsed = parse_record(record)
    assert isinstance(parsed, Neuron), parsed
    return parsed


def select_page(api: Api, path: str, **params: str) -> dict[str, Any]:
    """A select page: 200 JSON with ``_embedded`` and ``page`` (and no page-level ``_links``, F)."""
    answer = api.get(path, **params)
    assert answer.status == 200 and answer.media_type == "application/json", (answer.status, answer.headers)
    data = answer.json
    assert isinstance(data, dict) and list(data) == ["_embedded", "page"], list(data)
    assert list(data["page"]) == SELECT_PAGE_KEYS and all(is_count(v) for v in data["page"].values())
    return data


def test_health_is_up(api: Api) -> None:
    answer = api.get("/api/health")
    assert answer.status == 200 and answer.json.get("status") == "UP"


def test_select_envelope_records_and_paging(api: Api) -> None:
    """A select by id list (F, "Batch selects"): records in ascending id with their three ``_links``;
    page 1 of size 2 brings the rest and the same totals."""
    first = select_page(api, "/api/neuron/select", q=f"neuron_id:{IDS}", page="0", size="2")
    records = first["_embedded"]["neuronResources"]
    ids = [r["neuron_id"] for r in records]
    assert ids == sorted(ids) and len(ids) == 2 and set(ids) <= {1, 2, 3}
    for record in records:
        assert list(record["_links"]) == ["self", "measurements", "persistence_vector"]
        assert record["_links"]["self"]["href"].startswith("http://neuromorpho.org/api/neuron/id/")
        neuron(record)
    page = parse_page(first, "select")
    assert (page.number, page.size, page.total_elements, page.total_pages) == (0, 2, 3, 2)
    second = select_page(api, "/api/neuron/select", q=f"neuron_id:{IDS}", page="1", size="2")
    rest = [r["neuron_id"] for r in second["_embedded"]["neuronResources"]]
    assert second["page"]["number"] == 1 and second["page"]["totalElements"] == 3
    assert sorted(ids + rest) == [1, 2, 3]


def test_zero_hits_is_a_404_the_client_can_tell_from_a_front_end_page(api: Api) -> None:
    """E, "Zero hits": a select that matches nothing answers 404, and not with an HTML page (the client
    reads an HTML 404 as a front end's, not as "no results")."""
    answer = api.get("/api/neuron/select", q="neuron_name:no_such_neuron_zz9", page="0", size="50")
    assert answer.status == 404
    assert "html" not in answer.media_type and not looks_like_html(answer.body[:256])


def test_one_neuron_by_id_and_by_name(api: Api) -> None:
    """E, "Neuron id 1": ``cnic_001`` of ``Wearne_Hof``, the same record by id and by name."""
    by_id = api.get("/api/neuron/id/1")
    assert by_id.status == 200
    record = neuron(by_id.json)
    assert (record.id, record.name, record.archive) == (1, "cnic_001", "Wearne_Hof")
    by_name = api.get("/api/neuron/name/cnic_001")
    assert by_name.status == 200 and neuron(by_name.json).id == 1


def test_a_neuron_that_does_not_exist_is_404(api: Api) -> None:
    assert api.get("/api/neuron/id/999999999").status == 404
    assert api.get("/api/neuron/name/no_such_neuron_zz9").status == 404


def test_file_urls_the_client_builds_serve_the_files(api: Api) -> None:
    """The CNG file and the source file of neuron 1 at the URLs :func:`file_url` builds (A8)."""
    record = neuron(api.get("/api/neuron/id/1").json)
    cng = api.get(file_url("", record, Version.CNG))
    assert cng.status == 200 and check_swc(cng.body) is None
    source = api.get(file_url("", record, Version.SOURCE))
    assert source.status == 200 and not looks_like_html(source.body[:256]) and source.body


def test_morphometry_of_one_neuron(api: Api) -> None:
    """F: the keys in server order, numbers, no ``_links``; E: neuron 1's recorded counts."""
    answer = api.get("/api/morphometry/id/1")
    assert answer.status == 200
    data = answer.json
    assert tuple(data) == MORPHOMETRY_KEYS and "_links" not in data
    assert (data["neuron_id"], data["neuron_name"]) == (1, "cnic_001")
    assert (data["n_stems"], data["n_bifs"], data["n_branch"]) == (6, 47, 100)
    assert all(isinstance(data[k], int | float) for k in MORPHOMETRY_KEYS if k != "neuron_name")


def test_batch_morphometry_and_pvec_selects(api: Api) -> None:
    """F, "Batch selects": ``measurements`` and ``pvecs`` embedded, for the ids asked only."""
    morph = select_page(api, "/api/morphometry/select", q=f"Neuron_id:{IDS}", page="0", size="500")
    measurements = morph["_embedded"]["measurements"]
    assert measurements and {m["neuron_id"] for m in measurements} <= {1, 2, 3}
    assert all(tuple(m)[:3] == MORPHOMETRY_KEYS[:3] and "_links" not in m for m in measurements)
    pvec = select_page(api, "/api/pvec/select", q=f"neuron_id:{IDS}", page="0", size="500")
    pvecs = pvec["_embedded"]["pvecs"]
    assert pvecs and {p["neuron_id"] for p in pvecs} <= {1, 2, 3}
    for one in pvecs:
        assert {"neuron_id", "scaling_factor", "distance", "coefficients"} <= set(one)
        assert len(one["coefficients"]) == 100 and all(
            isinstance(c, int | float) for c in one["coefficients"]
        )


def test_fields_values_and_counts(api: Api) -> None:
    """E: ``fields/{f}`` has ``field_name``, every value on one page, its own ``page`` key order; the field
    list and the partition read through the client's parsers."""
    fields = api.get("/api/neuron/fields")
    assert fields.status == 200
    names = parse_fields(fields.json, "fields")
    assert {"species", "archive", "neuron_name", "brain_region"} <= set(names)
    species = api.get("/api/neuron/fields/species")
    data = species.json
    assert species.status == 200 and list(data) == ["field_name", "fields", "page"]
    assert data["field_name"] == "species" and list(data["page"]) == FIELD_PAGE_KEYS
    assert data["page"]["totalPages"] == 1 and data["page"]["size"] == len(data["fields"]) > 0
    counts = api.get("/api/neuron/partition/archive")
    assert counts.status == 200
    archives = parse_counts(counts.json, "partition")
    assert archives.get("Wearne_Hof", 0) >= 1 and all(is_count(n) for n in archives.values())
