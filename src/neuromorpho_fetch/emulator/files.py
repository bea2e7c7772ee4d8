"""File bodies: CNG, source, logs and thumbnails for every neuron, each grown when asked.

A CNG file is a per-neuron header followed by the neuron's own tree (:mod:`.neurons`), grown from its
record's cell type and domain with as many points as its size asks for. Sizes are log-normal (median
50 KB, about 1% over 1 MB, capped at 5 MB, snapped to classes 10 KB x 1.15^k; a file with padded
columns, 15%, holds the same points in lines half as long again) unless ``file_kb`` fixes them. The
source file is the same tree in the original format (SWC, Neurolucida ASCII, binary DAT, Neurolucida
XML). Built files and their trees sit in small byte-bounded LRU caches; the rare big bodies are shared
per shape and size, since growing 100,000 points takes most of a second.
"""

from __future__ import annotations

import math
import statistics
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import blake2b

from . import morphology, neurons, recorded
from ._config import FileOddities
from ._lru import ByteLRU
from .generation import Layout
from .hashing import mix64
from .index import CatalogueIndex
from .recorded import original_format_extension
from .vocabulary import _FOLDER_KIND, _TRACE_NAMES, KINDS, SYNTHETIC_ARCHIVES

FILE_CACHE_MB = 8.0  # the server keeps its own cache; misses are cheap
_POINT_BYTES = 45  # a tree's six unboxed columns: 45 bytes a point
_MASTER_CACHE_BYTES = 64 << 20
_MIN_FILE = 10 * 1024
_MAX_FILE = 5 * 1024 * 1024
_SIZE_STEP = 1.15
_BIG_VARIANTS = 2  # big bodies are shared: two per shape and size class
_LINE = 34  # bytes per SWC line, on average: how many points a file size asks for
_BIG_LINE = 38  # ... and in a big tree (over _GROWN_POINTS), whose coordinates have more digits
#: Neurons with more points than this share their body per shape and size (about 1 file in 30).
_GROWN_POINTS = 12_000
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


#: Shared big bodies by (seed, shape/domain/alignment, points, variant); see :meth:`CatalogueFiles.tree`.
_MASTERS: ByteLRU[tuple[int, str, int, int], morphology.Tree] = ByteLRU(_MASTER_CACHE_BYTES)


class CatalogueFiles(CatalogueIndex):
    """The index plus the files the server holds; ``file_kb`` fixes every file's size (benchmarks)."""

    def __init__(
        self,
        layout: Layout,
        seed: int,
        file_kb: float | None,
        oddities: FileOddities | None = None,
        cache_mb: float = FILE_CACHE_MB,
    ) -> None:
        super().__init__(layout, seed)
        self.file_kb = file_kb
        self.oddities = oddities or FileOddities()
        limit = int(cache_mb * 2**20)
        self._files: ByteLRU[tuple[int, str], EmulatedFile] = ByteLRU(limit)
        # The CNG file and the source are one tree: asked for together (a mirror of both versions, a
        # test of both), the second is written from the first's tree instead of growing it again.
        self._trees: ByteLRU[int, morphology.Tree] = ByteLRU(limit)

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

    def tree(self, pos: int) -> morphology.Tree:
        """The neuron at ``pos`` as a tree, with about ``size // _LINE`` points for its file size (whatever
        the format: the CNG file and the source are one tree). Callers only read it (it is cached).

        Grown from the record's cell type and domain (:mod:`.neurons`), with the soma radius the record's
        ``soma_surface`` implies and neurite radii scaled so the file's surface is the record's
        ``surface``. Big trees (over :data:`_GROWN_POINTS` points, about 1 in 30 files) are shared per
        shape, size and variant and copied per neuron, because growing 100,000 points per request would
        take a second.
        """
        cached = self._trees.get(pos)
        if cached is not None:
            return cached
        shape, domain = self.shape(pos)
        neuron_id = self._ids[pos]
        points = max(self._size_class(mix64(self.seed, neuron_id, 0xF11E)) // _LINE, 8)
        soma_text = self.value("soma_surface", pos)
        soma_r = math.sqrt(float(soma_text) / (4 * math.pi)) if isinstance(soma_text, str) else None
        if points > _GROWN_POINTS:
            variant = mix64(self.seed, neuron_id, 0xB16) % _BIG_VARIANTS
            key = (self.seed, f"{shape}/{domain}", points, variant)
            shared = _MASTERS.get(key)
            if shared is None:
                # Big trees span more space, so their lines are longer (36-41 bytes, measured).
                big = points * _LINE // _BIG_LINE
                shared = neurons.grow(mix64(self.seed, points, variant, len(shape)), shape, domain, big)
                _MASTERS.put(key, shared, _POINT_BYTES * len(shared))
            # Copied: the record's soma and surface and the oddities change a tree in place.
            tree = morphology.Tree(
                array("b", shared.kind), array("d", shared.x), array("d", shared.y), array("d", shared.z),
                array("d", shared.r), array("i", shared.parent),
            )  # fmt: skip
            if soma_r is not None:
                neurons.set_soma(tree, soma_r)
        else:
            if self.file_kb is not None:
                points += points // 8  # grown a little long, then cut at the size asked for (_cng)
            tree = neurons.grow(mix64(self.seed, neuron_id, 0x7EE), shape, domain, points, soma_radius=soma_r)
        # Radii scaled to the record's surface, then the switched-on oddities.
        surface = self.value("surface", pos)
        if isinstance(surface, str):
            neurons.match_surface(tree, float(surface))
        tree = self._odd(tree, neuron_id)
        self._trees.put(pos, tree, _POINT_BYTES * len(tree))
        return tree

    def _is_odd(self, neuron_id: int) -> tuple[bool, bool]:
        """Whether :class:`.FileOddities` gives this neuron (a type-0 tail, a soma a bit off), by hash."""
        odd = self.oddities
        return (
            mix64(self.seed, neuron_id, 0x70) % 10_000 < odd.type0_rate * 10_000,
            mix64(self.seed, neuron_id, 0x50) % 10_000 < odd.soma_off_rate * 10_000,
        )

    def _odd(self, tree: morphology.Tree, neuron_id: int) -> morphology.Tree:
        """The tree with the oddities :meth:`_is_odd` picks, changed in place."""
        type0, soma_off = self._is_odd(neuron_id)
        if type0:
            neurons.type0_tail(tree)
        if soma_off:
            neurons.soma_off(tree)
        return tree

    def _cng(self, pos: int, h: int) -> bytes:
        name = self._names[pos]
        aligned = h % 100 < 15
        old_style = (h >> 8) % 100 < 40
        synthetic = self._archives[self._group_at(pos).archive] in SYNTHETIC_ARCHIVES
        latin1 = synthetic or (h >> 16) % 10_000 < self.oddities.latin1_rate * 10_000
        ext = self._source_ext(pos) or "swc"
        year = 2006 + (h >> 24) % 18
        header = morphology.cng_header(
            name, f"{name}.{ext}", old_style=old_style, when=(year, 1 + (h >> 32) % 12, 1 + (h >> 40) % 28),
            latin1_note="Traced at the Université de Montréal, Zellé lab (µm units)" if latin1 else None,
        )  # fmt: skip
        body = morphology.swc_text(self.tree(pos), aligned=aligned)
        if self.file_kb is not None:
            # Benchmarks fix every size: a prefix of a depth-first file is still one tree (parents first).
            cut = body.find(b"\n", max(self._size_class(h) - len(header), 64) - 1)
            body = body if cut < 0 else body[: cut + 1]
        return header + body

    def _source(self, pos: int, h: int, ext: str) -> tuple[bytes, str]:
        """The original upload: the CNG file's tree, in the format its extension names (other extensions
        get SWC text)."""
        name = self._names[pos]
        low = ext.lower()
        tree = self.tree(pos)
        if low == "asc":
            return morphology.asc_preamble(name) + morphology.asc_body(tree), "text/plain"
        if low == "dat":
            return morphology.dat_file(morphology.dat_records(tree)), "application/octet-stream"
        if low == "xml":
            return morphology.xml_document(name, morphology.xml_tree(tree)), "application/xml"
        software = self.value("reconstruction_software", pos)
        head = f"# Exported from {software} as {name}.{ext}\n".encode()
        return head + morphology.swc_text(tree), "text/plain"
