"""Every ```python block in docs/ runs, as written, against the emulator.

The blocks of one page run in order as one script (later blocks use names the earlier ones defined), in a
fresh interpreter whose environment points the library at the emulator the way the docs tell a reader to:
``NEUROMORPHO_BASE_URL`` and ``SSL_CERT_FILE``. A page with no Python blocks has nothing to check here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.emulator import EmulatorConfig, serve_in_thread

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


PAGES = sorted(p for p in DOCS.glob("*.md") if python_blocks(p))


@pytest.fixture(scope="module")
def emulator_env() -> Iterator[dict[str, str]]:
    # The public server's TLS quirk is on: the docs must work against it with no extra flags.
    # The default size (2,000 neurons), the emulator the docs tell a reader to start (issue 17).
    with serve_in_thread(EmulatorConfig(seed=7, tls="legacy-dh")) as emu:
        env = dict(os.environ)
        env["NEUROMORPHO_BASE_URL"] = emu.base_url
        assert emu.ca_file is not None
        env["SSL_CERT_FILE"] = emu.ca_file
        yield env


def test_the_docs_have_runnable_examples() -> None:
    names = {p.name for p in PAGES}
    assert {"tutorial.md", "library.md"} <= names, names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page: Path, emulator_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / f"{page.stem}.py"
    script.write_text("\n\n".join(python_blocks(page)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=emulator_env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, f"{page.name} examples failed:\n{done.stdout}\n{done.stderr}"
