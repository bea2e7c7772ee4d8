"""The emulator's HTTP layer agrees with reference section F (live answers and NeuroMorpho's own front-end
code), over sockets. Each test quotes the words of F it checks; where F leaves a choice open, the switch
for the other variant is tested too. (The envelope and per-record links are in test_api.py.)
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
import requests

from neuromorpho_fetch.emulator import Catalogue, Emulator

from .conftest import Start

SPRING_KEYS = {"timestamp", "status", "error", "message", "path"}

#: F, "Morphometry record of neuron 1, complete": "keys in server order".
MORPHOMETRY_ORDER = [
    "neuron_name", "bif_ampl_remote", "neuron_id", "surface", "volume", "contraction", "fragmentation",
    "partition_asymmetry", "pk_classic", "bif_ampl_local", "fractal_Dim", "soma_Surface", "n_stems",
    "n_bifs", "n_branch", "width", "height", "depth", "diameter", "eucDistance", "pathDistance",
    "branch_Order", "length",
]  # fmt: skip

#: F, "Literature": "/api/literature/fields (2019) listed 18 fields: ...", as F prints them.
LITERATURE_FIELDS = (  # noqa: SIM905 (the reference's words, split)
    "article_id pmid doi journal title authors species brainRegion cellType tracingSystem evaluatedDate "
    "publishedDate globalStatus collection dataUsage sharedReconstructions status nReconstructions"
).split()


def get(emu: Emulator, path: str, **params: Any) -> requests.Response:
    return requests.get(emu.base_url + path, params=params or None, timeout=10)


def embedded(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = body["_embedded"][key]
    return records


def without_morphometry(cat: Catalogue) -> list[int]:
    return [i for i in cat.neuron_ids() if not cat.has_morphometry(i)]


def some_ids(cat: Catalogue, count: int, *, with_gap: bool = True) -> list[int]:
    """``count`` ids spread over the catalogue, the first neuron without morphometry among them."""
    ids = list(cat.neuron_ids())
    picked = ids[:: max(1, len(ids) // count)][:count]
    if with_gap:
        picked[-1] = without_morphometry(cat)[0]
    return picked


# -- batch selects (F, "Batch selects used by NeuroMorpho's own front end") -------------------------------


def test_morphometry_batch_select_embeds_measurements_in_server_order(plain: Emulator) -> None:
    """F: "GET /api/morphometry/select?q=Neuron_id:<ids>&page=0&size=500 (capital N) ->
    _embedded.measurements"; "No _links in a morphometry record"; keys "in server order"; "About 0.4% of
    neurons have no morphometry": such a neuron is simply absent from the batch answer."""
    cat = plain.catalogue
    asked = some_ids(cat, 50)
    shuffled = ",".join(map(str, reversed(asked)))
    resp = get(plain, "/api/morphometry/select", q=f"Neuron_id:{shuffled}", page=0, size=500)
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == ["_embedded", "page"] and list(body["_embedded"]) == ["measurements"]
    records = embedded(body, "measurements")
    have = sorted(i for i in asked if cat.has_morphometry(i))
    assert len(have) == len(asked) - 1  # the one without morphometry is left out, silently
    assert [r["neuron_id"] for r in records] == have  # ascending neuron_id, whatever order was asked
    assert body["page"] == {"size": 500, "totalElements": len(have), "totalPages": 1, "number": 0}
    for record in records:
        assert list(record) == MORPHOMETRY_ORDER
        assert record == cat.morphometry(record["neuron_id"])
    lower = get(plain, "/api/morphometry/select", q=f"neuron_id:{shuffled}", page=0, size=500).json()
    assert lower == body  # both spellings on both routes


def test_morphometry_batch_select_by_name(plain: Emulator) -> None:
    """F: "An older independent script reads /api/morphometry/select?q=neuron_name:<name> ->
    _embedded.measurements[0]"."""
    cat = plain.catalogue
    one = get(plain, "/api/morphometry/select", q="neuron_name:cnic_001").json()
    assert embedded(one, "measurements")[0] == cat.morphometry(1)
    names = [cat.record(i)["neuron_name"] for i in some_ids(cat, 3, with_gap=False)]  # type: ignore[index]
    several = get(plain, "/api/morphometry/select", q="neuron_name:" + ",".join(names)).json()
    assert sorted(r["neuron_name"] for r in embedded(several, "measurements")) == sorted(names)


def test_pvec_batch_select_embeds_pvecs(plain: Emulator) -> None:
    """F: "GET /api/pvec/select?q=neuron_id:<ids>&page=0&size=500 -> _embedded.pvecs (each neuron_id,
    scaling_factor, distance, coefficients of 100 numbers)"."""
    cat = plain.catalogue
    asked = some_ids(cat, 50, with_gap=False)
    body = get(plain, "/api/pvec/select", q="neuron_id:" + ",".join(map(str, asked)), page=0, size=500).json()
    assert list(body) == ["_embedded", "page"] and list(body["_embedded"]) == ["pvecs"]
    records = embedded(body, "pvecs")
    assert [r["neuron_id"] for r in records] == sorted(asked)
    for record in records:
        assert set(record) == {"neuron_id", "scaling_factor", "distance", "coefficients"}
        assert len(record["coefficients"]) == 100
        assert all(isinstance(c, int | float) for c in record["coefficients"])
    capital = get(plain, "/api/pvec/select", q="Neuron_id:" + ",".join(map(str, asked)), page=0, size=500)
    assert capital.json() == body


def test_batch_selects_page_like_other_selects(start: Start) -> None:
    """F: batch selects are sent with "page=0&size=500"; pages as for every select (A4: 0-based, max 500)."""
    emu = start(max_page_size=4)
    cat = emu.catalogue
    asked = some_ids(cat, 10, with_gap=False)
    q = "neuron_id:" + ",".join(map(str, asked))
    seen: list[int] = []
    for number in range(3):
        page = get(emu, "/api/pvec/select", q=q, page=number, size=500).json()
        assert page["page"] == {"size": 4, "totalElements": 10, "totalPages": 3, "number": number}
        seen += [r["neuron_id"] for r in embedded(page, "pvecs")]
    assert seen == sorted(asked)
    assert "_embedded" not in get(emu, "/api/pvec/select", q=q, page=3).json()  # past the last: empty


def test_a_batch_with_no_hit_answers_like_a_zero_hit_select(start: Start, plain: Emulator) -> None:
    """F: a neuron without morphometry "is simply absent"; A6/E: a zero-hit select is a 404 Spring body
    (``no_hits=empty``: a 200 page without ``_embedded``)."""
    missing = without_morphometry(plain.catalogue)[0]
    for path, q in (
        ("/api/morphometry/select", f"Neuron_id:{missing}"),
        ("/api/morphometry/select", "neuron_id:999999999"),
        ("/api/pvec/select", "neuron_id:999999999"),
    ):
        resp = get(plain, path, q=q, page=0, size=500)
        assert resp.status_code == 404 and set(resp.json()) == SPRING_KEYS, (path, q)
    empty = start(no_hits="empty")
    page = get(empty, "/api/morphometry/select", q=f"Neuron_id:{missing}").json()
    assert page == {"page": {"size": 50, "totalElements": 0, "totalPages": 0, "number": 0}}


def test_batch_select_errors(plain: Emulator) -> None:
    """A6: "400 Bad request, usually wrong parameters to select queries" (q missing, a field the batch
    routes do not take: F records only neuron_id, Neuron_id and neuron_name)."""
    for path in ("/api/morphometry/select", "/api/pvec/select"):
        assert get(plain, path).status_code == 400
        bad = get(plain, path, q="species:rat")
        assert bad.status_code == 400 and set(bad.json()) == SPRING_KEYS


@pytest.mark.parametrize("mode", ["400", "404"])
def test_batch_select_switch_refuses_the_batch_routes(start: Start, mode: str) -> None:
    """F: "Whether 500 ids are accepted in one call is not recorded": ``batch_select`` makes the batch
    routes fail, so a client's fallback to one request per id can be tested; the per-id routes still work."""
    emu = start(batch_select=mode)
    for path in ("/api/morphometry/select", "/api/pvec/select"):
        resp = get(emu, path, q="neuron_id:1", page=0, size=500)
        assert resp.status_code == int(mode) and set(resp.json()) == SPRING_KEYS
    assert get(emu, "/api/morphometry/id/1").status_code == 200
    assert get(emu, "/api/pvec/id/1").status_code == 200
    assert get(emu, "/api/neuron/select", q="neuron_id:1").status_code == 200


def test_neuron_select_takes_id_lists(plain: Emulator) -> None:
    """F: "GET /api/neuron/select?q=neuron_id:<id1>,<id2>,...&page=0&size=500 (50 ids a call) ->
    _embedded.neuronResources"."""
    cat = plain.catalogue
    asked = some_ids(cat, 50, with_gap=False)
    q = "neuron_id:" + ",".join(map(str, reversed(asked))) + ",999999999"  # an unknown id is just absent
    body = get(plain, "/api/neuron/select", q=q, page=0, size=500).json()
    records = embedded(body, "neuronResources")
    assert [r["neuron_id"] for r in records] == sorted(asked)
    assert all(r == {**cat.record(r["neuron_id"]), "_links": r["_links"]} for r in records)  # type: ignore[dict-item]
    assert body["page"]["totalElements"] == 50


# -- morphometry by id (F, "Morphometry record of neuron 1, complete") ---------------------------------


def test_morphometry_by_id_in_server_order_without_links(plain: Emulator) -> None:
    """F: "keys in server order: neuron_name, bif_ampl_remote, neuron_id, ..."; "No _links in a morphometry
    record"."""
    for path in ("/api/morphometry/id/1", "/api/morphometry/name/cnic_001", "/api/morphometry/id/1/"):
        body = get(plain, path).json()
        assert list(body) == MORPHOMETRY_ORDER, path
    listed = embedded(get(plain, "/api/morphometry", size=5).json(), "measurements")
    assert all(list(r) == MORPHOMETRY_ORDER for r in listed)


def test_about_0_4_percent_have_no_morphometry(plain: Emulator, full_catalogue: Catalogue) -> None:
    """F: "About 0.4% of neurons have no morphometry (/morphometry/id/{id} answers 404 for them) [CWN]"."""
    cat = plain.catalogue
    missing = without_morphometry(cat)
    assert missing and 1 not in missing
    for neuron_id in missing:
        name = cat.record(neuron_id)["neuron_name"]  # type: ignore[index]
        assert get(plain, f"/api/neuron/id/{neuron_id}").status_code == 200  # the neuron itself is there
        for path in (
            f"/api/morphometry/id/{neuron_id}",
            f"/api/morphometry/name/{quote(name)}",
        ):
            resp = get(plain, path)
            assert resp.status_code == 404 and resp.json()["message"] == "Requested morphometry not found"
    share = len(without_morphometry(full_catalogue)) / len(full_catalogue)
    assert 0.003 < share < 0.005
    listing = get(plain, "/api/morphometry", size=500).json()
    listed = [r["neuron_id"] for r in embedded(listing, "measurements")]
    assert listed == [i for i in cat.neuron_ids() if i not in missing]


# -- extra field names (F, "Extra field names") -----------------------------------------------------------


def test_front_end_field_names_answer_with_values(plain: Emulator) -> None:
    """F: "fields/{f} is called for brain_region_1..3 and cell_type_1..3 (not in the 44-field list), and
    for Physical_Integrity, reference_pmid, deposition_date, upload_date, min_weight, slicing_thickness,
    magnification"; brain_region_k is the k-th element of the record's list."""
    cat = plain.catalogue
    records = [cat.record(i) for i in cat.neuron_ids()]
    for field in ("brain_region", "cell_type"):
        for k in (1, 2, 3):
            body = get(plain, f"/api/neuron/fields/{field}_{k}").json()
            assert body["field_name"] == f"{field}_{k}"
            want = Counter(r[field][k - 1] for r in records if r is not None and len(r[field]) >= k)
            assert want and set(body["fields"]) == set(want), (field, k)
            assert body["page"]["totalElements"] == len(want)
            counts = [want[v] for v in body["fields"]]
            assert counts == sorted(counts, reverse=True)  # most common first, as every field
    for field in ("Physical_Integrity", "reference_pmid", "deposition_date", "upload_date", "min_weight",
                  "slicing_thickness", "magnification"):  # fmt: skip
        body = get(plain, f"/api/neuron/fields/{field}").json()
        key = "physical_Integrity" if field == "Physical_Integrity" else field
        stored = {
            e for r in records if r is not None for e in (r[key] if isinstance(r[key], list) else [r[key]])
        }
        assert body["fields"] and set(body["fields"]) == stored - {None}, field


# -- missing files (F, "Missing files") -------------------------------------------------------------------


def test_a_missing_file_is_non_2xx_with_an_html_body(start: Start, plain: Emulator) -> None:
    """F: "a HEAD for a missing Source-Version/*.swc got Content-Type: text/html. So a missing file is a
    non-2xx status with an HTML body; 200-with-HTML stays a fault mode only. HEAD works on dableFiles and
    on the API"."""
    missing = plain.base_url + "/dableFiles/siegert/Source-Version/no_such_neuron.swc"
    for method in (requests.get, requests.head):
        resp = method(missing, timeout=10)
        assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/html"), method
    assert b"<html" in requests.get(missing, timeout=10).content
    real = plain.base_url + "/dableFiles/siegert/Source-Version/CB_CKp25_2w_F_Animal01_Trace009.swc"
    head = requests.head(real, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0 and not head.content
    api = requests.head(plain.base_url + "/api/neuron/id/1", timeout=10)
    assert api.status_code == 200 and api.headers["Content-Type"].startswith("application/json")
    gone = start(missing_rate=1.0)  # "404 for selected files": the same non-2xx HTML answer
    for method in (requests.get, requests.head):
        resp = method(real.replace(plain.base_url, gone.base_url), timeout=10)
        assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/html")


# -- query semantics (F, "Query semantics") ---------------------------------------------------------------


def hits(emu: Emulator, q: str) -> list[int]:
    resp = get(emu, "/api/neuron/select", q=q, size=500)
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, q
    return [r["neuron_id"] for r in embedded(resp.json(), "neuronResources")]


@pytest.mark.parametrize("mode", ["last-word", "or"])
def test_whitespace_in_an_unquoted_value_never_ands_the_words(start: Start, mode: str) -> None:
    """F: "unquoted species:capuchin monkey ... answered 200 with exactly the monkey ... set"; "whitespace
    inside an unquoted value does not AND the words: it acts like OR or last-word-only, and a value must
    match the whole stored string (species:capuchin matched nothing)"."""
    emu = start(unquoted_words=mode)
    monkey = hits(emu, "species:monkey")
    assert monkey and hits(emu, "species:capuchin monkey") == monkey
    assert get(emu, "/api/neuron/select", q="species:capuchin").status_code == 404
    assert hits(emu, "species:drosophila") == []  # a part of "drosophila melanogaster" is no match
    first, second = [v for v in emu.catalogue.field_values("species") if " " not in v.strip()][:2]
    one, other = hits(emu, f"species:{first}"), hits(emu, f"species:{second}")
    assert one and other and not set(one) & set(other)
    both = hits(emu, f"species:{first} {second}")
    assert both == (other if mode == "last-word" else sorted(set(one) | set(other)))
    phrase = hits(emu, 'species:"drosophila melanogaster"')  # quoted: the whole phrase, in either mode
    assert phrase and phrase == hits(emu, 'species:"drosophila melanogaster",nothing')


def test_last_word_is_the_default(plain: Emulator) -> None:
    """F's counts fit both variants; A5 [TU]: "matches only the trailing token, so query_value="entorhinal
    cortex" was executed as "cortex"" (and [CWN]'s zebra finch did not add Zebra's neurons)."""
    assert plain.config.unquoted_words == "last-word"
    assert hits(plain, "species:mouse rat") == hits(plain, "species:rat") != []


# -- literature (F, "Literature") -------------------------------------------------------------------------


def test_literature_fields_status_values_and_dates(plain: Emulator) -> None:
    """F: "/api/literature/fields (2019) listed 18 fields ..."; "globalStatus values include "Available",
    "Not available", "Determining availability"; dates are epoch milliseconds"."""
    assert get(plain, "/api/literature/fields").json()["Literature Fields"] == LITERATURE_FIELDS
    records = embedded(get(plain, "/api/literature", size=500).json(), "publicationResources")
    statuses = {r["globalStatus"] for r in records}
    assert statuses == {"Available", "Not available", "Determining availability"}
    low, high = 946_684_800_000, 1_893_456_000_000  # 2000-01-01 and 2030-01-01 in epoch ms
    for record in records:
        for key in ("evaluatedDate", "publishedDate"):
            assert isinstance(record[key], int) and low < record[key] < high, key
        assert isinstance(record["status"]["nReconstructions"], int)
    for field in LITERATURE_FIELDS:
        values = get(plain, f"/api/literature/fields/{field}")
        assert values.status_code == 200 and values.json()["fields"], field
    counts = get(plain, "/api/literature/partition/nReconstructions").json()["fields"]
    assert sum(counts.values()) == get(plain, "/api/literature").json()["page"]["totalElements"]
