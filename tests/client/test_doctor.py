"""``--doctor`` gives the right verdict (issue 18 item 5), and the library tells "no such neuron" apart
from "server down" (item 6): every case against the emulator over real sockets, the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import NeuroMorpho, NotFoundError, RetryPolicy, ServiceUnavailable, Timeouts
from neuromorpho_fetch.doctor import key_shape
from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.emulator.compare import shape_differences

from .conftest import Start, client

pytestmark = pytest.mark.system

SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Ran:
    code: int
    out: str
    err: str


def env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: this checkout's source, no proxy unless the test sets one."""
    out = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    out["PYTHONPATH"] = SRC + os.pathsep + out.get("PYTHONPATH", "")
    out.update(extra)
    return out


def python(*args: str, **environ: str) -> Ran:
    """``python -m ARGS`` in a subprocess; 60 s is the acceptance bound, and never a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(**environ),
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)


def doctor(base_url: str, ca_file: str | None, *extra: str, **environ: str) -> Ran:
    ca = ("--ca-file", ca_file) if ca_file else ()
    return python("neuromorpho_fetch", "--doctor", "--base-url", base_url, *extra, *ca, **environ)


def verdict(ran: Ran) -> str:
    lines = [line for line in ran.out.splitlines() if line.startswith("verdict ")]
    assert len(lines) == 1, ran.out + ran.err
    return lines[0]


def closed_port() -> int:
    """A port nothing listens on: bound by us, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def forward_proxy(refuse: bool) -> Iterator[tuple[str, list[str]]]:
    """A forward proxy on a thread: it answers every CONNECT with 403 (a filtering institutional proxy),
    or tunnels it to the target. Yields its URL and the request lines it was sent."""
    ready = threading.Event()
    asked: list[str] = []
    box: dict[str, Any] = {}

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0].decode()
        asked.append(line)
        if refuse or not line.startswith("CONNECT "):
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        host, _, port = line.split()[1].rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        box["port"], box["loop"], box["stop"] = (
            server.sockets[0].getsockname()[1],
            asyncio.get_running_loop(),
            asyncio.Event(),
        )
        ready.set()
        async with server:
            await box["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{box['port']}", asked
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


def test_healthy_server_is_ok_in_few_polite_requests(start: Start, tmp_path: Path) -> None:
    emu = start(tls="legacy-dh")
    record = tmp_path / "seen.json"
    ran = doctor(emu.base_url, emu.ca_file, "--record", str(record))
    assert ran.code == 0 and verdict(ran).startswith("verdict OK"), ran.out + ran.err
    steps = [line.split()[0] for line in ran.out.splitlines() if line and not line.startswith("recorded")]
    assert steps[:3] == ["proxy", "dns", "tcp"] and {"tls", "health", "select", "head", "file", "rtt"} <= set(
        steps
    )
    assert "legacy" in next(line for line in ran.out.splitlines() if line.startswith("tls     ok"))
    stats = emu.stats()
    assert stats["requests_total"] < 15 and stats["max_per_second"] <= 5  # the client's default rate
    seen = json.loads(record.read_text(encoding="utf-8"))
    assert seen["verdict"] == "ok" and seen["exit_code"] == 0
    methods = [(e["method"], e["status"]) for e in seen["exchanges"]]
    assert methods == [("GET", 200), ("GET", 200), ("HEAD", 200), ("GET", 200)]
    select = seen["exchanges"][1]
    assert list(select["shape"]) == ["_embedded", "page"]
    assert select["shape"]["_embedded"]["neuronResources"][0]["neuron_name"] == "string"
    # No bulk data: not a line of the file, not a value of the record.
    held = emu.catalogue.file_for(1, "CNG")
    assert held is not None
    data_line = next(line for line in held.body.decode().splitlines() if line and not line.startswith("#"))
    assert data_line.strip() not in record.read_text(encoding="utf-8")
    assert "cnic_001" not in json.dumps(select["shape"])
    # The emulator agrees with its own recording (same switches, TLS left out): nothing to report.
    same = python("neuromorpho_fetch.emulator", "--neurons", "600", "--seed", "11", "--compare", str(record))
    assert same.code == 0 and "0 differences in 4 recorded requests" in same.out, same.out + same.err


def test_modern_tls_is_named(start: Start) -> None:
    emu = start(tls="modern")
    ran = doctor(emu.base_url, emu.ca_file)
    assert ran.code == 0, ran.out
    assert next(line for line in ran.out.splitlines() if line.startswith("tls")).startswith(
        "tls     ok   modern"
    )


def test_closed_port_is_unreachable() -> None:
    ran = doctor(f"http://127.0.0.1:{closed_port()}", None)
    assert ran.code == 4, ran.out + ran.err
    assert verdict(ran).startswith("verdict server unreachable")
    assert "tcp     FAIL" in ran.out and "health" not in ran.out


def test_a_host_that_does_not_resolve_is_unreachable() -> None:
    ran = doctor("https://no-such-host.invalid", None)
    assert ran.code == 4 and verdict(ran).startswith("verdict server unreachable"), ran.out + ran.err
    assert "dns     FAIL" in ran.out


def test_an_untrusted_certificate_is_local_configuration(start: Start) -> None:
    """The emulator's CA is not given: the certificate cannot be verified, which a flag fixes (exit 2)."""
    emu = start(tls="modern")
    ran = doctor(emu.base_url, None)
    assert ran.code == 2 and verdict(ran).startswith("verdict local configuration"), ran.out + ran.err
    assert "tls     FAIL" in ran.out and "--ca-file" in ran.out and emu.stats()["requests_total"] == 0


def test_legacy_only_server_under_tls_modern_names_the_flag(start: Start) -> None:
    emu = start(tls="legacy-dh")
    ran = doctor(emu.base_url, emu.ca_file, "--tls", "modern")
    assert ran.code == 2, ran.out + ran.err
    assert "--tls auto" in ran.out and "note" not in ran.out


def test_a_proxy_refusing_the_tunnel_is_named(start: Start) -> None:
    emu = start(tls="modern")
    with forward_proxy(refuse=True) as (proxy, asked):
        ran = doctor(emu.base_url, emu.ca_file, HTTPS_PROXY=proxy)
    assert ran.code == 4, ran.out + ran.err
    assert verdict(ran).startswith("verdict blocked or filtered by a proxy")
    assert "tunnel  FAIL" in ran.out and "403 Forbidden" in ran.out and emu.stats()["requests_total"] == 0
    assert asked == [f"CONNECT 127.0.0.1:{emu.port} HTTP/1.1"]


def test_a_proxy_that_tunnels_is_ok(start: Start) -> None:
    """Through a working proxy every step passes, the tunnel is shown once, and the client's own
    requests go through the proxy too (as the environment says)."""
    emu = start(tls="modern")
    with forward_proxy(refuse=False) as (proxy, asked):
        ran = doctor(emu.base_url, emu.ca_file, HTTPS_PROXY=proxy)
    assert ran.code == 0, ran.out + ran.err
    assert ran.out.count("tunnel  ok") == 1 and f"proxy   ok   {proxy} (from the environment)" in ran.out
    assert len(asked) >= 3 and set(asked) == {f"CONNECT 127.0.0.1:{emu.port} HTTP/1.1"}


def test_503_is_busy(start: Start) -> None:
    emu = start(fault_rate=1.0, faults=("503",), fault_max_per_url=100)
    ran = doctor(emu.base_url, emu.ca_file)
    assert ran.code == 5, ran.out + ran.err
    assert verdict(ran).startswith("verdict busy") and "HTTP 503" in ran.out
    assert emu.stats()["requests_total"] == 1  # one attempt: the doctor shows what the server said


def test_a_changed_shape_is_named_and_compare_lists_it(start: Start, tmp_path: Path) -> None:
    emu = start(shape_drift=True)
    record = tmp_path / "drift.json"
    ran = doctor(emu.base_url, emu.ca_file, "--record", str(record))
    assert ran.code == 5, ran.out + ran.err
    assert verdict(ran).startswith("verdict API changed shape") and "select  FAIL" in ran.out
    # The recording against the emulator's own (unchanged) answers: the drift is every difference.
    emulator = ("neuromorpho_fetch.emulator", "--neurons", "600", "--seed", "11")
    done = python(*emulator, "--compare", str(record))
    assert done.code == 1, done.out + done.err
    assert "$._embedded: served, not recorded" in done.out and "$.content: recorded, not served" in done.out
    same = python(*emulator, "--shape-drift", "--compare", str(record))
    assert same.code == 0, same.out + same.err


def test_record_needs_doctor(tmp_path: Path) -> None:
    done = python("neuromorpho_fetch", "--record", str(tmp_path / "x.json"))
    assert done.code == 2 and "--record is for --doctor" in done.err
    nowhere = python("neuromorpho_fetch", "--doctor", "--record", str(tmp_path / "no" / "x.json"))
    assert nowhere.code == 2 and "does not exist" in nowhere.err and "proxy" not in nowhere.out


def test_shapes_keep_keys_in_order_and_drop_data() -> None:
    shape = key_shape({"b": [{"x": 1, "y": None}], "a": "text", "c": True, "d": []})
    assert shape == {"b": [{"x": "number", "y": "null"}], "a": "string", "c": "boolean", "d": []}
    assert list(shape) == ["b", "a", "c", "d"]
    moved = {"a": "string", "b": [{"x": "string"}], "e": "number"}
    assert list(shape_differences(shape, moved)) == [
        "$.c: recorded, not served",
        "$.d: recorded, not served",
        "$.e: served, not recorded",
        "$: key order ['b', 'a'] recorded, ['a', 'b'] served",
        "$.b[0].y: recorded, not served",
        "$.b[0].x: number recorded, string served",
    ]


# -- item 6: not found is not unavailable -------------------------------------------------------------


async def test_a_neuron_that_does_not_exist_is_not_found(plain: Emulator) -> None:
    async with client(plain) as nm:
        for lookup in (nm.neuron(987_654_321), nm.neuron_by_name("no_such_neuron_anywhere")):
            with pytest.raises(NotFoundError) as caught:
                await lookup
            assert not isinstance(caught.value, ServiceUnavailable) and caught.value.status == 404


async def test_a_closed_port_is_unavailable() -> None:
    async with client_for(f"http://127.0.0.1:{closed_port()}") as nm:
        with pytest.raises(ServiceUnavailable) as caught:
            await nm.neuron_by_name("cnic_001")
    assert not isinstance(caught.value, NotFoundError)


async def test_a_host_that_does_not_resolve_is_unavailable() -> None:
    async with client_for("http://no-such-host.invalid") as nm:
        with pytest.raises(ServiceUnavailable) as caught:
            await nm.neuron(1)
    assert "resolve" in str(caught.value)


@pytest.mark.parametrize("status", ["503", "500"])
async def test_5xx_after_the_retries_is_unavailable(start: Start, status: str) -> None:
    emu = start(fault_rate=1.0, faults=(status,), fault_max_per_url=100)
    async with client(emu, retries=2) as nm:
        with pytest.raises(ServiceUnavailable) as caught:
            await nm.neuron(1)
    assert not isinstance(caught.value, NotFoundError)
    assert emu.stats()["requests_total"] == 3  # the first try and both retries


def client_for(base_url: str) -> NeuroMorpho:
    """A client with two quick attempts, for servers that are not there."""
    return NeuroMorpho(
        base_url,
        retries=RetryPolicy(attempts=2, backoff_base=0.001, backoff_max=0.005),
        timeouts=Timeouts(connect=5, idle=5, attempt=10),
    )
