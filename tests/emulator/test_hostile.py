"""Issue 10's hostile switches, each seen on the wire: what the server sends, and that it always stops.

Client regression tests rely on these behaviours being exactly what the issue describes (a looping
listing, ``totalPages: "NaN"``, a 500 then two HTML 404s, one byte per interval, a 3 GB promise, a
``Content-Length`` that lies either way), so each is read here with a raw socket, and every hostile stream
is shown to end by the emulator's own bounds.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests

from neuromorpho_fetch import Version
from neuromorpho_fetch.emulator import Emulator, HostileConfig
from neuromorpho_fetch.emulator.__main__ import parse_args
from neuromorpho_fetch.emulator.hostile import FILLER, LOOP_PAGES

from ._raw import raw_get
from .conftest import Start
from .test_files import neuron, url


def _path(emu: Emulator, index: int = 0) -> str:
    return url(emu, index)[len(emu.base_url) :]


def _body(emu: Emulator, index: int = 0) -> bytes:
    found = emu.catalogue.file_for(neuron(emu, index).id, Version.CNG.value)
    assert found is not None
    return found.body


@dataclass
class Drained:
    """A response read to its end without keeping more than the first bytes of the body."""

    head: str
    first: bytes
    body_bytes: int
    arrivals: list[float]  # monotonic time of each recv that brought body bytes
    closed: bool  # the server ended the stream (FIN or reset), not our timeout


def _drain(base_url: str, path: str, *, keep: int = 1 << 20, timeout: float = 10.0) -> Drained:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    buf, head, first, count, arrivals, closed = b"", "", b"", 0, [], False
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(1 << 16):
                if not head:
                    buf += chunk
                    raw_head, sep, chunk = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    head = raw_head.decode("latin-1")
                if chunk:
                    arrivals.append(time.monotonic())
                    count += len(chunk)
                    if len(first) < keep:
                        first += chunk[: keep - len(first)]
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
    return Drained(head, first, count, arrivals, closed)


def _header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    """A chunked body's payload, and whether it had its terminating zero-length chunk."""
    out = bytearray()
    while data:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out), True
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out), False


# -- Content-Length that lies ---------------------------------------------------------------------


@pytest.mark.system
def test_short_content_length_sends_the_whole_body_under_a_smaller_header(start: Start) -> None:
    emu = start(hostile=HostileConfig(short_length=1.0, max_per_url=1))
    path, expected = _path(emu), _body(emu)
    lying = raw_get(emu.base_url, path)
    assert lying.status == 200
    assert lying.declared_length == len(expected) // 2
    assert lying.body == expected  # more bytes than declared: the whole real body
    assert "connection" not in lying.headers  # a keep-alive promise, so the surplus looks like a response
    honest = raw_get(emu.base_url, path)  # max_per_url=1: the retry is served properly
    assert honest.declared_length == len(expected) == len(honest.body)
    assert emu.stats()["faults_by_kind"] == {"hostile-short-length": 1}


def test_short_content_length_reproduces_issue_10_item_7_in_aiohttp(start: Start) -> None:
    """What the client saw: the surplus read as the next status line, "400, Bad status line"."""
    emu = start(hostile=HostileConfig(short_length=1.0))

    async def get() -> BaseException | None:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.get(url(emu), timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    await resp.read()
            except aiohttp.ClientError as exc:
                return exc
        return None

    error = asyncio.run(get())
    assert isinstance(error, aiohttp.ClientResponseError)
    assert "Bad status line" in str(error)


@pytest.mark.system
def test_long_content_length_sends_the_whole_body_then_closes(start: Start) -> None:
    emu = start(hostile=HostileConfig(long_length=1.0))
    expected = _body(emu)
    resp = raw_get(emu.base_url, _path(emu))
    assert resp.status == 200
    assert resp.declared_length == 2 * len(expected)
    assert resp.body == expected
    assert resp.error is None  # a clean FIN, not a reset: only the length says the body is short


# -- slow, endless and oversized bodies ------------------------------------------------------------


def test_trickle_sends_one_byte_per_interval_under_the_true_length(start: Start) -> None:
    interval = 0.05
    emu = start(hostile=HostileConfig(trickle=1.0, trickle_interval_s=interval, stream_max_bytes=6))
    expected = _body(emu)
    began = time.monotonic()
    got = _drain(emu.base_url, _path(emu))
    assert _header(got.head, "content-length") == str(len(expected))
    assert got.first == expected[:6]  # stream_max_bytes cut it: a short body, then the connection closed
    assert got.closed
    # The server sleeps between bytes, so six bytes cannot arrive faster than five intervals.
    assert got.arrivals[-1] - began >= 5 * interval


def test_trickle_is_stopped_by_the_time_bound(start: Start) -> None:
    interval, limit = 0.02, 0.2
    emu = start(hostile=HostileConfig(trickle=1.0, trickle_interval_s=interval, stream_max_s=limit))
    got = _drain(emu.base_url, _path(emu))
    assert got.closed
    assert 1 <= got.body_bytes <= math.floor(limit / interval) + 1
    assert got.body_bytes < len(_body(emu))


@pytest.mark.system
def test_trickle_stops_when_the_client_hangs_up(start: Start) -> None:
    emu = start(hostile=HostileConfig(trickle=1.0, trickle_interval_s=0.05))
    parts = urlsplit(emu.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"GET {_path(emu)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 5
    while emu.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.stats()["in_flight"] == 0  # the handler ended with the connection, not after days


@pytest.mark.system
def test_endless_chunked_body_never_terminates_and_is_bounded(start: Start) -> None:
    emu = start(hostile=HostileConfig(endless=1.0, stream_max_bytes=300_000))
    expected = _body(emu)
    resp = raw_get(emu.base_url, _path(emu))
    assert resp.status == 200
    assert resp.headers.get("transfer-encoding") == "chunked"
    assert resp.declared_length is None
    payload, terminated = _dechunk(resp.body)
    assert not terminated  # no zero-length chunk: the body never "ends", the connection is cut
    assert len(payload) == 300_000
    assert payload.startswith(expected)
    assert payload[len(expected) :].startswith(FILLER[:100])


def test_endless_body_is_stopped_by_the_time_bound(start: Start) -> None:
    emu = start(hostile=HostileConfig(endless=1.0, stream_max_s=0.2, stream_max_bytes=2**40))
    got = _drain(emu.base_url, _path(emu), keep=0, timeout=30)
    assert got.closed
    assert got.body_bytes > len(_body(emu))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("switch", ["endless", "oversized"])
@pytest.mark.system
def test_a_client_that_stops_reading_is_cut_by_the_time_bound(start: Start, switch: str) -> None:
    # The flood fills the socket buffers and the server's write waits for a reader that never comes;
    # the time bound must still end the handler (before the fix in_flight stayed 1 for good).
    emu = start(
        hostile=HostileConfig(
            stream_max_s=0.5,
            stream_max_bytes=2**40,
            endless=1.0 if switch == "endless" else 0.0,
            oversized=1.0 if switch == "oversized" else 0.0,
        )
    )
    parts = urlsplit(emu.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {_path(emu)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        deadline = time.monotonic() + 30  # generous: the bound is 0.5 s
        while not emu.stats()["file_requests"] and time.monotonic() < deadline:
            time.sleep(0.01)  # the request has reached the handler
        while emu.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.stats()["file_requests"] == 1
        assert emu.stats()["in_flight"] == 0  # ended by the bound while the socket is still open


def test_oversized_body_declares_3_gb_and_streams_until_the_byte_bound(start: Start) -> None:
    bound = 8 * 2**20
    emu = start(hostile=HostileConfig(oversized=1.0, stream_max_bytes=bound))
    expected = _body(emu)
    got = _drain(emu.base_url, _path(emu), keep=len(expected) + len(FILLER), timeout=30)
    assert _header(got.head, "content-length") == "3000000000"
    assert got.closed
    assert got.body_bytes == bound
    assert got.first == expected + FILLER  # the real file, then the one reused filler block
    assert emu.stats()["bytes_sent"] == bound


# -- status scripts ---------------------------------------------------------------------------------


def test_status_script_answers_each_url_in_turn_then_behaves(start: Start) -> None:
    """Issue 10 item 3: 500, then HTML 404 twice, then 200."""
    emu = start(hostile=HostileConfig(status_script=("500", "html404", "html404")))
    seen = []
    for _ in range(5):
        resp = requests.get(emu.base_url + "/api/neuron/id/1", timeout=5)
        seen.append((resp.status_code, resp.headers["Content-Type"].split(";")[0]))
    assert seen == [
        (500, "application/json"),
        (404, "text/html"),
        (404, "text/html"),
        (200, "application/json"),
        (200, "application/json"),
    ]
    other = requests.get(emu.base_url + "/api/neuron/id/2", timeout=5)
    assert other.status_code == 500  # every URL gets the script from its start
    assert requests.get(url(emu), timeout=5).status_code == 200  # script_scope defaults to the API
    stats = emu.stats()
    assert stats["faults_by_kind"] == {"hostile-script": 4}
    assert stats["by_status"] == {"200": 3, "404": 2, "500": 2}


@pytest.mark.system
def test_status_script_steps_on_file_routes(start: Start) -> None:
    script = ("503", "reset", "html200", "ok", "429")
    emu = start(hostile=HostileConfig(status_script=script, script_scope="files"))
    path = _path(emu)
    first, second, third, fourth, fifth = (raw_get(emu.base_url, path) for _ in script)
    assert first.status == 503 and first.headers["retry-after"] == "1"
    assert second.status is None and second.error == "reset"
    assert third.status == 200 and third.body.startswith(b"<!doctype html>")
    assert fourth.status == 200 and fourth.body == _body(emu)
    assert fifth.status == 429
    assert raw_get(emu.base_url, path).body == _body(emu)
    assert requests.get(emu.base_url + "/api/neuron/id/1", timeout=5).status_code == 200


# -- listing pages -----------------------------------------------------------------------------------


def _ids(page: dict[str, Any]) -> list[int]:
    return [r["neuron_id"] for r in page["_embedded"]["neuronResources"]]


def test_looping_pages_repeat_page_zero_with_a_billion_pages(start: Start, plain: Emulator) -> None:
    emu = start(hostile=HostileConfig(looping_pages=1.0), page_links=True)
    honest = requests.get(plain.base_url + "/api/neuron?size=20", timeout=5).json()
    for number in (0, 1, 7, 123456):
        page = requests.get(emu.base_url + f"/api/neuron?page={number}&size=20", timeout=5).json()
        assert _ids(page) == _ids(honest)
        assert page["page"] == {
            "size": 20,
            "totalElements": 20 * LOOP_PAGES,
            "totalPages": LOOP_PAGES,
            "number": number,
        }
        assert f"page={number + 1}" in page["_links"]["next"]["href"]
    species = plain.catalogue.record(plain.catalogue.neuron_ids()[0])["species"]  # type: ignore[index]
    query = {"species": [species]}
    first = requests.post(emu.base_url + "/api/neuron/select?size=5", json=query, timeout=5).json()
    fifth = requests.post(emu.base_url + "/api/neuron/select?page=4&size=5", json=query, timeout=5).json()
    assert _ids(first) == _ids(fifth)
    assert fifth["page"]["totalPages"] == LOOP_PAGES
    assert requests.get(emu.base_url + "/api/neuron/id/1", timeout=5).json()["neuron_id"] == 1  # not a page


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("nan", lambda p: p["totalPages"] == "NaN" and p["number"] == -7),
        ("negative", lambda p: p["totalElements"] < 0 and p["totalPages"] < 0),
        ("huge", lambda p: p["totalElements"] > 2**63 and p["totalPages"] > 2**63),
        ("inconsistent", lambda p: p["totalPages"] > math.ceil(p["totalElements"] / p["size"])),
    ],
)
def test_nonsense_paging_numbers(start: Start, plain: Emulator, kind: str, check: Any) -> None:
    emu = start(hostile=HostileConfig(nonsense_paging=1.0, nonsense_kind=kind))  # type: ignore[arg-type]
    bent = requests.get(emu.base_url + "/api/neuron?page=2&size=10", timeout=5).json()
    honest = requests.get(plain.base_url + "/api/neuron?page=2&size=10", timeout=5).json()
    assert check(bent["page"]), bent["page"]
    assert _ids(bent) == _ids(honest)  # the records are real: what was listed can still be fetched
    assert emu.stats()["faults_by_kind"] == {"hostile-nonsense-paging": 1}


def test_mixed_nonsense_is_reproducible_from_the_seed(start: Start) -> None:
    def pages(seed: int) -> list[Any]:
        emu = start(seed=seed, hostile=HostileConfig(nonsense_paging=1.0, nonsense_kind="mixed"))
        return [
            requests.get(emu.base_url + f"/api/neuron?page={n}", timeout=5).json()["page"] for n in range(8)
        ]

    first = pages(7)
    assert pages(7) == first
    assert len({str(p["totalPages"]) for p in first}) >= 2  # more than one kind of nonsense


# -- rates, seeds, scoping ------------------------------------------------------------------------------


def _short(emu: Emulator, indexes: range) -> set[int]:
    """Which files came with a short Content-Length (HEAD skips body behaviours, so GET each)."""
    hit = set()
    for i in indexes:
        resp = raw_get(emu.base_url, _path(emu, i))
        if resp.declared_length is not None and resp.declared_length < len(resp.body):
            hit.add(i)
    return hit


def test_a_rate_picks_a_reproducible_share_of_urls(start: Start) -> None:
    files = range(40)
    hostile = HostileConfig(short_length=0.5)
    first = _short(start(hostile=hostile), files)
    assert _short(start(hostile=hostile), files) == first
    assert 8 <= len(first) <= 32
    assert _short(start(seed=8, hostile=hostile), files) != first


@pytest.mark.system
def test_paths_regex_limits_which_urls_misbehave(start: Start) -> None:
    emu = start(hostile=HostileConfig(long_length=1.0, body_scope="all", paths=r"/dableFiles/"))
    api = raw_get(emu.base_url, "/api/neuron/id/1")
    assert api.declared_length == len(api.body)
    resp = raw_get(emu.base_url, _path(emu))
    assert resp.declared_length == 2 * len(resp.body)


def test_head_and_conditional_requests_are_left_alone(start: Start) -> None:
    emu = start(hostile=HostileConfig(oversized=1.0))
    assert requests.head(url(emu), timeout=5).headers["Content-Length"] == str(len(_body(emu)))
    etag = requests.head(url(emu), timeout=5).headers["ETag"]
    assert requests.get(url(emu), headers={"If-None-Match": etag}, timeout=5).status_code == 304
    assert emu.stats()["faults_injected"] == 0


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trickle", float("nan")),
        ("endless", 1.5),
        ("looping_pages", -0.1),
        ("trickle_interval_s", 0.0),
        ("stream_max_s", float("inf")),
        ("stream_max_bytes", 0),
        ("max_per_url", -1),
        ("status_script", ("500", "teapot")),
        ("status_script", ("99",)),
        ("nonsense_kind", "silly"),
        ("body_scope", "nowhere"),
        ("paths", "("),
    ],
)
def test_bad_hostile_values_are_one_clear_error(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        HostileConfig(**{field: value})


def test_the_cli_flag_builds_the_same_config() -> None:
    config, _ = parse_args(
        ["--hostile", "status_script=500/html404/html404/ok, trickle=1,trickle-interval-s=0.5,max_per_url=2"]
    )
    assert config.hostile == HostileConfig(
        status_script=("500", "html404", "html404", "ok"), trickle=1.0, trickle_interval_s=0.5, max_per_url=2
    )


@pytest.mark.parametrize("spec", ["trickle", "nosuch=1", "trickle=fast", "trickle=2", "status_script=500/x"])
def test_a_bad_cli_flag_is_one_line_and_exit_2(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--hostile", spec])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--hostile" in err


def test_the_config_route_shows_the_hostile_switches(start: Start) -> None:
    emu = start(hostile=HostileConfig(trickle=0.25, status_script=("503",)))
    shown = requests.get(emu.base_url + "/_emulator/config", timeout=5).json()["hostile"]
    assert shown["trickle"] == 0.25
    assert shown["status_script"] == ["503"]


@pytest.mark.system
def test_the_pytest_plugin_serves_a_hostile_config(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from neuromorpho_fetch.emulator import EmulatorConfig, HostileConfig

        pytest_plugins = ["neuromorpho_fetch.emulator.pytest_plugin"]

        @pytest.fixture(scope="session")
        def neuromorpho_emulator_config():
            return EmulatorConfig(tls="none", neurons=20, hostile=HostileConfig(status_script=("503", "ok")))
        """
    )
    pytester.makepyfile(
        """
        import urllib.error, urllib.request

        def test_script(neuromorpho_emulator):
            url = neuromorpho_emulator.base_url + "/api/health"
            try:
                urllib.request.urlopen(url)
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
            else:
                raise AssertionError("expected the scripted 503")
            with urllib.request.urlopen(url) as resp:
                assert resp.status == 200
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
