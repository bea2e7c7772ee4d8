"""The transport: one session, one pacer, one retry loop, and the one attempt every request goes through.

Every request a client makes, API page or file, first try or retry, is :meth:`Transport.request`, which
is tenacity's loop (:func:`~neuromorpho_fetch.retry.retry_call`) around :meth:`Transport.attempt`. One
attempt, in this order, and nowhere else:

1. a **slot** from the :class:`~neuromorpho_fetch.pacing.Pacer` (concurrency, rate, the shared pause);
2. a **deadline** for the whole attempt (``Timeouts.total``; connect and idle-read limits are the
   session's ``aiohttp.ClientTimeout``);
3. the response status: an unexpected one becomes a typed error (:func:`protocol.status_error`), and a
   ``Retry-After`` pauses *every* caller through the pacer, not only this one;
4. the caller's ``read(response)`` takes the body while the connection is held; **bounds** on a body
   belong in :func:`iter_body`, the one place bodies are read;
5. any aiohttp/asyncio/OS exception is **translated** into the error tree (:func:`translate_error`).

Then the slot and the pooled connection are released, and only then does the caller's ``finish`` run
(JSON decoding, or nothing for files): disk work never happens inside a slot. The client hands a small
verified body to the group commit *after* :meth:`request` returns, so no slot or connection waits for
another file's fsync (issue 11: a slot held through ``Publisher.publish`` halved latency-bound
throughput).

Bounds on every body live in :func:`iter_body` (issue 10): a speed floor over a window
(:class:`~neuromorpho_fetch.errors.TooSlowError`, transient: a server trickling one byte every 2 s never
goes silent long enough for the idle timeout) and a size cap, checked against ``Content-Length`` before
the first byte and again while streaming (:class:`~neuromorpho_fetch.errors.FileTooLargeError`,
permanent). A JSON answer is also capped at :data:`API_BODY_MAX`, since it is held in memory.

TLS at the highest level the server supports: with ``ClientConfig.tls == "auto"`` every host starts on
the stock modern context, and a host whose handshake fails with ``DH_KEY_TOO_SMALL`` is switched to the
legacy-DH context (logged once, recorded in :attr:`Transport.tls_hosts`, which a mirror's report shows);
the failed attempt is made again at once, as it says nothing about the server's health. aiohttp takes a
per-request ``ssl=`` context and keys its connection pool by it, so the two never share a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from ssl import SSLContext
from typing import TypeVar

import aiohttp
from yarl import URL

from .config import ClientConfig
from .errors import (
    ConnectError,
    FileTooLargeError,
    HTTPStatusError,
    IntegrityError,
    NeuroMorphoError,
    RequestTimeout,
    ServerBusyError,
    TooSlowError,
    WeakKeyError,
)
from .pacing import Pacer, Sleep
from .protocol import status_error
from .retry import RetryEvent, retry_call
from .tls import ssl_context, tls_error

__all__ = [
    "API_BODY_MAX",
    "CHUNK_SIZE",
    "NO_LIMITS",
    "OK",
    "BodyLimits",
    "Transport",
    "iter_body",
    "read_all",
    "translate_error",
]

log = logging.getLogger("neuromorpho_fetch.client")

T = TypeVar("T")
U = TypeVar("U")

#: Bytes per read; >= 256 KiB keeps aiofiles' per-call thread hop cheap for large bodies.
CHUNK_SIZE = 1 << 20
#: The statuses an ordinary request accepts.
OK: frozenset[int] = frozenset({200})
#: The most a JSON answer may have (held in memory): a select page of 500 records is under 1 MB.
API_BODY_MAX = 64 << 20


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The bounds :func:`iter_body` enforces (from ``ClientConfig``): at least ``lowest_speed`` bytes/s
    over every ``speed_time`` seconds (``0`` turns it off), at most ``max_size`` bytes."""

    lowest_speed: float = 0.0
    speed_time: float = 30.0
    max_size: int | None = None

    def capped(self, most: int) -> BodyLimits:
        """The same limits with the size cap lowered to ``most``."""
        size = most if self.max_size is None else min(self.max_size, most)
        return BodyLimits(self.lowest_speed, self.speed_time, size)


#: No bounds at all (a caller that reads a response it made itself).
NO_LIMITS = BodyLimits()


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
    if isinstance(exc, aiohttp.TooManyRedirects):
        return HTTPStatusError(exc.status, url, f"too many redirects ({exc.message})")
    if isinstance(exc, aiohttp.ClientResponseError):
        # With raise_for_status off, aiohttp raises this only when it cannot parse what came back: its
        # "400, message='Bad status line'" is no answer from the server but bytes past a too-short
        # Content-Length read as the next response (issue 10 item 7). A damaged transfer: retried.
        return IntegrityError(
            f"{url}: damaged transfer, the response broke HTTP framing (a Content-Length shorter than "
            f"the body?): {exc.message}",
            url=url,
        )
    return ConnectError(f"request to {url} failed: {type(exc).__name__}: {exc}", url=url)


def _too_large(url: str, size: int, cap: int, how: str) -> FileTooLargeError:
    return FileTooLargeError(
        f"{url}: body {how} {size:,} bytes, more than the {cap:,}-byte cap (--max-file-size); not retried",
        url=url,
    )


async def iter_body(response: aiohttp.ClientResponse, limits: BodyLimits = NO_LIMITS) -> AsyncIterator[bytes]:
    """The body in chunks of up to :data:`CHUNK_SIZE`: the one place every body is read, and bounded.

    * size: a ``Content-Length`` above ``limits.max_size`` is refused before the first byte, and a body
      (chunked, or lying about its length) is stopped as soon as it passes the cap;
    * speed: each window of ``limits.speed_time`` seconds must bring ``lowest_speed * speed_time``
      bytes. The read waits at most until the window ends, so a server sending nothing (or a byte now
      and then) is judged when the window closes, not after the next byte. Silence alone is still the
      idle timeout's (``sock_read``); time the caller spends on a chunk counts, which only makes the
      floor stricter for a consumer that cannot keep up with 1 KiB/s.
    """
    url = str(response.url)
    cap = limits.max_size
    if cap is not None and (declared := response.content_length) is not None and declared > cap:
        raise _too_large(url, declared, cap, "declares")
    content = response.content
    received = 0
    floor = limits.lowest_speed * limits.speed_time
    if floor <= 0:
        async for piece in content.iter_chunked(CHUNK_SIZE):
            received += len(piece)
            if cap is not None and received > cap:
                raise _too_large(url, received, cap, "passed")
            yield piece
        return
    loop = asyncio.get_running_loop()
    window_end = loop.time() + limits.speed_time
    in_window = 0
    while True:
        scope = asyncio.timeout_at(window_end)
        chunk: bytes | None
        try:
            async with scope:
                chunk = await content.read(CHUNK_SIZE)
        except TimeoutError:
            if not scope.expired():  # aiohttp's own idle timeout, not the window
                raise
            chunk = None
        if chunk == b"":
            return
        if chunk:
            received += len(chunk)
            in_window += len(chunk)
            if cap is not None and received > cap:
                raise _too_large(url, received, cap, "passed")
        now = loop.time()
        if now >= window_end:
            if in_window < floor:
                raise TooSlowError(
                    f"{url}: {in_window} bytes in the last {limits.speed_time:g} s, below the "
                    f"{limits.lowest_speed:g} bytes/s floor (--lowest-speed/--speed-time); retrying",
                    url=url,
                )
            window_end, in_window = now + limits.speed_time, 0
        if chunk:
            yield chunk


async def read_all(response: aiohttp.ClientResponse, limits: BodyLimits = NO_LIMITS) -> bytes:
    """The whole body (API answers: a page of JSON is at most a few hundred kB), at most
    :data:`API_BODY_MAX` bytes since it is held in memory."""
    return b"".join([chunk async for chunk in iter_body(response, limits.capped(API_BODY_MAX))])


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
        #: The bounds every body of this client is read under (:func:`iter_body`).
        self.limits = BodyLimits(config.lowest_speed, config.speed_time, config.max_file_size)
        self._modern: SSLContext | None = None
        #: Built on the first ``DH_KEY_TOO_SMALL`` under ``--tls auto`` (the live server no longer
        #: needs it, and a context costs ~60 ms of start-up), at open under ``--tls legacy``.
        self._legacy: SSLContext | None = None
        #: TLS level per https host this client has talked to: ``modern`` or ``legacy-dh``.
        self.tls_hosts: dict[str, str] = {}
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._session: aiohttp.ClientSession | None = None
        self._pacer: Pacer | None = None
        self._listeners: list[Callable[[RetryEvent], None]] = []

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

    async def open(self) -> None:
        if self._session is not None:
            raise RuntimeError("this NeuroMorpho client is already open")
        cfg = self.config
        context = self._ssl
        if context is None:
            # Loading CA bundles reads files: keep it off the event loop.
            legacy = cfg.tls == "legacy"
            context = await asyncio.to_thread(self._context, legacy)
            if legacy:
                self._legacy = context
            else:
                self._modern = context
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

    def _context(self, legacy: bool) -> SSLContext:
        """The modern or the legacy-DH context, with this client's CA file (see the module docstring)."""
        return ssl_context(self.config.ca_file, self.config.insecure, legacy=legacy)

    @staticmethod
    def _host(url: URL) -> str:
        return str(url.host) if url.is_default_port() else f"{url.host}:{url.port}"

    def _ssl_for(self, url: URL) -> SSLContext | bool:
        """The context for one request: the caller's, or this host's level (modern unless switched)."""
        if self._ssl is not None:
            return self._ssl
        if url.scheme != "https":
            return True
        host = self._host(url)
        if self._modern is not None and self.tls_hosts.get(host) != "legacy-dh":
            self.tls_hosts.setdefault(host, "modern")
            return self._modern
        assert self._legacy is not None
        self.tls_hosts[host] = "legacy-dh"
        return self._legacy

    async def _fall_back(self, url: URL) -> bool:
        """``--tls auto`` meeting a weak DH key: switch this host to the legacy context, once."""
        if self._ssl is not None or self.config.tls != "auto":
            return False
        if self._legacy is None:
            legacy = await asyncio.to_thread(self._context, True)
            self._legacy = self._legacy or legacy  # another request may have built it meanwhile
        host = self._host(url)
        if self.tls_hosts.get(host) != "legacy-dh":
            self.tls_hosts[host] = "legacy-dh"
            log.info(
                "%s offers only a 1024-bit Diffie-Hellman key (DH_KEY_TOO_SMALL); using the legacy TLS "
                "context for it (certificates still verified; --tls legacy skips this try)",
                host,
            )
        return True

    async def aclose(self) -> None:
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
        """One try: slot, deadline, status check, ``read``, error translation (module docstring).

        A handshake refused for a weak DH key under ``--tls auto`` is made again at once on the legacy
        context (:meth:`_fall_back`): it is the server's TLS level, not a failure worth a retry.
        """
        target = URL(url, encoded=True)
        try:
            return await self._attempt(target, url, read, params, headers, ok)
        except WeakKeyError:
            if not await self._fall_back(target):
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
        session = self.session
        async with self.pacer.slot():
            try:
                async with asyncio.timeout(self.config.timeouts.total):
                    async with session.get(
                        target,
                        params=list(params) or None,
                        headers=dict(headers) if headers else None,
                        ssl=self._ssl_for(target),
                    ) as resp:
                        if resp.status not in ok:
                            raise await self._error_for(resp, url)
                        return await read(resp)
            except NeuroMorphoError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise translate_error(exc, url) from exc

    async def _error_for(self, resp: aiohttp.ClientResponse, url: str) -> HTTPStatusError:
        try:
            body = await resp.content.read(4096)
        except (aiohttp.ClientError, OSError):
            body = b""
        error = status_error(resp.status, url, resp.headers, body)
        if isinstance(error, ServerBusyError) and error.retry_after is not None:
            # A server asking for a pause gets it from every caller of this client, not just this one.
            self.pacer.pause_for(min(error.retry_after, self.config.retry.retry_after_max))
        return error
