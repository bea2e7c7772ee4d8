"""Every path of a mirror, named once and parsed back: the on-disk contract.

::

    <out>/
      .neuromorpho-fetch/          STATE_DIR: the tool's own files, hidden so it never looks like an archive
        state.sqlite               the state store (state.py), with its -wal/-shm while a run holds it
        lock                       one run per folder (lock.py)
        last-report.json           every run's report
        crash-<UTC time>.log       the traceback of an internal error
      catalogue.sqlite             the dataset's catalogue (dataset/catalogue.py)
      CITATION.md, references.bib  citations (dataset/citations.py)
      CHANGES.jsonl                what changed upstream, run by run (dataset/changes.py)
      <folder>/                    one per archive: the archive name lower-cased, made safe
        metadata.jsonl             every record of the archive as served
        morphometry.jsonl          with --with-morphometry
        pvec.jsonl                 with --with-pvec
        <version>/<file>           the data files (CNG, source, ...); SHA256SUMS beside them
    .<final name>.<8 hex>.part     a temp file, beside the file it will become

Everything else asks this module: writers for where to write, readers for what a path means
(:func:`parse_data_path`), sweeps for what they may delete (:func:`is_temp_name`). A second spelling of
any of these names somewhere else is how two modules start to disagree about one tree.

Names are made safe here too (:func:`safe_component`): a server name is kept when it is safe on common
file systems, else percent-encoded character by character where it could escape the folder or misbehave
(``/``, ``\\``, NUL and other control characters, a leading ``.``, ``%`` itself, Windows device names,
a trailing dot or space), and cut with a hash past :data:`MAX_NAME_BYTES`. Since ``%`` is always encoded,
an encoded name can never equal another neuron's literal name: the mapping is one-to-one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

STATE_DIR = ".neuromorpho-fetch"
STATE_FILE = "state.sqlite"
LOCK_FILE = "lock"
LAST_REPORT = "last-report.json"
CATALOGUE_FILE = "catalogue.sqlite"
CITATION_FILE = "CITATION.md"
BIB_FILE = "references.bib"
CHANGES_FILE = "CHANGES.jsonl"
METADATA_FILE = "metadata.jsonl"
MORPHOMETRY_FILE = "morphometry.jsonl"
PVEC_FILE = "pvec.jsonl"
MANIFEST = "SHA256SUMS"
#: The files an archive folder holds beside its version folders.
ARCHIVE_FILES = (METADATA_FILE, MORPHOMETRY_FILE, PVEC_FILE)
#: The files the mirror's root holds, besides archive folders and the state folder.
ROOT_FILES = (CATALOGUE_FILE, CITATION_FILE, BIB_FILE, CHANGES_FILE)

TEMP_SUFFIX = ".part"
#: ``.<final name>.<8 hex>.part``; the name may itself contain dots.
_TEMP = re.compile(r"\..+\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX), re.DOTALL)

#: Most file systems allow 255 bytes per name; keep room for the ``.<random>.part`` suffix.
MAX_NAME_BYTES = 200

#: Device names Windows reserves in every folder, with or without an extension.
WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{dev}{n}" for dev in ("COM", "LPT") for n in range(1, 10)]
)

_EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,10}){1,3}$")
#: A name with nothing to encode, but for the Windows device-name check (see :func:`is_plain_name`).
_PLAIN = re.compile(r"[^./\\%\x00-\x1f\x7f][^/\\%\x00-\x1f\x7f]*(?<![. ])")
_RESERVED_PREFIXES = frozenset(name[:3] for name in WINDOWS_RESERVED)


# -- temp names -------------------------------------------------------------------------------------


def temp_path(target: Path) -> Path:
    """``.<name>.<8 random hex>.part`` in the target's own folder: hidden, unique per writer (two
    processes never share one), on the target's file system (so the rename is atomic)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """True for a name :func:`temp_path` makes (what a sweep may delete)."""
    return _TEMP.fullmatch(name) is not None


# -- safe names -------------------------------------------------------------------------------------


def _windows_reserved(name: str) -> bool:
    return (
        name[:3].upper() in _RESERVED_PREFIXES
        and name.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED
    )


def is_plain_name(name: str) -> bool:
    """True when :func:`safe_component` returns ``name`` unchanged, decided by one regular expression
    (the dataset's finalize asks this of every file: walking each character cost 0.3 s per 5,000
    neurons). The one definition of "safe as it is", so the two can never disagree."""
    return (
        _PLAIN.fullmatch(name) is not None
        and len(name.encode("utf-8")) <= MAX_NAME_BYTES
        and not _windows_reserved(name)
    )


def safe_component(name: str) -> str:
    """Make one path component safe and unambiguous; safe names come back unchanged."""
    out: list[str] = []
    reserved = _windows_reserved(name)
    last = len(name) - 1
    for i, ch in enumerate(name):
        code = ord(ch)
        if (
            ch in "/\\%"
            or code < 0x20
            or code == 0x7F
            or (i == 0 and (ch == "." or reserved))
            or (i == last and ch in ". ")
        ):
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    safe = "".join(out) or "%00"
    if len(safe.encode("utf-8")) > MAX_NAME_BYTES:
        # Keep the extension (".CNG.swc") so tools still recognise the file; the hash of the full
        # name keeps two long names that share a prefix apart.
        ext = _EXTENSION.search(safe)
        suffix = ext.group(0) if ext else ""
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        budget = MAX_NAME_BYTES - len(suffix) - len(digest) - 1
        head = safe.encode("utf-8")[:budget].decode("utf-8", "ignore")
        safe = f"{head}~{digest}{suffix}"
    return safe


# -- the tree ---------------------------------------------------------------------------------------


def archive_folder(archive: str) -> str:
    """The folder of an archive: its name lower-cased, made safe. ``Smith`` and ``smith`` share one
    (as they would on a case-insensitive file system anyway), so every per-archive writer is keyed by
    this folder, never by the archive's name."""
    return safe_component(archive.lower())


def data_path(archive: str, version: str, server_name: str) -> PurePosixPath:
    """``<archive folder>/<version>/<file name made safe>``: where a data file lives, relative to the root."""
    return PurePosixPath(archive_folder(archive), version, safe_component(server_name))


@dataclass(frozen=True, slots=True)
class DataPath:
    """A data file's relative path, parsed back: its archive folder, version folder and file name."""

    folder: str
    version: str
    name: str

    def __str__(self) -> str:
        return f"{self.folder}/{self.version}/{self.name}"


def parse_data_path(relative: str) -> DataPath | None:
    """``folder/version/name`` back into its parts, or ``None`` when ``relative`` is not a data file's
    path (another depth, an empty, ``.`` or ``..`` part, the state folder, a temp or manifest name)."""
    parts = relative.split("/")
    if len(parts) != 3 or any(p in ("", ".", "..") for p in parts) or parts[0] == STATE_DIR:
        return None
    folder, version, name = parts
    if name == MANIFEST or is_temp_name(name):
        return None
    return DataPath(folder, version, name)


def safe_target(out: Path, relative: str) -> Path:
    """``out / relative``, refusing anything that could land outside ``out`` (hostile names)."""
    parts = relative.split("/")  # the raw text: PurePosixPath would quietly normalise "a//b", "./a"
    if any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
        raise ValueError(f"unsafe relative path {relative!r}")
    # No empty, "." or ".." part and no backslash: joined under ``out`` it cannot climb out of it.
    return out.joinpath(*parts)


def through_link(root: Path, relative_dir: str) -> Path | None:
    """The first folder of ``relative_dir`` under ``root`` that is a symbolic link, or None.

    A link planted in the tree (an archive folder pointing at ``/home``) must never let a run write,
    truncate or delete outside ``--out`` (issue 15 item 11); every writer and deleter asks this (once
    per folder) before it touches anything below ``root``.
    """
    here = root
    for part in relative_dir.split("/"):
        if not part:
            continue
        here = here / part
        if here.is_symlink():
            return here
    return None


@dataclass(frozen=True, slots=True)
class MirrorPaths:
    """The absolute paths of one mirror rooted at ``root``."""

    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def state_db(self) -> Path:
        return self.root / STATE_DIR / STATE_FILE

    @property
    def lock(self) -> Path:
        return self.root / STATE_DIR / LOCK_FILE

    @property
    def last_report(self) -> Path:
        return self.root / STATE_DIR / LAST_REPORT

    @property
    def catalogue(self) -> Path:
        return self.root / CATALOGUE_FILE

    @property
    def citation(self) -> Path:
        return self.root / CITATION_FILE

    @property
    def bib(self) -> Path:
        return self.root / BIB_FILE

    @property
    def changes(self) -> Path:
        return self.root / CHANGES_FILE

    def folder(self, archive: str) -> Path:
        """The archive's folder (see :func:`archive_folder`)."""
        return self.root / archive_folder(archive)

    def metadata(self, folder: str) -> Path:
        return self.root / folder / METADATA_FILE

    def morphometry(self, folder: str) -> Path:
        return self.root / folder / MORPHOMETRY_FILE

    def pvec(self, folder: str) -> Path:
        return self.root / folder / PVEC_FILE

    def manifest(self, folder: str, version: str) -> Path:
        return self.root / folder / version / MANIFEST

    def target(self, relative: str) -> Path:
        """A data file's absolute path (:func:`safe_target`)."""
        return safe_target(self.root, relative)
