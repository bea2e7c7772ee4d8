"""Deterministic misbehaviour: which request fails, and how the failure looks on the wire.

Decisions are a hash of ``(seed, url, n)`` where ``n`` counts earlier requests of the same URL, so a run
is reproducible whatever the client's concurrency, and a retry of a URL gets a fresh draw. A URL never
sees more than ``fault_max_per_url`` transient faults: a client with that many retries must end with
every file, which is what lets tests demand 100%. Missing files are different: a hash of the URL alone,
so they stay missing for good.

The wire-level faults are what real servers and proxies do to clients: a reset before any byte, a reset
after the headers and half a body, a ``Content-Length`` that promises more than arrives, HTML error
pages (with 200 and with 404), and headers followed by silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import socket
import struct
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web

from ._config import EmulatorConfig, FaultKind

#: Faults answered without running the route's handler.
PRE_FAULTS = frozenset({"503", "429", "500", "html200", "html404"})

HTML_ERROR_PAGE = (
    b'<!doctype html><html lang="en"><head><title>HTTP Status 404 \xe2\x80\x93 Not Found</title></head>'
    b'<body><h1>HTTP Status 404 \xe2\x80\x93 Not Found</h1><hr class="line" />'
    b"<p><b>Type</b> Status Report</p><p><b>Description</b> The origin server did not find a current "
    b"representation for the target resource or is not willing to disclose that one exists.</p>"
    b'<hr class="line" /><h3>Apache Tomcat</h3></body></html>\n'
)


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts: stable across runs and processes."""
    digest = hashlib.blake2b("\x00".join(map(str, parts)).encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


class FaultPlan:
    """Decides, per request, whether and how to misbehave; remembers per-URL counts."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.seed = config.seed
        self.rate = config.fault_rate
        self.kinds: tuple[FaultKind, ...] = tuple(config.faults)
        self.max_per_url = config.fault_max_per_url
        self.missing_rate = config.missing_rate
        self.scope = config.fault_scope
        self._seen: Counter[str] = Counter()
        self._faulted: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        return self.rate > 0 and self.max_per_url > 0 and bool(self.kinds)

    def applies_to(self, kind: str) -> bool:
        """``kind`` is the route's ``api``/``file``; ``other`` routes are never faulted."""
        if kind == "other":
            return False
        return self.scope == "all" or (self.scope == "api") == (kind == "api")

    def pick(self, key: str) -> tuple[FaultKind, int] | None:
        """The fault for this request of ``key`` and its per-URL ordinal, or ``None`` to behave."""
        n = self._seen[key]
        self._seen[key] = n + 1
        done = self._faulted[key]
        if done >= self.max_per_url:
            return None
        if _unit(self.seed, "fault", key, n) >= self.rate:
            return None
        kind = self.kinds[int(_unit(self.seed, "kind", key, n) * len(self.kinds))]
        self._faulted[key] = done + 1
        return kind, done

    def missing(self, key: str) -> bool:
        """Whether this file URL is gone for good (404 on every request)."""
        return self.missing_rate > 0 and _unit(self.seed, "missing", key) < self.missing_rate

    def variant(self, key: str, ordinal: int) -> int:
        """0 or 1, alternating per URL: picks Retry-After form and reset position."""
        return (int(_unit(self.seed, "variant", key) * 2) + ordinal) % 2

    def refund(self, key: str) -> None:
        """The picked fault could not be shown (no body to cut): give the URL its budget back."""
        if self._faulted[key] > 0:
            self._faulted[key] -= 1

    def reset(self) -> None:
        self._seen.clear()
        self._faulted.clear()


def spring_error(status: int, message: str, path: str, headers: dict[str, str] | None = None) -> web.Response:
    """Spring Boot's error body (reference A6), timestamp included."""
    body = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "path": path,
    }
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json", headers=headers
    )


def html_error(status: int) -> web.Response:
    """Tomcat's HTML 404 page, with ``status`` (a 200 for the ``html200`` fault)."""
    return web.Response(status=status, body=HTML_ERROR_PAGE, content_type="text/html", charset="utf-8")


def retry_after(seconds: int, http_date: bool) -> str:
    """``Retry-After`` in either legal form; the date is rounded up so it never asks for less."""
    if not http_date:
        return str(seconds)
    return formatdate(math.ceil(time.time()) + seconds, usegmt=True)


def abort_connection(request: web.Request) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed server or a middlebox would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def fault_before(kind: FaultKind, request: web.Request, variant: int, retry_after_s: int) -> web.Response:
    """The faults that replace the whole response; ``reset`` here means before any byte."""
    path = request.path
    if kind in ("503", "429"):
        status = int(kind)
        headers = {"Retry-After": retry_after(retry_after_s, http_date=variant == 1)}
        message = "Service temporarily unavailable" if status == 503 else "Too many requests"
        return spring_error(status, message, path, headers)
    if kind == "500":
        return spring_error(500, "Internal Server Error. Please notify nmoadmin@gmu.edu.", path)
    if kind in ("html200", "html404"):
        return html_error(200 if kind == "html200" else 404)
    # reset before the response: nothing is written; aiohttp swallows the failed write of this stub.
    abort_connection(request)
    return web.Response(status=499)


def _streamed(resp: web.Response) -> tuple[web.StreamResponse, bytes]:
    """A streamed copy of ``resp`` (same status, headers and length) and the body it must carry."""
    body = resp.body
    assert isinstance(body, bytes)
    out = web.StreamResponse(status=resp.status, headers=resp.headers)
    out.content_length = len(body)
    return out, body


async def fault_after(
    kind: FaultKind, request: web.Request, resp: web.Response, stall_s: float
) -> tuple[web.StreamResponse, int]:
    """Faults that need the real body: send it badly. Returns the response and body bytes sent."""
    out, body = _streamed(resp)
    half = len(body) // 2
    try:
        await out.prepare(request)
        if kind == "stall":
            await _stall(request, stall_s)
            await out.write(body)
            return out, len(body)
        await out.write(body[:half])
        # Let the half body reach the client before the connection dies: a real transfer breaks
        # mid-stream, and a reset arriving with unread data would make the kernel discard it.
        await asyncio.sleep(0.02)
    except ConnectionError:  # the client gave up first: nothing left to do
        return out, 0
    if kind == "truncate":
        # A clean FIN after a short body: the client sees fewer bytes than Content-Length.
        if request.transport is not None:
            request.transport.close()
    else:  # reset in the middle of the body
        abort_connection(request)
    return out, half


async def send_throttled(
    request: web.Request, resp: web.Response, bytes_per_s: float
) -> tuple[web.StreamResponse, int]:
    """Stream ``resp`` at most ``bytes_per_s`` on this connection (HTTP/1.1: one request at a time)."""
    out, body = _streamed(resp)
    await out.prepare(request)
    chunk = max(1024, int(bytes_per_s / 20))  # ~50 ms slices keep the rate smooth
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    view = memoryview(body)
    try:
        while sent < len(body):
            piece = bytes(view[sent : sent + chunk])
            await out.write(piece)
            sent += len(piece)
            ahead = start + sent / bytes_per_s - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
    except ConnectionError:  # client went away mid-stream
        pass
    return out, sent


async def _stall(request: web.Request, seconds: float) -> None:
    """Sleep with the headers out, but stop early once the client has hung up (keeps tests fast)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(left, 0.05))
