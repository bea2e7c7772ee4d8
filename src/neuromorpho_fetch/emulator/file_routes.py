"""The file server's routes: ``/dableFiles``, ``/images/imageFiles``, the pre-6.1 file, ``neuron_info.jsp``
and the Tomcat front's HTML 404 for anything else (reference A8, F).

The file GET is the hot path of every benchmark: past the guard's counting, it is one lookup by URL in a
byte-bounded LRU of prepared responses (headers formatted once), a glance at the validator and range
headers, and a ``web.Response`` with the body bytes. The catalogue is asked only on a miss.

A file that does not exist, and one that ``--missing-rate`` removes, is a non-2xx status with an HTML
body (F, "Missing files": "a missing file is a non-2xx status with an HTML body; 200-with-HTML stays a
fault mode only"): Tomcat's 404 page. ``HEAD`` is answered wherever ``GET`` is (``add_get`` registers it).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from . import recorded
from ._config import EmulatorConfig
from ._lru import ByteLRU
from .catalogue import Catalogue
from .faults import FaultPlan, html_error
from .files import EmulatedFile
from .stats import Stats

#: Prepared file responses are kept in memory, by URL, up to ``EmulatorConfig.file_cache_mb``. The
#: catalogue keeps built files too, by neuron and kind, for every caller (tests' expected bodies, other
#: spellings of a path); this cache is what makes a repeat GET skip the growing of the neuron, the path
#: lookup and header formatting, so the hot path is one dictionary lookup.


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


class FileRoutes:
    """Handlers of the file tree and the site's HTML pages, bound to one catalogue, config and fault plan."""

    def __init__(self, catalogue: Catalogue, config: EmulatorConfig, stats: Stats, plan: FaultPlan) -> None:
        self.cat = catalogue
        self.config = config
        self.stats = stats
        self.plan = plan
        self._files: ByteLRU[tuple[str, ...], _Served] = ByteLRU(int(config.file_cache_mb * 2**20))
        self._case_sensitive = config.path_case == "sensitive"

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
