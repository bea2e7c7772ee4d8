"""``neuromorpho-fetch --doctor``: "is it me or the server?", one line per step, then a verdict.

A user whose mirror fails wants to know where: their network, their proxy, their TLS settings, or the
server (issue 18 item 5). The doctor walks the path a request takes, in order, and stops at the first
step that fails, since every later step would fail for the same reason:

1. the **proxy** in use, as :func:`neuromorpho_fetch.proxy.proxy_for` decides it for every request;
2. **DNS** of the host connected to (the proxy's, when there is one: the proxy resolves the server);
3. **TCP**, and through a proxy the ``CONNECT`` tunnel (a proxy that refuses it answers 403 or 407);
4. **TLS** at the level that works: the modern context, then the legacy-DH one when ``--tls auto`` and
   the server's key is too small (:mod:`neuromorpho_fetch.tls`), with the leaf certificate;
5. the **API**: ``/api/health`` and one select, read by the client's own parsers
   (:func:`~neuromorpho_fetch.protocol.parse_page`, :func:`~neuromorpho_fetch.models.parse_record`);
6. one **file**, by ``HEAD`` then ``GET``, checked as SWC;
7. the **round-trip** times.

DNS, TCP and TLS are probed with asyncio primitives (they are below HTTP); every HTTP request goes
through the transport (:meth:`~neuromorpho_fetch.transport.Transport.request`: the one pacer and one
attempt), with a single attempt each, so what is printed is what the server said, not what retries
hid. ``HEAD`` is the one exception (the transport only speaks GET): it is made on the transport's
session inside a pacer slot. Four HTTP requests in all (and up to three probe connections), at the
client's rate.

Exit codes (documented in ``docs/doctor.md``): 0 OK; 2 local configuration (a CA file, a certificate
not trusted, a proxy we cannot use); 4 the server could not be reached, directly or through the proxy
(``ServerUnreachableError``'s code); 5 the server answered but is busy (429/5xx) or its API changed shape.

``--record FILE`` writes what was seen (statuses, headers, the key shape of each JSON answer, never a
body) as JSON, atomically, for a bug report and for ``python -m neuromorpho_fetch.emulator --compare``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from ._version import __version__
from .atomic import atomic_write, disk_error
from .client import USER_AGENT
from .config import ClientConfig, RetryPolicy, Timeouts
from .errors import (
    UNREACHABLE_EXIT,
    ConnectError,
    NeuroMorphoError,
    ProxyError,
    RequestTimeout,
    TLSError,
    UsageError,
)
from .jsonio import loads
from .layout import file_url
from .models import Neuron, RejectedRecord, Version, parse_record
from .protocol import BUSY_STATUSES, parse_page
from .proxy import display, proxy_for
from .swc import check_swc, looks_like_html
from .tls import ssl_context, tls_error, weak_key
from .transport import NO_LIMITS, Transport, read_all, translate_error

#: The exit code when the server answered but cannot serve us as expected (busy, or a changed API).
SERVER_PROBLEM_EXIT = 5
#: Verdicts: the line printed and the exit code, by kind.
VERDICTS: Mapping[str, tuple[str, int]] = {
    "ok": ("OK: the server answers and its API has the shape this client reads", 0),
    "local": ("local configuration: a setting on this machine must change", UsageError.exit_code),
    "unreachable": ("server unreachable: no answer from it (network, firewall, or the server is down)", 4),
    "proxy": ("blocked or filtered by a proxy: the proxy in use refused or altered the traffic", 4),
    "busy": ("busy: the server answers but asks to wait (429/503) or fails (5xx); try later", 5),
    "shape": ("API changed shape: the server answers, but not as this client reads it", 5),
}
assert VERDICTS["unreachable"][1] == UNREACHABLE_EXIT and VERDICTS["busy"][1] == SERVER_PROBLEM_EXIT
#: The neuron asked for by the select and whose file is fetched: id 1 (``cnic_001``) exists on the real
#: server and in the emulator (reference E, "Neuron id 1").
PROBE_NEURON = 1
#: At most this much of a body is read (a CNG file of neuron 1 is ~60 KB; no bulk download).
BODY_CAP = 4 << 20
#: Headers never recorded (credentials or session state).
_PRIVATE_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization"})


class Failed(Exception):
    """A step failed: ``kind`` is the verdict (a key of :data:`VERDICTS`), the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Diagnosis:
    """What the doctor saw: the lines printed, the exchanges for ``--record``, and the verdict."""

    base_url: str
    lines: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = "ok"
    reason: str = ""

    @property
    def exit_code(self) -> int:
        return VERDICTS[self.verdict][1]

    def record(self) -> dict[str, Any]:
        return {
            "tool": f"neuromorpho-fetch {__version__} --doctor",
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "base_url": self.base_url,
            "steps": self.steps,
            "exchanges": self.exchanges,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
        }


def key_shape(value: Any) -> Any:
    """The shape of a JSON value without its data: objects keep their keys (in order), a list keeps the
    shape of its first item, a scalar becomes its JSON type name. What ``--record`` keeps of a body and
    what ``--compare`` compares."""
    if isinstance(value, dict):
        return {str(k): key_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def public_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth attaching to a bug report: all but cookies and credentials."""
    return {k: v for k, v in headers.items() if k.lower() not in _PRIVATE_HEADERS}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def _name(cert: Mapping[str, Any], key: str) -> str:
    parts = [
        f"{k}={v}" for rdn in cert.get(key, ()) for k, v in rdn if k in ("commonName", "organizationName")
    ]
    return ", ".join(parts) or "?"


@dataclass(slots=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


class Doctor:
    """One diagnosis of one base URL under one client configuration (module docstring)."""

    def __init__(self, config: ClientConfig, say: Callable[[str], None]) -> None:
        t = config.timeouts
        self.probe_timeout = min(t.connect, 10.0)
        # One attempt per request, each bounded: the verdict comes within a minute, whatever the server.
        timeouts = Timeouts(
            connect=self.probe_timeout, headers=min(t.headers, 15.0), idle=min(t.idle, 15.0), attempt=20.0
        )
        self.config = replace(config, retry=RetryPolicy(attempts=1), timeouts=timeouts)
        self.url = URL(config.base_url)
        self.host = str(self.url.host)
        self.port = self.url.port or (443 if self.url.scheme == "https" else 80)
        self.say = say
        self.proxy: str | None = None
        self.context: ssl.SSLContext | None = None
        self.diagnosis = Diagnosis(config.base_url)
        self.times: dict[str, float] = {}
        #: Seconds the pacer made requests wait: taken out of the round-trip times.
        self.paced = 0.0
        self._tunnelled = False

    async def _paced_sleep(self, seconds: float) -> None:
        self.paced += seconds
        await asyncio.sleep(seconds)

    def step(self, name: str, ok: bool | None, detail: str) -> None:
        """One line: ``ok``, ``FAIL``, or ``note`` (``None``: a try that failed and was answered, such as the
        modern TLS context refused before the legacy one works)."""
        mark = "note" if ok is None else "ok  " if ok else "FAIL"
        line = f"{name:<7} {mark} {detail}"
        self.diagnosis.lines.append(line)
        self.diagnosis.steps.append({"step": name, "ok": ok, "detail": detail})
        self.say(line)

    async def run(self) -> Diagnosis:
        diagnosis = self.diagnosis
        try:
            await self._proxy_step()
            await self._dns_step()
            await self._tcp_step()
            if self.url.scheme == "https":
                await self._tls_step()
            await self._http_steps()
        except Failed as exc:
            diagnosis.verdict, diagnosis.reason = exc.kind, str(exc)
        text = VERDICTS[diagnosis.verdict][0]
        line = f"verdict {text}" + (f" ({diagnosis.reason})" if diagnosis.reason else "")
        diagnosis.lines.append(line)
        self.say(line)
        return diagnosis

    # -- below HTTP ---------------------------------------------------------------------------------

    async def _proxy_step(self) -> None:
        try:
            self.proxy = proxy_for(str(self.url), self.config.proxy)
        except ProxyError as exc:
            self.step("proxy", False, str(exc))
            raise Failed("local", "the proxy setting cannot be used") from None
        if self.proxy is None:
            where = "--proxy none" if self.config.proxy is not None else "none in the environment"
            self.step("proxy", True, f"none: direct connection ({where})")
        else:
            where = "--proxy" if self.config.proxy is not None else "the environment"
            self.step("proxy", True, f"{display(self.proxy)} (from {where})")

    def _peer(self) -> tuple[str, int]:
        """Where the TCP connection goes: the proxy when there is one, else the server."""
        if self.proxy is None:
            return self.host, self.port
        parts = URL(self.proxy)
        return str(parts.host), parts.port or (443 if parts.scheme == "https" else 80)

    def _unreachable(self) -> str:
        return "proxy" if self.proxy is not None else "unreachable"

    async def _dns_step(self) -> None:
        host, port = self._peer()
        loop = asyncio.get_running_loop()
        what = f"{host} (the proxy)" if self.proxy is not None else host
        try:
            async with asyncio.timeout(self.probe_timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            self.step(
                "dns", False, f"cannot resolve {what}: {getattr(exc, 'strerror', None) or exc or 'timed out'}"
            )
            raise Failed(self._unreachable(), f"the host name {host!r} does not resolve") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        self.step("dns", True, f"{what} -> {', '.join(addresses[:4])}")

    async def _open(
        self, context: ssl.SSLContext | None, *, tunnel: bool = True
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the server: TCP to the peer, the proxy's tunnel if any (and ``tunnel``), TLS if
        ``context``."""
        host, port = self._peer()
        direct = self.proxy is None
        async with asyncio.timeout(self.probe_timeout):
            started = time.perf_counter()
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=context if direct else None,
                server_hostname=self.host if direct and context else None,
            )
            self.times.setdefault("tcp", time.perf_counter() - started)
            if tunnel and not direct and self.url.scheme == "https":
                await self._tunnel(reader, writer)
                if context is not None:
                    await writer.start_tls(context, server_hostname=self.host)
        return reader, writer

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """``CONNECT host:port`` through the proxy; a refusal ends the diagnosis with the proxy verdict."""
        target = f"{self.host}:{self.port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        proxy = URL(self.proxy or "")
        if proxy.user is not None:  # the credentials of the proxy URL, as aiohttp sends them
            auth = aiohttp.BasicAuth(proxy.user, proxy.password or "")
            lines.append(f"Proxy-Authorization: {auth.encode()}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            self.step("tunnel", False, f"the proxy {display(str(proxy))} closed the connection after CONNECT")
            raise Failed("proxy", f"the proxy {display(str(proxy))} closed the tunnel request") from None
        status_line, *rest = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers = dict(line.split(":", 1) for line in rest if ":" in line)
        first = not self._tunnelled
        self._tunnelled = True
        if first or status != 200:  # the TLS tries open the tunnel again; one line and one record
            self._exchange(
                "CONNECT", target, status, {k.strip(): v.strip() for k, v in headers.items()}, None
            )
        if status != 200:
            writer.close()
            self.step("tunnel", False, f"the proxy answered CONNECT {target} with {status_line.strip()}")
            raise Failed("proxy", f"{display(self.proxy or '')} refused to connect to {target}")
        if first:
            self.step(
                "tunnel", True, f"CONNECT {target} through {display(str(proxy))}: {status_line.strip()}"
            )

    async def _tcp_step(self) -> None:
        host, port = self._peer()
        try:
            reader, writer = await self._open(None, tunnel=False)
        except (OSError, TimeoutError) as exc:
            # asyncio's text is "Connect call failed (...)"; the errno says what happened.
            errno = exc.errno if isinstance(exc, OSError) else None
            why = os.strerror(errno) if errno else str(exc) or "timed out"
            self.step("tcp", False, f"cannot connect to {host}:{port}: {why}")
            raise Failed(self._unreachable(), f"nothing accepts connections at {host}:{port}") from None
        self.step("tcp", True, f"connected to {host}:{port} in {_ms(self.times['tcp'])}")
        try:
            if self.proxy is not None and self.url.scheme == "https":
                async with asyncio.timeout(self.probe_timeout):
                    await self._tunnel(reader, writer)
        except (OSError, TimeoutError) as exc:
            self.step("tunnel", False, f"no answer to CONNECT from the proxy ({exc or 'timed out'})")
            raise Failed("proxy", "the proxy did not open the tunnel") from None
        finally:
            writer.close()

    def _levels(self) -> list[str]:
        return {"modern": ["modern"], "legacy": ["legacy"]}.get(self.config.tls, ["modern", "legacy"])

    async def _tls_step(self) -> None:
        cfg = self.config
        for level in self._levels():
            try:
                context = await asyncio.to_thread(
                    ssl_context, cfg.ca_file, cfg.insecure, legacy=level == "legacy"
                )
            except UsageError as exc:
                self.step("tls", False, str(exc))
                raise Failed("local", "the CA file cannot be used") from None
            try:
                started = time.perf_counter()
                _reader, writer = await self._open(context)
            except ssl.SSLError as exc:
                if weak_key(exc) and level == "modern" and len(self._levels()) > 1:
                    self.step(
                        "tls", False, "modern: refused, the server's DH key is too small; trying legacy-DH"
                    )
                    continue
                error = tls_error(exc, str(self.url))
                self.step("tls", False, f"{level}: {error}")
                raise Failed("local", "the TLS handshake or certificate check failed") from None
            except (OSError, TimeoutError) as exc:
                self.step(
                    "tls", False, f"{level}: connection lost during the handshake ({exc or 'timed out'})"
                )
                raise Failed(self._unreachable(), "the TLS handshake did not complete") from None
            self.times["tls"] = time.perf_counter() - started
            self.step("tls", True, f"{level}: {self._describe(writer)}")
            writer.close()
            self.context = context
            return

    @staticmethod
    def _describe(writer: asyncio.StreamWriter) -> str:
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is None:
            return "no TLS details"
        cipher = sslobj.cipher()
        head = f"{sslobj.version()}, {cipher[0] if cipher else '?'}"
        cert = sslobj.getpeercert()
        if not cert:  # --insecure: nothing was verified, so nothing is decoded
            return f"{head}; certificate NOT verified (--insecure)"
        return (
            f"{head}; certificate {_name(cert, 'subject')}, issued by {_name(cert, 'issuer')}, "
            f"expires {cert.get('notAfter', '?')}; chain verified"
        )

    # -- HTTP, through the transport -----------------------------------------------------------------

    def _exchange(self, method: str, path: str, status: int, headers: Mapping[str, str], body: Any) -> None:
        entry: dict[str, Any] = {"method": method, "path": path, "status": status}
        entry["headers"] = public_headers(headers)
        if body is not None:
            entry["shape"] = key_shape(body)
        self.diagnosis.exchanges.append(entry)

    def _relative(self, url: str) -> str:
        full = URL(url, encoded=True)
        base = self.url.path.rstrip("/")
        path = full.raw_path[len(base) :] if full.raw_path.startswith(base) else full.raw_path
        return path + (f"?{full.raw_query_string}" if full.raw_query_string else "")

    async def _get(self, transport: Transport, url: str, params: Sequence[tuple[str, str]] = ()) -> _Answer:
        async def read(resp: aiohttp.ClientResponse) -> _Answer:
            body = (
                await read_all(resp, NO_LIMITS.capped(BODY_CAP))
                if resp.status < 300
                else await resp.content.read(4096)
            )
            return _Answer(resp.status, dict(resp.headers), body, 0.0)

        started, paced = time.perf_counter(), self.paced
        try:
            answer = await transport.request(url, read, lambda a: a, params=params, ok=range(100, 600))
        except NeuroMorphoError as exc:
            raise self._request_failed(exc, url) from None
        answer.seconds = time.perf_counter() - started - (self.paced - paced)
        return answer

    def _request_failed(self, exc: NeuroMorphoError, url: str) -> Failed:
        if isinstance(exc, ProxyError):
            kind = "proxy"
        elif isinstance(exc, TLSError):
            kind = "local"
        elif isinstance(exc, ConnectError | RequestTimeout):
            kind = self._unreachable()
        else:
            kind = "shape"
        self.step("http", False, str(exc))
        return Failed(kind, f"the request to {self._relative(url)} failed")

    def _judge(self, name: str, answer: _Answer, url: str, method: str = "GET") -> Any:
        """The JSON of a 200 answer, or the verdict its status or body calls for."""
        status = answer.status
        what = f"{method} {self._relative(url)}: HTTP {status}"
        html = looks_like_html(answer.body[:256]) or "html" in answer.headers.get("Content-Type", "").lower()
        if status in BUSY_STATUSES or status >= 500:
            after = answer.headers.get("Retry-After")
            self._exchange(method, self._relative(url), status, answer.headers, None)
            self.step(name, False, what + (f", Retry-After {after}" if after else ""))
            raise Failed("busy", f"HTTP {status}")
        if status in (403, 407) and self.proxy is not None:
            self._exchange(method, self._relative(url), status, answer.headers, None)
            self.step(name, False, f"{what} through the proxy {display(self.proxy)}")
            raise Failed("proxy", f"HTTP {status} through the proxy")
        data: Any = None
        if status == 200 and method == "GET" and not html:
            try:
                data = loads(answer.body)
            except ValueError:
                data = None
        self._exchange(method, self._relative(url), status, answer.headers, data)
        if status != 200 or data is None:
            shown = "an HTML page" if html else "not JSON"
            self.step(name, False, what if status != 200 else f"{what} but {shown}")
            kind = "proxy" if html and self.proxy is not None else "shape"
            raise Failed(kind, f"{self._relative(url)} did not answer with the API's JSON")
        return data

    async def _http_steps(self) -> None:
        transport = Transport(
            self.config,
            user_agent=self.config.user_agent or USER_AGENT,
            ssl=self.context,
            sleep=self._paced_sleep,
        )
        await transport.open()
        try:
            await self._api_steps(transport)
        finally:
            await transport.aclose()

    async def _api_steps(self, transport: Transport) -> None:
        base = str(self.url).rstrip("/")
        url = f"{base}/api/health"
        answer = await self._get(transport, url)
        health = self._judge("health", answer, url)
        self.times["health"] = answer.seconds
        if not isinstance(health, dict) or health.get("status") != "UP":
            self.step("health", False, f"/api/health answered {json.dumps(health)[:120]}, not status UP")
            raise Failed(
                "shape" if not isinstance(health, dict) or "status" not in health else "busy", "health"
            )
        self.step("health", True, f"/api/health: status UP in {_ms(self.times['health'])}")
        neuron = await self._select_step(transport, base)
        await self._file_steps(transport, base, neuron)
        parts = ", ".join(f"{k} {_ms(v)}" for k, v in self.times.items())
        self.step("rtt", True, parts)

    async def _select_step(self, transport: Transport, base: str) -> Neuron:
        url = f"{base}/api/neuron/select"
        params = [("q", f"neuron_id:{PROBE_NEURON}"), ("page", "0"), ("size", "1")]
        answer = await self._get(transport, url, params)
        where = str(URL(url).with_query(params))
        data = self._judge("select", answer, where)
        self.times["select"] = answer.seconds
        try:
            page = parse_page(data, url)
        except NeuroMorphoError as exc:
            self.step("select", False, str(exc))
            raise Failed("shape", "the select page") from None
        problems = [
            f"no {key} in page"
            for key, value in (
                ("totalElements", page.total_elements),
                ("totalPages", page.total_pages),
                ("number", page.number),
            )
            if value is None
        ]
        record = parse_record(page.items[0]) if page.items else RejectedRecord("no records in _embedded")
        if isinstance(record, RejectedRecord):
            problems.append(record.reason)
        if problems or isinstance(record, RejectedRecord):
            self.step(
                "select", False, f"neuron_id:{PROBE_NEURON}: {'; '.join(problems)}; keys {list(data)[:6]}"
            )
            raise Failed("shape", "the select page is not the HAL page this client reads")
        self.step(
            "select",
            True,
            f"neuron_id:{PROBE_NEURON} -> {record.name} ({record.archive}), {page.total_elements} hit",
        )
        return record

    async def _file_steps(self, transport: Transport, base: str, neuron: Neuron) -> None:
        url = file_url(base, neuron, Version.CNG)
        try:
            async with transport.pacer.slot():
                started = time.perf_counter()
                async with asyncio.timeout(self.config.timeouts.attempt):
                    resp = await transport.session.head(url, proxy=self.proxy, allow_redirects=False)
                    head = _Answer(resp.status, dict(resp.headers), b"", time.perf_counter() - started)
                    resp.release()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._request_failed(translate_error(exc, url, self.proxy), url) from None
        if head.status != 200:
            self._judge("file", head, url, "HEAD")  # raises: busy, proxy or a changed layout
        self._exchange("HEAD", self._relative(url), head.status, head.headers, None)
        size = head.headers.get("Content-Length", "?")
        self.step(
            "head",
            True,
            f"HEAD {self._relative(url)}: 200, {size} bytes, {head.headers.get('Content-Type', '?')}",
        )
        got = await self._get(transport, url)
        self.times["file"] = got.seconds
        if got.status != 200:
            self._judge("file", got, url)
        self._exchange("GET", self._relative(url), got.status, got.headers, None)
        problem = check_swc(got.body)
        if problem is not None:
            self.step("file", False, f"GET {self._relative(url)}: 200 but not SWC ({problem})")
            raise Failed(
                "proxy" if self.proxy is not None and looks_like_html(got.body[:256]) else "shape",
                "the file is not SWC",
            )
        self.step("file", True, f"GET {self._relative(url)}: 200, {len(got.body):,} bytes of SWC")


async def diagnose(config: ClientConfig, say: Callable[[str], None] = print) -> Diagnosis:
    """Run every step against ``config.base_url``; lines go to ``say`` as they are decided."""
    return await Doctor(config, say).run()


def main(config: ClientConfig, *, record: Path | None = None, loop: str = "auto") -> int:
    """``--doctor``: print the steps and the verdict, write ``record`` if asked; the exit code."""
    from . import loops

    if record is not None and not record.parent.is_dir():  # said before the checks, not after them
        raise UsageError(f"--record {str(record)!r}: the folder {str(record.parent)!r} does not exist")

    def say(line: str) -> None:
        print(line, flush=True)

    diagnosis = loops.run(diagnose(config, say), loop)
    if record is not None:
        data = json.dumps(diagnosis.record(), indent=2).encode("utf-8") + b"\n"
        try:
            atomic_write(record, data)
        except OSError as exc:
            print(f"neuromorpho-fetch: error: {disk_error(exc, 'write the recording')}", file=sys.stderr)
            return UsageError.exit_code
        print(f"recorded to {record}")
    return diagnosis.exit_code
