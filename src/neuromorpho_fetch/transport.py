"""The transport: one session, one pacer, one retry loop, and the one attempt every request goes through.

Every request a client makes, API page or file, first try or retry, is :meth:`Transport.request`, which
is tenacity's loop (:func:`~neuromorpho_fetch.retry.retry_call`) around :meth:`Transport.attempt`. One
attempt, in this order, and nowhere else:

1. a **slot** from the :class:`~neuromorpho_fetch.pacing.Pacer` (concurrency, rate, the shared pause);
2. a **deadline** for the whole attempt (``Timeouts.attempt``), and one for the status line and headers
   (``Timeouts.headers``: a server trickling its headers is never silent, issue 15 item 6); connect
   and idle limits are the session's ``aiohttp.ClientTimeout``;
3. **redirects**, followed here, hop by hop, at most :data:`MAX_REDIRECTS`: a redirect from https to
   plain http, or to a scheme that is not http(s), is a permanent
   :class:`~neuromorpho_fetch.errors.RedirectError` (issue 15 item 8: a downgrade was followed
   silently, a ``ftp:`` target cost seven retried connection errors);
4. the response status: an unexpected one becomes a typed error (:func:`protocol.status_error`), and a
   ``Retry-After`` pauses *every* caller through the pacer, not only this one;
5. the caller's ``read(response)`` takes the body while the connection is held; **bounds** on a body
   belong in :func:`~neuromorpho_fetch.bodies.iter_body`, the one place bodies are read;
6. any aiohttp/asyncio/OS exception is **translated** into the error tree (:func:`translate_error`),
   named for what happened (a header line over the limit is not a ``Content-Length`` problem).

Then the slot and the pooled connection are released, and only then does the caller's ``finish`` run
(JSON decoding, or nothing for files): disk work never happens inside a slot.

Bounds on every body (the speed floor, the size cap, the shared in-flight budget, content codings) live
in :mod:`neuromorpho_fetch.bodies`, the one place bodies are read; its names used by callers are
importable from here too.

TLS at the highest level the server supports: with ``ClientConfig.tls == "auto"`` every host starts on
the stock modern context, and a host whose handshake fails with ``DH_KEY_TOO_SMALL`` is switched to the
legacy-DH context (logged once, recorded in :attr:`Transport.tls_hosts`, which a mirror's report
shows); the failed attempt is made again at once, as it says nothing about the server's health.

The seam: a client takes any object with this class's interface (``NeuroMorpho(transport=...)``), and a
subclass can replace only the connection (:meth:`Transport.connector`):
:class:`neuromorpho_fetch.testing.MemoryTransport` serves an aiohttp application in memory, with every
other step here unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from ssl import SSLContext
from typing import TypeVar

import aiohttp
from aiohttp import http_exceptions
from yarl import URL

from .bodies import API_BODY_MAX as API_BODY_MAX
from .bodies import CHUNK_SIZE as CHUNK_SIZE
from .bodies import CODINGS, BodyLimits, InFlight
from .bodies import NO_LIMITS as NO_LIMITS
from .bodies import iter_body as iter_body
from .bodies import read_all as read_all
from .config import ClientConfig
from .errors import (
    BadResponseError,
    ConnectError,
    HeaderTimeoutError,
    HTTPStatusError,
    IntegrityError,
    NeuroMorphoError,
    ProxyError,
    RedirectError,
    RequestTimeout,
    ServerBusyError,
    WeakKeyError,
)
from .pacing import Pacer, Sleep
from .protocol import status_error
from .proxy import display, proxy_for
from .retry import RetryEvent, retry_call
from .tasks import drop
from .tls import first_context, ssl_context, tls_error

log = logging.getLogger("neuromorpho_fetch.client")

T = TypeVar("T")
U = TypeVar("U")

#: The statuses an ordinary request accepts.
OK: frozenset[int] = frozenset({200})
#: Redirects followed per attempt (curl's default is 50; browsers stop near 20; 10 is aiohttp's).
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _connect_message(exc: aiohttp.ClientConnectorError, url: str) -> str:
    """Why a connection could not be made, in words (aiohttp's own text shows the SSL context's repr)."""
    os_error = exc.os_error
    why = os_error.strerror if isinstance(os_error, OSError) and os_error.strerror else str(os_error)
    where = f"{exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve the host name {exc.host!r} ({why}) for {url}"
    return f"cannot connect to {where} ({why or type(os_error).__name__}) for {url}"


def _http_violation(exc: aiohttp.ClientResponseError) -> str:
    """What broke HTTP framing, from the parser's own exception class (``__cause__``)."""
    cause = exc.__cause__
    text = str(cause.message if isinstance(cause, http_exceptions.HttpProcessingError) else exc.message)
    if isinstance(cause, http_exceptions.LineTooLong) or text.startswith("Got more than"):
        return "a response header line longer than the 8,190-byte limit (header overflow)"
    if "too many headers" in text.lower():
        return "more response headers than the parser accepts (header overflow)"
    if isinstance(cause, http_exceptions.BadStatusLine):
        return "a malformed status line (bytes past a too-short Content-Length read as the next answer?)"
    if "status line" in text.lower():
        return f"a malformed status line ({text[:120]}: bytes past a too-short Content-Length?)"
    return f"a malformed response ({text[:120] or type(exc).__name__})"


def translate_error(exc: BaseException, url: str, proxy: str | None = None) -> NeuroMorphoError:
    """Map an aiohttp/asyncio/OS exception from one attempt to our tree (order matters: subclasses first)."""
    if isinstance(exc, NeuroMorphoError):
        return exc
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        via = display(proxy) if proxy else f"{exc.host}:{exc.port}"
        reason = exc.os_error.strerror if exc.os_error.strerror else str(exc.os_error)
        return ProxyError(f"cannot reach the proxy {via} ({reason}) for {url}", url=url)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        via = display(proxy) if proxy else "the proxy"
        return ProxyError(
            f"the proxy {via} refused to connect to {URL(url).host} (HTTP {exc.status} {exc.message})",
            url=url,
        )
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return tls_error(exc, url)
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ssl.SSLError):
        return tls_error(exc.os_error, url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(_connect_message(exc, url), url=url)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return RequestTimeout(f"timed out talking to {url} ({type(exc).__name__}: {exc})", url=url)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return IntegrityError(f"{url}: body cut short ({exc})", url=url)
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return ConnectError(f"cannot talk to {url}: {exc or type(exc).__name__}", url=url)
    if isinstance(exc, aiohttp.ClientResponseError):
        # With raise_for_status off, aiohttp raises this only when it cannot parse what came back.
        return BadResponseError(f"{url}: damaged transfer: {_http_violation(exc)}", url=url)
    return ConnectError(f"request to {url} failed: {type(exc).__name__}: {exc}", url=url)


async def _request_sent(
    _session: aiohttp.ClientSession, context: object, _params: aiohttp.TraceRequestHeadersSentParams
) -> None:
    """aiohttp's "request headers sent" signal: start the header deadline (see ``Transport._attempt``)."""
    start = getattr(context, "trace_request_ctx", None)
    if callable(start):
        start()


class Transport:
    """The session, the pacer and the retry loop of one client (see the module docstring)."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        user_agent: str,
        ssl: ssl.SSLContext | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.config = config
        self.user_agent = user_agent
        self._ssl = ssl
        self.in_flight = InFlight(config.max_in_flight)
        #: The bounds every body of this client is read under (:func:`iter_body`).
        self.limits = BodyLimits(config.lowest_speed, config.speed_time, config.max_file_size, self.in_flight)
        self._modern: SSLContext | None = None
        #: Built on the first ``DH_KEY_TOO_SMALL`` under ``--tls auto`` (the live server no longer
        #: needs it, and a context costs ~60 ms of start-up), at open under ``--tls legacy``.
        self._legacy: SSLContext | None = None
        self._tls_hosts: dict[str, str] = {}
        self._building: asyncio.Future[SSLContext] | None = None
        self._proxies: dict[tuple[str, str, int | None], str | None] = {}
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._session: aiohttp.ClientSession | None = None
        self._pacer: Pacer | None = None
        self._listeners: list[Callable[[RetryEvent], None]] = []
        #: Responses received (any status): 0 at the end of a run means the server was never reached.
        self.responses = 0

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use 'async with NeuroMorpho(...) as nm:' before making requests")
        return self._session

    @property
    def pacer(self) -> Pacer:
        if self._pacer is None:
            raise RuntimeError("use 'async with NeuroMorpho(...) as nm:' before making requests")
        return self._pacer

    @property
    def tls_hosts(self) -> dict[str, str]:
        """TLS level per https host this client has talked to (``modern`` or ``legacy-dh``): a copy,
        never the live table."""
        return dict(self._tls_hosts)

    def connector(self, context: SSLContext | bool) -> aiohttp.BaseConnector:
        """The connection layer: TCP (and TLS) here; the seam a test transport replaces."""
        cfg = self.config
        return aiohttp.TCPConnector(
            ssl=context, limit=cfg.concurrency, limit_per_host=cfg.concurrency, ttl_dns_cache=300
        )

    async def open(self) -> None:
        if self._session is not None:
            raise RuntimeError("this NeuroMorpho client is already open")
        cfg = self.config
        self._proxy(URL(cfg.base_url))  # a proxy setting we cannot use is refused before any request
        first = first_context(cfg.base_url, cfg.tls)
        if self._ssl is None and first is not None:
            # Loading CA bundles reads files: off the event loop, and while the run's other start-up
            # work goes on (issue 19); the first https request waits for it (_ssl_for).
            self._building = asyncio.ensure_future(asyncio.to_thread(self._context, first))
        if cfg.insecure:
            log.warning(
                "TLS certificate verification is OFF (--insecure): anyone on the network path to %s "
                "can impersonate it",
                cfg.base_url,
            )
        self._pacer = Pacer(cfg.rate, cfg.concurrency, sleep=self._sleep)
        t = cfg.timeouts
        sent = aiohttp.TraceConfig()
        sent.on_request_headers_sent.append(_request_sent)
        self._session = aiohttp.ClientSession(
            connector=self.connector(self._ssl if self._ssl is not None else True),
            trace_configs=[sent],
            timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=t.connect, sock_read=t.idle),
            headers={"User-Agent": self.user_agent},
            raise_for_status=False,
            auto_decompress=False,
        )

    def _context(self, legacy: bool) -> SSLContext:
        """The modern or the legacy-DH context, with this client's CA file (see the module docstring)."""
        return ssl_context(self.config.ca_file, self.config.insecure, legacy=legacy)

    @staticmethod
    def _host(url: URL) -> str:
        return str(url.host) if url.is_default_port() else f"{url.host}:{url.port}"

    async def _ssl_for(self, url: URL) -> SSLContext | bool:
        """The context for one request: the caller's, or this host's level (modern unless switched)."""
        if self._ssl is not None:
            return self._ssl
        if url.scheme != "https":
            return True
        if self._building is not None:
            context = await self._building  # every early request waits for the one build
            self._building = None
            if self.config.tls == "legacy":
                self._legacy = self._legacy or context
            else:
                self._modern = self._modern or context
        host = self._host(url)
        if self._tls_hosts.get(host) != "legacy-dh":
            if self._modern is None and self.config.tls != "legacy":
                self._modern = await asyncio.to_thread(self._context, False)
            if self._modern is not None:
                self._tls_hosts.setdefault(host, "modern")
                return self._modern
        if self._legacy is None:
            self._legacy = await asyncio.to_thread(self._context, True)
        self._tls_hosts[host] = "legacy-dh"
        return self._legacy

    async def _fall_back(self, url: URL) -> bool:
        """``--tls auto`` meeting a weak DH key: switch this host to the legacy context, once."""
        if self._ssl is not None or self.config.tls != "auto":
            return False
        if self._legacy is None:
            legacy = await asyncio.to_thread(self._context, True)
            self._legacy = self._legacy or legacy  # another request may have built it meanwhile
        host = self._host(url)
        if self._tls_hosts.get(host) != "legacy-dh":
            self._tls_hosts[host] = "legacy-dh"
            checked = (
                "certificates are NOT verified (--insecure)"
                if self.config.insecure
                else "certificates still verified"
            )
            log.info(
                "%s offers only a 1024-bit Diffie-Hellman key (DH_KEY_TOO_SMALL); using the legacy TLS "
                "context for it (%s; --tls legacy skips this try)",
                host,
                checked,
            )
        return True

    def _proxy(self, url: URL) -> str | None:
        key = (url.scheme, str(url.host), url.port)
        if key not in self._proxies:
            self._proxies[key] = proxy_for(str(url), self.config.proxy)
        return self._proxies[key]

    async def aclose(self) -> None:
        building, self._building = self._building, None
        if building is not None:
            await drop(building)  # a context never used is not an error to report
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- retry events ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def retry_listener(self, listener: Callable[[RetryEvent], None]) -> Iterator[None]:
        """Call ``listener`` for every retry while the block runs (a mirror run sharing this client
        counts its retries this way, besides the client's own ``on_retry``)."""
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def add_retry_listener(self, listener: Callable[[RetryEvent], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, event: RetryEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- requests --------------------------------------------------------------------------------

    async def request(
        self,
        url: str,
        read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        finish: Callable[[T], U],
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = OK,
    ) -> U:
        """``finish(read(response))`` with retries: ``read`` inside the slot, ``finish`` after it.

        Both are part of one attempt, so a body that ``finish`` finds wrong (an
        :class:`~neuromorpho_fetch.errors.IntegrityError`) is fetched again.
        """

        async def one() -> U:
            return finish(await self.attempt(url, read, params=params, headers=headers, ok=ok))

        return await retry_call(
            one, policy=self.config.retry, url=url, on_retry=self._notify, sleep=self._sleep
        )

    async def attempt(
        self,
        url: str,
        read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = OK,
    ) -> T:
        """One try: slot, deadlines, redirects, status check, ``read``, error translation.

        A handshake refused for a weak DH key under ``--tls auto`` is made again at once on the legacy
        context (:meth:`_fall_back`): it is the server's TLS level, not a failure worth a retry.
        """
        target = URL(url, encoded=True)
        try:
            return await self._attempt(target, url, read, params, headers, ok)
        except WeakKeyError as exc:
            failed = URL(exc.url, encoded=True) if exc.url else target
            if not await self._fall_back(failed):
                raise
        return await self._attempt(target, url, read, params, headers, ok)

    async def _attempt(
        self,
        target: URL,
        url: str,
        read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        params: Sequence[tuple[str, str]],
        headers: Mapping[str, str] | None,
        ok: Collection[int],
    ) -> T:
        """One attempt under one timer: its deadline is the header deadline until the headers are in,
        then the attempt's (one timer per request, not two: this is every file's path).

        The header deadline counts from when the request was sent (``Timeouts.headers``, issue 15 item 6:
        a connection slow to open must not eat into it, nor the connect timeout stretch it); until
        then it is connect + headers. Never past the attempt's own deadline.
        """
        session = self.session
        t = self.config.timeouts
        loop = asyncio.get_running_loop()
        async with self.pacer.slot():
            here, query = target, list(params) or None
            proxy: str | None = None
            waiting_for_headers = False
            attempt_end = loop.time() + t.attempt
            scope = asyncio.timeout_at(attempt_end)
            try:
                async with scope:
                    for _hop in range(MAX_REDIRECTS + 1):
                        proxy = self._proxy(here)
                        context = await self._ssl_for(here)
                        scope.reschedule(min(attempt_end, loop.time() + t.connect + t.headers))
                        waiting_for_headers = True
                        resp = await session.get(
                            here,
                            params=query,
                            headers=headers,
                            ssl=context,
                            proxy=proxy,
                            allow_redirects=False,
                            trace_request_ctx=lambda: scope.reschedule(
                                min(attempt_end, loop.time() + t.headers)
                            ),
                        )
                        waiting_for_headers = False
                        scope.reschedule(attempt_end)
                        try:
                            self.responses += 1
                            if resp.status in _REDIRECTS and resp.headers.get("Location"):
                                here, query = self._next_hop(here, resp), None
                                continue
                            if resp.status not in ok:
                                raise await self._error_for(resp, str(here))
                            return await read(resp)
                        finally:
                            resp.release()
                    raise RedirectError(
                        resp.status, url, f"more than {MAX_REDIRECTS} redirects (last to {str(here)[:200]})"
                    )
            except NeuroMorphoError:
                raise
            except TimeoutError as exc:
                if waiting_for_headers and scope.expired() and loop.time() < attempt_end:
                    raise HeaderTimeoutError(
                        f"{here}: no complete status line and headers within {t.headers:g} s of "
                        "sending the request (--header-timeout); retrying",
                        url=str(here),
                    ) from None
                raise translate_error(exc, str(here), proxy) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise translate_error(exc, str(here), proxy) from exc

    @staticmethod
    def _next_hop(here: URL, resp: aiohttp.ClientResponse) -> URL:
        """Where a redirect points, or :class:`RedirectError` for one we refuse (module docstring)."""
        location = resp.headers.get("Location", "").strip()
        try:
            nxt = here.join(URL(location, encoded=any(c == "%" for c in location)))
        except ValueError:
            raise RedirectError(
                resp.status, str(here), f"redirect to an invalid URL {location[:200]!r}"
            ) from None
        if nxt.scheme not in ("http", "https"):
            raise RedirectError(
                resp.status, str(here), f"redirect to a non-http URL ({location[:200]!r}); not followed"
            )
        if here.scheme == "https" and nxt.scheme == "http":
            raise RedirectError(
                resp.status,
                str(here),
                f"redirect from https to plain http ({str(nxt)[:200]}) refused: it would drop the "
                "encryption and the certificate check",
            )
        return nxt

    async def _error_for(self, resp: aiohttp.ClientResponse, url: str) -> HTTPStatusError:
        try:
            body = await resp.content.read(4096)
        except (aiohttp.ClientError, OSError):
            body = b""
        if resp.headers.get("Content-Encoding", "").strip().lower() in CODINGS:
            # Only the start of an error body is read (for its message); a partial stream is fine here.
            try:
                body = zlib.decompressobj(32 + zlib.MAX_WBITS).decompress(body, 4096)
            except zlib.error:
                body = b""
        error = status_error(resp.status, url, resp.headers, body)
        if isinstance(error, ServerBusyError) and error.retry_after is not None:
            # A server asking for a pause gets it from every caller of this client, not just this one.
            self.pacer.pause_for(min(error.retry_after, self.config.retry.retry_after_max))
        return error
