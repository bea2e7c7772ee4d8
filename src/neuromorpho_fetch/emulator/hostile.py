"""Issue 10's hostile server: the misbehaviours that made the client page forever, hang or mis-diagnose.

Each behaviour is its own switch in :class:`HostileConfig` (``EmulatorConfig.hostile``), so a client
regression test turns on exactly the defect it guards against:

- ``looping_pages``: a listing page answers page 0's records whatever page was asked, with
  ``totalPages: 1000000000`` (issue 10 item 5 saw 197 pages in 40 s of this);
- ``nonsense_paging``: the ``page`` object carries numbers no server should send (``totalPages: "NaN"``
  with ``number: -7``, negative or huge counts, more pages than ``totalElements`` allows);
- ``status_script``: the n-th request of a URL answers the n-th step (``500``, ``html404``, ``ok``, ...),
  e.g. item 3's "500, then HTML 404 twice, then 200";
- ``trickle``: the body goes out one byte every ``trickle_interval_s`` (item 6: 1 byte every 2 s);
- ``endless``: a chunked body that never ends; ``oversized``: ``Content-Length: 3000000000`` sent at full
  speed (item 6 saw 55 MB/s to disk with no cap);
- ``short_length`` / ``long_length``: a ``Content-Length`` smaller than the body sent (item 7: reported as
  "HTTP 400 ... Bad status line") or larger, with the connection closed after the whole real body.

Issue 15's switches (the second round), each what a client met and mishandled:

- ``short_listing``: a neuron select page loses half its records but keeps the ``page`` counts (a listing
  that stops short must never be taken for the whole archive); ``repeat_records``: its last record is a
  copy of its first (a repeat counts once, so it shows as a gap);
- ``bad_records``: a page's first records carry one defect each (:data:`BAD_RECORD_KINDS`: a lone
  surrogate, ``neuron_id`` ``Infinity`` or ``10**30``, a null, empty or non-text name or archive, a 10 MB
  field, a 1 MB name); ``deep_page``: the page is JSON nested 100,000 arrays deep;
- ``header_trickle``: the status line and headers go out one byte every ``trickle_interval_s``;
- ``unasked_gzip``: a gzip body the client did not ask for, cut before the gzip trailer, under a
  ``Content-Length`` that matches what is sent (HTTP framing is fine, the stream is not);
- ``redirect``: a 302 to the same path over plain http (``redirect_to=http``) or to ``ftp:``;
- ``not_modified``: a 304 to a GET that carried no validators; ``bad_validators``: ``ETag`` and
  ``Last-Modified`` holding bytes that are not UTF-8;
- ``header_overflow``: 200 headers (``overflow_kind=many``) or one header line past the 8,190-byte
  limit (``long``);
- ``case_twin=Siegert``: the archive's neurons at odd positions (by id) are served as a second archive
  ``siegert`` (in the archive partition, and in ``q=archive:...`` selects, which match case exactly
  for these two): two archives whose names differ only in case, one folder on disk; with
  ``twin_same_name`` the twin's first neuron has the name of the archive's first (one file path).

Decisions are a hash of ``(seed, switch, url, n)`` like :mod:`.faults`, so rate ``1.0`` means every
request and lower rates are reproducible. The emulator itself stays bounded: every hostile stream stops
(the connection is closed, never finished cleanly) after ``stream_max_s`` or ``stream_max_bytes``, and the
filler it streams is one 64 KiB block, so a 3 GB body costs the server no memory.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ._config import HostileConfig, HostileScope, NonsenseKind
from .faults import _unit, abort_connection, html_error, retry_after, spring_error
from .paging import page_links
from .stats import Stats

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: ``totalPages`` of a looping listing (issue 10 item 5: "totalPages: 1e9").
LOOP_PAGES = 10**9
#: What endless and oversized bodies repeat after the real body: one block, reused for every write.
FILLER = (b"# neuromorpho-fetch emulator: hostile filler, not part of any reconstruction\n" * 900)[
    : 64 * 1024
]
_NONSENSE: tuple[NonsenseKind, ...] = ("nan", "negative", "huge", "inconsistent")
_BODY_SWITCHES = ("trickle", "endless", "oversized", "short_length", "long_length")
#: Issue 15's switches on a response's status line and headers (checked before the body switches).
_WIRE_SWITCHES: tuple[str, ...] = (
    "not_modified",
    "redirect",
    "header_trickle",
    "header_overflow",
    "bad_validators",
    "unasked_gzip",
)
_LISTING_SWITCHES = ("short_listing", "repeat_records", "deep_page")
#: How deep ``deep_page`` nests (issue 15 item 5: "a page nested 100,000 deep").
DEEP = 100_000
_VALIDATOR_REQUEST = ("If-None-Match", "If-Modified-Since")


def bad_record(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the defect ``kind`` names (:data:`BAD_RECORD_KINDS`)."""
    bad = dict(record)
    if kind == "surrogate":
        bad["neuron_name"] = f"{record.get('neuron_name')}\ud800"  # a lone surrogate: "\ud800" in JSON
    elif kind == "id-infinity":
        bad["neuron_id"] = float("inf")  # json.dumps writes Infinity
    elif kind == "id-huge":
        bad["neuron_id"] = 10**30
    elif kind == "id-text":
        bad["neuron_id"] = "one"
    elif kind in ("name-null", "archive-null"):
        bad["neuron_name" if kind == "name-null" else "archive"] = None
    elif kind in ("name-empty", "archive-empty"):
        bad["neuron_name" if kind == "name-empty" else "archive"] = ""
    elif kind == "name-int":
        bad["neuron_name"] = 12345
    elif kind == "field-10mb":
        bad["note"] = "x" * (10 << 20)
    elif kind == "name-long":
        bad["neuron_name"] = "n" * (1 << 20)
    else:
        raise ValueError(f"unknown bad record kind {kind!r}")
    return bad


def nonsense_page(kind: NonsenseKind, page: dict[str, Any]) -> dict[str, Any]:
    """The ``page`` object a broken server might send in place of the real one."""
    size, total = page.get("size", 0), page.get("totalElements", 0)
    if kind == "nan":  # issue 10 item 5, verbatim
        return {**page, "totalPages": "NaN", "number": -7}
    if kind == "negative":
        return {**page, "totalElements": -1, "totalPages": -1}
    if kind == "huge":  # beyond any 64-bit integer
        return {**page, "totalElements": 10**30, "totalPages": 10**28}
    # inconsistent: far more pages than totalElements allows at this size
    return {"size": size, "totalElements": total, "totalPages": LOOP_PAGES, "number": page.get("number", 0)}


def _scoped(scope: HostileScope, kind: str) -> bool:
    return kind != "other" and (scope == "all" or (scope == "api") == (kind == "api"))


class Hostile:
    """Wraps route handlers with the switched-on behaviours; remembers per-URL counts."""

    def __init__(self, config: HostileConfig, seed: int, stats: Stats) -> None:
        self.config = config
        self.seed = seed
        self.stats = stats
        self._paths = re.compile(config.paths) if config.paths else None
        self._seen: Counter[str] = Counter()
        self._scripted: Counter[str] = Counter()
        self._hostile: Counter[str] = Counter()

    def wrap(self, kind: str, handler: Handler) -> Handler:
        """``handler`` itself when no switch applies to ``kind`` routes (the hot path pays nothing)."""
        cfg = self.config
        script = bool(cfg.status_script) and _scoped(cfg.script_scope, kind)
        listing = any(getattr(cfg, s) > 0 for s in ("looping_pages", "nonsense_paging", *_LISTING_SWITCHES))
        paging = kind == "api" and (listing or bool(cfg.bad_records))
        switches = (*_WIRE_SWITCHES, *_BODY_SWITCHES)
        bodies = _scoped(cfg.body_scope, kind) and any(getattr(cfg, s) > 0 for s in switches)
        if kind == "api" and cfg.case_twin:
            handler = self._twinned(handler)
        if not (script or paging or bodies):
            return handler

        async def hostile(request: web.Request) -> web.StreamResponse:
            key = request.raw_path
            if self._paths is not None and not self._paths.search(key):
                return await handler(request)
            if script:
                early = self._script_step(request, key)
                if early is not None:
                    return early
            n = self._seen[key]
            self._seen[key] = n + 1
            resp = await (self._paged(request, handler, key, n) if paging else handler(request))
            if bodies:
                return await self._body(request, resp, key, n)
            return resp

        return hostile

    # -- decisions -----------------------------------------------------------------------------------

    def _fires(self, switch: str, key: str, n: int) -> bool:
        rate: float = getattr(self.config, switch)
        if rate <= 0:
            return False
        cap = self.config.max_per_url
        if cap and self._hostile[key] >= cap:
            return False
        return rate >= 1.0 or _unit(self.seed, "hostile", switch, key, n) < rate

    def _count(self, switch: str, key: str) -> None:
        self._hostile[key] += 1
        self.stats.fault(f"hostile-{switch.replace('_', '-')}")

    # -- status script -------------------------------------------------------------------------------

    def _script_step(self, request: web.Request, key: str) -> web.Response | None:
        """The answer the script gives this request of ``key``; ``None`` = behave (``ok``, past its end)."""
        steps = self.config.status_script
        n = self._scripted[key]
        self._scripted[key] = n + 1
        step = steps[n] if n < len(steps) else "ok"
        if step in ("ok", "200"):
            return None
        self.stats.fault("hostile-script")
        if step in ("html404", "html200"):
            return html_error(404 if step == "html404" else 200)
        if step == "reset":
            abort_connection(request)
            return web.Response(status=499)  # never reaches the client: the connection is gone
        status = int(step)
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        headers = {"Retry-After": retry_after(1, http_date=False)} if status in (429, 503) else None
        return spring_error(status, phrase, request.path, headers)

    # -- listing pages -------------------------------------------------------------------------------

    async def _paged(self, request: web.Request, handler: Handler, key: str, n: int) -> web.StreamResponse:
        looping = self._fires("looping_pages", key, n)
        asked = request.rel_url
        if looping and request.query.get("page", "0") != "0":
            resp = await handler(request.clone(rel_url=asked.update_query(page=0)))
        else:
            resp = await handler(request)
        body = _json_body(resp)
        if body is None or not isinstance(body.get("page"), dict):
            return resp  # not a listing page (or an error): nothing to bend
        page: dict[str, Any] = body["page"]
        records = body.get("_embedded", {}).get("neuronResources")
        if isinstance(records, list) and records:
            bent = self._listing(key, n, records)
            if bent is not None:
                if isinstance(bent, bytes):
                    return web.Response(status=200, body=bent, content_type="application/json")
                body["_embedded"]["neuronResources"] = bent
                return web.Response(
                    status=200, body=json.dumps(body).encode(), content_type="application/json"
                )
        if looping:
            number = _int(request.query.get("page"))
            size = page.get("size", 0)
            body["page"] = {"size": size, "totalElements": LOOP_PAGES * size, "totalPages": LOOP_PAGES}
            body["page"]["number"] = number
            if "_links" in body:
                body["_links"] = page_links(request, number, size, LOOP_PAGES)  # agree with the lie
            self._count("looping_pages", key)
        elif self._fires("nonsense_paging", key, n):
            kind = self.config.nonsense_kind
            if kind == "mixed":
                kind = _NONSENSE[int(_unit(self.seed, "nonsense", key, n) * len(_NONSENSE))]
            body["page"] = nonsense_page(kind, page)
            self._count("nonsense_paging", key)
        else:
            return resp
        return web.Response(
            status=resp.status, body=json.dumps(body).encode(), content_type="application/json"
        )

    def _listing(self, key: str, n: int, records: list[Any]) -> list[Any] | bytes | None:
        """Issue 15's bent neuron page: its records (short or bad), the raw bytes of a page too deep to
        read, or ``None`` to leave it alone."""
        if self._fires("deep_page", key, n):
            self._count("deep_page", key)
            return b"[" * DEEP + b"]" * DEEP
        out: list[Any] | None = None
        if self.config.bad_records:
            out = list(records)
            for i, kind in enumerate(self.config.bad_records[: len(out)]):
                out[i] = bad_record(kind, out[i])
                self.stats.fault(f"hostile-bad-{kind}")
        if len(records) > 1 and self._fires("repeat_records", key, n):
            self._count("repeat_records", key)
            out = list(out if out is not None else records)
            out[-1] = out[0]  # a repeat in place of a record: the page is as long, one record short
        if self._fires("short_listing", key, n):
            self._count("short_listing", key)
            out = (out if out is not None else records)[: len(records) // 2]
        return out

    # -- case twins (issue 15 item 12) ---------------------------------------------------------------

    def _twinned(self, handler: Handler) -> Handler:
        """``handler`` with ``case_twin``'s archive split in two (module docstring)."""
        name = self.config.case_twin
        twin = name.lower() if name != name.lower() else name.upper()

        async def twinned(request: web.Request) -> web.StreamResponse:
            path = request.path
            if path.endswith("/neuron/partition/archive"):
                resp = await handler(request)
                body = _json_body(resp)
                counts = body.get("fields") if body else None
                if not isinstance(counts, dict) or name not in counts:
                    return resp
                total = int(counts[name])
                counts[name], counts[twin] = total - total // 2, total // 2
                return web.json_response(body)
            asked = request.query.get("q", "")
            if not path.endswith("/neuron/select") or asked not in (f"archive:{name}", f"archive:{twin}"):
                return await handler(request)
            want_odd = asked == f"archive:{twin}"
            full = await handler(request.clone(rel_url=request.rel_url.update_query(page=0, size=500)))
            body = _json_body(full)
            if body is None:
                return full
            every = body.get("_embedded", {}).get("neuronResources", [])
            # The twin holds the archive's neurons at odd positions of its listing (by id).
            every = sorted(every, key=lambda r: int(r["neuron_id"]))
            records = [{**r, "archive": twin} for r in every[1::2]] if want_odd else every[0::2]
            if want_odd and records and self.config.twin_same_name:
                # Same name in both archives: the same file path in their one folder.
                records[0] = {**records[0], "neuron_name": every[0]["neuron_name"]}
            size = max(1, min(500, _int(request.query.get("size")) or 50))
            number = _int(request.query.get("page"))
            pages = -(-len(records) // size)
            out: dict[str, Any] = {
                "page": {"size": size, "totalElements": len(records), "totalPages": pages, "number": number}
            }
            chunk = records[number * size : (number + 1) * size]
            if chunk:
                out["_embedded"] = {"neuronResources": chunk}
            self.stats.fault("hostile-case-twin")
            return web.json_response(out)

        return twinned

    # -- status line and headers (issue 15) -----------------------------------------------------------

    async def _wire(
        self, request: web.Request, resp: web.Response, body: bytes, key: str, n: int
    ) -> web.StreamResponse | None:
        """The response with its status line or headers bent by the first issue 15 switch that fires, or
        ``None`` when none does."""
        cfg = self.config
        for switch in _WIRE_SWITCHES:
            if switch == "not_modified" and any(h in request.headers for h in _VALIDATOR_REQUEST):
                continue  # a conditional request may be answered 304: nothing hostile about it
            if not self._fires(switch, key, n):
                continue
            self._count(switch, key)
            if switch == "not_modified":
                return web.Response(status=304)
            if switch == "redirect":
                here = request.url
                there = here.with_scheme("http") if cfg.redirect_to == "http" else here.with_scheme("ftp")
                return web.Response(status=302, headers={"Location": str(there)})
            extra: list[bytes] = []
            sent = body
            if switch == "header_overflow":
                if cfg.overflow_kind == "many":
                    extra = [f"X-Filler-{i}: {i}".encode() for i in range(200)]
                else:
                    extra = [b"X-Filler: " + b"x" * 8300]  # past aiohttp's 8,190-byte field limit
            elif switch == "bad_validators":
                extra = [b'ETag: "\xff\xfe\xc3"', b"Last-Modified: Thu, 01 Jan 2026 \xff\xfe GMT"]
            elif switch == "unasked_gzip":
                packed = gzip.compress(body)
                sent = packed[: max(1, len(packed) // 2)]
                extra = [b"Content-Encoding: gzip"]
            trickle = cfg.trickle_interval_s if switch == "header_trickle" else None
            await self._send_raw(request, resp, sent, len(sent), extra, trickle)
            return web.Response(status=resp.status)  # never reaches the client: aiohttp drops it
        return None

    # -- bodies --------------------------------------------------------------------------------------

    async def _body(
        self, request: web.Request, resp: web.StreamResponse, key: str, n: int
    ) -> web.StreamResponse:
        body = resp.body if isinstance(resp, web.Response) else None
        if request.method != "GET" or resp.status != 200 or not isinstance(body, bytes) or not body:
            return resp  # HEAD, 304, 206, errors: nothing to stream badly
        assert isinstance(resp, web.Response)
        bent = await self._wire(request, resp, body, key, n)
        if bent is not None:
            return bent
        for switch in _BODY_SWITCHES:
            if switch == "short_length" and len(body) < 2:
                continue
            if self._fires(switch, key, n):
                self._count(switch, key)
                if switch == "trickle":
                    return await self._trickle(request, resp, body)
                if switch in ("endless", "oversized"):
                    return await self._flood(request, resp, body, endless=switch == "endless")
                declared = len(body) // 2 if switch == "short_length" else 2 * len(body)
                return await self._raw(request, resp, body, declared)
        return resp

    async def _trickle(self, request: web.Request, resp: web.Response, body: bytes) -> web.StreamResponse:
        """The true ``Content-Length``, then one byte per interval until done or a bound cuts it."""
        cfg = self.config
        out = _stream_like(resp)
        out.content_length = len(body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.stream_max_s
        limit = min(len(body), cfg.stream_max_bytes)
        sent = 0
        try:
            async with asyncio.timeout_at(deadline):  # a client that stops reading stalls ``write``
                await out.prepare(request)
                while sent < limit:
                    await out.write(body[sent : sent + 1])
                    sent += 1
                    if sent == len(body):
                        break
                    if loop.time() + cfg.trickle_interval_s > deadline:
                        break
                    await asyncio.sleep(cfg.trickle_interval_s)
        except (ConnectionError, TimeoutError):
            pass
        self.stats.bytes_sent += sent
        if sent < len(body):
            _close(request)  # a bound stopped it: the client must see a short body, not a complete one
        return out

    async def _flood(
        self, request: web.Request, resp: web.Response, body: bytes, *, endless: bool
    ) -> web.StreamResponse:
        """The real body, then filler as fast as the client reads, until a bound closes the connection."""
        cfg = self.config
        out = _stream_like(resp)
        if endless:
            out.enable_chunked_encoding()
        else:
            out.content_length = cfg.oversized_bytes
        declared = None if endless else cfg.oversized_bytes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.stream_max_s
        limit = cfg.stream_max_bytes if declared is None else min(declared, cfg.stream_max_bytes)
        sent = 0
        try:
            # The deadline also covers a ``write`` stalled by a client that keeps the socket open but
            # stops reading (the transport pauses and ``drain`` waits for it forever otherwise).
            async with asyncio.timeout_at(deadline):
                await out.prepare(request)
                piece = body[:limit]
                while piece:
                    await out.write(piece)
                    sent += len(piece)
                    if sent >= limit or loop.time() >= deadline:
                        break
                    piece = FILLER[: limit - sent]
                    await asyncio.sleep(0)  # a fast reader never pauses the transport: let others run
        except (ConnectionError, TimeoutError):
            pass
        self.stats.bytes_sent += sent
        if declared is None or sent < declared:
            _close(request)
        return out

    async def _raw(
        self, request: web.Request, resp: web.Response, body: bytes, declared: int
    ) -> web.Response:
        """The whole body under a ``Content-Length`` of ``declared``, then FIN.

        No ``Connection: close``: a server that means to keep the connection is what makes aiohttp's
        client read the surplus as the next status line ("400, Bad status line", issue 10 item 7).
        """
        await self._send_raw(request, resp, body, declared, [], None)
        return web.Response(status=resp.status)  # never reaches the client: aiohttp drops it

    async def _send_raw(
        self,
        request: web.Request,
        resp: web.Response,
        body: bytes,
        declared: int,
        extra: list[bytes],
        trickle: float | None,
    ) -> None:
        """Status line, ``resp``'s headers plus ``extra`` and ``body`` straight to the transport, then FIN.

        aiohttp enforces the declared length and well-formed headers on what it writes, so a response
        that breaks either is written by hand. ``trickle``: the head goes out one byte per that many
        seconds, until done or ``stream_max_s`` has passed (then the connection is closed).
        """
        head = [f"HTTP/1.1 {resp.status} {HTTPStatus(resp.status).phrase}".encode()]
        for name, value in resp.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date"):
                head.append(f"{name}: {value}".encode("latin-1"))
        head += [f"Date: {formatdate(usegmt=True)}".encode(), f"Content-Length: {declared}".encode(), *extra]
        wire = b"\r\n".join(head) + b"\r\n\r\n"
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        if trickle is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.stream_max_s
            for i in range(len(wire)):
                if transport.is_closing() or loop.time() + trickle > deadline:
                    transport.close()  # a bound stopped it: the client sees a cut head
                    return
                transport.write(wire[i : i + 1])
                await asyncio.sleep(trickle)
            wire = b""
        transport.write(wire + body)
        self.stats.bytes_sent += len(body)
        transport.close()  # close() flushes what was written, then sends FIN


def _stream_like(resp: web.Response) -> web.StreamResponse:
    headers = {
        k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "transfer-encoding")
    }
    return web.StreamResponse(status=resp.status, headers=headers)


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def _json_body(resp: web.StreamResponse) -> dict[str, Any] | None:
    if not isinstance(resp, web.Response) or resp.status != 200 or resp.content_type != "application/json":
        return None
    raw = resp.body
    if not isinstance(raw, bytes):
        return None
    parsed = json.loads(raw)
    return parsed if isinstance(parsed, dict) else None


def _int(text: str | None) -> int:
    try:
        return int(text or "0")
    except ValueError:
        return 0


def parse_hostile(text: str) -> HostileConfig:
    """``--hostile 'trickle=1,trickle_interval_s=0.5,status_script=500/html404/html404/ok'``.

    Comma-separated ``name=value`` pairs naming :class:`HostileConfig` fields; a status script's steps
    are separated by ``/``. Raises ``ValueError`` with one line naming the problem.
    """
    fields = {name: getattr(HostileConfig(), name) for name in HostileConfig.__slots__}
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, eq, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or name not in fields:
            raise ValueError(f"{item!r} is not name=value with a name from {', '.join(fields)}")
        default = fields[name]
        value = value.strip()
        try:
            if isinstance(default, tuple):
                values[name] = tuple(s.strip() for s in value.split("/") if s.strip())
            elif isinstance(default, float):
                values[name] = float(value)
            elif isinstance(default, int):
                values[name] = int(value)
            else:
                values[name] = value
        except ValueError:
            raise ValueError(f"{name} needs a {type(default).__name__}, got {value!r}") from None
    return HostileConfig(**values)
