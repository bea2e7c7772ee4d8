"""The async NeuroMorpho.Org client: one session, one pacer, one retry policy for every call.

``async with NeuroMorpho() as nm:`` opens exactly one :class:`aiohttp.ClientSession` on one
:class:`aiohttp.TCPConnector` (TLS context from :func:`neuromorpho_fetch.ssl_context` unless given), and
every request it makes, API or file, first or retry, goes through the same
:class:`~neuromorpho_fetch.pacing.Pacer` (``concurrency`` in flight, ``rate`` starts per second, a shared
pause on ``Retry-After``) and the same :func:`~neuromorpho_fetch.retry.retry_call`.

Decisions live in small pure functions below the class (:func:`status_error`, :func:`translate_error`,
:func:`parse_page`, :func:`has_next_page`, :func:`match_field`, :func:`match_archive`) so they are tested
without sockets; the class only wires them to the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import itertools
import json
import logging
import os
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from ._version import __version__
from .config import ClientConfig, RetryPolicy, Timeouts
from .download import DownloadResult, Publisher, save_body
from .errors import (
    BadRequestError,
    ConnectError,
    HTTPStatusError,
    IntegrityError,
    NeuroMorphoError,
    NotFoundError,
    NotFoundPageError,
    RequestTimeout,
    ServerBusyError,
    UnknownArchiveError,
    UnknownFieldError,
    UsageError,
)
from .layout import file_task, safe_target
from .models import Neuron, Version
from .pacing import Pacer
from .query import Query
from .retry import RetryEvent, Sleep, parse_retry_after, retry_call
from .swc import looks_like_html
from .tls import ssl_context, tls_error

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

T = TypeVar("T")

PROJECT_URL = "https://github.com/neuromorpho-fetch/neuromorpho-fetch"
#: The terms of use ask programmatic clients to identify themselves.
USER_AGENT = f"neuromorpho-fetch/{__version__} (+{PROJECT_URL})"
#: The documented maximum; the server may serve fewer per page and we follow what it says.
PAGE_SIZE = 500
#: The server's documented default page size: always accepted.
FALLBACK_PAGE_SIZE = 50
SORT = "neuron_id,asc"
#: Retries after the first attempt when neither ``retries`` nor ``config`` says otherwise.
DEFAULT_RETRIES = 6

#: Statuses that mean "not now": retried, honouring Retry-After.
BUSY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# --------------------------------------------------------------------------------------------------
# Pure decisions


def _detail(body: bytes) -> tuple[str, bool]:
    """The Spring error body's ``message`` (or the start of the text), and whether it was HTML."""
    if looks_like_html(body[:256]):
        return "HTML error page", True
    text = body[:2000].decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200], False
    if isinstance(data, dict):
        message = data.get("message") or data.get("error") or ""
        return str(message)[:200], False
    return text[:200], False


def status_error(
    status: int, url: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> HTTPStatusError:
    """The typed error for a non-success response (see the tree in :mod:`neuromorpho_fetch.errors`)."""
    detail, is_html = _detail(body)
    content_type = headers.get("Content-Type", "")
    is_html = is_html or "html" in content_type.lower()
    if status == 404:
        return (NotFoundPageError if is_html else NotFoundError)(status, url, detail)
    if status in BUSY_STATUSES:
        retry_after = parse_retry_after(headers.get("Retry-After"), now=now)
        return ServerBusyError(status, url, detail, retry_after=retry_after)
    if 400 <= status < 500:
        return BadRequestError(status, url, detail)
    return HTTPStatusError(status, url, detail)


def translate_error(exc: BaseException, url: str) -> NeuroMorphoError:
    """Map an aiohttp/asyncio/OS exception from one attempt to our tree (order matters: subclasses first)."""
    if isinstance(exc, NeuroMorphoError):
        return exc
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return tls_error(exc, url)
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ssl.SSLError):
        return tls_error(exc.os_error, url)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return RequestTimeout(f"timed out talking to {url} ({type(exc).__name__}: {exc})", url=url)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return IntegrityError(f"{url}: body cut short ({exc})", url=url)
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return ConnectError(f"cannot talk to {url}: {exc or type(exc).__name__}", url=url)
    if isinstance(exc, aiohttp.ClientResponseError):
        return HTTPStatusError(exc.status, url, exc.message)
    return ConnectError(f"request to {url} failed: {type(exc).__name__}: {exc}", url=url)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged endpoint, as the server described it."""

    items: list[Any]
    number: int | None = None
    size: int | None = None
    total_pages: int | None = None
    total_elements: int | None = None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str | float):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return None
    return None


def parse_page(data: object, url: str) -> Page:
    """Read a HAL page (``_embedded`` + ``page``) or a ``/fields/{field}`` page (``fields`` + ``page``).

    ``_embedded`` is absent on an empty page (Spring HATEOAS); its list key differs by endpoint, so
    whatever list sits in it is taken.
    """
    if not isinstance(data, dict):
        raise IntegrityError(f"{url}: expected a JSON object, got {type(data).__name__}", url=url)
    items: list[Any] = []
    embedded = data.get("_embedded")
    if isinstance(embedded, dict):
        for value in embedded.values():
            if isinstance(value, list):
                items = value
                break
    elif isinstance(data.get("fields"), list):
        items = data["fields"]
    meta = data.get("page")
    meta = meta if isinstance(meta, dict) else {}
    return Page(
        items=items,
        number=_int_or_none(meta.get("number")),
        size=_int_or_none(meta.get("size")),
        total_pages=_int_or_none(meta.get("totalPages")),
        total_elements=_int_or_none(meta.get("totalElements")),
    )


def has_next_page(requested: int, page: Page) -> bool:
    """Whether to ask for page ``requested + 1``: trust ``totalPages`` when given, else "not empty"."""
    if not page.items:
        return False
    if page.total_pages is not None:
        current = page.number if page.number is not None else requested
        return current + 1 < page.total_pages
    return True


def match_field(name: str, fields: Sequence[str]) -> str | None:
    """The server's spelling of ``name``: exact, else the one case-insensitive match.

    Answers ``physical_Integrity`` (the JSON key) against ``Physical_Integrity`` (the fields list).
    """
    if name in fields:
        return name
    folded = [f for f in fields if f.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def match_archive(name: str, archives: Sequence[str]) -> str:
    """Case-insensitive archive lookup; an unknown name lists the closest real ones."""
    if name in archives:
        return name
    by_fold = {a.casefold(): a for a in archives}
    found = by_fold.get(name.strip().casefold())
    if found is not None:
        return found
    close = difflib.get_close_matches(name.strip().casefold(), list(by_fold), n=5, cutoff=0.5)
    raise UnknownArchiveError(name, [by_fold[c] for c in close])


def _resolve_timeouts(timeout: float | Timeouts | None, default: Timeouts) -> Timeouts:
    if timeout is None:
        return default
    if isinstance(timeout, Timeouts):
        return timeout
    seconds = float(timeout)
    return Timeouts(connect=min(default.connect, seconds), read=min(default.read, seconds), total=seconds)


def _resolve_retry(retries: int | RetryPolicy) -> RetryPolicy:
    if isinstance(retries, RetryPolicy):
        return retries
    if retries < 0:
        raise UsageError(f"retries must be >= 0, got {retries}")
    return RetryPolicy(attempts=retries + 1)


def _normalise_base(url: str) -> str:
    """Accept ``https://host``, ``https://host/`` and ``https://host/api``; keep the origin part."""
    base = url.strip().rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    return base


# --------------------------------------------------------------------------------------------------
# The client


class NeuroMorpho:
    """Async client for NeuroMorpho.Org (or anything speaking its API, like the bundled emulator).

    Nothing touches the network or the event loop until ``async with``; every keyword has a
    validated default (see :class:`~neuromorpho_fetch.config.ClientConfig`). ``retries`` counts retries
    after the first attempt (an int), or is a full :class:`RetryPolicy`. ``timeout`` is a
    :class:`Timeouts` or one number bounding a whole attempt. ``sleep`` is for tests: it replaces every
    wait the client decides on (backoff, ``Retry-After``, pacing).
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
        base = config if config is not None else ClientConfig(retry=_resolve_retry(DEFAULT_RETRIES))
        changes: dict[str, Any] = {"base_url": _normalise_base(base_url or base.base_url)}
        if concurrency is not None:
            changes["concurrency"] = concurrency
        if rate is not None:
            changes["rate"] = rate
        if retries is not None:
            changes["retry"] = _resolve_retry(retries)
        if timeout is not None:
            changes["timeouts"] = _resolve_timeouts(timeout, base.timeouts)
        if user_agent is not None:
            changes["user_agent"] = user_agent
        if ca_file is not None:
            changes["ca_file"] = ca_file
        if insecure:
            changes["insecure"] = True
        cfg = replace(base, **changes)
        self.config: ClientConfig = cfg
        self._ssl = ssl
        self._on_retry = on_retry
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._session: aiohttp.ClientSession | None = None
        self._publisher = Publisher()
        self._pacer: Pacer | None = None
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
        if self._pacer is None:
            raise RuntimeError("use 'async with NeuroMorpho(...) as nm:' before making requests")
        return self._pacer

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this NeuroMorpho client is already open")
        cfg = self.config
        context = self._ssl
        if context is None:
            # Loading CA bundles reads files: keep it off the event loop.
            context = await asyncio.to_thread(ssl_context, cfg.ca_file, cfg.insecure)
        if cfg.insecure:
            log.warning(
                "TLS certificate verification is OFF (--insecure): anyone on the network path to %s "
                "can impersonate it",
                cfg.base_url,
            )
        self._pacer = Pacer(cfg.rate, cfg.concurrency, sleep=self._sleep)
        connector = aiohttp.TCPConnector(
            ssl=context, limit=cfg.concurrency, limit_per_host=cfg.concurrency, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=cfg.timeouts.connect, sock_read=cfg.timeouts.read
            ),
            headers={"User-Agent": self.user_agent},
            raise_for_status=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        try:
            await self._publisher.aclose()
        finally:
            if session is not None:
                await session.close()

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use 'async with NeuroMorpho(...) as nm:' before making requests")
        return self._session

    # -- request plumbing ------------------------------------------------------------------------

    def _api_url(self, *segments: str) -> str:
        return "/".join([self.config.base_url, "api", *(quote(s, safe="") for s in segments)])

    async def _retrying(self, url: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await retry_call(
            attempt, policy=self.config.retry, url=url, on_retry=self._on_retry, sleep=self._sleep
        )

    def _note_busy(self, error: HTTPStatusError) -> None:
        """A server asking for a pause gets it from every caller of this client, not just this one."""
        if isinstance(error, ServerBusyError) and error.retry_after is not None:
            self.pacer.pause_for(min(error.retry_after, self.config.retry.retry_after_max))

    async def _error_for(self, resp: aiohttp.ClientResponse, url: str) -> HTTPStatusError:
        try:
            body = await resp.content.read(4096)
        except (aiohttp.ClientError, OSError):
            body = b""
        error = status_error(resp.status, url, resp.headers, body)
        self._note_busy(error)
        return error

    async def _json_attempt(self, url: str, params: Sequence[tuple[str, str]]) -> Any:
        session = self._require_session()
        async with self.pacer.slot():
            try:
                async with asyncio.timeout(self.config.timeouts.total):
                    async with session.get(
                        URL(url, encoded=True),
                        params=list(params) or None,
                        headers={"Accept": "application/json"},
                    ) as resp:
                        if resp.status != 200:
                            raise await self._error_for(resp, url)
                        body = await resp.read()
            except NeuroMorphoError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise translate_error(exc, url) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            what = "an HTML page" if looks_like_html(body[:256]) else "a body that is not JSON"
            raise IntegrityError(f"{url} answered with {what}", url=url) from exc

    async def get_json(self, *segments: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """``GET /api/<segments...>`` (each segment percent-encoded), retried and paced."""
        url = self._api_url(*segments)
        return await self._retrying(url, lambda: self._json_attempt(url, params))

    async def _page(self, segments: Sequence[str], params: Sequence[tuple[str, str]], page: int) -> Page:
        url = self._api_url(*segments)
        full = [*params, ("page", str(page))]
        data = await self._retrying(url, lambda: self._json_attempt(url, full))
        return parse_page(data, url)

    async def _pages(
        self,
        segments: Sequence[str],
        params: Sequence[tuple[str, str]],
        *,
        first_page_404_is_empty: bool,
        size: int = PAGE_SIZE,
    ) -> AsyncGenerator[Page, None]:
        """Every page in order, the next one fetched while the caller works on the current one.

        The server's ``page`` object decides whether there is a next page (it may serve fewer records
        than asked). Past the last page servers answer with an empty page, 404 or 400: all mean "done".
        A 400 on the very first page at a large size is retried once at the documented default size,
        for servers that refuse an oversized page instead of clamping it. Only one prefetch task
        exists at a time; it is cancelled and awaited if the consumer stops early.
        """
        sized = [*params, ("size", str(size))]
        number = 0
        announced: int | None = None
        pending: asyncio.Task[Page] | None = asyncio.ensure_future(self._page(segments, sized, 0))
        try:
            while pending is not None:
                try:
                    page = await pending
                except (NotFoundError, BadRequestError) as exc:
                    pending = None
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
                    if first_page_404_is_empty and isinstance(exc, NotFoundError):
                        return
                    raise
                pending = None
                announced = page.total_pages
                if has_next_page(number, page):
                    pending = asyncio.ensure_future(self._page(segments, sized, number + 1))
                yield page
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
            values = data.get("Neuron Fields") if isinstance(data, dict) else data
            if not isinstance(values, list):
                raise IntegrityError(
                    "unexpected /api/neuron/fields answer", url=self._api_url("neuron", "fields")
                )
            self._fields = [str(v) for v in values]
        return list(self._fields)

    async def _check_field(self, field: str) -> str:
        """The server's spelling of ``field``, or :class:`UnknownFieldError` naming the valid ones."""
        fields = await self.fields()
        real = match_field(field, fields)
        if real is None:
            raise UnknownFieldError(field, fields)
        return real

    async def field_values(self, field: str) -> list[str]:
        """Every value of ``field`` (``/api/neuron/fields/{field}``, all pages)."""
        real = await self._check_field(field)
        values: list[str] = []
        params: list[tuple[str, str]] = []
        async with contextlib.aclosing(
            self._pages(("neuron", "fields", real), params, first_page_404_is_empty=True)
        ) as pages:
            async for page in pages:
                values.extend(str(v) for v in page.items)
        return list(dict.fromkeys(values))

    async def counts(self, field: str) -> dict[str, int]:
        """Neurons per value of ``field`` (``/api/neuron/partition/{field}``)."""
        real = await self._check_field(field)
        data = await self.get_json("neuron", "partition", real)
        table = data.get("fields", data) if isinstance(data, dict) else None
        if not isinstance(table, dict):
            raise IntegrityError(
                f"unexpected partition answer for {real!r}", url=self._api_url("neuron", "partition", real)
            )
        return {str(k): int(v) for k, v in table.items() if _int_or_none(v) is not None}

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
        dedupe = _Dedupe()
        pages = self._pages(segments, params, first_page_404_is_empty=True)
        try:
            try:
                async for page in pages:
                    neurons = _neurons(page.items)
                    for neuron, fresh in zip(neurons, dedupe.keep([n.id for n in neurons]), strict=True):
                        if fresh:
                            yield neuron
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
            data = await self._retrying(url, lambda: self._json_attempt(url, params))
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
        headers = {"Accept-Encoding": "identity", "Accept": "*/*"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._retrying(url, lambda: self._file_attempt(url, Path(target), headers, check_swc))

    async def _file_attempt(
        self, url: str, target: Path, headers: Mapping[str, str], check_swc: bool
    ) -> DownloadResult | None:
        session = self._require_session()
        async with self.pacer.slot():
            try:
                async with asyncio.timeout(self.config.timeouts.total):
                    async with session.get(URL(url, encoded=True), headers=dict(headers)) as resp:
                        if resp.status == 304:
                            return None
                        if resp.status != 200:
                            raise await self._error_for(resp, url)
                        return await save_body(
                            resp, url, target, check_swc=check_swc, publisher=self._publisher
                        )
            except NeuroMorphoError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise translate_error(exc, url) from exc


def _neurons(records: Sequence[Any]) -> list[Neuron]:
    """The page's neurons; a malformed record is logged and skipped rather than ending the whole walk."""
    out: list[Neuron] = []
    for record in records:
        try:
            out.append(Neuron.from_record(record))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("skipping a malformed neuron record in a select page: %s", exc)
    return out


class _Dedupe:
    """Never yield a neuron twice, in constant memory while the server honours ``sort=neuron_id``.

    Sorted results need only the highest id yielded so far: anything at or below it is a repeat (a
    page boundary that shifted because neurons were added mid-walk). A page that arrives out of order
    means the server is not sorting; from then on every id goes into a set (ints, ~10 MB for the whole
    database in the worst case), seeded with the previous page's ids, the only earlier ones kept.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.seen: set[int] | None = None
        self._previous: list[int] = []

    def keep(self, ids: Sequence[int]) -> list[bool]:
        """For one page's ids in server order: which to yield."""
        ascending = all(a <= b for a, b in itertools.pairwise(ids))
        if self.seen is None and not ascending:
            log.debug("select results are not sorted by neuron_id; deduplicating with a set")
            self.seen = set(self._previous)
        flags: list[bool] = []
        if self.seen is not None:
            for neuron_id in ids:
                flags.append(neuron_id not in self.seen)
                self.seen.add(neuron_id)
            return flags
        for neuron_id in ids:
            fresh = self.last is None or neuron_id > self.last
            flags.append(fresh)
            if fresh:
                self.last = neuron_id
        self._previous = list(ids)
        return flags
