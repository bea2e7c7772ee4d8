"""Fixtures for the emulator's own tests: one small catalogue, many short-lived servers.

Building the catalogue is the slow part of starting an emulator, so one is built per session and
handed to every server; a server with the switches a test needs then starts in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import pytest

from neuromorpho_fetch.emulator import Catalogue, Emulator, EmulatorConfig, serve_in_thread

SMALL = EmulatorConfig(tls="none", neurons=300, seed=7)
#: Session catalogues keep every file they build (a few hundred MB at most): many tests read every file
#: of the same catalogue, and growing each once is most of the emulator suite's time.
KEEP_ALL_MB = 1024.0

Start = Callable[..., Emulator]


@pytest.fixture(scope="session")
def small_catalogue() -> Catalogue:
    return Catalogue(SMALL.neurons, SMALL.seed, cache_mb=KEEP_ALL_MB)


@pytest.fixture(scope="session")
def full_catalogue() -> Catalogue:
    """The full-size (265,000 neuron) catalogue, built once for every test that reads one."""
    return Catalogue(265_000, SMALL.seed)


@pytest.fixture(scope="session")
def hostile_catalogue() -> Catalogue:
    return Catalogue(SMALL.neurons, SMALL.seed, hostile_names=True, cache_mb=KEEP_ALL_MB)


@pytest.fixture(scope="session")
def plain(small_catalogue: Catalogue) -> Iterator[Emulator]:
    """A well-behaved plain-HTTP server shared by the read-only tests."""
    with serve_in_thread(SMALL, catalogue=small_catalogue) as emu:
        yield emu


@pytest.fixture
def start(small_catalogue: Catalogue) -> Iterator[Start]:
    """``start(fault_rate=1, faults=("503",))``: a fresh server with those switches, stopped afterwards."""
    with ExitStack() as stack:

        def _start(catalogue: Catalogue | None = None, **overrides: Any) -> Emulator:
            config = replace(SMALL, **overrides)
            return stack.enter_context(serve_in_thread(config, catalogue=catalogue or small_catalogue))

        yield _start
