"""The pytest plugin users enable with ``pytest_plugins = ["neuromorpho_fetch.emulator.pytest_plugin"]``."""

from __future__ import annotations

import pytest
import requests

from neuromorpho_fetch import ssl_context
from neuromorpho_fetch.emulator import Emulator

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system


def test_session_fixture_serves_legacy_tls(neuromorpho_emulator: Emulator) -> None:
    assert neuromorpho_emulator.base_url.startswith("https://")
    assert neuromorpho_emulator.ca_file is not None
    ctx = ssl_context(ca_file=neuromorpho_emulator.ca_file, legacy=True)
    import urllib.request

    with urllib.request.urlopen(neuromorpho_emulator.base_url + "/api/health", context=ctx, timeout=10) as r:
        assert r.status == 200


def test_a_user_project_can_override_the_config(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from neuromorpho_fetch.emulator import EmulatorConfig

        pytest_plugins = ["neuromorpho_fetch.emulator.pytest_plugin"]

        @pytest.fixture(scope="session")
        def neuromorpho_emulator_config():
            return EmulatorConfig(tls="none", neurons=50, seed=3)
        """
    )
    pytester.makepyfile(
        """
        import json, urllib.request

        def test_health(neuromorpho_emulator):
            assert len(neuromorpho_emulator.catalogue) == 50
            with urllib.request.urlopen(neuromorpho_emulator.base_url + "/api/health") as r:
                assert json.load(r) == {"status": "UP"}
            assert neuromorpho_emulator.stats()["api_requests"] == 1
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_stock_requests_fails_against_the_fixture(neuromorpho_emulator: Emulator) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            neuromorpho_emulator.base_url + "/api/health", verify=neuromorpho_emulator.ca_file, timeout=5
        )
