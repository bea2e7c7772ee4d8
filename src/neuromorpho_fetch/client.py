"""The async NeuroMorpho.Org client: the API a pipeline author sees, thin, over one transport.

``async with NeuroMorpho() as nm:`` opens one :class:`~neuromorpho_fetch.transport.Transport`: exactly
one :class:`aiohttp.ClientSession` on one connector (TLS context from :func:`neuromorpho_fetch.ssl_context`
unless given), one :class:`~neuromorpho_fetch.pacing.Pacer` (``concurrency`` in flight, ``rate`` starts
per second, a shared pause on ``Retry-After``) and one retry loop, through which every request goes, API
or file, first or retry.

This module only names endpoints and strings the pieces together: what the server's answers mean is in
:mod:`neuromorpho_fetch.protocol` (pure parsers), how a request is made in
:mod:`neuromorpho_fetch.transport`, how a body reaches the disk in :mod:`neuromorpho_fetch.download`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from ._version import __version__
from .bodies import read_all
from .config import ClientConfig, overlay
from .download import Body, DownloadResult, Publisher, publish, receive
from .errors import (
    BadRequestError,
    IntegrityError,
    NeuroMorphoError,
    NotFoundError,
    NotFoundPageError,
    PagingError,
    UnknownFieldError,
    UsageError,
)
from .layout import file_task
from .models import Neuron, RejectedRecord, Version, parse_record
from .pacing import Pacer, Sleep
from .pages import PAGE_SIZE, walk_pages
from .paths import safe_target
from .protocol import (
    Dedupe,
    Page,
    match_archive,
    match_field,
    parse_counts,
    parse_fields,
    parse_json,
    parse_neurons,
    parse_page,
)
from .query import Query
from .retry import RetryEvent
from .state import held_file
from .tasks import drop
from .transport import OK, Transport

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/neuromorpho-fetch/neuromorpho-fetch"
#: The terms of use ask programmatic clients to identify themselves.
USER_AGENT = f"neuromorpho-fetch/{__version__} (+{PROJECT_URL})"
SORT = "neuron_id,asc"
#: Neurons per batched metadata request: what NeuroMorpho's own front end sends (reference F).
BATCH_IDS = 50

#: API answers may come compressed (the transport decodes them and checks the stream's end).
_JSON = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
_FILE = {"Accept-Encoding": "identity", "Accept": "*/*"}
#: A 304 is a file present only when the request carried validators (issue 15 item 2).
_CONDITIONAL_OK = frozenset({200, 304})


@dataclass(frozen=True, slots=True)
class SelectPage:
    """One page of a ``select`` walk, as values: the neurons it brought for the first time (valid, in
    server order), the records it rejected, how many records repeated earlier pages, and the number of
    matches the server announced on the first page (``None`` when it said nothing)."""

    number: int
    neurons: list[Neuron]
    rejected: list[RejectedRecord]
    repeats: int
    announced: int | None


# --------------------------------------------------------------------------------------------------
# The client


class NeuroMorpho:
    """Async client for NeuroMorpho.Org (or anything speaking its API, like the bundled emulator).

    Nothing touches the network or the event loop until ``async with``. Settings are keywords named as
    in :data:`~neuromorpho_fetch.config.SETTINGS` (``rate=2``, ``retries=3``, ``idle_timeout=30``,
    ``attempt_timeout=120``, ``ca_file=...``), or whole objects under their field names
    (``retry=RetryPolicy(...)``, ``timeouts=Timeouts(...)``), applied over ``config`` (default:
    :class:`~neuromorpho_fetch.config.ClientConfig`'s defaults) by the one
    :func:`~neuromorpho_fetch.config.overlay`. ``transport`` replaces the transport (and brings its own
    config): any object with :class:`~neuromorpho_fetch.transport.Transport`'s interface, such as
    :class:`neuromorpho_fetch.testing.MemoryTransport`. ``sleep`` is for tests: it replaces every wait
    the client decides on (backoff, ``Retry-After``, pacing).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        config: ClientConfig | None = None,
        transport: Transport | None = None,
        ssl: ssl.SSLContext | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Sleep | None = None,
        **settings: Any,
    ) -> None:
        if transport is not None:
            if config is not None or settings or base_url is not None or ssl is not None or sleep:
                raise UsageError(
                    "NeuroMorpho(transport=...): the transport brings its own config; set base_url, "
                    "config, ssl, sleep and settings on the transport"
                )
            self.config: ClientConfig = transport.config
            self.transport = transport
        else:
            self.config = overlay(config, base_url=base_url, **settings)
            self.transport = Transport(
                self.config, user_agent=self.config.user_agent or USER_AGENT, ssl=ssl, sleep=sleep
            )
        if on_retry is not None:
            self.transport.add_retry_listener(on_retry)
        self._publisher = Publisher()
        self._fields: list[str] | None = None
        self._archives: dict[str, int] | None = None
        #: Metadata kinds whose batch route failed in this session (:meth:`_many`).
        self._batch_broken: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def user_agent(self) -> str:
        return self.config.user_agent or USER_AGENT

    @property
    def pacer(self) -> Pacer:
        """The client's pacer (statistics: ``max_in_flight``, ``started``, ``pauses``)."""
        return self.transport.pacer

    async def __aenter__(self) -> Self:
        await self.transport.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._publisher.aclose()
        finally:
            await self.transport.aclose()

    # -- request plumbing ------------------------------------------------------------------------

    def _api_url(self, *segments: str) -> str:
        return "/".join([self.config.base_url, "api", *(quote(s, safe="") for s in segments)])

    async def _json(self, url: str, params: Sequence[tuple[str, str]]) -> Any:
        return await self.transport.request(
            url, self._read_json, lambda body: parse_json(body, url), params=params, headers=_JSON
        )

    async def _read_json(self, response: aiohttp.ClientResponse) -> bytes:
        return await read_all(response, self.transport.limits)

    async def get_json(self, *segments: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """``GET /api/<segments...>`` (each segment percent-encoded), retried and paced."""
        return await self._json(self._api_url(*segments), params)

    async def _page(self, segments: Sequence[str], params: Sequence[tuple[str, str]], page: int) -> Page:
        url = self._api_url(*segments)
        data = await self._json(url, [*params, ("page", str(page))])
        return parse_page(data, url)

    def _pages(
        self,
        segments: Sequence[str],
        params: Sequence[tuple[str, str]],
        *,
        size: int = PAGE_SIZE,
    ) -> AsyncGenerator[Page, None]:
        """Every page of ``/api/<segments>`` in order (:func:`~neuromorpho_fetch.pages.walk_pages`)."""

        async def fetch(sized: Sequence[tuple[str, str]], number: int) -> Page:
            return await self._page(segments, sized, number)

        return walk_pages(fetch, self._api_url(*segments), params, size=size, label=str(tuple(segments)))

    # -- metadata --------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """``/api/health``: ``{"status": "UP", ...}`` when the server is up (its data may still not be)."""
        data = await self.get_json("health")
        if not isinstance(data, dict):
            raise IntegrityError("health answer is not a JSON object", url=self._api_url("health"))
        return data

    async def neuron(self, neuron_id: int) -> Neuron:
        data = await self.get_json("neuron", "id", str(int(neuron_id)))
        return self._neuron(data, self._api_url("neuron", "id", str(neuron_id)))

    async def neuron_by_name(self, name: str) -> Neuron:
        data = await self.get_json("neuron", "name", name)
        return self._neuron(data, self._api_url("neuron", "name", name))

    @staticmethod
    def _neuron(data: Any, url: str) -> Neuron:
        parsed = parse_record(data)
        if isinstance(parsed, RejectedRecord):
            raise IntegrityError(f"{url}: not a usable neuron record: {parsed.reason}", url=url)
        return parsed

    async def fields(self) -> list[str]:
        """Queryable neuron fields (``/api/neuron/fields``), cached for the client's life."""
        if self._fields is None:
            data = await self.get_json("neuron", "fields")
            self._fields = parse_fields(data, self._api_url("neuron", "fields"))
        return list(self._fields)

    async def _check_field(self, field: str) -> str:
        """The server's spelling of ``field``, or :class:`UnknownFieldError` naming the valid ones."""
        fields = await self.fields()
        real = match_field(field, fields)
        if real is None:
            raise UnknownFieldError(field, fields)
        return real

    async def field_values(self, field: str) -> list[str]:
        """Every value of ``field`` (``/api/neuron/fields/{field}``), in the server's order.

        The real server sends every value on one page (``totalPages: 1``), in its own order, values
        with stray spaces kept as they are; an older paged shape is walked page by page. A page that
        brings no new value ends the walk (a server that ignores ``page`` would otherwise repeat it).
        """
        real = await self._check_field(field)
        values: dict[str, None] = {}
        async with contextlib.aclosing(self._pages(("neuron", "fields", real), [])) as pages:
            async for page in pages:
                before = len(values)
                values.update(dict.fromkeys(str(v) for v in page.items))
                if len(values) == before:
                    break
        return list(values)

    async def counts(self, field: str) -> dict[str, int]:
        """Neurons per value of ``field`` (``/api/neuron/partition/{field}``).

        The name is checked against :meth:`fields` first. When that list is not known yet, the partition
        is asked for under the name as given at the same time (one round trip instead of two: every
        ``--all`` and ``--archive`` run starts with the archive counts, and a round trip to
        NeuroMorpho.Org can take a second). The answer is used only when the name is the server's
        spelling; otherwise the guess is cancelled (a typo waits for no retries) and the server's
        spelling is asked for, or :class:`UnknownFieldError` raised, as before.
        """
        if self._fields is None:
            guess = asyncio.ensure_future(self._partition(field))
            try:
                real = await self._check_field(field)
            except BaseException:
                await drop(guess)
                raise
            if real == field:
                return await guess
            await drop(guess)
        else:
            real = await self._check_field(field)
        return await self._partition(real)

    async def _partition(self, field: str) -> dict[str, int]:
        data = await self.get_json("neuron", "partition", field)
        return parse_counts(data, self._api_url("neuron", "partition", field))

    async def archives(self) -> dict[str, int]:
        """Neurons per archive, cached for the client's life."""
        if self._archives is None:
            self._archives = await self.counts("archive")
        return dict(self._archives)

    async def resolve_archive(self, name: str) -> str:
        """The real spelling of an archive name given in any case (``siegert`` → ``Siegert``)."""
        return match_archive(name, list(await self.archives()))

    async def morphometry(self, id_or_name: int | str) -> dict[str, Any]:
        """One neuron's morphometry (``/api/morphometry/id/{id}`` or ``/name/{name}``); a neuron without
        any (about 0.4% of them, reference F) raises :class:`NotFoundError`."""
        return await self._one("morphometry", id_or_name)

    async def pvec(self, neuron_id: int) -> dict[str, Any]:
        """One neuron's persistence vector (``/api/pvec/id/{id}``)."""
        return await self._one("pvec", int(neuron_id))

    async def _one(self, kind: str, id_or_name: int | str) -> dict[str, Any]:
        how = "id" if isinstance(id_or_name, int) else "name"
        data = await self.get_json(kind, how, str(id_or_name))
        if not isinstance(data, dict):
            raise IntegrityError(f"{kind} answer is not a JSON object", url=self._api_url(kind, how))
        return data

    async def morphometry_many(self, ids: Iterable[int]) -> AsyncGenerator[dict[str, Any], None]:
        """The morphometry of many neurons, :data:`BATCH_IDS` per request (``/api/morphometry/select``
        with an id list, as NeuroMorpho's own front end asks, reference F); neurons without any are
        simply absent. See :meth:`_many` for the fallback."""
        async for record in self._many("morphometry", ids):
            yield record

    async def pvec_many(self, ids: Iterable[int]) -> AsyncGenerator[dict[str, Any], None]:
        """The persistence vectors of many neurons, :data:`BATCH_IDS` per request (``/api/pvec/select``)."""
        async for record in self._many("pvec", ids):
            yield record

    async def _many(self, kind: str, ids: Iterable[int]) -> AsyncGenerator[dict[str, Any], None]:
        """Batches through the select route; per-id requests where the batch form fails.

        A batch answered with a 4xx, with nothing, or with records of other neurons only, is fetched id
        by id. If any of those succeed, the batch form is what failed (a server without the route, one
        that ignores the id list): the client remembers it and asks id by id from then on, saying so
        once. If none do, the batch was right (none of its neurons has a record; a zero-hit select
        answers 404) and batches go on. Only records of the neurons asked for are yielded.
        """
        wanted = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(wanted), BATCH_IDS):
            chunk = wanted[start : start + BATCH_IDS]
            asked = set(chunk)
            records: list[dict[str, Any]] = []
            failure: NeuroMorphoError | None = None
            if kind not in self._batch_broken:
                try:
                    records = [r for r in await self._batch(kind, chunk) if r.get("neuron_id") in asked]
                except (BadRequestError, NotFoundError) as exc:
                    failure = exc
                if records:
                    for record in records:
                        yield record
                    continue
            found = [r async for r in self._each(kind, chunk)]
            if found and kind not in self._batch_broken:
                self._batch_broken.add(kind)
                log.warning(
                    "the server did not answer %s for %d neurons in one request (%s); asking one neuron "
                    "at a time for the rest of this session",
                    kind,
                    len(chunk),
                    failure or "no matching records",
                )
            for record in found:
                yield record

    async def _batch(self, kind: str, chunk: list[int]) -> list[dict[str, Any]]:
        # The front end spells the field Neuron_id for morphometry and neuron_id for pvec (reference F).
        field = "Neuron_id" if kind == "morphometry" else "neuron_id"
        params = [("q", f"{field}:{','.join(map(str, chunk))}")]
        out: list[dict[str, Any]] = []
        async with contextlib.aclosing(self._pages((kind, "select"), params)) as pages:
            async for page in pages:
                out.extend(item for item in page.items if isinstance(item, dict))
        return out

    async def _each(self, kind: str, chunk: list[int]) -> AsyncGenerator[dict[str, Any], None]:
        for neuron_id in chunk:
            try:
                yield await self._one(kind, neuron_id)
            except NotFoundPageError:
                raise
            except NotFoundError:
                continue  # this neuron has none

    # -- select ----------------------------------------------------------------------------------

    async def _prepare(
        self,
        query: Query | None,
        q: str | None,
        fq: Sequence[str],
        criteria: Mapping[str, str | Sequence[str]],
    ) -> Query:
        built = Query.build(q=q, fq=fq, **criteria)
        full = built if query is None else query.merge(built)
        if full.criteria:
            full = full.rename_fields({name: await self._check_field(name) for name in full.fields})
        return full

    async def _explain_bad_request(self, query: Query, error: BadRequestError) -> NeuroMorphoError:
        """A 400 on select usually means a field the server does not know: say which."""
        try:
            fields = await self.fields()
        except NeuroMorphoError:
            return error
        for name in (*query.fields, *query.raw_fields()):
            if match_field(name, fields) is None:
                return UnknownFieldError(name, fields)
        return error

    async def select_pages(
        self,
        query: Query | None = None,
        /,
        *,
        q: str | None = None,
        fq: Sequence[str] = (),
        **criteria: str | Sequence[str],
    ) -> AsyncGenerator[SelectPage, None]:
        """Every page of the matching neurons as a :class:`SelectPage` value: the fresh valid neurons,
        the records rejected (:func:`~neuromorpho_fetch.models.parse_record`), how many were repeats
        of earlier pages, and the count the server announced. What a mirror needs to judge whether a
        listing is complete (issue 15 item 1); :meth:`select` is the same walk, neuron by neuron.
        """
        full = await self._prepare(query, q, fq, criteria)
        segments = ("neuron",) if full.is_empty else ("neuron", "select")
        params = [*full.params(), ("sort", SORT)]
        dedupe = Dedupe()
        pages = self._pages(segments, params)
        try:
            try:
                number = 0
                announced: int | None = None
                async for page in pages:
                    if number == 0:
                        announced = page.total_elements
                    parsed = parse_neurons(page.items)
                    ids = [p.id if isinstance(p, Neuron) else p.neuron_id for p in parsed]
                    keep = dedupe.keep([i for i in ids if i is not None])
                    fresh = iter(keep)
                    neurons: list[Neuron] = []
                    rejected: list[RejectedRecord] = []
                    repeats = 0
                    for item, neuron_id in zip(parsed, ids, strict=True):
                        if neuron_id is not None and not next(fresh):
                            repeats += 1
                        elif isinstance(item, Neuron):
                            neurons.append(item)
                        else:
                            rejected.append(item)
                    yield SelectPage(number, neurons, rejected, repeats, announced)
                    if parsed and repeats == len(parsed):
                        # A page of only repeats: the server ignores ``page`` (or loops); issue 10.
                        url = self._api_url(*segments)
                        raise PagingError(
                            f"listing {url} stopped at page {number}: it brought nothing new (all "
                            f"{len(parsed)} records were on earlier pages); what was listed is kept",
                            url=url,
                        )
                    number += 1
            except BadRequestError as exc:
                raise await self._explain_bad_request(full, exc) from exc
        finally:
            await pages.aclose()

    async def select(
        self,
        query: Query | None = None,
        /,
        *,
        q: str | None = None,
        fq: Sequence[str] = (),
        **criteria: str | Sequence[str],
    ) -> AsyncGenerator[Neuron, None]:
        """Every neuron matching the query, each once, across all pages (``async for``).

        Keyword criteria are checked against :meth:`fields` first; with no condition at all this lists
        every neuron. Memory stays at about two pages whatever the result size. A record that is not a
        usable neuron is logged and skipped (:meth:`select_pages` hands them over). Stop early with
        ``break`` inside ``async with contextlib.aclosing(nm.select(...))`` to cancel the prefetch at once.
        """
        pages = self.select_pages(query, q=q, fq=fq, **criteria)
        try:
            async for page in pages:
                for bad in page.rejected:
                    log.warning("skipping a record that is not a usable neuron: %s", bad.reason)
                for neuron in page.neurons:
                    yield neuron
        finally:
            await pages.aclose()

    async def count(
        self,
        query: Query | None = None,
        /,
        *,
        q: str | None = None,
        fq: Sequence[str] = (),
        **criteria: str | Sequence[str],
    ) -> int:
        """How many neurons match, from one request of one record."""
        full = await self._prepare(query, q, fq, criteria)
        segments = ("neuron",) if full.is_empty else ("neuron", "select")
        url = self._api_url(*segments)
        params = [*full.params(), ("size", "1"), ("page", "0")]
        try:
            data = await self._json(url, params)
        except NotFoundPageError:
            raise  # a front end's HTML 404 is not the API's "no results"
        except NotFoundError:
            return 0
        except BadRequestError as exc:
            raise await self._explain_bad_request(full, exc) from exc
        page = parse_page(data, url)
        if page.total_elements is not None:
            return page.total_elements
        return len(page.items)

    # -- files -----------------------------------------------------------------------------------

    async def download(
        self,
        neuron: Neuron,
        version: Version | str,
        dest_dir: str | os.PathLike[str],
        *,
        force: bool = False,
        sha256: str | None = None,
    ) -> DownloadResult:
        """The file of ``neuron`` at ``dest_dir/<archive>/<version>/<file>``, fetched only when needed.

        pooch's rule (issue 17 item 8: a re-run of the README example fetched 140 held files again): a
        file already there is reused with no request when it has the expected size and hash, where they
        are known: ``sha256`` when given, else the record of a mirror's state store when ``dest_dir`` is a
        mirror; with neither, a file under its final name is complete (only checked bodies are ever
        renamed into place) and is reused. ``force=True`` fetches again. ``result.fetched`` says which
        happened. A standardized (CNG) file must parse as SWC; anything else is checked for length and HTML.
        """
        wanted = version if isinstance(version, Version) else Version.parse(version)
        task = file_task(self.config.base_url, neuron, wanted)
        target = safe_target(Path(dest_dir), task.path.as_posix())
        if not force:
            held = await asyncio.to_thread(held_file, Path(dest_dir), task.path.as_posix(), sha256)
            if held is not None:
                size, digest = held
                return DownloadResult(task.url, target, size, digest, None, None, fetched=False)
        result = await self.fetch_file(task.url, target, check_swc=wanted is Version.CNG)
        assert result is not None  # no validators sent, so no 304
        return result

    async def fetch_file(
        self,
        url: str,
        target: Path,
        *,
        check_swc: bool = False,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> DownloadResult | None:
        """Download ``url`` to ``target`` atomically, retried and paced; ``None`` if unchanged (304).

        With ``etag``/``last_modified`` the request is conditional (``If-None-Match`` /
        ``If-Modified-Since``) and a 304 leaves ``target`` untouched.
        """
        headers = dict(_FILE)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        target = Path(target)

        async def read(resp: aiohttp.ClientResponse) -> Body | None:
            if resp.status == 304:
                return None
            return await receive(resp, url, target, check_swc=check_swc, limits=self.transport.limits)

        ok = _CONDITIONAL_OK if etag or last_modified else OK
        body = await self.transport.request(url, read, _same, headers=headers, ok=ok)
        # The slot and the connection are free again: the disk work waits for nobody's request.
        return None if body is None else await publish(body, target, self._publisher)


def _same(value: Body | None) -> Body | None:
    return value
