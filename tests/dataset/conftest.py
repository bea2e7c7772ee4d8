"""Real mirrors for the dataset tests: the CLI run against the emulator, then the dataset layer on top.

One mirror of two archives (both file versions and morphometry) is built per session; a test that
changes the tree works on its own copy (``mirror_copy``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch import cli
from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, serve_in_thread

#: Two archives with different species, list values, multi-word values and two DOIs per neuron.
ARCHIVES = ("Siegert", "Amaral")


@pytest.fixture(scope="session")
def emu() -> Iterator[Emulator]:
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4)) as server:
        yield server


def run_mirror(emulator: Emulator, out: Path, *extra: str) -> None:
    """The real CLI, in this process; fast settings, no politeness (a local emulator)."""
    args = ["--base-url", emulator.base_url, "--out", str(out), "--no-progress", "--quiet"]
    args += ["--rate", "2000", "--concurrency", "8", *extra]
    code = cli.main(args)
    assert code == 0, f"mirror run failed with exit code {code}"


@pytest.fixture(scope="session")
def mirror_root(emu: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two archives, CNG + source files and morphometry; the run's own end built the dataset layer (its
    first build, from the tree: the rebuild path)."""
    root = tmp_path_factory.mktemp("mirror") / "out"
    archives = [a for name in ARCHIVES for a in ("--archive", name)]
    run_mirror(emu, root, *archives, "--version", "both", "--with-morphometry")
    return root


@pytest.fixture
def mirror_copy(mirror_root: Path, tmp_path: Path) -> Path:
    """A private copy of the session mirror, for tests that change it."""
    copy = tmp_path / "out"
    shutil.copytree(mirror_root, copy)
    return copy
