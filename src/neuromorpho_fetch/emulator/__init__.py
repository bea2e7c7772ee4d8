"""An offline NeuroMorpho.Org: API, file server, legacy TLS and faults, for tests, benchmarks and demos.

Run it as a command (``python -m neuromorpho_fetch.emulator --port 8443``), in async code
(``async with run_emulator(EmulatorConfig(...)) as emu``), in a thread (``with serve_in_thread() as emu``)
or through the pytest plugin (``pytest_plugins = ["neuromorpho_fetch.emulator.pytest_plugin"]``).
See ``docs/emulator.md``.
"""

from ._config import FAULT_KINDS, CatalogueChanges, EmulatorConfig, HostileConfig
from .catalogue import Catalogue
from .runner import Emulator, run_emulator, serve_in_thread

__all__ = [
    "FAULT_KINDS",
    "Catalogue",
    "CatalogueChanges",
    "Emulator",
    "EmulatorConfig",
    "HostileConfig",
    "run_emulator",
    "serve_in_thread",
]
