"""/_emulator/stats and /_emulator/reset: what tests and benchmarks count with."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from neuromorpho_fetch import Neuron, Version, file_url

from ._raw import raw_get
from .conftest import Start

REQUIRED = {
    "requests_total",
    "api_requests",
    "file_requests",
    "by_status",
    "bytes_sent",
    "faults_injected",
    "faults_by_kind",
    "max_in_flight",
    "in_flight",
    "file_requests_by_path",
}


def test_counters_over_http_and_in_process(start: Start) -> None:
    emu = start()
    record = emu.catalogue.record(emu.catalogue.neuron_ids()[0])
    assert record is not None
    target = file_url(emu.base_url, Neuron.from_record(record), Version.CNG)
    body = requests.get(target, timeout=10).content
    requests.get(target, timeout=10)
    requests.get(emu.base_url + "/api/health", timeout=10)
    requests.get(emu.base_url + "/api/neuron/id/999999999", timeout=10)
    stats = requests.get(emu.base_url + "/_emulator/stats", timeout=10).json()
    assert set(stats) >= REQUIRED
    assert stats["requests_total"] == 4
    assert stats["file_requests"] == 2
    assert stats["api_requests"] == 2
    assert stats["by_status"] == {"200": 3, "404": 1}
    assert stats["bytes_sent"] > 2 * len(body)
    assert stats["faults_injected"] == 0
    assert stats["in_flight"] == 0
    assert stats["file_requests_by_path"] == {target[len(emu.base_url) :]: 2}
    assert emu.stats() == stats


@pytest.mark.system
def test_max_in_flight_counts_concurrent_requests(start: Start) -> None:
    emu = start(latency_ms=200)
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: raw_get(emu.base_url, "/api/health"), range(5)))
    assert emu.stats()["max_in_flight"] == 5
    emu.reset()
    raw_get(emu.base_url, "/api/health")
    assert emu.stats()["max_in_flight"] == 1


@pytest.mark.system
def test_reset_clears_counters(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("503",), fault_max_per_url=1)
    assert raw_get(emu.base_url, "/api/health").status == 503
    before = emu.stats()
    assert before["faults_injected"] == 1
    assert before["faults_by_kind"] == {"503": 1}
    reply = requests.post(emu.base_url + "/_emulator/reset", timeout=10)
    assert reply.status_code == 200
    after = emu.stats()
    assert after["requests_total"] == after["faults_injected"] == after["bytes_sent"] == 0
    assert after["by_status"] == {}
    # Without ?faults=1 the per-URL history stays: the URL has used its one fault.
    assert raw_get(emu.base_url, "/api/health").status == 200
    emu.reset(faults=True)
    assert raw_get(emu.base_url, "/api/health").status == 503


def test_control_routes_are_not_counted(start: Start) -> None:
    emu = start()
    for _ in range(3):
        requests.get(emu.base_url + "/_emulator/stats", timeout=10)
    config = requests.get(emu.base_url + "/_emulator/config", timeout=10).json()
    assert config["seed"] == emu.config.seed
    assert emu.stats()["requests_total"] == 0
