"""Start and stop the emulator: in the caller's event loop, or in a thread of its own.

``run_emulator`` is for async code (``async with run_emulator(cfg) as emu``). ``serve_in_thread`` runs
the same thing on a private loop in a daemon thread, for synchronous tests, session-wide fixtures and
scripts: the emulator's loop then never competes with the code under test for the same loop.

Both bind the listening socket themselves, so ``port=0`` gives a free port that is known before the
first request, and both hand back an :class:`Emulator` with the URLs, the CA file and the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from ._config import EmulatorConfig
from .app import build_app, redirect_app
from .catalogue import Catalogue
from .faults import FaultPlan
from .stats import Stats
from .tls import make_tls

_T = TypeVar("_T")

#: Long enough for a handler to finish a normal response; stalled ones are cut off after it.
SHUTDOWN_TIMEOUT_S = 1.0


@dataclass(slots=True)
class Emulator:
    """A running emulator: where it is, what it serves, and what it has seen."""

    base_url: str
    ca_file: str | None
    http_url: str | None
    catalogue: Catalogue
    config: EmulatorConfig
    _stats: Stats = field(repr=False)
    _plan: FaultPlan = field(repr=False)
    _loop: asyncio.AbstractEventLoop = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stats(self) -> dict[str, Any]:
        """The same JSON as ``GET /_emulator/stats``, read in-process (safe from any thread)."""
        return self._on_loop(self._stats.snapshot)

    def is_missing(self, url: str) -> bool:
        """Whether the file at ``url`` is one ``missing_rate`` removed for good (it answers 404)."""
        path = url.removeprefix(self.base_url)
        return self._plan.missing(path)

    def reset(self, *, faults: bool = False) -> None:
        """Clear the counters; with ``faults=True`` also the per-URL fault history."""

        def clear() -> None:
            self._stats.reset()
            if faults:
                self._plan.reset()

        self._on_loop(clear)

    def _on_loop(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the emulator's loop thread, where the counters are mutated."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop or self._loop.is_closed():
            return fn()

        async def call() -> _T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def _url(scheme: str, host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def catalogue_for(config: EmulatorConfig) -> Catalogue:
    """The catalogue a config describes (seconds for the full size: call it off the event loop)."""
    return Catalogue(
        config.neurons,
        config.seed,
        hostile_names=config.hostile_names,
        file_kb=config.file_kb,
        changes=config.catalogue_changes,
        oddities=config.oddities,
    )


@contextlib.asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None, *, catalogue: Catalogue | None = None
) -> AsyncIterator[Emulator]:
    """Serve until the block exits; the catalogue and certificates are built off the loop."""
    config = config or EmulatorConfig()
    if catalogue is None:
        catalogue = await asyncio.to_thread(catalogue_for, config)
    tls = await asyncio.to_thread(make_tls, config.tls, (config.host,))
    stats, plan = Stats(), FaultPlan(config)
    runners: list[web.BaseRunner] = []
    try:
        sock = _listen(config.host, config.port)
        scheme = "http" if tls is None else "https"
        base_url = _url(scheme, config.host, sock.getsockname()[1])
        app = build_app(catalogue, config, stats, plan)
        await _start(runners, app, sock, tls.context if tls else None)
        http_url = base_url if tls is None else None
        if config.redirect_http:
            plain = _listen(config.host, 0)
            http_url = _url("http", config.host, plain.getsockname()[1])
            await _start(runners, redirect_app(base_url), plain, None)
        yield Emulator(
            base_url=base_url,
            ca_file=tls.ca_file if tls else None,
            http_url=http_url,
            catalogue=catalogue,
            config=config,
            _stats=stats,
            _plan=plan,
            _loop=asyncio.get_running_loop(),
        )
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        if tls is not None:
            tls.close()


async def _start(runners: list[web.BaseRunner], app: web.Application, sock: socket.socket, ssl: Any) -> None:
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        handler_cancellation=True,
    )
    await runner.setup()
    runners.append(runner)
    await web.SockSite(runner, sock, ssl_context=ssl).start()


@contextlib.contextmanager
def serve_in_thread(
    config: EmulatorConfig | None = None,
    *,
    catalogue: Catalogue | None = None,
    start_timeout: float = 300.0,
) -> Iterator[Emulator]:
    """Run the emulator on its own loop in a daemon thread until the block exits."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        try:
            async with run_emulator(config, catalogue=catalogue) as emu:
                box["emulator"] = emu
                ready.set()
                await stop.wait()
        except BaseException as exc:
            box.setdefault("error", exc)
            raise
        finally:
            ready.set()

    def main() -> None:
        with contextlib.suppress(BaseException):
            asyncio.run(serve())

    thread = threading.Thread(target=main, name="neuromorpho-emulator", daemon=True)
    thread.start()
    if not ready.wait(start_timeout):
        raise TimeoutError(f"the emulator did not start within {start_timeout:.0f} s")
    if "emulator" not in box:
        raise box.get("error") or RuntimeError("the emulator stopped before it started")
    try:
        yield box["emulator"]
    finally:
        loop: asyncio.AbstractEventLoop = box["loop"]
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=30)
