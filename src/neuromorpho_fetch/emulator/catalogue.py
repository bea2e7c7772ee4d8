"""The emulator's synthetic NeuroMorpho.Org catalogue: records, morphometry, persistence vectors and files.

Everything is a deterministic function of ``seed`` (``random.Random`` seeded with ints and a splitmix64
hash; never Python's salted ``hash()``), so two processes with the same seed serve identical records and
bytes, and a test can compare a download byte-for-byte with :meth:`Catalogue.file_for`.

**Shape of the data.** Neurons come in *groups* (one upload from one lab: same species, stain, software,
publication...), and each group belongs to an *archive*. Archive sizes follow the real archive's skew:
``Allen Cell Types`` holds 30% of the catalogue, ``Siegert`` 7%, ``Jefferis`` and ``Wearne_Hof`` 2% each,
the clearly synthetic ``Synthetic_Awkward`` 1%, and the remaining 58% is spread over a Zipf-like long tail
of about ``1.1 * sqrt(neurons)`` archives (a few hundred neurons down to a handful). The recorded neurons
are real (:mod:`.recorded`): id 1 is ``cnic_001`` of ``Wearne_Hof`` and Siegert's first group is the
tutorial's 15 ``CB_CKp25_2w_F_Animal01_TraceNNN``; the rest of Siegert is synthetic, named like the recorded
``FC_5xFAD_6mpos_F_Animal02_Trace053`` (F). Species follow the 2026 counts (E): mouse ~63%, rat ~24%, human
~6%, and at full size all 95 species (tail groups draw mouse, rat or the next of the other species in turn);
about 35% of neurons are glia, about half have only ``Neurites``/``Processes`` as domain, ``soma_surface``
is null for one in five. Groups are shuffled before ids are given out (cnic_001's first), so an archive's
neurons are spread over the id range in blocks, and ids have gaps (about 3% of steps skip 2 to 16 ids: the
highest id is about 1.28 times the count, as E's 322,002 for 253,545). Only ``Synthetic_Awkward`` has
awkward names (spaces, parentheses, ``+``, ``#``, ``%``, dots, non-ASCII letters), so recorded archives look
recorded (issue 18); ``hostile_names=True`` appends :data:`HOSTILE_NAMES` (names that try to leave a
directory) as one more group.

**Why it is compact.** At 265,000 neurons the emulator must stay small and start fast, so no record is
stored: a neuron is its position in the id order. Per neuron we keep only its id (``array('I')``), its name,
and one random byte per *variant key*; a group keeps, for each field, a tuple of options, and a neuron's
value is ``options[byte % len(options)]`` (one option = constant over the group). Record fields
``soma_surface``, ``surface`` and ``volume`` are derived from a hash of ``(seed, id)`` around what the
neuron's shape measures. Searching a field therefore scans a few thousand groups, and only the groups whose
options partly match are scanned neuron by neuron (see :meth:`Catalogue.scan`).

**Files.** A CNG file is a per-neuron header (either CNG header style; a Latin-1 line in
``Synthetic_Awkward`` or as :class:`.FileOddities` says) followed by the neuron's own tree, grown from its
record's cell type and domain (:mod:`.neurons`) with as many points as its size asks for. Sizes are
log-normal (median 50 KB, about 1% over 1 MB, capped at 5 MB, snapped to classes 10 KB x 1.15^k) unless
``file_kb`` fixes them. The source file is the same tree in its original format (:mod:`.morphology`), and
the morphometry is computed from the CNG file (:mod:`.lmeasure`). Built files, their trees and computed
morphometry sit in small byte-bounded LRU caches (``cache_mb`` each for files and trees, 8 by default: a
test that reads every file of a catalogue many times raises it, so each file is grown once).

**Where each part lives.** :mod:`.vocabulary` holds the fixed tables (field names, record key order,
species, archives, name styles); :mod:`.generation` turns a seed into the stored layout; :mod:`.index`
answers lookups, values, records, query masks and counts; :mod:`.measures` derives persistence vectors and
surface figures from a hash and morphometry from a file; :mod:`.files` builds file bodies.
:class:`Catalogue` ties them together and is the one class the server and tests use.
"""

from __future__ import annotations

from typing import Any

from . import measures, recorded
from ._config import CatalogueChanges, FileOddities
from ._lru import ByteLRU
from .changes import apply_changes
from .files import FILE_CACHE_MB, CatalogueFiles
from .generation import generate

#: Computed morphometry kept per catalogue: about 2,000 records of ~1 KB (a batch select asks for 50).
_MEASURED_BYTES, _MEASURED_ITEM = 2 << 20, 1024


class Catalogue(CatalogueFiles):
    """A deterministic synthetic NeuroMorpho.Org database; see the module docstring for its shape."""

    def __init__(
        self,
        neurons: int = 2000,
        seed: int = 7,
        *,
        hostile_names: bool = False,
        file_kb: float | None = None,
        changes: CatalogueChanges | None = None,
        oddities: FileOddities | None = None,
        cache_mb: float = FILE_CACHE_MB,
    ) -> None:
        if neurons < 0:
            raise ValueError("neurons must be >= 0")
        layout = generate(neurons, seed, hostile_names)
        if changes:
            layout = apply_changes(layout, changes)  # upstream changes (issue 12): see .changes
        super().__init__(layout, seed, file_kb, oddities, cache_mb)
        self._measured: ByteLRU[int, dict[str, Any]] = ByteLRU(_MEASURED_BYTES)

    def has_morphometry(self, neuron_id: int) -> bool:
        """Whether the neuron has a morphometry record (:func:`.measures.has_morphometry`; about 0.4% have
        none, F), without building it: batch selects and listings filter on it."""
        return measures.has_morphometry(self.seed, neuron_id)

    def morphometry(self, neuron_id: int) -> dict[str, Any] | None:
        """The ``/api/morphometry/id`` object, computed from the neuron's CNG file when first asked and kept
        in a small cache (:func:`.measures.morphometry`); cnic_001's as recorded (E, F).

        ``None`` for an unknown neuron and for one without morphometry (:meth:`has_morphometry`).
        """
        pos = self.position(neuron_id)
        if pos is None or not self.has_morphometry(neuron_id):
            return None
        if neuron_id == self._cnic_id:
            return dict(recorded.CNIC_001_MORPHOMETRY)
        cached = self._measured.get(neuron_id)
        if cached is None:
            found = self._file(pos, "CNG")
            assert found is not None  # every neuron has a CNG file
            soma = self.value("soma_surface", pos) is not None
            cached = measures.morphometry(found.body, neuron_id, self._names[pos], soma_reported=soma)
            self._measured.put(neuron_id, cached, _MEASURED_ITEM)
        return dict(cached)

    def pvec(self, neuron_id: int) -> dict[str, Any] | None:
        """The ``/api/pvec/id`` object (:func:`.measures.pvec`)."""
        if self.position(neuron_id) is None:
            return None
        return measures.pvec(self.seed, neuron_id)
