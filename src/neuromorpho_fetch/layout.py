"""Where a neuron's file lives on the server and in the local ``<archive>/<version>/<file>`` tree.

Pure functions, no I/O: the mirror and the tests call them without sockets.

Server side (reference A8): the archive folder is the archive name lower-cased and percent-encoded,
the neuron name is percent-encoded as a single path segment (names hold spaces, ``#``, ``%``, ``+``,
parentheses and non-ASCII letters), and a source file's extension is the suffix of the record's
``original_format`` (``Neurolucida.DAT`` gives ``.DAT``). A neuron with no ``original_format`` has no
source file.

Local side: :func:`relative_path` asks :mod:`neuromorpho_fetch.paths`, the one owner of the mirror's tree
(``<archive folder>/<version>/<file name made safe>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

from .errors import NoSuchFileError
from .models import Neuron, Version
from .paths import data_path

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


def relative_path(neuron: Neuron, version: Version) -> PurePosixPath:
    """``<archive lower-cased>/<version>/<file name>``, every component made safe."""
    return data_path(neuron.archive, version.value, file_name(neuron, version))


def file_task(base_url: str, neuron: Neuron, version: Version) -> FileTask:
    return FileTask(
        neuron=neuron,
        version=version,
        url=file_url(base_url, neuron, version),
        path=relative_path(neuron, version),
    )
