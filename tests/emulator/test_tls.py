"""TLS modes over real sockets: the legacy server breaks stock clients exactly as neuromorpho.org did."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from neuromorpho_fetch import ssl_context
from neuromorpho_fetch.emulator import Catalogue, Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.errors import UsageError
from neuromorpho_fetch.tls import build_early, forget_early

from .conftest import SMALL, Start

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def legacy(small_catalogue: Catalogue) -> Iterator[Emulator]:
    config = EmulatorConfig(tls="legacy-dh", neurons=SMALL.neurons)
    with serve_in_thread(config, catalogue=small_catalogue) as emu:
        yield emu


def _handshake(emu: Emulator, ctx: ssl.SSLContext) -> tuple[str, str, int]:
    with (
        socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return cipher


def test_a_context_built_early_is_the_first_call_s_and_verifies(legacy: Emulator) -> None:
    """The command builds its first context while it imports (tls.build_early): the run's first
    ssl_context call gets that one, with the same checks; a later call builds anew (a CA file changed
    since is read again), and other arguments never get it."""
    build_early(legacy.ca_file, legacy=True)
    other = ssl_context(legacy=True)  # no CA file: not the early one
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(legacy, other)
    early = ssl_context(ca_file=legacy.ca_file, legacy=True)
    name, _, _ = _handshake(legacy, early)
    assert name.startswith("DHE-RSA-")
    assert early.verify_mode == ssl.CERT_REQUIRED and early.check_hostname
    again = ssl_context(ca_file=legacy.ca_file, legacy=True)
    assert again is not early
    _handshake(legacy, again)


def test_a_context_built_early_and_not_taken_is_forgotten(tmp_path: Path) -> None:
    """A run that ends before its first request drops its early context: a later call in the same
    process reads the CA file as it is then (here: gone, so the one-line usage error)."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not read before it is gone\n")
    build_early(ca)
    forget_early()
    ca.unlink()
    with pytest.raises(UsageError, match="does not exist"):
        ssl_context(ca_file=ca)


def test_a_context_built_early_raises_its_error_where_it_is_used(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    build_early(missing)
    with pytest.raises(UsageError, match=r"no-such-ca\.pem.*does not exist"):
        ssl_context(ca_file=missing)


def test_default_mode_is_legacy_dh() -> None:
    assert EmulatorConfig().tls == "legacy-dh"


def test_stock_ssl_context_fails_with_dh_key_too_small(legacy: Emulator) -> None:
    assert legacy.ca_file is not None
    with pytest.raises(ssl.SSLError, match="DH_KEY_TOO_SMALL"):
        _handshake(legacy, ssl.create_default_context(cafile=legacy.ca_file))


def test_stock_requests_fails_with_dh_key_too_small(legacy: Emulator) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="DH_KEY_TOO_SMALL"):
        requests.get(f"{legacy.base_url}/api/health", verify=legacy.ca_file, timeout=5)


def test_seclevel1_context_with_ca_file_negotiates_dhe(legacy: Emulator) -> None:
    name, version, _ = _handshake(legacy, ssl_context(ca_file=legacy.ca_file, legacy=True))
    assert name.startswith("DHE-RSA-")
    assert version == "TLSv1.2"


def test_seclevel1_without_ca_file_still_verifies(legacy: Emulator) -> None:
    ctx = ssl.create_default_context()
    ctx.set_ciphers("DEFAULT:@SECLEVEL=1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(legacy, ctx)


def test_no_dh_cipher_list_negotiates_ecdhe(legacy: Emulator) -> None:
    ctx = urllib3.util.create_urllib3_context(ciphers=":HIGH:!DH:!aNULL")
    ctx.load_verify_locations(legacy.ca_file)
    name, _, _ = _handshake(legacy, ctx)
    assert name.startswith("ECDHE-RSA-")


def test_no_dh_adapter_serves_the_api(legacy: Emulator) -> None:
    """The neuromorpho-api package's adapter (reference A10 (2)) gets real answers."""
    ctx = urllib3.util.create_urllib3_context(ciphers=":HIGH:!DH:!aNULL")
    ctx.load_verify_locations(legacy.ca_file)
    with urllib3.PoolManager(ssl_context=ctx) as pool:
        resp = pool.request("GET", f"{legacy.base_url}/api/health")
    assert resp.status == 200
    assert resp.json() == {"status": "UP"}


def test_modern_mode_works_with_stock_clients(start: Start) -> None:
    emu = start(tls="modern")
    assert emu.base_url.startswith("https://")
    resp = requests.get(f"{emu.base_url}/api/health", verify=emu.ca_file, timeout=5)
    assert resp.json() == {"status": "UP"}
    name, version, _ = _handshake(emu, ssl.create_default_context(cafile=emu.ca_file))
    assert not name.startswith("DHE-")
    assert version in ("TLSv1.2", "TLSv1.3")


def test_none_mode_is_plain_http(plain: Emulator) -> None:
    assert plain.base_url.startswith("http://")
    assert plain.ca_file is None
    assert plain.http_url == plain.base_url
    assert requests.get(f"{plain.base_url}/api/health", timeout=5).status_code == 200


def test_redirect_http_answers_301_to_https(start: Start) -> None:
    emu = start(tls="modern", redirect_http=True)
    assert emu.http_url is not None and emu.http_url.startswith("http://")
    path = "/dableFiles/some%20archive/CNG%20version/a%2Bb.CNG.swc?x=1"
    resp = requests.get(emu.http_url + path, allow_redirects=False, timeout=5)
    assert resp.status_code == 301
    assert resp.headers["Location"] == emu.base_url + path
    followed = requests.get(f"{emu.http_url}/api/health", verify=emu.ca_file, timeout=5)
    assert followed.status_code == 200
    assert followed.history[0].status_code == 301


def test_redirect_needs_tls() -> None:
    with pytest.raises(ValueError, match="redirect-http"):
        EmulatorConfig(tls="none", redirect_http=True)


def test_truncate_and_stall_over_tls_reach_an_aiohttp_client(start: Start) -> None:
    import asyncio

    import aiohttp

    from neuromorpho_fetch import Neuron, Version, file_url

    emu = start(
        tls="legacy-dh", fault_rate=1.0, faults=("truncate", "stall"), fault_max_per_url=4, stall_ms=2000
    )

    async def attempts() -> list[str]:
        connector = aiohttp.TCPConnector(ssl=ssl_context(ca_file=emu.ca_file, legacy=True))
        timeout = aiohttp.ClientTimeout(sock_read=0.3)
        seen = []
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for index in range(4):
                record = emu.catalogue.record(emu.catalogue.neuron_ids()[index])
                assert record is not None
                try:
                    async with session.get(
                        file_url(emu.base_url, Neuron.from_record(record), Version.CNG)
                    ) as r:
                        await r.read()
                    seen.append("ok")
                except aiohttp.ClientPayloadError:
                    seen.append("truncate")
                except TimeoutError:
                    seen.append("stall")
        return seen

    seen = asyncio.run(attempts())
    assert set(seen) <= {"truncate", "stall"} and seen
    assert emu.stats()["faults_injected"] == 4


def test_plain_http_needs_no_trustme(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from neuromorpho_fetch.emulator.tls import make_tls

    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme now raises ImportError
    assert make_tls("none", ("127.0.0.1",)) is None
    with pytest.raises(RuntimeError, match=r"pip install 'neuromorpho-fetch\[emulator\]'"):
        make_tls("modern", ("127.0.0.1",))
