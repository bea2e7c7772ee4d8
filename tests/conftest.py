"""Suite-wide plugins: pytester (to test our own pytest plugin) and the emulator's fixture.

``neuromorpho_emulator`` (session scope, legacy TLS, free port) is started only by tests that ask for
it; other suites build servers with the switches they need through ``serve_in_thread``.
"""

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester", "neuromorpho_fetch.emulator.pytest_plugin"]

# Property tests assert what holds for every input, never how fast inputs are drawn: on a 2-core machine
# under load (CI, a parallel run) hypothesis's "input generation is slow" check fails tests that are
# right, and its per-example deadline is a wall-clock assertion. Both are off for the whole suite.
settings.register_profile("suite", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("suite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``timing`` and ``live`` tests run only when ``-m`` names them: any other ``-m`` (the fast tier's
    ``-m "not system"``) replaces a ``-m`` in ``addopts`` instead of adding to it, so the opt-in is here."""
    asked = str(config.getoption("markexpr") or "")
    opt_in = [name for name in ("timing", "live") if name not in asked]
    dropped = [item for item in items if any(item.get_closest_marker(name) for name in opt_in)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
