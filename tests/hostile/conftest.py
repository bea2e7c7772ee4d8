"""Issue 10's regression tests: the CLI against a hostile emulator, broken state and bad input.

The mirror tests' helpers (``run_cli``, ``base_args``, the tree readers) are loaded from
``tests/mirror/conftest.py`` by path rather than copied: one set of helpers for every CLI test.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch.emulator import Catalogue, Emulator, EmulatorConfig, serve_in_thread

_spec = importlib.util.spec_from_file_location(
    "_mirror_test_helpers", Path(__file__).parents[1] / "mirror" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_mirror = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_mirror)

FAST = _mirror.FAST
Result = _mirror.Result
run_cli = _mirror.run_cli
base_args = _mirror.base_args
spawn = _mirror.spawn
subprocess_env = _mirror.subprocess_env
expected_files = _mirror.expected_files
archive_neurons = _mirror.archive_neurons
data_files = _mirror.data_files
part_files = _mirror.part_files
tree = _mirror.tree

#: The archive the honesty tests mirror (28 neurons with seed 7 and 400 neurons).
ARCHIVE = "Siegert"


@pytest.fixture(scope="session")
def plain_emu() -> Iterator[Emulator]:
    """A well-behaved plain-http server (loopback, so no http warning): 400 neurons, Siegert has 28."""
    with serve_in_thread(EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4)) as server:
        yield server


@pytest.fixture
def plain(plain_emu: Emulator) -> Emulator:
    plain_emu.reset(faults=True)
    return plain_emu


_INFO = re.compile(r"\d\d:\d\d:\d\d INFO ")


def stderr_lines(err: str) -> list[str]:
    """The non-empty lines a user sees on stderr."""
    return [line for line in err.splitlines() if line.strip()]


def assert_one_line(err: str, *needles: str) -> str:
    """Exactly one line on stderr besides INFO log lines, no traceback, holding every needle; returns
    the line. (INFO lines are the run's narrative, e.g. the dataset step saying it was skipped; every
    WARNING and ERROR line counts.)"""
    lines = [line for line in stderr_lines(err) if not _INFO.match(line)]
    assert "Traceback" not in err
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def read_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_counts_add_up(report: dict[str, Any]) -> None:
    """Every planned file in exactly one count (morphometry failures are not files)."""
    file_failures = [f for f in report["failures"] if f["version"] != "morphometry"]
    assert report["failed"] == len(report["failures"])
    settled = report["downloaded"] + report["skipped"] + len(file_failures) + report["not_started"]
    assert settled == report["files"], report


# -- servers with switches (transport, listing and TLS tests) --------------------------------------

Serve = Callable[..., Emulator]


@pytest.fixture(scope="session")
def small_catalogue() -> Catalogue:
    """The catalogue of ``plain_emu`` (400 neurons, seed 7), built once and shared by every server."""
    return Catalogue(400, 7)


@pytest.fixture
def serve(small_catalogue: Catalogue) -> Iterator[Serve]:
    """``serve(hostile=HostileConfig(...), tls="modern", ...)``: a fresh server with those settings over
    the shared catalogue (plain HTTP, 4 KB files unless told), stopped after the test."""
    with contextlib.ExitStack() as stack:

        def _serve(**overrides: Any) -> Emulator:
            config = EmulatorConfig(**{"neurons": 400, "seed": 7, "tls": "none", "file_kb": 4, **overrides})
            return stack.enter_context(serve_in_thread(config, catalogue=small_catalogue))

        yield _serve


def outside(out: Path, *also: Path) -> dict[str, str]:
    """SHA-256 of every file next to ``out`` (its parent folder, ``out`` itself and ``also`` left out),
    symlinks by their target text: what a run must never change. A sentinel folder is planted there
    first, so there is always something to compare."""
    sentinel = out.parent / "sentinel"
    if not sentinel.exists():
        (sentinel / "deep").mkdir(parents=True)
        (sentinel / "keep.txt").write_bytes(b"a user's file, not ours\n")
        (sentinel / "deep" / "data.swc").write_bytes(b"1 1 0 0 0 1 -1\n")
    skip = {out.resolve(), *(p.resolve() for p in also)}
    seen: dict[str, str] = {}
    for path in sorted(out.parent.rglob("*")):
        if any(path == s or s in path.parents for s in skip) or path.resolve() in skip:
            continue
        rel = path.relative_to(out.parent).as_posix()
        if path.is_symlink():
            seen[rel] = f"-> {os.readlink(path)}"
        elif path.is_file():
            seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def run_checked(
    server: Emulator, out: Path, capsys: pytest.CaptureFixture[str], *extra: str, archive: str = ARCHIVE
) -> tuple[int, str, dict[str, Any]]:
    """Mirror ``archive`` with ``--report``, and check what every run must hold: no traceback, the
    report equal to the exit code, counts that add up, no ``.part``, nothing outside ``--out`` (but the
    report) changed. Returns (code, stderr, report)."""
    report = out.parent / f"{out.name}.json"
    before = outside(out, report)
    result = run_cli([*base_args(server, out, "--report", str(report), *extra), "--archive", archive], capsys)
    assert "Traceback" not in result.err
    data = read_report(report)
    assert data["exit_code"] == result.code
    assert_counts_add_up(data)
    assert not part_files(out)
    assert outside(out, report) == before
    return result.code, result.err, data
