"""Each fault kind as a raw client sees it, and the guarantees that make faults testable."""

from __future__ import annotations

import concurrent.futures
import email.utils
import time

import pytest
import requests

from neuromorpho_fetch.emulator import Catalogue, Emulator

from ._raw import raw_get
from .conftest import Start


def _file_path(emu: Emulator, index: int = 0) -> str:
    """A CNG file URL path of the index-th neuron, encoded as the client's layout does."""
    from neuromorpho_fetch import Neuron, Version, file_url

    neuron_id = emu.catalogue.neuron_ids()[index]
    record = emu.catalogue.record(neuron_id)
    assert record is not None
    url = file_url(emu.base_url, Neuron.from_record(record), Version.CNG)
    return url[len(emu.base_url) :]


@pytest.mark.system
def test_503_with_retry_after_in_both_forms(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("503",), fault_max_per_url=2)
    path = _file_path(emu)
    first, second = raw_get(emu.base_url, path), raw_get(emu.base_url, path)
    assert first.status == second.status == 503
    forms = {first.headers["retry-after"], second.headers["retry-after"]}
    seconds = [f for f in forms if f.isdigit()]
    dates = [f for f in forms if not f.isdigit()]
    assert seconds == ["1"]
    assert len(dates) == 1
    when = email.utils.parsedate_to_datetime(dates[0]).timestamp()
    assert 0 < when - time.time() <= 3
    third = raw_get(emu.base_url, path)
    assert third.status == 200


def test_429_retry_after(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("429",), fault_max_per_url=1)
    resp = requests.get(emu.base_url + "/api/neuron/id/1", timeout=5)
    assert resp.status_code == 429
    assert "Retry-After" in resp.headers
    assert resp.json()["status"] == 429


def test_500_has_a_spring_body(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("500",), fault_max_per_url=1)
    body = requests.get(emu.base_url + "/api/health", timeout=5).json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}
    assert body["status"] == 500
    assert body["path"] == "/api/health"


@pytest.mark.system
def test_reset_before_and_in_the_middle_of_a_body(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("reset",), fault_max_per_url=2)
    path = _file_path(emu)
    seen = sorted([raw_get(emu.base_url, path), raw_get(emu.base_url, path)], key=lambda r: r.status or 0)
    before, middle = seen
    assert before.status is None and before.error == "reset"
    assert middle.status == 200 and middle.error == "reset"
    assert middle.declared_length is not None
    assert 0 < len(middle.body) < middle.declared_length
    assert raw_get(emu.base_url, path).status == 200
    with_requests = start(fault_rate=1.0, faults=("reset",), fault_max_per_url=1)
    try:
        requests.get(with_requests.base_url + _file_path(with_requests), timeout=5)
    except requests.exceptions.RequestException:
        pass
    else:
        raise AssertionError("a reset must surface as an exception")


@pytest.mark.system
def test_truncate_sends_less_than_content_length(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("truncate",), fault_max_per_url=1)
    cut = raw_get(emu.base_url, _file_path(emu))
    assert cut.status == 200 and cut.error is None
    assert cut.declared_length is not None
    assert len(cut.body) < cut.declared_length
    whole = raw_get(emu.base_url, _file_path(emu))
    assert len(whole.body) == whole.declared_length == cut.declared_length


def test_html_error_pages_with_200_and_404(start: Start) -> None:
    for kind, status in (("html200", 200), ("html404", 404)):
        emu = start(fault_rate=1.0, faults=(kind,), fault_max_per_url=1)
        resp = requests.get(emu.base_url + _file_path(emu), timeout=5)
        assert resp.status_code == status
        assert resp.headers["Content-Type"].startswith("text/html")
        assert resp.text.lstrip().lower().startswith("<!doctype html>")


@pytest.mark.system
def test_stall_outlasts_a_read_timeout(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("stall",), fault_max_per_url=1, stall_ms=3000)
    stalled = raw_get(emu.base_url, _file_path(emu), timeout=0.3)
    # Headers, then nothing for longer than the read timeout: the reader gave up with no body byte.
    assert stalled.status == 200 and stalled.error == "timeout"
    assert stalled.body == b""
    assert raw_get(emu.base_url, _file_path(emu)).error is None


@pytest.mark.system
def test_fault_max_per_url_then_success_everywhere(start: Start) -> None:
    """A client with K+1 attempts gets every file; no URL sees more than K faults, however often asked."""
    small_files = Catalogue(40, 7, file_kb=4)
    emu = start(
        catalogue=small_files,
        fault_rate=0.7,
        fault_max_per_url=3,
        faults=("503", "500", "html404", "truncate"),
    )
    for i in range(30):
        path = _file_path(emu, i)
        outcomes = [raw_get(emu.base_url, path) for _ in range(8)]
        good = [o.status == 200 and o.body and len(o.body) == o.declared_length for o in outcomes]
        assert good.count(False) <= 3
        assert any(good[:4])
    stats = emu.stats()
    assert 0 < stats["faults_injected"] <= 3 * 30
    assert sum(stats["faults_by_kind"].values()) == stats["faults_injected"]


@pytest.mark.system
def test_faults_are_deterministic_from_the_seed(start: Start) -> None:
    def pattern(seed: int) -> list[int | None]:
        emu = start(seed=seed, fault_rate=0.5, faults=("503", "500"))
        return [raw_get(emu.base_url, _file_path(emu, i)).status for i in range(20)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)


@pytest.mark.system
def test_reset_with_faults_flag_replays_the_same_faults(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("503",), fault_max_per_url=1)
    path = _file_path(emu)
    assert [raw_get(emu.base_url, path).status for _ in range(2)] == [503, 200]
    requests.post(emu.base_url + "/_emulator/reset?faults=1", timeout=5).raise_for_status()
    assert raw_get(emu.base_url, path).status == 503


@pytest.mark.system
def test_fault_scope_files_spares_the_api(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("500",), fault_scope="files")
    assert requests.get(emu.base_url + "/api/health", timeout=5).status_code == 200
    assert raw_get(emu.base_url, _file_path(emu)).status == 500
    api_only = start(fault_rate=1.0, faults=("500",), fault_scope="api")
    assert requests.get(api_only.base_url + "/api/health", timeout=5).status_code == 500
    assert raw_get(api_only.base_url, _file_path(api_only)).status == 200


def test_control_routes_never_fault(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("500",), fault_max_per_url=100)
    for _ in range(3):
        assert requests.get(emu.base_url + "/_emulator/stats", timeout=5).status_code == 200


@pytest.mark.system
def test_missing_rate_is_permanent_and_files_only(start: Start) -> None:
    emu = start(missing_rate=0.3)
    statuses = {}
    for i in range(60):
        path = _file_path(emu, i)
        first, again = raw_get(emu.base_url, path), raw_get(emu.base_url, path)
        assert first.status == again.status
        statuses[path] = first.status
    missing = sum(1 for s in statuses.values() if s == 404)
    assert 5 <= missing <= 35
    assert set(statuses.values()) == {200, 404}
    assert requests.get(emu.base_url + "/api/neuron?size=500", timeout=5).status_code == 200


@pytest.mark.system
def test_max_in_flight_answers_503_beyond_the_cap(start: Start) -> None:
    emu = start(max_in_flight=2, latency_ms=300)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: raw_get(emu.base_url, "/api/health"), range(6)))
    statuses = sorted(r.status or 0 for r in results)
    assert statuses.count(200) == 2, statuses
    busy = [r for r in results if r.status == 503]
    assert len(busy) == 4
    assert all(r.headers["retry-after"] == "1" for r in busy)
    assert 3 <= emu.stats()["max_in_flight"] <= 6  # rejected requests leave at once


@pytest.mark.system
def test_latency_is_added(start: Start) -> None:
    """A lower bound only: a busy machine makes a response later, never earlier than the injected delay."""
    emu = start(latency_ms=150, jitter_ms=50)
    began = time.monotonic()
    raw_get(emu.base_url, "/api/health")
    assert time.monotonic() - began >= 0.15


@pytest.mark.timing
@pytest.mark.system
def test_latency_and_jitter_stay_bounded(start: Start) -> None:
    """150 ms latency plus up to 50 ms jitter answers well within a second (an upper bound, so a wall-clock
    claim: behind ``-m timing``)."""
    emu = start(latency_ms=150, jitter_ms=50)
    began = time.monotonic()
    raw_get(emu.base_url, "/api/health")
    assert 0.15 <= time.monotonic() - began < 1.0


@pytest.mark.system
def test_bandwidth_cap_per_connection(start: Start) -> None:
    emu = start(catalogue=Catalogue(20, 7, file_kb=24), bandwidth_kbps=64)
    path = _file_path(emu)
    began = time.monotonic()
    got = raw_get(emu.base_url, path)
    took = time.monotonic() - began
    assert got.declared_length is not None and len(got.body) == got.declared_length
    assert took >= 0.8 * got.declared_length / (64 * 1024)
    assert emu.stats()["bytes_sent"] == got.declared_length


def test_empty_selects_while_health_is_up(start: Start) -> None:
    emu = start(empty_selects=True)
    assert requests.get(emu.base_url + "/api/health", timeout=5).json() == {"status": "UP"}
    field = "species"
    value = emu.catalogue.field_values(field)[0]
    resp = requests.get(emu.base_url + "/api/neuron/select", params={"q": f"{field}:{value}"}, timeout=5)
    assert resp.status_code == 404
    assert requests.get(emu.base_url + f"/api/neuron/partition/{field}", timeout=5).json()["fields"] == {}
