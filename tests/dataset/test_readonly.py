"""Issue 17 item 5: the readers never write into a mirror: ``neuromorpho-fetch-find`` on a read-only copy
with no catalogue (run as a non-root user: the tests run as root, for whom permissions stop nothing),
and on a mirror whose lock a run holds, changes no byte of it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuromorpho_fetch.dataset import CATALOGUE_FILE, LocalMirror
from neuromorpho_fetch.lock import DirLock

pytestmark = pytest.mark.system

SETPRIV = shutil.which("setpriv")
NOBODY = 65534


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and folder of the tree, with the hash of every byte (and the mode: nothing chmod-ed)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = oct(path.lstat().st_mode)
        out[rel] = mode + (":" + hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
    return out


@pytest.fixture
def shared_copy(mirror_root: Path) -> Iterator[Path]:
    """A copy of the session mirror where another user can read it (pytest's tmp folders are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="nm-readonly-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        root = base / "out"
        shutil.copytree(mirror_root, root)
        yield root
    finally:
        shutil.rmtree(base)


def find_as(user: list[str], root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*user, sys.executable, "-m", "neuromorpho_fetch.dataset.cli", "--root", str(root), *args]
    env = {**os.environ, "HOME": "/tmp", "TMPDIR": "/tmp"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None, reason="needs root to become another user")
def test_find_on_a_read_only_copy_without_a_catalogue(shared_copy: Path) -> None:
    """As ``nobody`` the copy (owned by root, 0755/0644) is truly read-only, as on a shared drive."""
    (shared_copy / CATALOGUE_FILE).unlink()
    before = tree_digest(shared_copy)
    nobody = [str(SETPRIV), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run([*nobody, "touch", str(shared_copy / "probe")], capture_output=True, check=False)
    assert probe.returncode != 0  # the user really cannot write there
    result = find_as(nobody, shared_copy, "--archive", "Siegert", "--print", "names")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) > 0
    assert result.stderr.count("\n") == 1 and "private catalogue" in result.stderr
    assert "corrupt" not in result.stderr
    cited = find_as(nobody, shared_copy, "--archive", "Siegert", "--cite")
    assert cited.returncode == 0 and "@article{tecuatl_2024_neuromorpho" in cited.stdout, cited.stderr
    assert tree_digest(shared_copy) == before


def test_find_and_local_mirror_while_a_run_holds_the_lock_change_nothing(shared_copy: Path) -> None:
    before = tree_digest(shared_copy)
    with DirLock(shared_copy):
        locked = tree_digest(shared_copy)  # the lock file now holds our pid
        result = find_as([], shared_copy, "--archive", "Amaral", "--format", "jsonl")
        assert result.returncode == 0 and result.stdout and not result.stderr, result.stderr
        with LocalMirror(shared_copy) as mirror:
            assert len(list(mirror.select(archive="Amaral"))) == len(result.stdout.splitlines())
        assert tree_digest(shared_copy) == locked
    assert set(locked) == set(before)


def test_a_catalogue_older_than_the_records_is_rebuilt_privately_with_one_warning(shared_copy: Path) -> None:
    metadata = shared_copy / "siegert" / "metadata.jsonl"
    later = (shared_copy / CATALOGUE_FILE).stat().st_mtime + 60
    os.utime(metadata, (later, later))
    before = tree_digest(shared_copy)
    with pytest.warns(UserWarning, match="older than the mirrored records") as caught:
        mirror = LocalMirror(shared_copy)
    with mirror:
        assert len(mirror) > 0 and len(caught) == 1
    assert tree_digest(shared_copy) == before
