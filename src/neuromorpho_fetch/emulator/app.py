"""The emulator's HTTP face: NeuroMorpho.Org's API and file server as an aiohttp.web application.

This module builds the application and owns the one guard every route is wrapped in: it counts the
request, applies the capacity cap, latency, injected faults and issue 10's hostile switches, so handlers
stay plain. The handlers live in :mod:`.api_routes` (``/api/...``) and :mod:`.file_routes` (the file tree,
``neuron_info.jsp`` and the HTML 404); the ``/_emulator`` control routes are here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from aiohttp import web

from ._config import EmulatorConfig
from .api_routes import ApiRoutes, json_response
from .catalogue import Catalogue
from .faults import PRE_FAULTS, FaultPlan, fault_after, fault_before, send_throttled, spring_error
from .file_routes import FileRoutes
from .hostile import Hostile
from .stats import Stats

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _body_len(resp: web.StreamResponse) -> int:
    body = resp.body if isinstance(resp, web.Response) else None
    return len(body) if isinstance(body, bytes) else 0


class _Guard:
    """Counting, capacity, latency, faults and hostility around every route, bound to one run."""

    def __init__(self, config: EmulatorConfig, stats: Stats, plan: FaultPlan) -> None:
        self.config = config
        self.stats = stats
        self.plan = plan
        self._rng = random.Random(config.seed)
        self._bytes_per_s = config.bandwidth_kbps * 1024
        self.hostile = Hostile(config.hostile, config.seed, stats)

    def __call__(self, kind: str, handler: Handler) -> Handler:
        """Count, cap, delay and fault one route; ``kind`` is ``api``, ``file`` or ``other``."""
        handler = self.hostile.wrap(kind, handler)  # issue 10's hostile switches, inside the counting
        stats, cfg = self.stats, self.config
        faultable = self.plan.active and self.plan.applies_to(kind)
        limit = cfg.max_in_flight
        delay, jitter = cfg.latency_ms / 1000, cfg.jitter_ms / 1000
        rng = self._rng
        finish = self._finish

        async def guarded(request: web.Request) -> web.StreamResponse:
            stats.enter(kind, request.rel_url.raw_path if kind == "file" else "")
            try:
                if limit and stats.in_flight > limit:
                    stats.rejected_busy += 1
                    busy = spring_error(503, "Server busy", request.path, {"Retry-After": "1"})
                    stats.answered(503, _body_len(busy))
                    return busy
                if delay or jitter:
                    await asyncio.sleep(delay + jitter * rng.random())
                if faultable:
                    return await self._faulted(request, handler)
                return await finish(request, await handler(request))
            finally:
                stats.leave()

        return guarded

    async def _finish(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        """Count what goes out; under ``--bandwidth-kbps`` stream it at the capped rate."""
        sent = 0 if request.method == "HEAD" else _body_len(resp)
        if sent and self._bytes_per_s:
            assert isinstance(resp, web.Response)
            out, sent = await send_throttled(request, resp, self._bytes_per_s)
            resp = out
        self.stats.answered(resp.status, sent)
        return resp

    async def _faulted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        stats, plan = self.stats, self.plan
        key = request.raw_path
        picked = plan.pick(key)
        if picked is None:
            return await self._finish(request, await handler(request))
        fault, ordinal = picked
        variant = plan.variant(key, ordinal)
        if fault in PRE_FAULTS or (fault == "reset" and variant == 0):
            stats.fault(fault)
            early = fault_before(fault, request, variant, self.config.retry_after_s)
            if fault != "reset":
                stats.answered(early.status, _body_len(early))
            return early
        resp = await handler(request)
        if request.method != "HEAD" and _body_len(resp) > 1:
            assert isinstance(resp, web.Response)
            stats.fault(fault)
            # The status line goes out first; count it now, since a client that gives up on a stall
            # cancels this handler before fault_after returns.
            stats.answered(resp.status, 0)
            out, sent = await fault_after(fault, request, resp, self.config.stall_ms / 1000)
            stats.bytes_sent += sent
            return out
        plan.refund(key)  # nothing to cut short (HEAD, 304): behave and keep the budget
        return await self._finish(request, resp)


async def _stats(request: web.Request) -> web.Response:
    stats: Stats = request.app[STATS_KEY]
    return json_response(stats.snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATS_KEY].reset()
    if request.query.get("faults") in ("1", "true", "yes"):
        request.app[PLAN_KEY].reset()
    return json_response({"reset": True})


async def _config(request: web.Request) -> web.Response:
    cfg: EmulatorConfig = request.app[CONFIG_KEY]
    return json_response(asdict(cfg))


STATS_KEY = web.AppKey("stats", Stats)
PLAN_KEY = web.AppKey("plan", FaultPlan)
CONFIG_KEY = web.AppKey("config", EmulatorConfig)


def build_app(catalogue: Catalogue, config: EmulatorConfig, stats: Stats, plan: FaultPlan) -> web.Application:
    """The whole server: API, files, the .jsp trap and the ``/_emulator`` control routes."""
    guard = _Guard(config, stats, plan)
    api_routes = ApiRoutes(catalogue, config)
    files = FileRoutes(catalogue, config, stats, plan)
    app = web.Application(client_max_size=2**20)
    app[STATS_KEY] = stats
    app[PLAN_KEY] = plan
    app[CONFIG_KEY] = config

    def add(method: str, path: str, handler: Handler) -> None:
        # add_route("GET") would not answer HEAD; add_get does (HEAD must work for files and size checks;
        # F, "Missing files": "HEAD works on dableFiles and on the API").
        if method == "GET":
            app.router.add_get(path, handler)
        else:
            app.router.add_route(method, path, handler)

    def api(method: str, path: str, handler: Handler) -> None:
        guarded = guard("api", handler)
        add(method, path, guarded)
        if not path.endswith(".+}"):  # a name route takes the slash into the name; _by_name strips it
            add(method, path + "/", guarded)  # every route answers with a trailing slash too (E)

    r = api_routes
    api("GET", "/api/health", r.health)
    api("GET", "/api/neuron", r.neurons)
    api("GET", "/api/neuron/id/{id}", r.neuron_by_id)
    api("GET", "/api/neuron/name/{name:.+}", r.neuron_by_name)
    api("GET", "/api/neuron/select", r.select_get)
    api("POST", "/api/neuron/select", r.select_post)
    api("GET", "/api/neuron/fields", r.fields)
    api("GET", "/api/neuron/fields/{field}", r.field_values)
    api("GET", "/api/neuron/partition/{field}", r.partition)
    api("GET", "/api/morphometry", r.morphometry_list)
    api("GET", "/api/morphometry/id/{id}", r.morphometry_by_id)
    api("GET", "/api/morphometry/name/{name:.+}", r.morphometry_by_name)
    api("GET", "/api/morphometry/select", r.morphometry_select)
    api("GET", "/api/pvec", r.pvec_list)
    api("GET", "/api/pvec/id/{id}", r.pvec_by_id)
    api("GET", "/api/pvec/select", r.pvec_select)
    api("GET", "/api/literature", r.literature_list)
    api("GET", "/api/literature/id/{id}", r.literature_by_id)
    api("GET", "/api/literature/select", r.literature_select)
    api("GET", "/api/literature/fields", r.literature_fields)
    api("GET", "/api/literature/fields/{field}", r.literature_field_values)
    api("GET", "/api/literature/partition/{field}", r.literature_partition)
    api("*", "/api/{tail:.*}", r.api_fallback)  # last: only what no route above took
    add("GET", "/dableFiles/previous/v6.1/{archive}/{filename}", guard("file", files.previous_release))
    add("GET", "/dableFiles/{archive}/{folder}/{filename:.+}", guard("file", files.dable_file))
    add("GET", "/images/imageFiles/{archive}/{filename:.+}", guard("file", files.image))
    add("GET", "/neuron_info.jsp", guard("other", files.neuron_info_jsp))
    add("GET", "/_emulator/stats", _stats)
    add("POST", "/_emulator/reset", _reset)
    add("GET", "/_emulator/config", _config)
    add("*", "/{tail:.*}", guard("other", files.not_found))  # last: the Tomcat front's 404
    return app


def redirect_app(https_base: str) -> web.Application:
    """The plain-HTTP listener of ``--redirect-http``: 301 to the same path on HTTPS (reference A1)."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(location=https_base + request.raw_path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app
