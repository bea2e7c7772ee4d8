"""Issue 15 items 15, 16 and 17 through the CLI: the network a user really has.

The proxy tests run a real forward proxy (:class:`Proxy`, asyncio in its own thread: ``CONNECT`` for
https, absolute-form requests for http) in front of a target the client can reach only through it: the
base URL names ``neuromorpho.org`` (in the emulator's certificate) on a port where nothing listens, and
only the proxy knows which local server that really is.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.errors import UNREACHABLE_EXIT

from .conftest import (
    ARCHIVE,
    FAST,
    assert_counts_add_up,
    assert_one_line,
    data_files,
    expected_files,
    outside,
    part_files,
    read_report,
    run_cli,
    stderr_lines,
)

pytestmark = pytest.mark.system  # real sockets, a real proxy

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proxy:
    """A forward proxy: ``CONNECT host:port`` tunnels and absolute-form requests are sent to
    ``routes[(host, port)]``; anything else gets a 502. ``refuse``: every request gets a 403. ``seen``:
    the first line of every request it got."""

    def __init__(self, routes: dict[tuple[str, int], tuple[str, int]], *, refuse: bool = False) -> None:
        self.routes = routes
        self.refuse = refuse
        self.seen: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Proxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.seen.append(line)
            method, target, _ = line.split(" ", 2)
            if self.refuse:
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                first = b""
            else:
                found = re.match(r"http://([^/:]+):(\d+)/", target)
                host, port = (found.group(1), found.group(2)) if found else ("", "0")
                first = head  # the absolute-form request goes on as it came: servers must accept it
            where = self.routes.get((host, int(port)))
            if where is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            up_reader, up_writer = await asyncio.open_connection(*where)
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            up_writer.write(first)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy setting from the machine running the tests (upper and lower case)."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def tls_emu() -> Iterator[Emulator]:
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="modern", file_kb=4)) as server:
        yield server


def _run(
    base_url: str, out: Path, capsys: pytest.CaptureFixture[str], *extra: str, ca: str | None = None
) -> tuple[int, str, dict[str, object]]:
    """The CLI on ``ARCHIVE`` with ``--report``; checks what every run must hold (no traceback, report
    equal to the exit code, counts that add up, no ``.part``, nothing outside ``--out`` changed)."""
    report = out.parent / f"{out.name}.json"
    before = outside(out, report)
    args = ["--base-url", base_url, "--out", str(out), "--no-progress", *FAST, "--report", str(report)]
    if ca:
        args += ["--ca-file", ca]
    result = run_cli([*args, *extra, "--archive", ARCHIVE], capsys)
    assert "Traceback" not in result.err
    data = read_report(report) if report.exists() else {}
    if data:
        assert data["exit_code"] == result.code
        assert_counts_add_up(data)
    assert not part_files(out)
    assert outside(out, report) == before
    return result.code, result.err, data


# -- item 15: proxies --------------------------------------------------------------------------------


def test_https_through_a_connect_proxy_from_https_proxy(
    tls_emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    fake = free_port()
    real = ("127.0.0.1", int(tls_emu.base_url.rsplit(":", 1)[1]))
    with Proxy({("neuromorpho.org", fake): real}) as proxy:
        no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        out = tmp_path / "m"
        code, err, _ = _run(f"https://neuromorpho.org:{fake}", out, capsys, ca=tls_emu.ca_file)
    assert code == 0, err
    assert data_files(out) == expected_files(tls_emu, ARCHIVE)
    assert proxy.seen and all(line == f"CONNECT neuromorpho.org:{fake} HTTP/1.1" for line in proxy.seen)


def test_http_through_a_proxy_from_lower_case_http_proxy(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    fake = free_port()
    real = ("127.0.0.1", int(plain.base_url.rsplit(":", 1)[1]))
    with Proxy({("127.0.0.1", fake): real}) as proxy:
        no_proxy_env.setenv("http_proxy", proxy.url)
        out = tmp_path / "m"
        code, err, _ = _run(f"http://127.0.0.1:{fake}", out, capsys)
    assert code == 0, err
    assert data_files(out) == expected_files(plain, ARCHIVE)
    assert proxy.seen and all(line.startswith(f"GET http://127.0.0.1:{fake}/") for line in proxy.seen)


def test_no_proxy_sends_a_host_direct(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    with Proxy({}) as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        no_proxy_env.setenv("NO_PROXY", "example.org, 127.0.0.0/8")
        out = tmp_path / "m"
        code, _, _ = _run(plain.base_url, out, capsys)
    assert code == 0 and proxy.seen == []
    assert data_files(out) == expected_files(plain, ARCHIVE)


def test_a_proxy_that_refuses_is_one_line_naming_it(
    tls_emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    with Proxy({}, refuse=True) as proxy:
        no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        code, err, report = _run("https://neuromorpho.org", tmp_path / "m", capsys, ca=tls_emu.ca_file)
    assert code == UNREACHABLE_EXIT
    line = assert_one_line(err, f"proxy {proxy.url}", "refused", "403")
    assert "SSLContext" not in line
    assert report["unreachable"] is True


def test_a_proxy_nobody_listens_on_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    port = free_port()
    no_proxy_env.setenv("HTTPS_PROXY", f"http://user:secret@127.0.0.1:{port}")
    code, err, _ = _run("https://neuromorpho.org", tmp_path / "m", capsys)
    assert code == UNREACHABLE_EXIT
    assert_one_line(err, f"cannot reach the proxy http://127.0.0.1:{port}")
    assert "secret" not in err  # credentials are used, never printed


@pytest.mark.parametrize("variable", ["ALL_PROXY", "HTTPS_PROXY", "all_proxy"])
def test_a_socks_proxy_is_refused_at_once_with_exit_2(
    tls_emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_proxy_env: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """aiohttp cannot speak socks: one line naming the proxy and the variable, exit 2, no request made
    and no retries."""
    tls_emu.reset(faults=True)
    no_proxy_env.setenv(variable, "socks5h://127.0.0.1:1080")
    code, err, _ = _run(tls_emu.base_url, tmp_path / "m", capsys, ca=tls_emu.ca_file)
    assert code == 2
    assert_one_line(err, "socks5h://127.0.0.1:1080", variable.upper(), "socks5h proxy")
    assert tls_emu.stats()["requests_total"] == 0


# -- item 16: unreachable is not "some files failed" -------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_closed_port_is_exit_4_with_the_cause_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch, scheme: str
) -> None:
    port = free_port()
    code, err, report = _run(f"{scheme}://127.0.0.1:{port}", tmp_path / "m", capsys, "--retries", "1")
    assert code == UNREACHABLE_EXIT
    line = assert_one_line(err, f"127.0.0.1:{port}", "no request to the server got an answer")
    assert "Connect call failed" in line or "refused" in line.lower()
    assert "SSLContext" not in err and "object at 0x" not in err
    assert report["unreachable"] is True and report["exit_code"] == UNREACHABLE_EXIT


def test_a_host_that_does_not_resolve_is_exit_4_naming_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    code, err, _ = _run("https://no-such-host.invalid", tmp_path / "m", capsys, "--retries", "1")
    assert code == UNREACHABLE_EXIT
    assert_one_line(err, "cannot resolve the host name 'no-such-host.invalid'")
    assert "object at 0x" not in err


# -- item 17: the small ones -------------------------------------------------------------------------


def test_a_hostname_mismatch_with_a_trusted_ca_does_not_advise_ca_file(
    tls_emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    """The CA is trusted (``--ca-file``) but the certificate names other hosts: the advice is the host
    name, not ``--ca-file`` (the tunnel makes the emulator answer for a name its certificate lacks)."""
    fake = free_port()
    real = ("127.0.0.1", int(tls_emu.base_url.rsplit(":", 1)[1]))
    with Proxy({("mirror.example.net", fake): real}) as proxy:
        no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        code, err, report = _run(
            f"https://mirror.example.net:{fake}", tmp_path / "m", capsys, ca=tls_emu.ca_file
        )
    assert code == 2 and report["exit_code"] == 2
    line = assert_one_line(err, "for another host name")
    assert "--ca-file" not in line and "--insecure" not in line


def test_insecure_never_claims_certificates_are_still_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    """``--insecure`` against a legacy-DH server under ``--tls auto``: the fallback line says
    certificates are NOT verified (it used to say "certificates still verified")."""
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="legacy-dh", file_kb=4)) as server:
        out = tmp_path / "m"
        code, err, _ = _run(server.base_url, out, capsys, "--insecure", "-v")
        assert code == 0, err
        assert data_files(out) == expected_files(server, ARCHIVE)
    assert "still verified" not in err
    assert "certificates are NOT verified (--insecure)" in err
    assert "verification is OFF (--insecure)" in err


@pytest.mark.timeout(120)
def test_a_long_retry_after_pause_is_said_once_per_pause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_proxy_env: pytest.MonkeyPatch
) -> None:
    """Every file answers its first GET with 503 and ``Retry-After: 6``; with all of them in flight at
    once, that is one pause (a couple when a straggler comes after it ended), said at the default
    level once per pause, not once per request."""
    config = EmulatorConfig(
        neurons=400,
        seed=7,
        tls="none",
        file_kb=4,
        fault_rate=1.0,
        faults=("503",),
        fault_max_per_url=1,
        fault_scope="files",
        retry_after_s=6,
    )
    with serve_in_thread(config) as server:
        out = tmp_path / "m"
        code, err, _ = _run(server.base_url, out, capsys, "--concurrency", "32", "--retry-after-max", "10")
        assert code == 0, err
        assert data_files(out) == expected_files(server, ARCHIVE)
    pauses = [line for line in stderr_lines(err) if "asked for a pause (Retry-After)" in line]
    assert 1 <= len(pauses) <= 3, pauses
    assert all(re.search(r"waits [67] s", line) for line in pauses), pauses
