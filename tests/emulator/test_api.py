"""Every API route over HTTP: HAL envelope, paging and its switches, queries, Spring errors."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
import requests

from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.emulator.search import select
from neuromorpho_fetch.emulator.vocabulary import FIELDS

from .conftest import Start

SPRING_KEYS = {"timestamp", "status", "error", "message", "path"}


def get(emu: Emulator, path: str, **params: Any) -> requests.Response:
    return requests.get(emu.base_url + path, params=params or None, timeout=10)


def names(body: dict[str, Any]) -> list[str]:
    return [r["neuron_name"] for r in body.get("_embedded", {}).get("neuronResources", [])]


def ids(body: dict[str, Any]) -> list[int]:
    return [r["neuron_id"] for r in body.get("_embedded", {}).get("neuronResources", [])]


def records(emu: Emulator) -> list[dict[str, Any]]:
    out = []
    for i in emu.catalogue.neuron_ids():
        record = emu.catalogue.record(i)
        assert record is not None
        out.append(record)
    return out


def has(record: dict[str, Any], field: str, value: str) -> bool:
    got = record.get(field)
    return value in got if isinstance(got, list) else got == value


def test_health(plain: Emulator) -> None:
    resp = get(plain, "/api/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "UP"}


def test_first_page_of_all_neurons_is_a_spring_page_without_page_links(plain: Emulator) -> None:
    """Reference F, "Select page envelope": "top-level keys are exactly _embedded and page; no page-level
    _links (first/next/last) although the API reference describes them"; "Select pages order page keys
    size, totalElements, totalPages, number"."""
    body = get(plain, "/api/neuron").json()
    total = len(plain.catalogue)
    assert list(body) == ["_embedded", "page"]
    assert list(body["page"]) == ["size", "totalElements", "totalPages", "number"]
    assert body["page"] == {
        "size": 50,
        "totalElements": total,
        "totalPages": math.ceil(total / 50),
        "number": 0,
    }
    assert ids(body) == list(plain.catalogue.neuron_ids()[:50])
    select = get(plain, "/api/neuron/select", q="species:monkey").json()
    assert list(select) == ["_embedded", "page"]
    assert list(select["page"]) == ["size", "totalElements", "totalPages", "number"]


def test_page_links_switch_serves_the_documented_links(start: Start) -> None:
    """Reference A3: "_links - which provide http links to the first,current,next and last pages" (the
    documented form, behind ``page_links`` since F recorded none)."""
    emu = start(page_links=True)
    body = get(emu, "/api/neuron").json()
    total = len(emu.catalogue)
    assert list(body) == ["_embedded", "_links", "page"]
    links = body["_links"]
    assert list(links) == ["first", "self", "next", "last"]
    host = emu.base_url.split("://", 1)[1]
    assert links["next"]["href"] == f"http://{host}/api/neuron?page=1&size=50"
    assert links["last"]["href"].endswith(f"page={math.ceil(total / 50) - 1}&size=50")
    size = 40
    pages = math.ceil(total / size)
    middle = get(emu, "/api/neuron", page=1, size=size).json()
    assert list(middle["_links"]) == ["first", "prev", "self", "next", "last"]
    last = get(emu, "/api/neuron", page=pages - 1, size=size).json()
    assert "next" not in last["_links"]


def test_neuron_records_carry_their_own_links(plain: Emulator) -> None:
    """Reference F, "Select page envelope": "Per-record _links are exactly self, measurements,
    persistence_vector, with http://neuromorpho.org/api/... hrefs" (whatever host answered)."""
    first = get(plain, "/api/neuron", size=1).json()["_embedded"]["neuronResources"][0]
    neuron_id = first["neuron_id"]
    assert list(first)[-1] == "_links"
    assert set(first) - {"_links"} == set(plain.catalogue.record(neuron_id) or {})
    assert first["_links"] == {
        "self": {"href": f"http://neuromorpho.org/api/neuron/id/{neuron_id}"},
        "measurements": {"href": f"http://neuromorpho.org/api/morphometry/id/{neuron_id}"},
        "persistence_vector": {"href": f"http://neuromorpho.org/api/pvec/id/{neuron_id}"},
    }
    assert get(plain, f"/api/neuron/id/{neuron_id}").json()["_links"] == first["_links"]


def test_middle_and_last_pages(plain: Emulator) -> None:
    """Reference F, "Select page envelope": "Records come in ascending neuron_id"."""
    total = len(plain.catalogue)
    size = 40
    pages = math.ceil(total / size)
    middle = get(plain, "/api/neuron", page=1, size=size).json()
    assert middle["page"]["number"] == 1
    last = get(plain, "/api/neuron", page=pages - 1, size=size).json()
    assert len(ids(last)) == total - size * (pages - 1)
    collected = []
    for page in range(pages):
        collected += ids(get(plain, "/api/neuron", page=page, size=size).json())
    assert collected == sorted(collected) == list(plain.catalogue.neuron_ids())


def test_past_the_last_page_default_is_an_empty_page(plain: Emulator) -> None:
    total = len(plain.catalogue)
    resp = get(plain, "/api/neuron", page=99, size=50)
    assert resp.status_code == 200
    body = resp.json()
    assert "_embedded" not in body
    assert body["page"] == {
        "size": 50,
        "totalElements": total,
        "totalPages": math.ceil(total / 50),
        "number": 99,
    }
    field = get(plain, "/api/neuron/fields/species", page=99).json()
    assert field["fields"] == []
    assert field["page"]["number"] == 99


@pytest.mark.parametrize("mode", ["404", "400"])
def test_past_the_last_page_switches(start: Start, mode: str) -> None:
    emu = start(past_last=mode)
    for path in ("/api/neuron", "/api/neuron/fields/species"):
        resp = get(emu, path, page=99)
        assert resp.status_code == int(mode)
        assert set(resp.json()) == SPRING_KEYS
    species = emu.catalogue.field_values("species")[0]
    assert get(emu, "/api/neuron/select", q=f"species:{species}", page=99).status_code == int(mode)
    assert get(emu, "/api/neuron", page=0).status_code == 200


def test_size_above_500_is_clamped_by_default(plain: Emulator) -> None:
    body = get(plain, "/api/neuron", size=1000).json()
    assert body["page"]["size"] == 500
    assert len(ids(body)) == min(500, len(plain.catalogue))
    values = plain.catalogue.field_values("brain_region")  # fields/{field} ignores size (E)
    assert get(plain, "/api/neuron/fields/brain_region", size=5000).json()["page"]["size"] == len(values)


def test_size_above_500_is_400_with_the_switch(start: Start) -> None:
    emu = start(oversize="400")
    resp = get(emu, "/api/neuron", size=501)
    assert resp.status_code == 400
    assert set(resp.json()) == SPRING_KEYS
    assert get(emu, "/api/neuron", size=500).status_code == 200


@pytest.mark.parametrize("oversize", ["clamp", "400"])
def test_a_smaller_largest_page_is_a_config_switch(start: Start, oversize: str) -> None:
    """``max_page_size`` lets a test walk many pages of a small catalogue (no module global to patch)."""
    emu = start(max_page_size=100, oversize=oversize)
    over = get(emu, "/api/neuron", size=101)
    if oversize == "clamp":
        assert over.json()["page"]["size"] == 100 and len(ids(over.json())) == 100
    else:
        assert over.status_code == 400 and "100" in over.json()["message"]
    assert get(emu, "/api/neuron", size=100).json()["page"]["size"] == 100


@pytest.mark.parametrize("params", [{"page": "x"}, {"size": "many"}, {"page": "-1"}, {"size": "0"}])
def test_bad_paging_parameters_are_400(plain: Emulator, params: dict[str, str]) -> None:
    resp = get(plain, "/api/neuron", **params)
    assert resp.status_code == 400
    assert resp.json()["status"] == 400


def test_sort_orders_pages(plain: Emulator) -> None:
    """The route hands ``sort`` to the query engine (whose order test_search pins) and pages the result."""
    want = list(select(plain.catalogue, sort="neuron_name,desc"))
    got = ids(get(plain, "/api/neuron", sort="neuron_name,desc", size=20, page=1).json())
    assert got == want[20:40]
    assert got != list(plain.catalogue.neuron_ids()[20:40])
    selected = get(plain, "/api/neuron/select", q="*:*", sort="neuron_name,desc", size=20).json()
    assert ids(selected) == want[:20]
    default = ids(get(plain, "/api/neuron", sort="neuron_id,asc", size=20).json())
    assert default == list(plain.catalogue.neuron_ids()[:20])
    assert get(plain, "/api/neuron", sort="no_such_field,asc").status_code == 400


def test_neuron_by_id_and_name(plain: Emulator) -> None:
    neuron_id = plain.catalogue.neuron_ids()[7]
    by_id = get(plain, f"/api/neuron/id/{neuron_id}").json()
    assert by_id["neuron_id"] == neuron_id
    name = by_id["neuron_name"]
    by_name = requests.get(f"{plain.base_url}/api/neuron/name/{quote(name, safe='')}", timeout=10).json()
    assert by_name == by_id


def test_unknown_neuron_is_a_spring_404(plain: Emulator) -> None:
    for path in ("/api/neuron/id/999999999", "/api/neuron/name/AA1544"):
        resp = get(plain, path)
        assert resp.status_code == 404
        body = resp.json()
        assert set(body) == SPRING_KEYS
        assert body["message"] == "Requested neuron not found"
        assert body["error"] == "Not Found"
        assert body["path"] == path
    assert get(plain, "/api/neuron/id/abc").status_code == 400


def test_hostile_names_by_name(start: Start, hostile_catalogue: Any) -> None:
    emu = start(catalogue=hostile_catalogue)
    for neuron_id in emu.catalogue.neuron_ids():
        record = emu.catalogue.record(neuron_id)
        assert record is not None
        name = record["neuron_name"]
        if name in (".", ".."):  # dot segments are normalised away by every URL library
            continue
        quoted = quote(name, safe="")
        resp = requests.get(f"{emu.base_url}/api/neuron/name/{quoted}", timeout=10)
        assert resp.status_code == 200, name
        assert resp.json()["neuron_id"] == neuron_id


def test_select_comma_is_or_within_a_field(plain: Emulator) -> None:
    everything = records(plain)
    want = sorted(r["neuron_id"] for r in everything if r["species"] in ("rat", "mouse"))
    got = []
    page = 0
    while True:
        body = get(plain, "/api/neuron/select", q="species:rat,mouse", size=100, page=page).json()
        got += ids(body)
        page += 1
        if page >= body["page"]["totalPages"]:
            break
    assert got == want
    assert body["page"]["totalElements"] == len(want)


def test_select_fq_is_and(plain: Emulator) -> None:
    everything = records(plain)
    rodents = [r for r in everything if r["species"] in ("rat", "mouse")]
    archive = Counter(r["archive"] for r in rodents).most_common(1)[0][0]
    want = [r["neuron_id"] for r in rodents if r["archive"] == archive]
    assert 0 < len(want) < len(rodents)
    resp = requests.get(
        plain.base_url + "/api/neuron/select",
        params=[("q", "species:rat,mouse"), ("fq", f'archive:"{archive}"'), ("size", "500")],
        timeout=10,
    )
    assert ids(resp.json()) == sorted(want)
    region = next(r["brain_region"][0] for r in everything if r["archive"] == archive and r["brain_region"])
    both = requests.get(
        plain.base_url + "/api/neuron/select",
        params=[("q", f'archive:"{archive}"'), ("fq", f'brain_region:"{region}"'), ("size", "500")],
        timeout=10,
    ).json()
    assert ids(both) == sorted(
        r["neuron_id"] for r in everything if r["archive"] == archive and has(r, "brain_region", region)
    )


def test_select_wildcards(plain: Emulator) -> None:
    everything = records(plain)
    prefix = "CB_CKp25_2w_F_Animal01_"
    siegert = sorted(r["neuron_id"] for r in everything if r["neuron_name"].startswith(prefix))
    assert siegert
    star = get(plain, "/api/neuron/select", q=f"neuron_name:{prefix}*", size=500).json()
    assert ids(star) == siegert
    name = next(r["neuron_name"] for r in everything if r["neuron_name"].startswith(prefix))
    one_char = name[:-1] + "?"
    hits = ids(get(plain, "/api/neuron/select", q=f"neuron_name:{one_char}", size=500).json())
    assert plain.catalogue.id_by_name(name) in hits
    assert all(plain.catalogue.record(i)["neuron_name"][:-1] == name[:-1] for i in hits)  # type: ignore[index]


def test_select_quoted_phrase_and_the_trailing_token_quirk(plain: Emulator) -> None:
    everything = records(plain)
    quoted = ids(get(plain, "/api/neuron/select", q='brain_region:"entorhinal cortex"', size=500).json())
    assert quoted == sorted(r["neuron_id"] for r in everything if has(r, "brain_region", "entorhinal cortex"))
    unquoted = get(plain, "/api/neuron/select", q="brain_region:entorhinal cortex", size=500).json()
    trailing = get(plain, "/api/neuron/select", q="brain_region:cortex", size=500).json()
    assert ids(unquoted) == ids(trailing)
    assert ids(unquoted) != quoted


def test_select_post_body(plain: Emulator) -> None:
    everything = records(plain)
    want = sorted(r["neuron_id"] for r in everything if r["species"] in ("rat", "mouse"))
    resp = requests.post(
        plain.base_url + "/api/neuron/select?page=0&size=500",
        json={"species": ["rat", "mouse"]},
        timeout=10,
    )
    assert resp.status_code == 200
    assert ids(resp.json()) == want
    archive = plain.catalogue.record(want[0])["archive"]  # type: ignore[index]
    narrowed = requests.post(
        plain.base_url + "/api/neuron/select?size=500",
        json={"species": ["rat", "mouse"], "archive": [archive]},
        timeout=10,
    ).json()
    assert ids(narrowed) == [i for i in want if plain.catalogue.record(i)["archive"] == archive]  # type: ignore[index]
    assert requests.post(plain.base_url + "/api/neuron/select", data=b"{nope", timeout=10).status_code == 400
    assert (
        requests.post(plain.base_url + "/api/neuron/select", json=["species"], timeout=10).status_code == 400
    )


def test_select_errors(plain: Emulator) -> None:
    assert get(plain, "/api/neuron/select").status_code == 400  # q is required
    bad = get(plain, "/api/neuron/select", q="no_such_field:x")
    assert bad.status_code == 400
    assert set(bad.json()) == SPRING_KEYS


def test_select_with_no_hits_is_404_by_default(plain: Emulator) -> None:
    resp = get(plain, "/api/neuron/select", q="strain:UNKNOWN_VALUE")
    assert resp.status_code == 404
    assert set(resp.json()) == SPRING_KEYS


def test_select_with_no_hits_can_be_an_empty_page(start: Start) -> None:
    emu = start(no_hits="empty")
    resp = get(emu, "/api/neuron/select", q="strain:UNKNOWN_VALUE")
    assert resp.status_code == 200
    body = resp.json()
    assert "_embedded" not in body
    assert body["page"] == {"size": 50, "totalElements": 0, "totalPages": 0, "number": 0}


def test_fields(plain: Emulator) -> None:
    body = get(plain, "/api/neuron/fields").json()
    assert body == {"Neuron Fields": list(FIELDS)}
    assert len(body["Neuron Fields"]) == 44


def test_field_values_come_on_one_page(plain: Emulator) -> None:
    """E ([CWN]): ``{"field_name", "fields", "page"}``, every value on page 0, ``page.size`` = their count."""
    every = plain.catalogue.field_values("brain_region")
    for path in ("/api/neuron/fields/brain_region", "/api/neuron/fields/brain_region/"):
        body = get(plain, path, size=10).json()
        assert list(body) == ["field_name", "fields", "page"]
        # F, "Select page envelope": "the fields/{f} page orders them size, totalPages, totalElements, number"
        assert list(body["page"]) == ["size", "totalPages", "totalElements", "number"]
        assert body["field_name"] == "brain_region" and body["fields"] == every
        assert body["page"] == {"size": len(every), "totalPages": 1, "totalElements": len(every), "number": 0}
    assert get(plain, "/api/neuron/fields/brain_region", page=1).json()["fields"] == []
    assert get(plain, "/api/neuron/fields/no_such_field").status_code == 400


def test_partition(plain: Emulator) -> None:
    body = get(plain, "/api/neuron/partition/species").json()
    assert set(body) == {"fields"}
    assert sum(body["fields"].values()) == len(plain.catalogue)
    assert body["fields"] == plain.catalogue.partition("species")
    assert get(plain, "/api/neuron/partition/no_such_field").status_code == 400


def test_morphometry_and_pvec(plain: Emulator) -> None:
    neuron_id = plain.catalogue.neuron_ids()[3]
    name = plain.catalogue.record(neuron_id)["neuron_name"]  # type: ignore[index]
    by_id = get(plain, f"/api/morphometry/id/{neuron_id}").json()
    assert by_id == plain.catalogue.morphometry(neuron_id)
    by_name = requests.get(f"{plain.base_url}/api/morphometry/name/{quote(name, safe='')}", timeout=10).json()
    assert by_name == by_id
    pvec = get(plain, f"/api/pvec/id/{neuron_id}").json()
    assert pvec["neuron_id"] == neuron_id
    assert len(pvec["coefficients"]) == 100
    for path in ("/api/morphometry/id/999999999", "/api/pvec/id/999999999", "/api/morphometry/name/nope"):
        assert get(plain, path).status_code == 404


def test_unknown_api_route_is_a_spring_404_and_wrong_method_a_405(plain: Emulator) -> None:
    resp = get(plain, "/api/neuron/query/neuron_name/x")
    assert resp.status_code == 404
    assert set(resp.json()) == SPRING_KEYS
    wrong = requests.delete(plain.base_url + "/api/neuron/id/1", timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "Method Not Allowed"


def test_neuron_info_jsp_is_the_html_page_and_counted(start: Start) -> None:
    """A8: the page links both files as ``<a href=dableFiles/...>``; A9: the stats count every request."""
    emu = start()
    cat = emu.catalogue
    trace = "CB_CKp25_2w_F_Animal01_Trace009"
    resp = get(emu, "/neuron_info.jsp", neuron_name=trace)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    cng = re.search(r"<a href=(dableFiles/[^>]*)>Morphology File \(Standardized\)</a>", resp.text)
    source = re.search(r"<a href=(dableFiles/[^>]*)>Morphology File \(Original\)</a>", resp.text)
    assert cng and source and '<div class="info">' in resp.text
    assert cng.group(1) == f"dableFiles/siegert/CNG%20version/{trace}.CNG.swc"
    assert source.group(1) == f"dableFiles/siegert/Source-Version/{trace}.swc"
    assert requests.get(f"{emu.base_url}/{source.group(1)}", timeout=10).status_code == 200
    by_id = get(emu, "/neuron_info.jsp", neuron_id=1)
    assert by_id.status_code == 200 and "dableFiles/wearne_hof/CNG%20version/cnic_001.CNG.swc" in by_id.text
    assert get(emu, "/neuron_info.jsp", neuron_name="no such neuron").status_code == 404
    assert cat.id_by_name(trace) is not None
    assert emu.stats()["jsp_requests"] == 3


def test_neuron_info_jsp_can_be_forbidden(start: Start) -> None:
    emu = start(jsp="403")
    assert get(emu, "/neuron_info.jsp", neuron_name="cnic_001").status_code == 403
    assert emu.stats()["jsp_requests"] == 1
