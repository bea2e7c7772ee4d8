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
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp

from ._version import __version__
from .config import ClientConfig, RetryPolicy, Timeouts, normalise_base_url
from .download import Body, DownloadResult, Publisher, publish, receive
from .errors import (
    BadRequestError,
    IntegrityError,
    NeuroMorphoError,
    NotFoundError,
    NotFoundPageError,
    PagingError,
    UnknownFieldError,
)
from .layout import file_task
from .models import Neuron, Version
from .pacing import Pacer
from .paths import safe_target
from .protocol import (
    Dedupe,
    Page,
    has_next_page,
    match_archive,
    match_field,
    paging_problem,
    parse_counts,
    parse_fields,
    parse_json,
    parse_neurons,
    parse_page,
    status_error,
)
from .query import Query
from .retry import RetryEvent, Sleep
from .transport import Transport, read_all, translate_error

__all__ = [
    "PAGE_SIZE",
    "PROJECT_URL",
    "USER_AGENT",
    "DownloadResult",
    "NeuroMorpho",
    "Page",
    "RetryEvent",
    "has_next_page",
    "match_archive",
    "match_field",
    "parse_page",
    "status_error",
    "translate_error",
]

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/neuromorpho-fetch/neuromorpho-fetch"
#: The terms of use ask programmatic clients to identify themselves.
USER_AGENT = f"neuromorpho-fetch/{__version__} (+{PROJECT_URL})"
#: The documented maximum; the server may serve fewer per page and we follow what it says.
PAGE_SIZE = 500
#: The server's documented default page size: always accepted.
FALLBACK_PAGE_SIZE = 50
#: The most pages one walk may take whatever the server says: 5 million records at 500 a page, about
#: 20 times the whole database (264,771 cells in 2024, reference section D).
MAX_PAGES = 10_000
SORT = "neuron_id,asc"

_JSON = {"Accept": "application/json"}
_FILE = {"Accept-Encoding": "identity", "Accept": "*/*"}
_FILE_OK = frozenset({200, 304})


def _resolve_timeouts(timeout: float | Timeouts) -> Timeouts:
    return timeout if isinstance(timeout, Timeouts) else Timeouts.attempt(float(timeout))


def _resolve_retry(retries: int | RetryPolicy) -> RetryPolicy:
    return retries if isinstance(retries, RetryPolicy) else RetryPolicy.from_retries(retries)


# --------------------------------------------------------------------------------------------------
# The client


class NeuroMorpho:
    """Async client for NeuroMorpho.Org (or anything speaking its API, like the bundled emulator).

    Nothing touches the network or the event loop until ``async with``; every keyword has a
    validated default (see :class:`~neuromorpho_fetch.config.ClientConfig`, the one table of them).
    ``retries`` counts retries after the first attempt (an int), or is a full :class:`RetryPolicy`.
    ``timeout`` is a :class:`Timeouts` or one number bounding a whole attempt
    (:meth:`Timeouts.attempt`). ``sleep`` is for tests: it replaces every wait the client decides on
    (backoff, ``Retry-After``, pacing).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        concurrency: int | None = None,
        rate: float | None = None,
        retries: int | RetryPolicy | None = None,
        timeout: float | Timeouts | None = None,
        ssl: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        user_agent: str | None = None,
        config: ClientConfig | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        # Start from ``config`` (or the defaults) and apply every keyword the caller gave, whatever its
        # value: ``None`` is the only "not given".
        base = config if config is not None else ClientConfig()
        changes: dict[str, Any] = {"base_url": normalise_base_url(base_url or base.base_url)}
        if concurrency is not None:
            changes["concurrency"] = concurrency
        if rate is not None:
            changes["rate"] = rate
        if retries is not None:
            changes["retry"] = _resolve_retry(retries)
        if timeout is not None:
            changes["timeouts"] = _resolve_timeouts(timeout)
        if user_agent is not None:
            changes["user_agent"] = user_agent
        if ca_file is not None:
            changes["ca_file"] = ca_file
        if insecure:
            changes["insecure"] = True
        self.config: ClientConfig = replace(base, **changes)
        self.transport = Transport(
            self.config, user_agent=self.config.user_agent or USER_AGENT, ssl=ssl, sleep=sleep
        )
        if on_retry is not None:
            self.transport.add_retry_listener(on_retry)
        self._publisher = Publisher()
        self._fields: list[str] | None = None
        self._archives: dict[str, int] | None = None

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

    async def _pages(
        self,
        segments: Sequence[str],
        params: Sequence[tuple[str, str]],
        *,
        size: int = PAGE_SIZE,
    ) -> AsyncGenerator[Page, None]:
        """Every page in order, the next one fetched while the caller works on the current one.

        The server's ``page`` object decides whether there is a next page (it may serve fewer records
        than asked). Past the last page servers answer with an empty page, 404 or 400: all mean "done".
        A 400 on the very first page at a large size is retried once at the documented default size,
        for servers that refuse an oversized page instead of clamping it. Only one prefetch task
        exists at a time; it is cancelled and awaited if the consumer stops early.

        Bounded (issue 10 item 5): a page whose numbers make no sense (:func:`protocol.paging_problem`),
        a walk past the pages page 0's ``totalElements`` allows (one page of slack for records added
        meanwhile), or past :data:`MAX_PAGES`, is yielded (its records are real) and then ends the walk
        with a :class:`PagingError` naming the URL and the problem. An HTML 404 is a front end's answer,
        not the API's "no results": it is never read as an empty or finished listing.
        """
        url = self._api_url(*segments)
        sized = [*params, ("size", str(size))]
        number = 0
        announced: int | None = None
        allowed = MAX_PAGES
        pending: asyncio.Task[Page] | None = asyncio.ensure_future(self._page(segments, sized, 0))
        try:
            while pending is not None:
                try:
                    page = await pending
                except (NotFoundError, BadRequestError) as exc:
                    pending = None
                    if isinstance(exc, NotFoundPageError):
                        raise
                    if number > 0:
                        if announced is not None and number < announced:
                            log.warning(
                                "%s: page %d of %d is gone (%s); stopping", segments, number, announced, exc
                            )
                        return
                    if isinstance(exc, BadRequestError) and size > FALLBACK_PAGE_SIZE:
                        log.info(
                            "server refused page size %d (%s); retrying at %d", size, exc, FALLBACK_PAGE_SIZE
                        )
                        size = FALLBACK_PAGE_SIZE
                        sized = [*params, ("size", str(size))]
                        pending = asyncio.ensure_future(self._page(segments, sized, 0))
                        continue
                    if isinstance(exc, NotFoundError):  # the API's JSON 404: no results
                        return
                    raise
                pending = None
                announced = page.total_pages
                if number == 0 and page.total_elements is not None and page.problem is None:
                    per_page = page.size or size
                    if per_page > 0:
                        allowed = min(MAX_PAGES, max(1, -(-page.total_elements // per_page)) + 1)
                problem = paging_problem(page, size)
                if problem is None and number + 1 > allowed and page.items:
                    problem = f"{number + 1} pages so far, more than the {allowed} that totalElements allows"
                if problem is None and has_next_page(number, page):
                    pending = asyncio.ensure_future(self._page(segments, sized, number + 1))
                yield page
                if problem is not None:
                    raise PagingError(
                        f"listing {url} stopped at page {number}: {problem}; what was listed is kept",
                        url=url,
                    )
                number += 1
        finally:
            if pending is not None:
                pending.cancel()
                # wait() never raises the task's error, and lets our own cancellation through.
                await asyncio.wait([pending])
                if not pending.cancelled():
                    pending.exception()  # retrieved, so asyncio does not log it as lost

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
        if not isinstance(data, dict):
            raise IntegrityError(f"{url}: expected a neuron object", url=url)
        try:
            return Neuron.from_record(data)
        except ValueError as exc:
            raise IntegrityError(f"{url}: {exc}", url=url) from exc

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
        """Neurons per value of ``field`` (``/api/neuron/partition/{field}``)."""
        real = await self._check_field(field)
        data = await self.get_json("neuron", "partition", real)
        return parse_counts(data, self._api_url("neuron", "partition", real))

    async def archives(self) -> dict[str, int]:
        """Neurons per archive, cached for the client's life."""
        if self._archives is None:
            self._archives = await self.counts("archive")
        return dict(self._archives)

    async def resolve_archive(self, name: str) -> str:
        """The real spelling of an archive name given in any case (``siegert`` → ``Siegert``)."""
        return match_archive(name, list(await self.archives()))

    async def morphometry(self, id_or_name: int | str) -> dict[str, Any]:
        if isinstance(id_or_name, int):
            data = await self.get_json("morphometry", "id", str(id_or_name))
        else:
            data = await self.get_json("morphometry", "name", id_or_name)
        if not isinstance(data, dict):
            raise IntegrityError("morphometry answer is not a JSON object", url=self._api_url("morphometry"))
        return data

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
        every neuron. Memory stays at about two pages whatever the result size. Stop early with
        ``break`` inside ``async with contextlib.aclosing(nm.select(...))`` to cancel the prefetch at once.
        """
        full = await self._prepare(query, q, fq, criteria)
        segments = ("neuron",) if full.is_empty else ("neuron", "select")
        params = [*full.params(), ("sort", SORT)]
        dedupe = Dedupe()
        pages = self._pages(segments, params)
        try:
            try:
                number = 0
                async for page in pages:
                    neurons = parse_neurons(page.items)
                    keep = dedupe.keep([n.id for n in neurons])
                    for neuron, fresh in zip(neurons, keep, strict=True):
                        if fresh:
                            yield neuron
                    if neurons and not any(keep):
                        # A page of only repeats: the server ignores ``page`` (or loops); issue 10.
                        url = self._api_url(*segments)
                        raise PagingError(
                            f"listing {url} stopped at page {number}: it brought nothing new (all "
                            f"{len(neurons)} records were on earlier pages); what was listed is kept",
                            url=url,
                        )
                    number += 1
            except BadRequestError as exc:
                raise await self._explain_bad_request(full, exc) from exc
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
        self, neuron: Neuron, version: Version | str, dest_dir: str | os.PathLike[str]
    ) -> DownloadResult:
        """Fetch one file of ``neuron`` into ``dest_dir/<archive>/<version>/<file>``.

        A standardized (CNG) file must parse as SWC; anything else is checked for length and HTML.
        """
        wanted = version if isinstance(version, Version) else Version.parse(version)
        task = file_task(self.config.base_url, neuron, wanted)
        target = safe_target(Path(dest_dir), task.path.as_posix())
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

        body = await self.transport.request(url, read, _same, headers=headers, ok=_FILE_OK)
        # The slot and the connection are free again: the disk work waits for nobody's request.
        return None if body is None else await publish(body, target, self._publisher)


def _same(value: Body | None) -> Body | None:
    return value
