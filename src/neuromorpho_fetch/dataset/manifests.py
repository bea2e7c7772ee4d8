"""``SHA256SUMS`` in each ``<archive>/<version>/`` folder, in GNU coreutils' format.

Why that format: ``cd <archive>/CNG && sha256sum -c SHA256SUMS`` then proves the folder intact on any
machine, without this tool. The format, as coreutils 9.1 writes and reads it (checked with the real
command in the tests): ``<64 hex><space><space><name>`` per line (``<space>*<name>`` is binary mode; both
are accepted by ``-c``, the two spaces are what ``sha256sum`` prints by default). A name holding ``\\``,
a newline or a carriage return is escaped (``\\\\``, ``\\n``, ``\\r``) and its line starts with a
``\\``. The mirror's own names never need it (:func:`neuromorpho_fetch.layout.safe_component`
percent-encodes those characters), but a manifest must stay correct for any name.

The manifests also stand in for the state store: when ``state.sqlite`` is lost, :func:`check_manifests`
re-hashes the tree against them and names the files to fetch again (``--verify``).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write, hash_file, sweep_temp
from ..paths import MANIFEST
from .catalogue import transaction

_HEX = re.compile(r"[0-9a-f]{64}")
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def format_line(name: str, sha256: str) -> str:
    """One manifest line (with its ``\\n``), escaped the way ``sha256sum`` escapes it."""
    if not _HEX.fullmatch(sha256):
        raise ValueError(f"not a lower-case SHA-256 hex digest: {sha256!r}")
    if any(ch in name for ch in _ESCAPES):
        return "\\" + sha256 + "  " + "".join(_ESCAPES.get(ch, ch) for ch in name) + "\n"
    return f"{sha256}  {name}\n"


def parse_line(line: str) -> tuple[str, str] | None:
    """``(name, sha256)`` of one manifest line (either mode, escaped or not); ``None`` if it is not one."""
    line = line.rstrip("\n")
    escaped = line.startswith("\\")
    if escaped:
        line = line[1:]
    if len(line) < 67 or line[64] != " " or line[65] not in " *":
        return None
    digest, name = line[:64].lower(), line[66:]
    if not _HEX.fullmatch(digest):
        return None
    if escaped:
        out: list[str] = []
        i = 0
        while i < len(name):
            if name[i] == "\\" and i + 1 < len(name) and name[i + 1] in _UNESCAPES:
                out.append(_UNESCAPES[name[i + 1]])
                i += 2
            else:
                out.append(name[i])
                i += 1
        name = "".join(out)
    return name, digest


def read_manifest(path: Path) -> dict[str, str]:
    """Name → SHA-256 of a manifest file; lines that are not manifest lines are ignored."""
    found: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as handle:
        for line in handle:
            parsed = parse_line(line)
            if parsed is not None:
                found[parsed[0]] = parsed[1]
    return found


def write_folder_manifest(conn: sqlite3.Connection, root: Path, folder: str) -> bool:
    """Make ``<root>/<folder>/SHA256SUMS`` list the catalogue's ``files`` rows of that folder.

    Rows whose file is no longer on disk (a user deleted it) are dropped from the catalogue first, so
    ``sha256sum -c`` does not fail over a file the mirror no longer claims to hold. A folder left with no
    file loses its manifest. An unchanged manifest is not rewritten (one fsync less per folder on a
    re-run). Returns whether the file changed.

    Streamed, in two passes over the rows: the first hashes the manifest it would write (and finds the
    rows to drop), the second writes it when that differs from the one on disk. Building it in memory
    cost a 265,000-neuron run's end a 57 MB peak for its biggest folder (scenario 6's peak RSS).
    """
    archive, _, version = folder.partition("/")
    target_dir = root / archive / version
    on_disk = sweep_temp(target_dir, MANIFEST)
    target = target_dir / MANIFEST
    missing: list[tuple[str]] = []

    def lines() -> Iterator[str]:
        rows = conn.execute(
            "SELECT path, sha256 FROM files WHERE archive=? AND version=? ORDER BY path", (archive, version)
        )
        for path, digest in rows:
            name = path.rsplit("/", 1)[1]
            if name in on_disk:
                yield format_line(name, digest)
            else:
                missing.append((path,))

    wanted, size = hashlib.sha256(), 0
    for chunk in _encoded(lines()):
        wanted.update(chunk)
        size += len(chunk)
    if missing:
        conn.executemany("DELETE FROM files WHERE path=?", missing)
    if not size:
        existed = target.exists()
        target.unlink(missing_ok=True)
        return existed
    try:
        if hash_file(target) == (size, wanted.hexdigest()):
            return False
    except OSError:
        pass
    atomic_write(target, _encoded(lines()))
    return True


def rewrite_manifests(conn: sqlite3.Connection, root: Path, folders: Iterable[str]) -> int:
    """Write the manifest of each of ``folders`` (``archive/version``) and clear their stale marks, in one
    transaction; returns how many changed.

    The marks (``dirty_manifests``) go only after every manifest is written: a kill before the commit
    only means the next run writes them again.
    """
    written = 0
    with transaction(conn):
        for folder in sorted(folders):
            written += write_folder_manifest(conn, root, folder)
        conn.executemany("DELETE FROM dirty_manifests WHERE folder = ?", ((f,) for f in sorted(folders)))
    return written


def _encoded(lines: Iterable[str]) -> Iterator[bytes]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 4096:
            yield "".join(batch).encode("utf-8", "surrogateescape")
            batch = []
    if batch:
        yield "".join(batch).encode("utf-8", "surrogateescape")


@dataclass(slots=True)
class ManifestCheck:
    """What :func:`check_manifests` found; paths are relative to the mirror root."""

    manifests: int = 0
    checked: int = 0
    ok: int = 0
    corrupt: list[str] = field(default_factory=list)  # hash differs
    missing: list[str] = field(default_factory=list)  # listed, not on disk

    @property
    def bad(self) -> list[str]:
        """Every file to fetch again."""
        return sorted(self.corrupt + self.missing)


def manifest_folders(root: Path) -> Iterator[Path]:
    """Every ``<archive>/<version>/`` folder under ``root`` holding a manifest."""
    for manifest in sorted(root.glob(f"*/*/{MANIFEST}")):
        if not manifest.parent.parent.name.startswith("."):  # not the state folder
            yield manifest.parent


def manifest_entries(
    root: Path,
    folders: Iterable[str] | None = None,
    *,
    on_error: Callable[[Path, OSError], None] | None = None,
) -> Iterator[tuple[str, Path, list[tuple[str, str]]]]:
    """Each manifest under ``root`` (all of them, or those of ``folders``, ``archive/version``) as
    ``(folder relative to root, folder, its (name, sha256) pairs sorted by name)``.

    A manifest that cannot be read raises, or, given ``on_error``, is reported there and skipped.
    """
    wanted = manifest_folders(root) if folders is None else (root / f for f in folders)
    for folder in wanted:
        manifest = folder / MANIFEST
        if not manifest.is_file():
            continue
        try:
            listed = read_manifest(manifest)
        except OSError as exc:
            if on_error is None:
                raise
            on_error(manifest, exc)
            continue
        yield folder.relative_to(root).as_posix(), folder, sorted(listed.items())


def check_manifests(root: Path, folders: Iterable[str] | None = None) -> ManifestCheck:
    """Re-hash every file the manifests list (all of them, or those of ``folders``, ``archive/version``).

    Blocking and as slow as reading the files: what ``--verify`` runs when the state store is gone.
    """
    result = ManifestCheck()
    for rel, folder, entries in manifest_entries(root, folders):
        result.manifests += 1
        for name, digest in entries:
            result.checked += 1
            path = folder / name
            try:
                _, actual = hash_file(path)
            except FileNotFoundError:
                result.missing.append(f"{rel}/{name}")
                continue
            if actual == digest:
                result.ok += 1
            else:
                result.corrupt.append(f"{rel}/{name}")
    return result
