"""Fixtures for the client tests: one catalogue per session, a fresh emulator per switch set.

Building the catalogue is the slow part of starting an emulator, so a small one (600 neurons: two
pages at size 500, six at a clamped 100) is built once; each test then starts a server with exactly the
switches it needs in milliseconds, in its own thread so the client under test owns the test's loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import NeuroMorpho, RetryPolicy, Timeouts
from neuromorpho_fetch.emulator import Catalogue, Emulator, EmulatorConfig, serve_in_thread

BASE = EmulatorConfig(tls="none", neurons=600, seed=11)
#: Retries that cost nothing: the backoff is milliseconds and Retry-After waits go to a fake sleep.
FAST = RetryPolicy(attempts=6, backoff_base=0.001, backoff_max=0.005, retry_after_max=120.0)

Start = Callable[..., Emulator]


class FakeSleep:
    """Records every wait the client asks for and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue(BASE.neurons, BASE.seed)


@pytest.fixture(scope="session")
def big_files() -> Catalogue:
    """Every generated CNG file ~1.5 MB, above one download chunk (so it streams through a temp file)."""
    return Catalogue(BASE.neurons, BASE.seed, file_kb=1500)


def big_neuron_id(cat: Catalogue, chunk: int) -> int:
    """The first neuron whose CNG file is larger than ``chunk`` (record 1 is a verbatim real file)."""
    for neuron_id in cat.neuron_ids():
        held = cat.file_for(neuron_id, "CNG")
        if held is not None and len(held.body) > chunk:
            return neuron_id
    raise AssertionError("no file above one chunk in this catalogue")


@pytest.fixture(scope="session")
def hostile_catalogue() -> Catalogue:
    return Catalogue(BASE.neurons, BASE.seed, hostile_names=True)


@pytest.fixture
def start(catalogue: Catalogue) -> Iterator[Start]:
    """``start(tls="modern", fault_rate=1.0)``: a server with those switches, stopped after the test."""
    with ExitStack() as stack:

        def _start(cat: Catalogue | None = None, **overrides: Any) -> Emulator:
            config = replace(BASE, **overrides)
            return stack.enter_context(serve_in_thread(config, catalogue=cat or catalogue))

        yield _start


@pytest.fixture(scope="session")
def plain(catalogue: Catalogue) -> Iterator[Emulator]:
    """A well-behaved plain-HTTP server for read-only tests (reset its counters before counting)."""
    with serve_in_thread(BASE, catalogue=catalogue) as emu:
        yield emu


def client(emu: Emulator, **options: Any) -> NeuroMorpho:
    """A client for ``emu`` with fast retries and no politeness delay unless the test asks."""
    options.setdefault("retries", FAST)
    options.setdefault("rate", 1000.0)
    options.setdefault("concurrency", 8)
    options.setdefault("timeouts", Timeouts(connect=5, idle=5, attempt=20))
    return NeuroMorpho(emu.base_url, ca_file=emu.ca_file, **options)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]
