"""The API's routes: neurons, selects, fields, partitions, morphometry, persistence vectors, literature.

Shapes follow the recordings of reference E and F where there are any, else A2-A7: Spring pages with
``_embedded`` and ``page`` only (F, "Select page envelope"; the documented page ``_links`` under
``page_links``), records in ascending ``neuron_id`` with their own three ``_links``, Spring error bodies,
0-based pages of 50 (at most 500). The batch selects of NeuroMorpho's own front end (F, "Batch selects")
answer ``/api/morphometry/select`` and ``/api/pvec/select`` with ``_embedded.measurements`` and
``_embedded.pvecs``.
"""

from __future__ import annotations

import json
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from . import literature
from ._config import EmulatorConfig
from .catalogue import Catalogue
from .faults import spring_error
from .paging import Page, field_page_info, page_links, requested_page
from .search import QueryError, select
from .vocabulary import FIELDS

_Lookup = Callable[[int], dict[str, Any] | None]

SELECT_CACHE_ENTRIES = 64

#: Per-record ``_links`` point at the real site whatever host answered (F, "Select page envelope":
#: "Per-record _links are exactly self, measurements, persistence_vector, with
#: http://neuromorpho.org/api/... hrefs"), as ``png_url`` does.
RECORD_LINK_BASE = "http://neuromorpho.org/api"

#: Key order of a served morphometry record (F, "Morphometry record of neuron 1, complete": "keys in
#: server order"). The catalogue hands out the values; the order is the wire's, so it is kept here.
MORPHOMETRY_KEYS: tuple[str, ...] = (
    "neuron_name", "bif_ampl_remote", "neuron_id", "surface", "volume", "contraction", "fragmentation",
    "partition_asymmetry", "pk_classic", "bif_ampl_local", "fractal_Dim", "soma_Surface", "n_stems",
    "n_bifs", "n_branch", "width", "height", "depth", "diameter", "eucDistance", "pathDistance",
    "branch_Order", "length",
)  # fmt: skip

#: Query fields of the batch selects, as NeuroMorpho's front end and an older script send them (F, "Batch
#: selects": ``q=Neuron_id:`` with a capital N on morphometry, ``neuron_id`` on pvec, ``neuron_name``);
#: both spellings of the id are taken on both routes.
BATCH_FIELDS: Mapping[str, str] = {
    "neuron_id": "neuron_id",
    "Neuron_id": "neuron_id",
    "neuron_name": "neuron_name",
}


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(), content_type="application/json")


def served_morphometry(found: Mapping[str, Any]) -> dict[str, Any]:
    """A morphometry record in the server's key order, with no ``_links`` (F: "No _links in a morphometry
    record"); a key outside the recorded list keeps its place after them."""
    ordered = {key: found[key] for key in MORPHOMETRY_KEYS if key in found}
    return ordered | {key: value for key, value in found.items() if key not in ordered}


class ApiRoutes:
    """Handlers of ``/api/...`` bound to one catalogue and config, with the select cache."""

    def __init__(self, catalogue: Catalogue, config: EmulatorConfig) -> None:
        self.cat = catalogue
        self.config = config
        self._selects: OrderedDict[str, Sequence[int]] = OrderedDict()
        # About one publication per eight neurons (32k for 265k, reference A9.8).
        self.lit = literature.Literature(max(20, len(catalogue) // 8), config.seed)

    # -- records -------------------------------------------------------------------------------------

    def _neuron(self, neuron_id: int) -> dict[str, Any] | None:
        record = self.cat.record(neuron_id)
        if record is None:
            return None
        links = {
            "self": {"href": f"{RECORD_LINK_BASE}/neuron/id/{neuron_id}"},
            "measurements": {"href": f"{RECORD_LINK_BASE}/morphometry/id/{neuron_id}"},
            "persistence_vector": {"href": f"{RECORD_LINK_BASE}/pvec/id/{neuron_id}"},
        }
        return {**record, "_links": links}

    def _morphometry(self, neuron_id: int) -> dict[str, Any] | None:
        """``None`` for an unknown neuron and for one without morphometry (F: "About 0.4% of neurons have
        no morphometry (/morphometry/id/{id} answers 404 for them)"); the catalogue decides which."""
        found = self.cat.morphometry(neuron_id)
        return None if found is None else served_morphometry(found)

    # -- pages ---------------------------------------------------------------------------------------

    def _past_last(self, request: web.Request, page: int, pages: int) -> web.Response | None:
        """``None`` for the default (an empty 200 page); else the error the switch asks for."""
        mode = self.config.past_last
        if mode == "empty":
            return None
        status = int(mode)
        return spring_error(status, f"page {page} is past the last page ({max(pages - 1, 0)})", request.path)

    def _page(self, request: web.Request, total: int) -> Page | web.Response:
        """The page asked for, or the error for bad paging or (if so configured) a page past the last."""
        cfg = self.config
        paging = requested_page(request.query, cfg.max_page_size, cfg.oversize == "400")
        if isinstance(paging, str):
            return spring_error(400, paging, request.path)
        page = Page(*paging, total)
        if page.number >= page.pages and total:
            error = self._past_last(request, page.number, page.pages)
            if error is not None:
                return error
        return page

    def _hal_page(
        self, request: web.Request, keys: Sequence[Any], embedded: str, build: Callable[[Any], Any]
    ) -> web.Response:
        """One Spring page of ``keys``: ``_embedded`` (left out of an empty page, A3) and ``page``, with the
        documented ``_links`` between them only under ``page_links`` (F: "no page-level _links")."""
        page = self._page(request, len(keys))
        if isinstance(page, web.Response):
            return page
        body: dict[str, Any] = {}
        if page.number < page.pages:
            body["_embedded"] = {embedded: [build(k) for k in page.items(keys)]}
        if self.config.page_links:
            body["_links"] = page_links(request, page.number, page.size, page.pages)
        body["page"] = page.info()
        if self.config.shape_drift:  # an API that changed: no client parser reads this page
            body = {"content": body.get("_embedded", {}).get(embedded, []), "paging": body["page"]}
        return json_response(body)

    def _neuron_page(self, request: web.Request, ids: Sequence[int]) -> web.Response:
        return self._hal_page(request, ids, "neuronResources", self._neuron)

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
        fields = list(values) if number == 0 else []
        return json_response(
            {"field_name": field, "fields": fields, "page": field_page_info(len(values), number)}
        )

    # -- selects -------------------------------------------------------------------------------------

    def _remembered(self, key: str, run: Callable[[], Sequence[int]]) -> Sequence[int]:
        """The last ``SELECT_CACHE_ENTRIES`` selects' ids: clients page through one select hundreds of
        times (neurons, batches and literature share the one cache)."""
        hit = self._selects.get(key)
        if hit is not None:
            self._selects.move_to_end(key)
            return hit
        ids = run()  # a query error propagates and is not kept
        self._selects[key] = ids
        if len(self._selects) > SELECT_CACHE_ENTRIES:
            self._selects.popitem(last=False)
        return ids

    def _selected(
        self, request: web.Request, *, q: str | None, fq: Sequence[str], body: Any, of: str = "neuron"
    ) -> Sequence[int] | web.Response:
        """The ids a query selects, in the request's ``sort`` order, or its 400.

        ``of`` is ``neuron`` (every field) or a batch route's ``morphometry`` / ``pvec`` (the
        :data:`BATCH_FIELDS` only); a batch of morphometry leaves out the neurons that have none (F: such
        a neuron is simply absent from the answer).
        """
        sort = request.query.get("sort")
        key = json.dumps([of, q, list(fq), body, sort], sort_keys=True)
        fields = None if of == "neuron" else BATCH_FIELDS
        words = self.config.unquoted_words

        def run() -> Sequence[int]:
            ids = select(self.cat, q=q, fq=tuple(fq), body=body, sort=sort, fields=fields, unquoted=words)
            return array("I", filter(self.cat.has_morphometry, ids)) if of == "morphometry" else ids

        try:
            return self._remembered(key, run)
        except QueryError as exc:
            return spring_error(400, str(exc), request.path)

    def _select_page(
        self, request: web.Request, embedded: str, build: Callable[[int], Any], **query: Any
    ) -> web.Response:
        ids = () if self.config.empty_selects else self._selected(request, **query)
        if isinstance(ids, web.Response):
            return ids
        if not ids and self.config.no_hits == "404":
            return spring_error(404, "No neurons found for this query", request.path)
        return self._hal_page(request, ids, embedded, build)

    # -- neurons -------------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "UP"})

    async def neurons(self, request: web.Request) -> web.Response:
        if self.config.empty_selects:
            return self._neuron_page(request, ())
        if request.query.get("sort") is None:
            return self._neuron_page(request, self.cat.neuron_ids())
        # The whole listing is not a query: no no_hits 404, even from an empty catalogue.
        ids = self._selected(request, q=None, fq=(), body=None)
        return ids if isinstance(ids, web.Response) else self._neuron_page(request, ids)

    async def neuron_by_id(self, request: web.Request) -> web.Response:
        return self._by_id(request, self._neuron, "neuron")

    async def neuron_by_name(self, request: web.Request) -> web.Response:
        return self._by_name(request, self._neuron, "neuron")

    async def select_get(self, request: web.Request) -> web.Response:
        """``q`` (with id lists, F: ``q=neuron_id:<id1>,<id2>,...&page=0&size=500``) and repeated ``fq``."""
        q = request.query.get("q")
        if q is None:
            return spring_error(400, "Required request parameter 'q' is not present", request.path)
        fq = request.query.getall("fq", [])
        return self._select_page(request, "neuronResources", self._neuron, q=q, fq=fq, body=None)

    async def select_post(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return spring_error(400, "JSON parse error: the request body is not valid JSON", request.path)
        if not isinstance(body, dict):
            message = "the request body must be a JSON object of field: [values]"
            return spring_error(400, message, request.path)
        return self._select_page(request, "neuronResources", self._neuron, q=None, fq=(), body=body)

    async def fields(self, request: web.Request) -> web.Response:
        return json_response({"Neuron Fields": list(FIELDS)})

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
        return json_response({"fields": {} if empty else dict(counts)})

    # -- morphometry and persistence vectors ---------------------------------------------------------

    async def morphometry_by_id(self, request: web.Request) -> web.Response:
        return self._by_id(request, self._morphometry, "morphometry")

    async def morphometry_by_name(self, request: web.Request) -> web.Response:
        return self._by_name(request, self._morphometry, "morphometry")

    async def pvec_by_id(self, request: web.Request) -> web.Response:
        return self._by_id(request, self.cat.pvec, "persistence vector")

    async def morphometry_list(self, request: web.Request) -> web.Response:
        """``/api/morphometry``: every record, paged, the neurons without one left out (A2; the embedded
        key is the batch select's, F: "the embedded keys are measurements and pvecs")."""
        cat = self.cat
        ids = self._remembered(
            '["morphometry"]', lambda: array("I", filter(cat.has_morphometry, cat.neuron_ids()))
        )
        return self._hal_page(request, ids, "measurements", self._morphometry)

    async def pvec_list(self, request: web.Request) -> web.Response:
        """``/api/pvec``: every persistence vector, paged (A2; embedded key as the batch select's, F)."""
        return self._hal_page(request, self.cat.neuron_ids(), "pvecs", self.cat.pvec)

    async def morphometry_select(self, request: web.Request) -> web.Response:
        """F, "Batch selects": ``/api/morphometry/select?q=Neuron_id:<ids>&page=0&size=500`` ->
        ``_embedded.measurements``."""
        return self._batch(request, "morphometry", "measurements", self._morphometry)

    async def pvec_select(self, request: web.Request) -> web.Response:
        """F, "Batch selects": ``/api/pvec/select?q=neuron_id:<ids>&page=0&size=500`` ->
        ``_embedded.pvecs``."""
        return self._batch(request, "pvec", "pvecs", self.cat.pvec)

    def _batch(
        self, request: web.Request, of: str, embedded: str, build: Callable[[int], Any]
    ) -> web.Response:
        """A batch select, paged like every select; ``batch_select`` makes the route fail instead, so a
        client's fallback to one request per id can be tested (whether the real routes take 500 ids in
        one call is not recorded)."""
        refuse = self.config.batch_select
        if refuse == "404":
            return spring_error(404, "No message available", request.path)
        if refuse == "400":
            return spring_error(400, "Bad request, usually wrong parameters to select queries.", request.path)
        q = request.query.get("q")
        if q is None:
            return spring_error(400, "Required request parameter 'q' is not present", request.path)
        return self._select_page(
            request, embedded, build, q=q, fq=request.query.getall("fq", []), body=None, of=of
        )

    # -- literature (reference A2, A7, F) ------------------------------------------------------------

    async def literature_list(self, request: web.Request) -> web.Response:
        lit = self.lit
        return self._hal_page(request, range(lit.count), "publicationResources", lit.record)

    async def literature_by_id(self, request: web.Request) -> web.Response:
        index = self.lit.index_of(request.match_info["id"].rstrip("/"))
        if index is None:
            return spring_error(404, "Requested article not found", request.path)
        return json_response(self.lit.record(index))

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
        return json_response({"Literature Fields": list(literature.FIELDS)})

    async def literature_field_values(self, request: web.Request) -> web.Response:
        return self._values_page(request, self.lit.field_values)

    async def literature_partition(self, request: web.Request) -> web.Response:
        return self._partition(request, self.lit.partition)

    async def api_fallback(self, request: web.Request) -> web.Response:
        """Anything no route took: Spring's 404 for a GET, its 405 for other methods (reference A6)."""
        if request.method in ("GET", "HEAD"):
            return spring_error(404, "No message available", request.path)
        return spring_error(405, f"Request method '{request.method}' is not supported", request.path)

    # -- one record by id or name --------------------------------------------------------------------

    @staticmethod
    def _one(request: web.Request, found: dict[str, Any] | None, what: str) -> web.Response:
        if found is None:
            return spring_error(404, f"Requested {what} not found", request.path)
        return json_response(found)

    def _by_id(self, request: web.Request, lookup: _Lookup, what: str) -> web.Response:
        """``/{what}/id/{id}``: 400 for an id that is not an int, 404 for an unknown one."""
        text = request.match_info["id"]
        try:
            neuron_id = int(text)
        except ValueError:
            message = f"Failed to convert value of type 'java.lang.String' to required type 'int'; {text!r}"
            return spring_error(400, message, request.path)
        return self._one(request, lookup(neuron_id), what)

    def _by_name(self, request: web.Request, lookup: _Lookup, what: str) -> web.Response:
        name = request.match_info["name"]
        neuron_id = self.cat.id_by_name(name)
        if neuron_id is None and name.endswith("/"):  # a trailing slash, as every route takes (E)
            neuron_id = self.cat.id_by_name(name[:-1])
        return self._one(request, None if neuron_id is None else lookup(neuron_id), what)
