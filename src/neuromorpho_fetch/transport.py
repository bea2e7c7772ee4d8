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

Where the next bounds go (not implemented yet): a minimum transfer speed over a window and a maximum
file size are checks in :func:`iter_body` raising a transient/permanent error; a hard ``--max-duration``
is a cancel scope around the mirror's pass (not this module); TLS modern-first with a per-host fallback
to the legacy-DH context is a second context chosen in :meth:`Transport.open` / on a ``TLSError`` in
:meth:`Transport.attempt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from typing import TypeVar

import aiohttp
from yarl import URL

from .config import ClientConfig
from .errors import (
    ConnectError,
    HTTPStatusError,
    IntegrityError,
    NeuroMorphoError,
    RequestTimeout,
    ServerBusyError,
)
from .pacing import Pacer, Sleep
from .protocol import status_error
from .retry import RetryEvent, retry_call
from .tls import ssl_context, tls_error

__all__ = ["CHUNK_SIZE", "OK", "Transport", "iter_body", "read_all", "translate_error"]

log = logging.getLogger("neuromorpho_fetch.client")

T = TypeVar("T")
U = TypeVar("U")

#: Bytes per read; >= 256 KiB keeps aiofiles' per-call thread hop cheap for large bodies.
CHUNK_SIZE = 1 << 20
#: The statuses an ordinary request accepts.
OK: frozenset[int] = frozenset({200})


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


async def iter_body(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body in chunks of up to :data:`CHUNK_SIZE`: the one place every body is read.

    Per-body bounds (a speed floor over a window, a size cap) are checks in this loop.
    """
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        yield chunk


async def read_all(response: aiohttp.ClientResponse) -> bytes:
    """The whole body (API answers: a page of JSON is at most a few hundred kB)."""
    return b"".join([chunk async for chunk in iter_body(response)])


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
        """One try: slot, deadline, status check, ``read``, error translation (module docstring)."""
        session = self._session
        if session is None:
            raise RuntimeError("use 'async with NeuroMorpho(...) as nm:' before making requests")
        async with self.pacer.slot():
            try:
                async with asyncio.timeout(self.config.timeouts.total):
                    async with session.get(
                        URL(url, encoded=True),
                        params=list(params) or None,
                        headers=dict(headers) if headers else None,
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
