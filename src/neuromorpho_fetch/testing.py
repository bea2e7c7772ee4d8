"""Test your code (and ours) against the emulator without sockets: :class:`MemoryTransport`.

``NeuroMorpho(transport=...)`` accepts any object with :class:`~neuromorpho_fetch.transport.Transport`'s
interface. :class:`MemoryTransport` is the real transport (pacer, retries, redirects, body bounds,
error translation) with only the connection replaced: each connection is a pair of in-memory pipes
between aiohttp's own client protocol and aiohttp's own server protocol for an
:class:`aiohttp.web.Application`, so the whole HTTP stack runs on both sides, in this event loop, with
no port, no thread and no subprocess. :func:`memory_emulator` builds the emulator's application::

    async with memory_emulator(EmulatorConfig(neurons=400, seed=7)) as emu:
        async with NeuroMorpho(transport=emu.transport(rate=1000)) as nm:
            print(await nm.count(archive="Siegert"))
        print(emu.stats()["api_requests"])

What needs a real socket is not here: TLS handshakes, a server that stalls a TCP connection, signals
and processes. Those tests use :func:`neuromorpho_fetch.emulator.serve_in_thread` and are marked
``system`` in this project's suite.

Why write the pipes by hand: aiohttp's test utilities serve an application on a loopback socket, and
no maintained library offers an in-memory asyncio transport pair; the connector extension point
(``BaseConnector._create_connection``, as aiohttp's own Unix-socket connector uses it) is all it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.client_proto import ResponseHandler

from .client import USER_AGENT
from .config import ClientConfig, overlay
from .pacing import Sleep
from .transport import Transport

__all__ = ["MEMORY_BASE_URL", "MemoryEmulator", "MemoryTransport", "memory_emulator"]

#: The base URL of an in-memory server: a name that resolves nowhere, so nothing can reach a network.
MEMORY_BASE_URL = "http://emulator.invalid"
#: Bytes a pipe holds for a reader that is not reading before the writer is told to wait.
_HIGH_WATER = 1 << 20


class _Pipe(asyncio.Transport):
    """One direction's end of an in-memory connection: what its protocol writes, the peer receives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self.peer: _Pipe | None = None
        self._closing = False
        self._paused = False
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._eof = False
        self._writer_paused = False

    # -- receiving (for this end's protocol) -------------------------------------------------------
    def _receive(self, data: bytes) -> None:
        if self._closing:
            return
        if self._paused or self._pending:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > _HIGH_WATER and self.peer is not None:
                self.peer._pause_writer()
            return
        self._protocol.data_received(data)

    def _receive_eof(self) -> None:
        if self._pending:
            self._eof = True
            return
        if not self._closing and isinstance(self._protocol, asyncio.Protocol):
            self._protocol.eof_received()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._loop.call_soon(self._flush)

    def is_reading(self) -> bool:
        return not self._paused

    def _flush(self) -> None:
        while self._pending and not self._paused and not self._closing:
            data = self._pending.pop(0)
            self._pending_bytes -= len(data)
            self._protocol.data_received(data)
        if not self._pending:
            if self.peer is not None:
                self.peer._resume_writer()
            if self._eof and not self._closing:
                self._eof = False
                self._protocol.eof_received()

    # -- sending (from this end's protocol) --------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.peer is None:
            return
        self._loop.call_soon(self.peer._receive, bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        if self.peer is not None:
            self._loop.call_soon(self.peer._receive_eof)

    def can_write_eof(self) -> bool:
        return True

    def _pause_writer(self) -> None:
        if not self._writer_paused and not self._closing:
            self._writer_paused = True
            self._protocol.pause_writing()

    def _resume_writer(self) -> None:
        if self._writer_paused and not self._closing:
            self._writer_paused = False
            self._protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return self.peer._pending_bytes if self.peer is not None else 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None

    # -- closing -----------------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        peer = self.peer
        self._loop.call_soon(self._protocol.connection_lost, None)
        if peer is not None and not peer._closing:
            # The other end sees the connection end after what was already written reaches it.
            self._loop.call_soon(peer._lost)

    def abort(self) -> None:
        self.close()

    def _lost(self) -> None:
        if self._pending:
            self._paused = False
            self._flush()
        if not self._closing:
            self._closing = True
            self._protocol.connection_lost(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 0), "sockname": ("127.0.0.1", 0)}.get(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


class _MemoryConnector(aiohttp.BaseConnector):
    """A connector whose connections are :class:`_Pipe` pairs to an aiohttp server protocol."""

    def __init__(self, server: Callable[[], asyncio.Protocol], limit: int) -> None:
        super().__init__(limit=limit, limit_per_host=limit)
        self._server = server

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> ResponseHandler:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        client: ResponseHandler = self._factory()
        server = self._server()
        to_server, to_client = _Pipe(loop, client), _Pipe(loop, server)
        to_server.peer, to_client.peer = to_client, to_server
        server.connection_made(to_client)
        client.connection_made(to_server)
        return client


class MemoryTransport(Transport):
    """The real transport over in-memory connections to ``app`` (module docstring)."""

    def __init__(
        self, app: web.Application, config: ClientConfig | None = None, *, sleep: Sleep | None = None
    ):
        cfg = config if config is not None else ClientConfig(base_url=MEMORY_BASE_URL)
        super().__init__(cfg, user_agent=cfg.user_agent or USER_AGENT, sleep=sleep)
        self.app = app
        self._runner: web.AppRunner | None = None

    def connector(self, context: Any) -> aiohttp.BaseConnector:
        assert self._runner is not None and self._runner.server is not None
        return _MemoryConnector(self._runner.server, self.config.concurrency)

    async def open(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, handler_cancellation=True)
        await runner.setup()
        self._runner = runner
        await super().open()

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            runner, self._runner = self._runner, None
            if runner is not None:
                await runner.cleanup()


@dataclass(slots=True)
class MemoryEmulator:
    """The emulator's application with its catalogue and counters, ready to serve in memory."""

    app: web.Application
    catalogue: Any
    config: Any
    _stats: Any

    base_url: str = MEMORY_BASE_URL

    def transport(self, config: ClientConfig | None = None, **settings: Any) -> MemoryTransport:
        """A fresh transport to this emulator (settings as for ``NeuroMorpho(...)``: ``rate=1000``)."""
        cfg = overlay(config if config is not None else ClientConfig(base_url=MEMORY_BASE_URL), **settings)
        return MemoryTransport(self.app, cfg)

    def stats(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self._stats.snapshot()
        return snapshot


@contextlib.asynccontextmanager
async def memory_emulator(config: Any = None, *, catalogue: Any = None) -> AsyncIterator[MemoryEmulator]:
    """The emulator (an :class:`~neuromorpho_fetch.emulator.EmulatorConfig`, ``tls`` ignored: there is no
    socket to encrypt) as an application to serve in memory."""
    from .emulator import EmulatorConfig
    from .emulator.app import build_app
    from .emulator.faults import FaultPlan
    from .emulator.runner import catalogue_for
    from .emulator.stats import Stats

    config = config if config is not None else EmulatorConfig(tls="none")
    if catalogue is None:
        catalogue = await asyncio.to_thread(catalogue_for, config)
    stats = Stats()
    yield MemoryEmulator(build_app(catalogue, config, stats, FaultPlan(config)), catalogue, config, stats)
