"""The emulator's HTTP face: NeuroMorpho.Org's API and file server as an aiohttp.web application.

Shapes follow reference A2-A8: a Spring/HAL envelope around pages of neurons, Spring error bodies, 0-based
pages of 50 (at most 500), ``neuron_id`` order by default, and the file tree under ``/dableFiles`` and
``/images/imageFiles`` with validators and ranges. Every route is wrapped by one guard that counts the
request, applies the capacity cap, latency and injected faults, so handlers stay plain.

The file GET is the hot path of every benchmark: past the guard's counting, it is one lookup by URL in a
byte-bounded LRU of prepared responses (headers formatted once), a glance at the validator and range
headers, and a ``web.Response`` with the body bytes. The catalogue is asked only on a miss.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from . import literature, recorded
from ._config import MAX_PAGE_SIZE, EmulatorConfig
from ._lru import ByteLRU
from .catalogue import FIELDS, Catalogue, EmulatedFile
from .faults import (
    PRE_FAULTS,
    FaultPlan,
    fault_after,
    fault_before,
    html_error,
    send_throttled,
    spring_error,
)
from .hostile import Hostile
from .search import QueryError, select
from .stats import Stats

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "build_app", "redirect_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Lookup = Callable[[int], dict[str, Any] | None]

DEFAULT_PAGE_SIZE = 50
#: Prepared file responses kept in memory, by URL. The catalogue keeps built files too, by neuron and kind,
#: for every caller (tests' expected bodies, other spellings of a path); this cache is what makes a repeat
#: GET skip the path lookup and header formatting, so the hot path is one dictionary lookup.
FILE_CACHE_BYTES = 32 * 2**20
SELECT_CACHE_ENTRIES = 64

_JSON = "application/json"


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(), content_type=_JSON)


def _body_len(resp: web.StreamResponse) -> int:
    body = resp.body if isinstance(resp, web.Response) else None
    return len(body) if isinstance(body, bytes) else 0


@dataclass(frozen=True, slots=True)
class _Served:
    """A file ready to send: validators parsed and headers formatted once."""

    body: bytes
    etag: str
    mtime: int  # whole seconds, as HTTP dates carry
    last_modified: str
    headers: Mapping[str, str]

    @classmethod
    def of(cls, f: EmulatedFile) -> _Served:
        last_modified = format_datetime(f.last_modified, usegmt=True)
        headers = {
            "Content-Type": f.content_type,
            "ETag": f.etag,
            "Last-Modified": last_modified,
            "Accept-Ranges": "bytes",
        }
        return cls(f.body, f.etag, int(f.last_modified.timestamp()), last_modified, headers)


@dataclass(frozen=True, slots=True)
class _Page:
    """One requested page of a listing of ``total`` items (0-based ``number``)."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.size)

    def items(self, items: Sequence[Any]) -> Sequence[Any]:
        return items[self.number * self.size : (self.number + 1) * self.size]

    def info(self) -> dict[str, int]:
        """Spring's ``page`` object."""
        pages = self.pages
        return {"size": self.size, "totalElements": self.total, "totalPages": pages, "number": self.number}


def _http_date(text: str) -> int | None:
    try:
        parsed: datetime = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return int(parsed.timestamp())


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    """RFC 9110 comparison: weak for If-None-Match, strong for If-Range."""
    header = header.strip()
    if header == "*":
        return True
    opaque = etag.removeprefix("W/")
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if tag == opaque and (weak or not etag.startswith("W/")):
            return True
    return False


def _parse_range(header: str, length: int) -> tuple[int, int] | bool:
    """One ``bytes=`` range as (start, end inclusive); ``False`` = ignore the header, ``True`` = 416."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return False  # other units and multipart ranges: serve the whole file (allowed by RFC 9110)
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return False
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return True
            return (max(0, length - suffix), length - 1) if length else True
        start = int(first)
        end = int(last) if last else length - 1
    except ValueError:
        return False
    if start < 0:
        return False
    if start >= length:
        return True
    if end < start:
        return False
    return start, min(end, length - 1)


class _Routes:
    """Handlers bound to one catalogue, config, stats and fault plan."""

    def __init__(self, catalogue: Catalogue, config: EmulatorConfig, stats: Stats, plan: FaultPlan) -> None:
        self.cat = catalogue
        self.config = config
        self.stats = stats
        self.plan = plan
        self._rng = random.Random(config.seed)
        self._files: ByteLRU[tuple[str, ...], _Served] = ByteLRU(FILE_CACHE_BYTES)
        self._selects: OrderedDict[str, Sequence[int]] = OrderedDict()
        self._case_sensitive = config.path_case == "sensitive"
        # About one publication per eight neurons (32k for 265k, reference A9.8).
        self.lit = literature.Literature(max(20, len(catalogue) // 8), config.seed)
        self._bytes_per_s = config.bandwidth_kbps * 1024
        self.hostile = Hostile(config.hostile, config.seed, stats)

    # -- the guard around every route -------------------------------------------------------------

    def guard(self, kind: str, handler: Handler) -> Handler:
        """Count, cap, delay and fault one route; ``kind`` is ``api``, ``file`` or ``other``."""
        handler = self.hostile.wrap(kind, handler)  # issue 10's hostile switches, inside the counting
        stats, cfg = self.stats, self.config
        faultable = self.plan.active and self.plan.applies_to(kind)
        limit = cfg.max_in_flight
        delay, jitter = cfg.latency_ms / 1000, cfg.jitter_ms / 1000
        rng = self._rng
        finish = self._finish

        async def guarded(request: web.Request) -> web.StreamResponse:
            stats.enter(kind, request.rel_url.raw_path if kind == "file" else "")
            try:
                if limit and stats.in_flight > limit:
                    stats.rejected_busy += 1
                    busy = spring_error(503, "Server busy", request.path, {"Retry-After": "1"})
                    stats.answered(503, _body_len(busy))
                    return busy
                if delay or jitter:
                    await asyncio.sleep(delay + jitter * rng.random())
                if faultable:
                    return await self._faulted(request, handler)
                return await finish(request, await handler(request))
            finally:
                stats.leave()

        return guarded

    async def _finish(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        """Count what goes out; under ``--bandwidth-kbps`` stream it at the capped rate."""
        sent = 0 if request.method == "HEAD" else _body_len(resp)
        if sent and self._bytes_per_s:
            assert isinstance(resp, web.Response)
            out, sent = await send_throttled(request, resp, self._bytes_per_s)
            resp = out
        self.stats.answered(resp.status, sent)
        return resp

    async def _faulted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        stats, plan = self.stats, self.plan
        key = request.raw_path
        picked = plan.pick(key)
        if picked is None:
            return await self._finish(request, await handler(request))
        fault, ordinal = picked
        variant = plan.variant(key, ordinal)
        if fault in PRE_FAULTS or (fault == "reset" and variant == 0):
            stats.fault(fault)
            early = fault_before(fault, request, variant, self.config.retry_after_s)
            if fault != "reset":
                stats.answered(early.status, _body_len(early))
            return early
        resp = await handler(request)
        if request.method != "HEAD" and _body_len(resp) > 1:
            assert isinstance(resp, web.Response)
            stats.fault(fault)
            # The status line goes out first; count it now, since a client that gives up on a stall
            # cancels this handler before fault_after returns.
            stats.answered(resp.status, 0)
            out, sent = await fault_after(fault, request, resp, self.config.stall_ms / 1000)
            stats.bytes_sent += sent
            return out
        plan.refund(key)  # nothing to cut short (HEAD, 304): behave and keep the budget
        return await self._finish(request, resp)

    # -- helpers -----------------------------------------------------------------------------------

    def _neuron(self, host: str, neuron_id: int) -> dict[str, Any] | None:
        record = self.cat.record(neuron_id)
        if record is None:
            return None
        base = f"http://{host}/api"
        links = {
            "self": {"href": f"{base}/neuron/id/{neuron_id}"},
            "measurements": {"href": f"{base}/morphometry/id/{neuron_id}"},
            "persistence_vector": {"href": f"{base}/pvec/id/{neuron_id}"},
        }
        return {**record, "_links": links}

    def _paging(self, request: web.Request) -> tuple[int, int] | web.Response:
        query = request.query
        try:
            page = int(query.get("page", "0"))
            size = int(query.get("size", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return spring_error(400, "page and size must be integers", request.path)
        if page < 0 or size < 1:
            return spring_error(400, "page must be >= 0 and size >= 1", request.path)
        largest = self.config.max_page_size
        if size > largest:
            if self.config.oversize == "400":
                return spring_error(400, f"size must not exceed {largest}", request.path)
            size = largest
        return page, size

    def _links(self, request: web.Request, page: int, size: int, pages: int) -> dict[str, Any]:
        base = f"http://{request.host}"

        def href(n: int) -> dict[str, str]:
            return {"href": base + str(request.rel_url.update_query(page=n, size=size))}

        links = {"first": href(0)}
        if page > 0:
            links["prev"] = href(page - 1)
        links["self"] = href(page)
        if page + 1 < pages:
            links["next"] = href(page + 1)
        links["last"] = href(max(pages - 1, 0))
        return links

    def _past_last(self, request: web.Request, page: int, pages: int) -> web.Response | None:
        """``None`` for the default (an empty 200 page); else the error the switch asks for."""
        mode = self.config.past_last
        if mode == "empty":
            return None
        status = int(mode)
        return spring_error(status, f"page {page} is past the last page ({max(pages - 1, 0)})", request.path)

    def _page(self, request: web.Request, total: int) -> _Page | web.Response:
        """The page asked for, or the error for bad paging or (if so configured) a page past the last."""
        paging = self._paging(request)
        if isinstance(paging, web.Response):
            return paging
        page = _Page(*paging, total)
        if page.number >= page.pages and total:
            error = self._past_last(request, page.number, page.pages)
            if error is not None:
                return error
        return page

    def _neuron_page(self, request: web.Request, ids: Sequence[int]) -> web.Response:
        host = request.host
        return self._hal_page(request, ids, "neuronResources", lambda i: self._neuron(host, i))

    def _hal_page(
        self, request: web.Request, keys: Sequence[Any], embedded: str, build: Callable[[Any], Any]
    ) -> web.Response:
        """One Spring/HAL page of ``keys`` (``_embedded`` left out of an empty page, reference A3)."""
        page = self._page(request, len(keys))
        if isinstance(page, web.Response):
            return page
        body: dict[str, Any] = {}
        if page.number < page.pages:
            body["_embedded"] = {embedded: [build(k) for k in page.items(keys)]}
        body["_links"] = self._links(request, page.number, page.size, page.pages)
        body["page"] = page.info()
        return _json(body)

    def _field_page(self, request: web.Request, field: str, values: Sequence[str]) -> web.Response:
        """``fields/{field}``: every value on one page, ``page.size`` = their number (E, [CWN]).

        ``size`` is not honoured (the recorded answer has all 95 species on page 0); a page past 0 is past
        the last one and answers as ``past_last`` says (an empty list by default; inferred).
        """
        try:
            number = max(int(request.query.get("page", "0")), 0)
        except ValueError:
            return spring_error(400, "page must be an integer", request.path)
        if number > 0 and values:
            error = self._past_last(request, number, 1)
            if error is not None:
                return error
        info = {"size": len(values), "totalPages": 1 if values else 0, "totalElements": len(values)}
        body = {"field_name": field, "fields": list(values) if number == 0 else [], "page": info}
        info["number"] = number
        return _json(body)

    def _select(self, *, q: str | None, fq: Sequence[str], body: Any, sort: str | None) -> Sequence[int]:
        """Run (or reuse) a query: clients page through the same select hundreds of times."""
        key = json.dumps([q, list(fq), body, sort], sort_keys=True)
        return self._remembered(key, lambda: select(self.cat, q=q, fq=tuple(fq), body=body, sort=sort))

    def _remembered(self, key: str, run: Callable[[], Sequence[int]]) -> Sequence[int]:
        """The last ``SELECT_CACHE_ENTRIES`` selects' ids (neurons and literature share the one cache)."""
        hit = self._selects.get(key)
        if hit is not None:
            self._selects.move_to_end(key)
            return hit
        ids = run()  # a query error propagates and is not kept
        self._selects[key] = ids
        if len(self._selects) > SELECT_CACHE_ENTRIES:
            self._selects.popitem(last=False)
        return ids

    def _selected(self, request: web.Request, **query: Any) -> Sequence[int] | web.Response:
        """The ids a query selects, in the request's ``sort`` order, or its 400."""
        try:
            return self._select(sort=request.query.get("sort"), **query)
        except QueryError as exc:
            return spring_error(400, str(exc), request.path)

    def _select_page(self, request: web.Request, **query: Any) -> web.Response:
        ids = () if self.config.empty_selects else self._selected(request, **query)
        if isinstance(ids, web.Response):
            return ids
        if not ids and self.config.no_hits == "404":
            return spring_error(404, "No neurons found for this query", request.path)
        return self._neuron_page(request, ids)

    # -- API routes --------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "UP"})

    async def neurons(self, request: web.Request) -> web.Response:
        if self.config.empty_selects:
            return self._neuron_page(request, ())
        if request.query.get("sort") is None:
            return self._neuron_page(request, self.cat.neuron_ids())
        # The whole listing is not a query: no no_hits 404, even from an empty catalogue.
        ids = self._selected(request, q=None, fq=(), body=None)
        return ids if isinstance(ids, web.Response) else self._neuron_page(request, ids)

    async def neuron_by_id(self, request: web.Request) -> web.Response:
        return self._by_id(request, lambda neuron_id: self._neuron(request.host, neuron_id), "neuron")

    async def neuron_by_name(self, request: web.Request) -> web.Response:
        return self._by_name(request, lambda neuron_id: self._neuron(request.host, neuron_id), "neuron")

    async def select_get(self, request: web.Request) -> web.Response:
        q = request.query.get("q")
        if q is None:
            return spring_error(400, "Required request parameter 'q' is not present", request.path)
        return self._select_page(request, q=q, fq=request.query.getall("fq", []), body=None)

    async def select_post(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return spring_error(400, "JSON parse error: the request body is not valid JSON", request.path)
        if not isinstance(body, dict):
            message = "the request body must be a JSON object of field: [values]"
            return spring_error(400, message, request.path)
        return self._select_page(request, q=None, fq=(), body=body)

    async def fields(self, request: web.Request) -> web.Response:
        return _json({"Neuron Fields": list(FIELDS)})

    async def field_values(self, request: web.Request) -> web.Response:
        return self._values_page(request, self.cat.field_values)

    async def partition(self, request: web.Request) -> web.Response:
        return self._partition(request, self.cat.partition, empty=self.config.empty_selects)

    def _values_page(self, request: web.Request, lookup: Callable[[str], Any]) -> web.Response:
        """``fields/{field}`` of neurons or literature: all values on one page, 400 for a bad field."""
        field = request.match_info["field"]
        try:
            values = lookup(field)
        except KeyError:
            return spring_error(400, f"Unknown field: {field}", request.path)
        return self._field_page(request, field, values)

    @staticmethod
    def _partition(
        request: web.Request, lookup: Callable[[str], Any], *, empty: bool = False
    ) -> web.Response:
        """``partition/{field}`` of neurons or literature: value -> count, 400 for a bad field."""
        field = request.match_info["field"]
        try:
            counts = lookup(field)
        except KeyError:
            return spring_error(400, f"Unknown field: {field}", request.path)
        return _json({"fields": {} if empty else dict(counts)})

    async def morphometry_by_id(self, request: web.Request) -> web.Response:
        return self._by_id(request, self.cat.morphometry, "morphometry")

    async def morphometry_by_name(self, request: web.Request) -> web.Response:
        return self._by_name(request, self.cat.morphometry, "morphometry")

    async def pvec_by_id(self, request: web.Request) -> web.Response:
        return self._by_id(request, self.cat.pvec, "persistence vector")

    async def morphometry_list(self, request: web.Request) -> web.Response:
        """``/api/morphometry``: every record, paged (A2; the embedded key is inferred)."""
        return self._hal_page(request, self.cat.neuron_ids(), "morphometryResources", self.cat.morphometry)

    async def pvec_list(self, request: web.Request) -> web.Response:
        """``/api/pvec``: every persistence vector, paged (A2; the embedded key is inferred)."""
        return self._hal_page(request, self.cat.neuron_ids(), "pvecResources", self.cat.pvec)

    # -- literature (reference A2, A7) ---------------------------------------------------------------

    async def literature_list(self, request: web.Request) -> web.Response:
        lit = self.lit
        return self._hal_page(request, range(lit.count), "publicationResources", lit.record)

    async def literature_by_id(self, request: web.Request) -> web.Response:
        index = self.lit.index_of(request.match_info["id"].rstrip("/"))
        if index is None:
            return spring_error(404, "Requested article not found", request.path)
        return _json(self.lit.record(index))

    async def literature_select(self, request: web.Request) -> web.Response:
        try:
            # A literature select scans every article (1.58 s at full size, on the event loop): kept like
            # the neuron selects, so paging through one query pays for the scan once.
            q, fq = request.query.get("q"), tuple(request.query.getall("fq", []))
            found = self._remembered(json.dumps(["literature", q, fq]), lambda: self.lit.select(q, fq))
        except literature.LiteratureQueryError as exc:
            return spring_error(400, str(exc), request.path)
        if not found and self.config.no_hits == "404":
            return spring_error(404, "No articles found for this query", request.path)
        return self._hal_page(request, found, "publicationResources", self.lit.record)

    async def literature_fields(self, request: web.Request) -> web.Response:
        return _json({"Literature Fields": list(literature.FIELDS)})

    async def literature_field_values(self, request: web.Request) -> web.Response:
        return self._values_page(request, self.lit.field_values)

    async def literature_partition(self, request: web.Request) -> web.Response:
        return self._partition(request, self.lit.partition)

    async def api_fallback(self, request: web.Request) -> web.Response:
        """Anything no route took: Spring's 404 for a GET, its 405 for other methods (reference A6)."""
        if request.method in ("GET", "HEAD"):
            return spring_error(404, "No message available", request.path)
        return spring_error(405, f"Request method '{request.method}' is not supported", request.path)

    def _int_id(self, request: web.Request) -> int | web.Response:
        text = request.match_info["id"]
        try:
            return int(text)
        except ValueError:
            message = f"Failed to convert value of type 'java.lang.String' to required type 'int'; {text!r}"
            return spring_error(400, message, request.path)

    @staticmethod
    def _one(request: web.Request, found: dict[str, Any] | None, what: str) -> web.Response:
        if found is None:
            return spring_error(404, f"Requested {what} not found", request.path)
        return _json(found)

    def _by_id(self, request: web.Request, lookup: _Lookup, what: str) -> web.Response:
        """``/{what}/id/{id}``: 400 for an id that is not an int, 404 for an unknown one."""
        neuron_id = self._int_id(request)
        if isinstance(neuron_id, web.Response):
            return neuron_id
        return self._one(request, lookup(neuron_id), what)

    def _by_name(self, request: web.Request, lookup: _Lookup, what: str) -> web.Response:
        name = request.match_info["name"]
        neuron_id = self.cat.id_by_name(name)
        if neuron_id is None and name.endswith("/"):  # a trailing slash, as every route takes (E)
            neuron_id = self.cat.id_by_name(name[:-1])
        return self._one(request, None if neuron_id is None else lookup(neuron_id), what)

    # -- files -------------------------------------------------------------------------------------

    def _prepared(self, key: tuple[str, ...], found: EmulatedFile | None) -> _Served | None:
        """A file the cache missed, prepared for sending and kept under its URL."""
        if found is None:
            return None
        served = _Served.of(found)
        self._files.put(key, served, len(served.body))
        return served

    async def dable_file(self, request: web.Request) -> web.Response:
        if self.plan.missing(request.rel_url.raw_path):
            return html_error(404)
        info = request.match_info
        archive, folder, name = info["archive"], info["folder"], info["filename"]
        key = ("dable", archive, folder, name)
        served = self._files.get(key) or self._prepared(
            key, self.cat.file(archive, folder, name, case_sensitive=self._case_sensitive)
        )
        return html_error(404) if served is None else _send(request, served)

    async def image(self, request: web.Request) -> web.Response:
        if self.plan.missing(request.rel_url.raw_path):
            return html_error(404)
        archive, name = request.match_info["archive"], request.match_info["filename"]
        key = ("image", archive, name)
        served = self._files.get(key) or self._prepared(
            key, self.cat.image(archive, name, case_sensitive=self._case_sensitive)
        )
        return html_error(404) if served is None else _send(request, served)

    async def previous_release(self, request: web.Request) -> web.Response:
        """``/dableFiles/previous/v6.1/wearne_hof/cnic_001.CNG.swc``, the file record 1's note links to."""
        fold = (lambda s: s) if self._case_sensitive else str.casefold
        if fold(request.path) != fold(recorded.PREVIOUS_V61_PATH):
            return html_error(404)
        found = self.cat.previous_release()
        return html_error(404) if found is None else _send(request, _Served.of(found))

    async def neuron_info_jsp(self, request: web.Request) -> web.Response:
        """The neuron's HTML page (reference A8), or 403 under ``--jsp 403``; counted in ``jsp_requests``.

        The Terms of Use forbid scripted calls to .jsp pages (A9.1): the counter lets tests prove our
        client never asks for one, while scrapers written against the real page still find its links.
        """
        self.stats.jsp_requests += 1
        if self.config.jsp == "403":
            page = b"<html><body><h1>403 Forbidden</h1><p>Use the API and direct file URLs.</p></body></html>"
            return web.Response(status=403, body=page, content_type="text/html", charset="utf-8")
        query = request.query
        neuron_id: int | None = None
        if "neuron_name" in query:
            neuron_id = self.cat.id_by_name(query["neuron_name"])
        elif query.get("neuron_id", "").isdigit():
            neuron_id = int(query["neuron_id"])
        record = None if neuron_id is None else self.cat.record(neuron_id)
        if record is None:
            return html_error(404)
        return web.Response(body=_info_page(record), content_type="text/html", charset="utf-8")

    async def not_found(self, request: web.Request) -> web.Response:
        """Anything outside ``/api`` and the file tree: the Tomcat front's HTML 404 page."""
        return html_error(404)


def _info_page(record: Mapping[str, Any]) -> bytes:
    """``neuron_info.jsp``: metadata rows and the two file links inside ``.info > table`` (reference A8).

    The links are relative and unquoted (``<a href=dableFiles/...>``), as the scrapers' regexes expect.
    """
    name, archive = str(record["neuron_name"]), str(record["archive"])
    folder = quote(archive.lower())
    fmt = record.get("original_format")
    ext = recorded.original_format_extension(fmt if isinstance(fmt, str) else None)
    rows = [("NeuroMorpho.Org ID", f"NMO_{int(record['neuron_id']):05d}")]
    rows += [(key, value) for key, value in record.items() if key not in ("neuron_id", "note", "png_url")]
    cells = "".join(
        f'<tr><td class="label">{html.escape(str(k))}</td><td>'
        f"{html.escape(', '.join(v) if isinstance(v, list) else str(v))}</td></tr>\n"
        for k, v in rows
    )
    link = "<tr><td><a href=dableFiles/{}>Morphology File ({})</a></td></tr>\n"
    links = link.format(f"{folder}/CNG%20version/{quote(name)}.CNG.swc", "Standardized")
    if ext is not None:
        links += link.format(f"{folder}/Source-Version/{quote(name)}.{ext}", "Original")
    title = html.escape(name)
    return (
        f"<!DOCTYPE html>\n<html><head><title>NeuroMorpho.Org - {title}</title></head><body>\n"
        f'<div class="info"><h2>Neuron {title}</h2>\n<table>\n{cells}{links}</table></div>\n'
        f'<img src="{html.escape(str(record["png_url"]))}" alt="{title}">\n</body></html>\n'
    ).encode()


def _send(request: web.Request, served: _Served) -> web.Response:
    """200, 206, 304 or 416 for one file, honouring validators and a single byte range."""
    headers = request.headers
    if headers:
        conditional = _conditional(headers, served)
        if conditional is not None:
            return conditional
        range_header = headers.get("Range")
        if range_header is not None and request.method == "GET" and _if_range_ok(headers, served):
            return _ranged(range_header, served)
    return web.Response(body=served.body, headers=served.headers)


def _conditional(headers: Mapping[str, str], served: _Served) -> web.Response | None:
    """304 when the client's copy is current; If-None-Match wins over If-Modified-Since."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        fresh = _etag_matches(inm, served.etag, weak=True)
    else:
        ims = headers.get("If-Modified-Since")
        since = _http_date(ims) if ims is not None else None
        fresh = since is not None and served.mtime <= since
    if not fresh:
        return None
    return web.Response(status=304, headers={"ETag": served.etag, "Last-Modified": served.last_modified})


def _if_range_ok(headers: Mapping[str, str], served: _Served) -> bool:
    """If-Range: the range applies only to the exact representation the client names."""
    if_range = headers.get("If-Range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return _etag_matches(if_range, served.etag, weak=False)
    return _http_date(if_range) == served.mtime


def _ranged(range_header: str, served: _Served) -> web.Response:
    length = len(served.body)
    parsed = _parse_range(range_header, length)
    if parsed is False:
        return web.Response(body=served.body, headers=served.headers)
    if parsed is True:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{length}"})
    start, end = parsed
    out_headers = dict(served.headers)
    out_headers["Content-Range"] = f"bytes {start}-{end}/{length}"
    return web.Response(status=206, body=served.body[start : end + 1], headers=out_headers)


async def _stats(request: web.Request) -> web.Response:
    stats: Stats = request.app[STATS_KEY]
    return _json(stats.snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATS_KEY].reset()
    if request.query.get("faults") in ("1", "true", "yes"):
        request.app[PLAN_KEY].reset()
    return _json({"reset": True})


async def _config(request: web.Request) -> web.Response:
    cfg: EmulatorConfig = request.app[CONFIG_KEY]
    return _json(asdict(cfg))


STATS_KEY = web.AppKey("stats", Stats)
PLAN_KEY = web.AppKey("plan", FaultPlan)
CONFIG_KEY = web.AppKey("config", EmulatorConfig)


def build_app(catalogue: Catalogue, config: EmulatorConfig, stats: Stats, plan: FaultPlan) -> web.Application:
    """The whole server: API, files, the .jsp trap and the ``/_emulator`` control routes."""
    routes = _Routes(catalogue, config, stats, plan)
    app = web.Application(client_max_size=2**20)
    app[STATS_KEY] = stats
    app[PLAN_KEY] = plan
    app[CONFIG_KEY] = config

    def add(method: str, path: str, handler: Handler) -> None:
        # add_route("GET") would not answer HEAD; add_get does (HEAD must work for files and size checks).
        if method == "GET":
            app.router.add_get(path, handler)
        else:
            app.router.add_route(method, path, handler)

    def api(method: str, path: str, handler: Handler) -> None:
        guarded = routes.guard("api", handler)
        add(method, path, guarded)
        if not path.endswith(".+}"):  # a name route takes the slash into the name; _by_name strips it
            add(method, path + "/", guarded)  # every route answers with a trailing slash too (E)

    api("GET", "/api/health", routes.health)
    api("GET", "/api/neuron", routes.neurons)
    api("GET", "/api/neuron/id/{id}", routes.neuron_by_id)
    api("GET", "/api/neuron/name/{name:.+}", routes.neuron_by_name)
    api("GET", "/api/neuron/select", routes.select_get)
    api("POST", "/api/neuron/select", routes.select_post)
    api("GET", "/api/neuron/fields", routes.fields)
    api("GET", "/api/neuron/fields/{field}", routes.field_values)
    api("GET", "/api/neuron/partition/{field}", routes.partition)
    api("GET", "/api/morphometry", routes.morphometry_list)
    api("GET", "/api/morphometry/id/{id}", routes.morphometry_by_id)
    api("GET", "/api/morphometry/name/{name:.+}", routes.morphometry_by_name)
    api("GET", "/api/pvec", routes.pvec_list)
    api("GET", "/api/pvec/id/{id}", routes.pvec_by_id)
    api("GET", "/api/literature", routes.literature_list)
    api("GET", "/api/literature/id/{id}", routes.literature_by_id)
    api("GET", "/api/literature/select", routes.literature_select)
    api("GET", "/api/literature/fields", routes.literature_fields)
    api("GET", "/api/literature/fields/{field}", routes.literature_field_values)
    api("GET", "/api/literature/partition/{field}", routes.literature_partition)
    api("*", "/api/{tail:.*}", routes.api_fallback)  # last: only what no route above took
    add(
        "GET", "/dableFiles/previous/v6.1/{archive}/{filename}", routes.guard("file", routes.previous_release)
    )
    add("GET", "/dableFiles/{archive}/{folder}/{filename:.+}", routes.guard("file", routes.dable_file))
    add("GET", "/images/imageFiles/{archive}/{filename:.+}", routes.guard("file", routes.image))
    add("GET", "/neuron_info.jsp", routes.guard("other", routes.neuron_info_jsp))
    add("GET", "/_emulator/stats", _stats)
    add("POST", "/_emulator/reset", _reset)
    add("GET", "/_emulator/config", _config)
    add("*", "/{tail:.*}", routes.guard("other", routes.not_found))  # last: the Tomcat front's 404
    return app


def redirect_app(https_base: str) -> web.Application:
    """The plain-HTTP listener of ``--redirect-http``: 301 to the same path on HTTPS (reference A1)."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(location=https_base + request.raw_path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app
