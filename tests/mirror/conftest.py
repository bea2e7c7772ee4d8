"""Emulators and helpers for the mirror's end-to-end tests (all over TLS with the emulator's own CA)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import cli
from neuromorpho_fetch.dataset import BIB_FILE, CATALOGUE_FILE, CHANGES_FILE, CITATION_FILE, MANIFEST
from neuromorpho_fetch.emulator import Emulator, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.errors import NoSuchFileError
from neuromorpho_fetch.layout import file_task, relative_path
from neuromorpho_fetch.models import Neuron, Version

#: Fast, deterministic client settings for a local emulator (politeness is not the point here).
FAST = [
    *("--rate", "2000", "--concurrency", "8", "--retries", "6"),
    *("--retry-wait", "0.01", "--retry-after-max", "0.05", "--cool-down", "0.05"),
]


@pytest.fixture(scope="session")
def emu() -> Iterator[Emulator]:
    """A well-behaved server with a legacy-DH certificate: 400 neurons, Siegert has 28."""
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="legacy-dh", file_kb=4)) as server:
        yield server


@pytest.fixture
def server(emu: Emulator) -> Emulator:
    emu.reset(faults=True)
    return emu


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """The CLI in this process (fast); subprocesses are for signals only."""
    capsys.readouterr()
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def base_args(emulator: Emulator, out: Path, *extra: str) -> list[str]:
    args = ["--base-url", emulator.base_url, "--out", str(out), "--no-progress", *FAST, *extra]
    if emulator.ca_file:
        args += ["--ca-file", emulator.ca_file]
    return args


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(cli.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def spawn(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "neuromorpho_fetch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        **kwargs,
    )


def archive_neurons(emulator: Emulator, archive: str) -> list[Neuron]:
    """The archive's neurons straight from the catalogue (ground truth, not our metadata)."""
    cat = emulator.catalogue
    out = []
    for neuron_id in cat.neuron_ids():
        record = cat.record(neuron_id)
        if record is not None and record["archive"] == archive:
            out.append(Neuron.from_record(record))
    return out


def cng_urls(emulator: Emulator, archive: str) -> dict[str, str]:
    """Relative path → URL of every CNG file of ``archive`` (to look its requests up by path)."""
    tasks = (file_task(emulator.base_url, n, Version.CNG) for n in archive_neurons(emulator, archive))
    return {task.path.as_posix(): task.url for task in tasks}


def expected_files(
    emulator: Emulator, archive: str, versions: Sequence[Version] = (Version.CNG,)
) -> dict[str, bytes]:
    """Relative path → exact bytes the server holds, for every file of ``archive``."""
    files: dict[str, bytes] = {}
    for neuron in archive_neurons(emulator, archive):
        for version in versions:
            held = emulator.catalogue.file_for(neuron.id, version.value)
            try:
                rel = relative_path(neuron, version)
            except NoSuchFileError:
                continue
            if held is not None:
                files[rel.as_posix()] = held.body
    return files


#: What the end of every run writes besides the files (issue 12's dataset layer), at the root.
DATASET_FILES = frozenset({CATALOGUE_FILE, CHANGES_FILE, CITATION_FILE, BIB_FILE})


def tree(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` except the tool's own state folder and the dataset layer (catalogue,
    citations, changes, ``SHA256SUMS``): what the server's files and metadata became."""
    found = {}
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if not path.is_file() or rel.startswith(".neuromorpho-fetch/"):
            continue
        if rel in DATASET_FILES or path.name == MANIFEST:
            continue
        found[rel] = path.read_bytes()
    return found


def held_files(folder: Path) -> list[Path]:
    """The downloaded files of one ``<archive>/<version>/`` folder, sorted (no ``SHA256SUMS``)."""
    return sorted(p for p in folder.iterdir() if p.name != MANIFEST)


def data_files(out: Path) -> dict[str, bytes]:
    """The downloaded files only (no metadata.jsonl)."""
    return {k: v for k, v in tree(out).items() if not k.endswith(".jsonl")}


def part_files(out: Path) -> list[Path]:
    return list(out.rglob("*.part"))
