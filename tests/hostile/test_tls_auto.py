"""TLS at the highest level the server supports (issue 10, "Also"), against the emulator's TLS modes.

``--tls auto`` (the default) starts on a stock modern context and falls back, per host, to the legacy
1024-bit-DH context only on ``DH_KEY_TOO_SMALL``, once, recorded in the report; ``modern`` and ``legacy``
force one; certificates are verified in every mode unless ``--insecure``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest

from neuromorpho_fetch import NeuroMorpho, ssl_context
from neuromorpho_fetch.config import ClientConfig
from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.errors import TLSError, WeakKeyError

from .conftest import (
    ARCHIVE,
    Serve,
    assert_counts_add_up,
    base_args,
    data_files,
    expected_files,
    read_report,
    run_cli,
)

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system


def _host(server: Emulator) -> str:
    return f"127.0.0.1:{server.port}"


async def test_auto_falls_back_once_per_host_on_a_weak_dh_key(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(tls="legacy-dh")
    caplog.set_level(logging.INFO, logger="neuromorpho_fetch")
    async with NeuroMorpho(server.base_url, ca_file=server.ca_file, rate=1000, concurrency=8) as nm:
        results = await asyncio.gather(*(nm.health() for _ in range(8)), nm.archives())
        assert all(r for r in results)
        assert nm.transport.tls_hosts == {_host(server): "legacy-dh"}
    said = [r for r in caplog.records if "DH_KEY_TOO_SMALL" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO


async def test_auto_stays_modern_on_a_modern_server(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    server = serve(tls="modern")
    caplog.set_level(logging.INFO, logger="neuromorpho_fetch")
    async with NeuroMorpho(server.base_url, ca_file=server.ca_file, rate=1000) as nm:
        await nm.health()
        assert nm.transport.tls_hosts == {_host(server): "modern"}
    assert not [r for r in caplog.records if "DH_KEY_TOO_SMALL" in r.getMessage()]


async def test_forced_modern_refuses_a_weak_key_with_advice(serve: Serve) -> None:
    server = serve(tls="legacy-dh")
    config = ClientConfig(base_url=server.base_url, tls="modern", ca_file=server.ca_file, rate=1000.0)
    async with NeuroMorpho(config=config) as nm:
        with pytest.raises(WeakKeyError, match="--tls auto or --tls legacy"):
            await nm.health()


async def test_forced_legacy_works_on_both_servers(serve: Serve) -> None:
    for mode in ("legacy-dh", "modern"):
        server = serve(tls=mode)
        config = ClientConfig(base_url=server.base_url, tls="legacy", ca_file=server.ca_file, rate=1000.0)
        async with NeuroMorpho(config=config) as nm:
            assert (await nm.health())["status"] == "UP"
            assert nm.transport.tls_hosts == {_host(server): "legacy-dh"}


@pytest.mark.parametrize("mode", ["auto", "modern", "legacy"])
async def test_certificates_are_verified_in_every_mode(serve: Serve, mode: str) -> None:
    """No ``ca_file``: the emulator's throwaway CA is unknown, so every mode refuses the server."""
    server = serve(tls="modern" if mode == "modern" else "legacy-dh")
    config = ClientConfig(base_url=server.base_url, tls=mode, rate=1000.0)
    async with NeuroMorpho(config=config) as nm:
        with pytest.raises(TLSError, match="certificate"):
            await nm.health()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_insecure_skips_verification_in_any_mode(serve: Serve, mode: str) -> None:
    server = serve(tls="legacy-dh")
    config = ClientConfig(base_url=server.base_url, tls=mode, insecure=True, rate=1000.0)
    async with NeuroMorpho(config=config) as nm:
        assert (await nm.health())["status"] == "UP"


@pytest.mark.timeout(60)
def test_the_cli_records_the_fallback_in_the_report(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(tls="legacy-dh")
    out, report_path = tmp_path / "m", tmp_path / "r.json"
    result = run_cli([*base_args(server, out, "--report", str(report_path)), "--archive", ARCHIVE], capsys)
    assert result.code == 0, result.err
    report = read_report(report_path)
    assert report["tls"] == {_host(server): "legacy-dh"}
    assert_counts_add_up(report)
    assert data_files(out) == expected_files(server, ARCHIVE)


@pytest.mark.timeout(60)
def test_the_cli_forced_modern_on_a_legacy_server_is_one_line_exit_2(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(tls="legacy-dh")
    out = tmp_path / "m"
    result = run_cli([*base_args(server, out, "--tls", "modern"), "--archive", ARCHIVE], capsys)
    assert result.code == 2
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "DH_KEY_TOO_SMALL" in errors[0] and "--tls" in errors[0], result.err


def test_ssl_context_keeps_its_public_api() -> None:
    """``ssl_context()`` is the stock modern context (issue 16); ``legacy=True`` the legacy-tolerant one
    scripts used, with the same CA handling."""
    stock = {c["name"] for c in ssl.create_default_context().get_ciphers()}
    modern = ssl_context()
    legacy = ssl_context(legacy=True)
    assert {c["name"] for c in modern.get_ciphers()} == stock
    assert {c["name"] for c in legacy.get_ciphers()} >= stock
    for ctx in (modern, legacy):
        assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ssl_context(insecure=True).verify_mode is ssl.CERT_NONE
    assert modern.security_level == 2 and legacy.security_level == 1
