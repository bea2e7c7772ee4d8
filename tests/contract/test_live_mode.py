"""The live mode of the contract tests works before anyone points it at the real server: collected but
deselected by default, and passing, within its budget, when pointed at an emulator over TLS."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuromorpho_fetch import NeuroMorpho
from neuromorpho_fetch.emulator import EmulatorConfig, serve_in_thread

from .conftest import Api

pytestmark = pytest.mark.system

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def pytest_run(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROMORPHO_LIVE")}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(environ)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_contract.py")]
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def count(output: str, what: str) -> int:
    found = re.search(rf"(\d+) {what}", output)
    return int(found.group(1)) if found else 0


def test_live_tests_are_collected_and_deselected_by_default() -> None:
    done = pytest_run("--collect-only")
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", done.stdout)
    assert found is not None, done.stdout
    kept, total, deselected = map(int, found.groups())
    assert kept == deselected == total // 2 > 0 and "[live]" not in done.stdout


def test_live_mode_passes_against_the_emulator_within_its_budget() -> None:
    """NEUROMORPHO_LIVE_URL at an emulator with the public server's legacy TLS and its own CA: every live
    test passes at 1 request/s, none is skipped, and the server saw no more than the budget."""
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="legacy-dh")) as emu:
        assert emu.ca_file is not None
        done = pytest_run(
            "-m",
            "live",
            NEUROMORPHO_LIVE="1",
            NEUROMORPHO_LIVE_URL=emu.base_url,
            NEUROMORPHO_LIVE_CA=emu.ca_file,
        )
        stats = emu.stats()
    assert done.returncode == 0, done.stdout + done.stderr
    assert count(done.stdout, "passed") == count(done.stdout, "deselected") > 0
    assert count(done.stdout, "skipped") == 0 and count(done.stdout, "failed") == 0
    assert stats["requests_total"] <= 30 and stats["max_per_second"] <= 2


def test_a_spent_budget_fails_the_test_before_any_request() -> None:
    """The budget is checked before a request is made: one too many fails at once, it never waits."""
    with asyncio.Runner() as runner:
        api = Api(NeuroMorpho("http://127.0.0.1:9"), runner, budget=0)
        with pytest.raises(pytest.fail.Exception, match="budget of 0 is spent"):
            api.get("/api/health")
    assert api.made == 1
