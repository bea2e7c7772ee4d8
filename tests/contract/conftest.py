"""The server the contract tests meet: the emulator (default), or a live server under a request budget.

Every contract test takes the ``api`` fixture, which is parametrized twice:

* ``emulator``: a local emulator over real sockets (the system tier; CI runs it);
* ``live``: marked ``live``, deselected by default (tests/conftest.py), and always without
  ``NEUROMORPHO_LIVE=1`` (:func:`pytest_collection_modifyitems`). With
  ``NEUROMORPHO_LIVE=1`` and ``-m live`` the same tests meet ``NEUROMORPHO_LIVE_URL`` (default
  ``https://neuromorpho.org``; ``NEUROMORPHO_LIVE_CA`` names a CA file, for an emulator) at
  :data:`LIVE_RATE` request/s, and the whole session may make at most :data:`LIVE_BUDGET` requests:
  one more fails the test that asked, it never waits or hangs (each request has a 30 s deadline and a
  single attempt).

Requests go through the library's own transport (pacer, one attempt, TLS at the level that works), and a
test sees the status, the headers and the JSON, as the client would before its parsers run.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from neuromorpho_fetch import NeuroMorpho, RetryPolicy, Timeouts
from neuromorpho_fetch.emulator import EmulatorConfig, serve_in_thread
from neuromorpho_fetch.transport import read_all

#: The most requests one live session may make (the issue's budget; the tests need about 20).
LIVE_BUDGET = 30
#: Requests per second against a live server.
LIVE_RATE = 1.0
LIVE_URL = "https://neuromorpho.org"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


class Api:
    """GET requests through one client's transport, counted against a budget (``None``: no budget)."""

    def __init__(self, client: NeuroMorpho, runner: asyncio.Runner, budget: int | None) -> None:
        self.client = client
        self.runner = runner
        self.budget = budget
        self.made = 0

    @property
    def base_url(self) -> str:
        return self.client.base_url

    def get(self, path: str, **params: str) -> Answer:
        """``GET base_url + path`` with ``params``; any status is returned, not raised."""
        self.made += 1
        if self.budget is not None and self.made > self.budget:
            pytest.fail(f"the live request budget of {self.budget} is spent: a contract test asks too much")
        return self.runner.run(self._get(self.base_url + path, list(params.items())))

    async def _get(self, url: str, params: list[tuple[str, str]]) -> Answer:
        async def read(resp: aiohttp.ClientResponse) -> Answer:
            return Answer(resp.status, dict(resp.headers), await read_all(resp))

        return await self.client.transport.request(url, read, lambda a: a, params=params, ok=range(200, 600))


def _client(base_url: str, ca_file: str | None, rate: float) -> NeuroMorpho:
    return NeuroMorpho(
        base_url,
        ca_file=ca_file,
        rate=rate,
        concurrency=1,
        retries=RetryPolicy(attempts=1),
        timeouts=Timeouts(connect=10, headers=20, idle=20, attempt=30),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``NEUROMORPHO_LIVE=1`` the live tests are deselected whatever ``-m`` says (``-m system``
    would otherwise select them, only to skip them): collected, never run by accident."""
    if os.environ.get("NEUROMORPHO_LIVE") == "1":
        return
    live = [item for item in items if item.get_closest_marker("live") is not None]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if item.get_closest_marker("live") is None]


@pytest.fixture(scope="session")
def _emulator_api() -> Iterator[Api]:
    with (
        serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="modern")) as emu,
        asyncio.Runner() as runner,
    ):
        client = _client(emu.base_url, emu.ca_file, rate=200.0)
        runner.run(client.__aenter__())
        try:
            yield Api(client, runner, None)
        finally:
            runner.run(client.aclose())


@pytest.fixture(scope="session")
def _live_api() -> Iterator[Api]:
    url = os.environ.get("NEUROMORPHO_LIVE_URL") or LIVE_URL
    with asyncio.Runner() as runner:
        client = _client(url, os.environ.get("NEUROMORPHO_LIVE_CA") or None, rate=LIVE_RATE)
        runner.run(client.__aenter__())
        try:
            yield Api(client, runner, LIVE_BUDGET)
        finally:
            runner.run(client.aclose())


@pytest.fixture(
    params=[
        pytest.param("emulator", marks=pytest.mark.system),
        pytest.param("live", marks=[pytest.mark.live, pytest.mark.system]),
    ]
)
def api(request: pytest.FixtureRequest) -> Api:
    """The server under test (module docstring)."""
    name = "_emulator_api" if request.param == "emulator" else "_live_api"
    found: Api = request.getfixturevalue(name)
    return found
