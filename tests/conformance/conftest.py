"""Servers for the conformance suite: the emulator in each TLS mode, reachable under the real host name.

The seed documents' code names ``https://neuromorpho.org``; the only change made to it is the port, and
``neuromorpho.org`` resolves to the emulator (``socket.getaddrinfo`` answers 127.0.0.1 for that one name,
for the duration of a test). The emulator's certificate carries ``neuromorpho.org`` and its CA is trusted
through ``REQUESTS_CA_BUNDLE``, the way requests documents; nothing in the seed code's logic changes, and
the seed package's TLS adapter (mounted on the ``https://neuromorpho.org`` prefix) applies as it would
against the real server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, serve_in_thread

REAL_HOST = "neuromorpho.org"


@pytest.fixture(scope="module", params=["legacy-dh", "modern"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    with serve_in_thread(EmulatorConfig(tls=request.param, neurons=2000, seed=7)) as emu:
        yield emu


@pytest.fixture
def real_host(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``https://neuromorpho.org:<port>``, resolving to the emulator, with its CA trusted by requests."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # anyio (httpx's async transport) passes the IDNA-encoded name as bytes.
        ours = host in (REAL_HOST, REAL_HOST.encode())
        return real_getaddrinfo("127.0.0.1" if ours else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert emulator.ca_file is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)
    emulator.reset()
    return f"https://{REAL_HOST}:{emulator.port}"
