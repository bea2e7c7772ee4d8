"""A pytest fixture that serves the emulator for a whole test session.

Enable it in a ``conftest.py``::

    pytest_plugins = ["neuromorpho_fetch.emulator.pytest_plugin"]

    def test_download(neuromorpho_emulator):
        client = MyClient(base_url=neuromorpho_emulator.base_url, ca_file=neuromorpho_emulator.ca_file)

The server runs in its own thread, so it serves sync and async tests alike. Override the
``neuromorpho_emulator_config`` fixture (session scope) to change any switch; counters are shared by
the session, so call ``neuromorpho_emulator.reset()`` in a test that counts requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._config import EmulatorConfig
from .runner import Emulator, serve_in_thread


@pytest.fixture(scope="session")
def neuromorpho_emulator_config() -> EmulatorConfig:
    """The default server: 2,000 neurons, seed 7, legacy TLS, no faults, a free port."""
    return EmulatorConfig(port=0)


@pytest.fixture(scope="session")
def neuromorpho_emulator(neuromorpho_emulator_config: EmulatorConfig) -> Iterator[Emulator]:
    """A running emulator: ``.base_url``, ``.ca_file``, ``.stats()``, ``.reset()``."""
    with serve_in_thread(neuromorpho_emulator_config) as emu:
        yield emu
