"""Where a neuron's file lives on the server and in the local ``<archive>/<version>/<file>`` tree.

Pure functions, no I/O: the mirror and the tests call them without sockets.

Server side (reference A8): the archive folder is the archive name lower-cased and percent-encoded,
the neuron name is percent-encoded as a single path segment (names hold spaces, ``#``, ``%``, ``+``,
parentheses and non-ASCII letters), and a source file's extension is the suffix of the record's
``original_format`` (``Neurolucida.DAT`` gives ``.DAT``). A neuron with no ``original_format`` has no
source file.

Local side: the file keeps its server name when that name is safe. A name is made safe by
percent-encoding, character by character, whatever could escape the folder or misbehave on common file
systems: ``/``, ``\\``, NUL and other control characters, a leading ``.`` (``..``, hidden files), and
``%`` itself (so an encoded name can never equal another neuron's literal name, which keeps the mapping
one-to-one). A name longer than :data:`MAX_NAME_BYTES` in UTF-8 is cut and given a hash of the full
name. The archive folder is made safe the same way.

Windows, too (issue 10: a mirror copied to a Windows share broke): a name whose part before the first
dot is a reserved device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``-``COM9``, ``LPT1``-``LPT9``,
any case, any extension: ``nul.txt``, ``Com1.CNG.swc``) has its first character encoded (``%43ON``), and
a trailing dot or space (which Windows drops) is encoded (``a%2E``). Since ``%`` is always encoded, an
encoded name still cannot equal any literal one. Mirrors made before this change hold such files
under their old names; the next run fetches them again under the new name (the old file is left).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from .errors import NoSuchFileError
from .models import Neuron, Version

__all__ = [
    "MAX_NAME_BYTES",
    "WINDOWS_RESERVED",
    "FileTask",
    "NoSuchFileError",
    "file_name",
    "file_task",
    "file_url",
    "is_plain_name",
    "png_path",
    "relative_path",
    "safe_component",
    "safe_target",
    "source_extension",
]

#: Most file systems allow 255 bytes per name; keep room for the ``.<random>.part`` suffix.
MAX_NAME_BYTES = 200

#: Device names Windows reserves in every folder, with or without an extension.
WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{dev}{n}" for dev in ("COM", "LPT") for n in range(1, 10)]
)

_EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,10}){1,3}$")

_SERVER_FOLDER = {
    Version.CNG: "CNG version",
    Version.SOURCE: "Source-Version",
    Version.CNG_LOG: "Remaining issues",
    Version.SOURCE_LOG: "Standardization log",
}


@dataclass(frozen=True, slots=True)
class FileTask:
    """One file to fetch: where from, and where to, relative to the output directory."""

    neuron: Neuron
    version: Version
    url: str
    path: PurePosixPath


def source_extension(original_format: str | None) -> str | None:
    """``Neurozoom.swc`` gives ``swc``; ``None``/empty or no dot gives ``None`` (no source file)."""
    if not original_format or "." not in original_format:
        return None
    ext = original_format.rsplit(".", 1)[1].strip()
    return ext or None


def file_name(neuron: Neuron, version: Version) -> str:
    """The file's name on the server (not yet made safe for the local disk)."""
    if version is Version.CNG:
        return f"{neuron.name}.CNG.swc"
    if version is Version.SOURCE:
        ext = source_extension(neuron.original_format)
        if ext is None:
            raise NoSuchFileError(f"neuron {neuron.name!r} has no original_format, so no source file")
        return f"{neuron.name}.{ext}"
    if version is Version.CNG_LOG:
        return f"{neuron.name}.CNG.swc.std"
    if version is Version.SOURCE_LOG:
        return f"{neuron.name}.std"
    return _png_parts(neuron)[1]


def png_path(png_url: str) -> str:
    """The path of a record's ``png_url`` as raw text: everything after ``scheme://host``.

    ``png_url`` is built by the server from the archive and neuron names *without* encoding them
    (``.../imageFiles/Allen Cell Types/a b.png``), so ``#``, ``?`` and ``%`` in a name are part of the
    path, not a fragment, a query or an escape; ``urlsplit`` would cut the name at them.
    """
    rest = png_url.split("://", 1)[1] if "://" in png_url else png_url
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _png_parts(neuron: Neuron) -> tuple[str, str]:
    """Split a thumbnail's raw path into its folder (ending in ``/``) and its file name.

    The file name is everything after ``/<archive>/`` when the path is laid out as usual
    (``/images/imageFiles/<Archive>/<name>.png``), so a name holding ``/`` or ``..`` stays one
    segment: encoded as one, it cannot be collapsed as a dot-segment by an HTTP client, and locally it
    cannot collide with another neuron's basename. Any other layout falls back to the last segment.
    """
    if not neuron.png_url:
        raise NoSuchFileError(f"neuron {neuron.name!r} has no png_url, so no thumbnail")
    path = png_path(neuron.png_url)
    marker = f"/{neuron.archive}/"
    cut = path.find(marker)
    usual = cut >= 0 and len(path) > cut + len(marker)
    split = cut + len(marker) if usual else path.rfind("/") + 1
    return path[:split], path[split:] or f"{neuron.name}.png"


def file_url(base_url: str, neuron: Neuron, version: Version) -> str:
    """Absolute URL of the file on the server at ``base_url``."""
    base = base_url.rstrip("/")
    if version is Version.PNG:
        # The record's png_url names the public host over http; keep its path, use our server.
        folder, name = _png_parts(neuron)
        return (
            base + "/".join(quote(segment, safe="") for segment in folder.split("/")) + quote(name, safe="")
        )
    archive = quote(neuron.archive.lower(), safe="")
    folder = quote(_SERVER_FOLDER[version], safe="")
    return f"{base}/dableFiles/{archive}/{folder}/{quote(file_name(neuron, version), safe='')}"


#: A name with nothing to encode, but for the Windows device-name check (see :func:`is_plain_name`).
_PLAIN = re.compile(r"[^./\\%\x00-\x1f\x7f][^/\\%\x00-\x1f\x7f]*(?<![. ])")
_RESERVED_PREFIXES = frozenset(name[:3] for name in WINDOWS_RESERVED)


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


def relative_path(neuron: Neuron, version: Version) -> PurePosixPath:
    """``<archive lower-cased>/<version>/<file name>``, every component made safe."""
    return PurePosixPath(
        safe_component(neuron.archive.lower()),
        version.value,
        safe_component(file_name(neuron, version)),
    )


def file_task(base_url: str, neuron: Neuron, version: Version) -> FileTask:
    return FileTask(
        neuron=neuron,
        version=version,
        url=file_url(base_url, neuron, version),
        path=relative_path(neuron, version),
    )


def safe_target(out: Path, relative: str) -> Path:
    """``out / relative``, refusing anything that could land outside ``out`` (hostile names)."""
    parts = relative.split("/")  # the raw text: PurePosixPath would quietly normalise "a//b", "./a"
    if any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
        raise ValueError(f"unsafe relative path {relative!r}")
    # No empty, "." or ".." part and no backslash: joined under ``out`` it cannot climb out of it (a
    # second, commonpath check here was unreachable and cost ~30 us per file, twice per file).
    return out.joinpath(*parts)
