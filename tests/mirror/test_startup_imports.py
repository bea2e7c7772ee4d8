"""What start-up imports (issue 19): ``-V`` loads no network stack, a quiet run loads no bars.

Start-up is a fixed cost every cron job and every pipeline's test pays; an eager import slipped into a
module (the dataset layer, tqdm's logging bridge, trustme, the emulator) would put it back unnoticed.
Each case runs the CLI in a fresh interpreter and reads ``python -X importtime``'s log of what it
imported, so the test fails on the import, whatever the machine's speed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import Emulator

from .conftest import base_args, subprocess_env

pytestmark = pytest.mark.system


def imported(*args: str) -> tuple[int, set[str]]:
    """The CLI's exit code and every module it imported (top-level and nested)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "neuromorpho_fetch", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    names = {
        line.split("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return done.returncode, names


def loaded(names: set[str], package: str) -> bool:
    return any(n == package or n.startswith(package + ".") for n in names)


def test_version_imports_no_network_stack_and_no_engine() -> None:
    code, names = imported("-V")
    assert code == 0
    assert "neuromorpho_fetch.cli" in names  # the log is read right
    modules = ("asyncio", "aiohttp", "tenacity", "tqdm", "aiofiles", "neuromorpho_fetch.mirror.run")
    for heavy in modules:
        assert not loaded(names, heavy), heavy


def test_a_quiet_run_imports_no_bars_no_emulator_no_test_certificates(
    server: Emulator, tmp_path: Path
) -> None:
    code, names = imported(*base_args(server, tmp_path / "out", "--archive", "Siegert", "-q"))
    assert code == 0
    assert "aiohttp" in names  # it did run
    assert list((tmp_path / "out").rglob("*.swc"))
    for unneeded in ("tqdm", "trustme", "neuromorpho_fetch.emulator", "neuromorpho_fetch.testing"):
        assert not loaded(names, unneeded), unneeded
