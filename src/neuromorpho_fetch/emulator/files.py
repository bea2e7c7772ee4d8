"""File bodies: CNG, source, logs and thumbnails for every neuron, cut from a few shared master bodies.

A CNG file is a per-neuron header followed by a prefix of a *master* SWC body: a tree written parents-first
stays a valid tree when cut after any line, so a few masters per run (by size tier, variant and column
alignment; shared by every catalogue of the seed in the process) give every neuron its body by slicing.
Sizes are log-normal (median 50 KB, about 1% over 1 MB, capped at 5 MB, snapped to classes 10 KB x 1.15^k)
unless ``file_kb`` fixes them. Source files are cut the same way (SWC, binary DAT, MBF XML), except
Neurolucida ASCII, whose nesting cannot be cut and which is pooled per size. Built files sit in a small
byte-bounded LRU cache.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import blake2b

from . import morphology, recorded
from ._lru import ByteLRU
from .generation import Layout
from .hashing import mix64
from .index import CatalogueIndex
from .recorded import original_format_extension
from .vocabulary import _FOLDER_KIND, _TRACE_NAMES, KINDS

_BODY_CACHE_BYTES = 8 << 20  # Neurolucida ASCII bodies only
_FILE_CACHE_BYTES = 8 << 20  # the server keeps its own cache; misses are cheap
_MASTER_CACHE_BYTES = 64 << 20
_MIN_FILE = 10 * 1024
_MAX_FILE = 5 * 1024 * 1024
_SIZE_STEP = 1.15
_BODY_VARIANTS = 4
_TIERS = (256 * 1024, 1536 * 1024, _MAX_FILE + 4096)  # sizes of the master bodies files are cut from
_TIER_VARIANTS = (_BODY_VARIANTS, 2, 1)  # big files are rare: fewer distinct big bodies
_XML_MAX_NODES = 2000  # MBF XML files stay small
_NORMAL = statistics.NormalDist()


@dataclass(frozen=True, slots=True)
class EmulatedFile:
    """One file as the server holds it; ``etag`` and ``last_modified`` are stable for (seed, id, kind)."""

    neuron_id: int
    kind: str
    body: bytes
    etag: str
    last_modified: datetime
    content_type: str


#: Master bodies by (seed, format, tier, variant); see :meth:`CatalogueFiles._master`.
_MASTERS: ByteLRU[tuple[int, str, int, int], bytes] = ByteLRU(_MASTER_CACHE_BYTES)


class CatalogueFiles(CatalogueIndex):
    """The index plus the files the server holds; ``file_kb`` fixes every file's size (benchmarks)."""

    def __init__(self, layout: Layout, seed: int, file_kb: float | None) -> None:
        super().__init__(layout, seed)
        self.file_kb = file_kb
        self._bodies: ByteLRU[tuple[Hashable, ...], bytes] = ByteLRU(_BODY_CACHE_BYTES)
        self._files: ByteLRU[tuple[int, str], EmulatedFile] = ByteLRU(_FILE_CACHE_BYTES)

    def file(
        self, archive_dir: str, folder: str, filename: str, *, case_sensitive: bool = True
    ) -> EmulatedFile | None:
        """The file at ``/dableFiles/{archive_dir}/{folder}/{filename}`` (parts percent-decoded), or None.

        The whole decoded tail is one name, so a neuron called ``sub/dir/name`` is found as
        ``sub/dir/name.CNG.swc``. ``case_sensitive=False`` also accepts the archive folder and the file name
        in any case (the real server's behaviour is unknown, reference A8).
        """
        fold = (lambda s: s) if case_sensitive else str.casefold
        kind = next((k for f, k in _FOLDER_KIND.items() if fold(f) == fold(folder)), None)
        if kind is None:
            return None
        if kind == "source":
            name, dot, ext = filename.rpartition(".")
            if not dot:
                return None
        else:
            suffix = {"CNG": ".CNG.swc", "remaining-issues": ".CNG.swc.std", "standardization-log": ".std"}[
                kind
            ]
            if not fold(filename).endswith(fold(suffix)):
                return None
            name = filename[: -len(suffix)]
        pos = self._position_by_name(name, case_sensitive)
        if pos is None or fold(self._archives[self._group_at(pos).archive].lower()) != fold(archive_dir):
            return None
        if kind == "source":
            wanted = self._source_ext(pos)
            if wanted is None or fold(wanted) != fold(ext):
                return None
        return self._file(pos, kind)

    def image(self, archive: str, filename: str, *, case_sensitive: bool = True) -> EmulatedFile | None:
        """The thumbnail at ``/images/imageFiles/{archive}/{filename}`` (archive in its original case)."""
        fold = (lambda s: s) if case_sensitive else str.casefold
        if not fold(filename).endswith(".png"):
            return None
        pos = self._position_by_name(filename[:-4], case_sensitive)
        if pos is None or fold(self._archives[self._group_at(pos).archive]) != fold(archive):
            return None
        return self._file(pos, "images")

    def previous_release(self) -> EmulatedFile | None:
        """The file record 1's ``note`` links to (``recorded.PREVIOUS_V61_PATH``), if cnic_001 is here."""
        if self._cnic_id is None:
            return None
        body = recorded.cnic_001_previous()
        tag = blake2b(f"{self.seed}/previous-v6.1/{len(body)}".encode(), digest_size=10)
        when = datetime(2015, 5, 1, tzinfo=UTC)  # release 6.1 (May 2015)
        return EmulatedFile(self._cnic_id, "CNG", body, f'"{tag.hexdigest()}"', when, "text/plain")

    def file_for(self, neuron_id: int, kind: str) -> EmulatedFile | None:
        """What the server holds for ``(neuron_id, kind)``; None when there is no such file."""
        pos = self.position(neuron_id)
        if pos is None or kind not in KINDS:
            return None
        return self._file(pos, kind)

    def _source_ext(self, pos: int) -> str | None:
        fmt = self.value("original_format", pos)
        return original_format_extension(fmt if isinstance(fmt, str) else None)

    def _file(self, pos: int, kind: str) -> EmulatedFile | None:
        cached = self._files.get((pos, kind))
        if cached is not None:
            return cached
        built = self._build(pos, kind)
        if built is None:
            return None
        body, content_type = built
        neuron_id = self._ids[pos]
        tag = blake2b(f"{self.seed}/{neuron_id}/{kind}/{self.file_kb}/{len(body)}".encode(), digest_size=10)
        group = self._group_at(pos)
        day = str(group.options["upload_date"][0])
        modified = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(
            seconds=mix64(self.seed, neuron_id, KINDS.index(kind)) % (86400 * 30)
        )
        result = EmulatedFile(neuron_id, kind, body, f'"{tag.hexdigest()}"', modified, content_type)
        self._files.put((pos, kind), result, len(body))
        return result

    def _build(self, pos: int, kind: str) -> tuple[bytes, str] | None:
        """Bytes and content type of one file, built from pooled bodies and per-neuron headers."""
        name = self._names[pos]
        h = mix64(self.seed, self._ids[pos], 0xF11E)
        if kind == "CNG":
            if self._ids[pos] == self._cnic_id:
                return recorded.cnic_001_cng(), "text/plain"
            return self._cng(pos, h), "text/plain"
        ext = self._source_ext(pos)
        if kind == "source" and name in _TRACE_NAMES:
            return recorded.trace_source(name), "text/plain"
        if kind == "remaining-issues":
            return morphology.std_log(h, f"{name}.CNG.swc", cng=True), "text/plain"
        if kind == "standardization-log":
            return morphology.std_log(h ^ 1, f"{name}.{ext or 'swc'}", cng=False), "text/plain"
        if kind == "images":
            return morphology.png_image(h), "image/png"
        if ext is None:
            return None
        return self._source(pos, h, ext)

    def _size_class(self, h: int) -> int:
        """Target size in bytes: log-normal (median 50 KB, sigma 1.33: ~1% above 1 MB), snapped to a class."""
        if self.file_kb is not None:
            return max(200, int(self.file_kb * 1024))
        u = ((h >> 11) & 0xFFFFFFFF) / 2**32
        wanted = 50 * 1024 * math.exp(1.33 * _NORMAL.inv_cdf(min(max(u, 1e-9), 1 - 1e-9)))
        wanted = min(max(wanted, _MIN_FILE), _MAX_FILE)
        step = round(math.log(wanted / _MIN_FILE) / math.log(_SIZE_STEP))
        return min(int(_MIN_FILE * _SIZE_STEP**step), _MAX_FILE)

    def _pooled(self, key: tuple[Hashable, ...], make: Callable[[], bytes]) -> bytes:
        body = self._bodies.get(key)
        if body is not None:
            return body
        made = make()
        self._bodies.put(key, made, len(made))
        return made

    def _master(self, fmt: str, target: int, variant: int, make: Callable[[int, int], bytes]) -> bytes:
        """The smallest master body of ``fmt`` that can hold ``target`` bytes, built once per run.

        Files are prefixes of masters. A prefix of a tree written in creation order is itself a valid tree,
        so a handful of masters (tiers of 256 KB, 1.5 MB and 5 MB; fewer variants for the big tiers) serve
        every size: about 30 MB at most, and a rare big file never evicts them. They are shared by all
        catalogues of a seed in the process, because tests and in-process emulators build many.
        """
        level = next((i for i, t in enumerate(_TIERS) if t >= target), len(_TIERS) - 1)
        tier = max(_TIERS[level], target)
        variant %= _TIER_VARIANTS[level]
        key = (self.seed, fmt, tier, variant)
        master = _MASTERS.get(key)
        if master is None:
            master = make(mix64(self.seed, tier, variant, len(fmt)), tier)
            _MASTERS.put(key, master, len(master))
        return master

    def _swc_prefix(self, target: int, variant: int, aligned: bool) -> bytes:
        """The first lines of a master tree, cut after the line that reaches ``target`` bytes."""
        master = self._master(
            "swc aligned" if aligned else "swc",
            target,
            variant,
            lambda seed, tier: morphology.swc_body(seed, tier, aligned=aligned),
        )
        cut = master.find(b"\n", target - 1)
        return master if cut < 0 else master[: cut + 1]

    def _cng(self, pos: int, h: int) -> bytes:
        name = self._names[pos]
        variant, aligned = (h >> 3) % _BODY_VARIANTS, h % 100 < 15
        old_style, latin1 = (h >> 8) % 100 < 40, (h >> 16) % 100 < 5
        ext = self._source_ext(pos) or "swc"
        year = 2006 + (h >> 24) % 18
        header = morphology.cng_header(
            name, f"{name}.{ext}", old_style=old_style, when=(year, 1 + (h >> 32) % 12, 1 + (h >> 40) % 28),
            latin1_note="Traced at the Université de Montréal, Zellé lab (µm units)" if latin1 else None,
        )  # fmt: skip
        target = max(self._size_class(h) - len(header), 64)
        return header + self._swc_prefix(target, variant, aligned)

    def _source(self, pos: int, h: int, ext: str) -> tuple[bytes, str]:
        """The original upload, in the format its extension names; other extensions get SWC text."""
        name = self._names[pos]
        size = self._size_class(h >> 1)
        variant = (h >> 5) % _BODY_VARIANTS
        low = ext.lower()
        if low == "asc":
            # Nested text cannot be cut anywhere, so these are pooled per size (and capped at ~1 MB).
            nodes = min(size // 45, 20_000)
            seed = mix64(self.seed, nodes, variant, 0xA5C)
            body = self._pooled(("asc", nodes, variant), lambda: morphology.asc_body(seed, nodes))
            return morphology.asc_preamble(name) + body, "text/plain"
        if low == "dat":
            step = morphology.DAT_RECORD_BYTES
            records = self._master(
                "dat", size, variant, lambda seed, tier: morphology.dat_records(seed, tier // step)
            )
            count = max(size // step, 4)
            return morphology.dat_file(records[: count * step]), "application/octet-stream"
        if low == "xml":
            points = self._master(
                "xml", 0, variant, lambda seed, _: morphology.xml_body(seed, _XML_MAX_NODES)
            )
            cut = points.find(b"\n", min(size, len(points)) - 1)
            return morphology.xml_document(name, points[: cut + 1]), "application/xml"
        software = self.value("reconstruction_software", pos)
        head = f"# Exported from {software} as {name}.{ext}\n".encode()
        return head + self._swc_prefix(size, (variant + 1) % _BODY_VARIANTS, False), "text/plain"
