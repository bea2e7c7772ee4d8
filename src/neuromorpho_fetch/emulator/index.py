"""Lookups and search over a generated layout: ids and names to positions, a neuron's field values, records,
masks for queries (:mod:`.search` parses the query language and sorts) and per-field value counts.

A neuron is only its position in id order; a value is ``options[byte % len(options)]`` of its group, so
searching a field tests each group's few options once and walks neuron by neuron only the groups whose
options partly match (see :meth:`CatalogueIndex.scan`).
"""

from __future__ import annotations

import bisect
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from . import measures, neurons, recorded
from .generation import Group, Layout
from .vocabulary import _COMPUTED, _PER_NEURON, _RECORD_KEYS, _VARIANT_KEY, Value

#: ``fields/{f}`` names beyond the 44 that NeuroMorpho's own front end asks for (F, "Extra field names":
#: "fields/{f} is called for brain_region_1..3 and cell_type_1..3"): the k-th element of the list field.
POSITIONAL_FIELDS: dict[str, tuple[str, int]] = {
    f"{key}_{k}": (key, k - 1) for key in ("brain_region", "cell_type") for k in (1, 2, 3)
}


class CatalogueIndex:
    """The stored layout and every read of it except files (:class:`.files.CatalogueFiles` adds those)."""

    def __init__(self, layout: Layout, seed: int) -> None:
        self.seed = seed
        self._archives = layout.archives
        self._groups = layout.groups
        self._names = layout.names
        self._index = layout.index
        self._ids = layout.ids
        self._variants = layout.variants
        self._group_starts = [g.start for g in self._groups]
        #: Id of the recorded neuron cnic_001 (always 1 when the catalogue holds it).
        self._cnic_id = self._ids[0] if self._names[:1] == ["cnic_001"] else None
        self._folded_index: tuple[array[int], array[int]] | None = None
        self._summaries: dict[tuple[str, int | None], Counter[str]] = {}
        self._field_values: dict[str, list[str]] = {}

    # -- lookups ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._names)

    def neuron_ids(self) -> Sequence[int]:
        """All ids, ascending (a read-only view; ids are not dense)."""
        return memoryview(self._ids).toreadonly()

    def id_at(self, pos: int) -> int:
        return self._ids[pos]

    def position(self, neuron_id: int) -> int | None:
        """Index of ``neuron_id`` in id order, or ``None``."""
        pos = bisect.bisect_left(self._ids, neuron_id)
        return pos if pos < len(self._ids) and self._ids[pos] == neuron_id else None

    def id_by_name(self, name: str) -> int | None:
        pos = self._index.get(name)
        return None if pos is None else self._ids[pos]

    def _position_by_name(self, name: str, case_sensitive: bool) -> int | None:
        found = self.positions_named([name], case_sensitive=case_sensitive)
        return found[0] if found else None

    def positions_named(self, names: Iterable[str], *, case_sensitive: bool = True) -> list[int]:
        """Positions of the neurons with these names, ascending; without case, every case variant."""
        if case_sensitive:
            return sorted({self._index[n] for n in names if n in self._index})
        keys, positions = self._folded()
        found = set()
        for name in names:
            folded = name.casefold()
            digest = _fold_digest(folded)
            i = bisect.bisect_left(keys, digest)
            while i < len(keys) and keys[i] == digest:
                if self._names[positions[i]].casefold() == folded:
                    found.add(positions[i])
                i += 1
        return sorted(found)

    def _folded(self) -> tuple[array[int], array[int]]:
        """A case-insensitive name index, built on first use: CRC-32s of folded names, sorted, with positions.

        Two flat arrays (about 2 MB at 265k neurons) instead of a second dict of folded strings (about
        30 MB); lookups confirm each CRC hit against the name itself.
        """
        if self._folded_index is None:
            digests = array("I", (_fold_digest(n.casefold()) for n in self._names))
            order = array("I", sorted(range(len(digests)), key=digests.__getitem__))
            self._folded_index = (array("I", (digests[p] for p in order)), order)
        return self._folded_index

    def _group_at(self, pos: int) -> Group:
        return self._groups[bisect.bisect_right(self._group_starts, pos) - 1]

    def archives(self) -> list[tuple[str, int]]:
        counts = Counter[str]()
        for group in self._groups:
            counts[self._archives[group.archive]] += group.stop - group.start
        return sorted(counts.items())

    # -- field values ------------------------------------------------------------------------------------

    @staticmethod
    def field_key(field: str) -> str:
        """The record key for a field name (``Physical_Integrity``, as the fields list spells it, is
        ``physical_Integrity`` in records).

        Raises ``KeyError`` for a name that is not a field.
        """
        if field == "Physical_Integrity":
            return "physical_Integrity"
        if field in _RECORD_KEYS:
            return field
        raise KeyError(field)

    def value(self, key: str, pos: int, group: Group | None = None) -> Value:
        """The value of record key ``key`` for the neuron at ``pos`` (a tuple for list fields)."""
        if key == "neuron_id":
            return str(self._ids[pos])
        if key == "neuron_name":
            return self._names[pos]
        group = group or self._group_at(pos)
        if key == "archive":
            return self._archives[group.archive]
        if key == "png_url":
            return self._png_url(pos, group)
        if key in _COMPUTED:
            return self._surfaces(pos)[_COMPUTED.index(key)]
        options = group.options[key]
        if len(options) == 1:
            return options[0]
        return options[self._variants[_VARIANT_KEY[key]][pos] % len(options)]

    def values(self, key: str, positions: Iterable[int]) -> list[Value]:
        """:meth:`value` for many ascending positions, finding each group once (for sorting)."""
        out: list[Value] = []
        group: Group | None = None
        for pos in positions:
            if group is None or not group.start <= pos < group.stop:
                group = self._group_at(pos)
            out.append(self.value(key, pos, group))
        return out

    def _png_url(self, pos: int, group: Group) -> str:
        archive = self._archives[group.archive]
        return f"http://neuromorpho.org/images/imageFiles/{archive}/{self._names[pos]}.png"

    def _surfaces(self, pos: int) -> tuple[str | None, str, str]:
        """``soma_surface``, ``surface`` and ``volume`` as the record's strings, from one hash of the id,
        around what the neuron's shape measures (:func:`.measures.surfaces`).

        ``soma_surface`` is null for one neuron in five (E: "missing for about one neuron in five").
        """
        neuron_id = self._ids[pos]
        if neuron_id == self._cnic_id:
            return (
                recorded.CNIC_001["soma_surface"],
                recorded.CNIC_001["surface"],
                recorded.CNIC_001["volume"],
            )
        return measures.surfaces(self.seed, neuron_id, self.shape(pos)[0])

    def shape(self, pos: int) -> tuple[str, str | None]:
        """The shape (:func:`.neurons.shape_for`) and domain the neuron's record names."""
        cell, domain = self.value("cell_type", pos), self.value("domain", pos)
        domain = domain if isinstance(domain, str) else None
        return neurons.shape_for(cell if isinstance(cell, tuple | str) else None, domain), domain

    def record(self, neuron_id: int) -> dict[str, Any] | None:
        """The record as the real API serves it, without ``_links`` (numbers as strings, lists as lists)."""
        pos = self.position(neuron_id)
        if pos is None:
            return None
        group = self._group_at(pos)
        computed = dict(zip(_COMPUTED, self._surfaces(pos), strict=True))  # one hash, three fields
        out: dict[str, Any] = {}
        for key in _RECORD_KEYS:
            value = computed[key] if key in computed else self.value(key, pos, group)
            out[key] = list(value) if isinstance(value, tuple) else value
        out["neuron_id"] = neuron_id
        return out

    def scan(self, field: str, accept: Callable[[str], bool]) -> bytearray:
        """Mask over positions (1 = the neuron's value, or any element of a list value, is accepted).

        Null never matches. Group-level options are tested once per distinct value; only groups whose
        options partly match are walked neuron by neuron.
        """
        key = self.field_key(field)
        mask = bytearray(len(self._names))
        if key in _PER_NEURON:
            for pos, value in enumerate(self._column(key)):
                if value is not None and accept(value):
                    mask[pos] = 1
            return mask
        memo: dict[Value, bool] = {}

        def hit(value: Value) -> bool:
            if value not in memo:
                memo[value] = any(accept(e) for e in _elements(value))
            return memo[value]

        for group in self._groups:
            hits = [hit(option) for option in self._options(key, group)]
            if all(hits):
                mask[group.start : group.stop] = b"\x01" * (group.stop - group.start)
            elif any(hits):
                column = self._variants[_VARIANT_KEY[key]]
                for pos in range(group.start, group.stop):
                    if hits[column[pos] % len(hits)]:
                        mask[pos] = 1
        return mask

    def _options(self, key: str, group: Group) -> tuple[Value, ...]:
        return (self._archives[group.archive],) if key == "archive" else group.options[key]

    def _column(self, key: str) -> Iterator[str | None]:
        """Values, in position order, of a field held per neuron (only ``soma_surface`` can be null)."""
        if key == "neuron_name":
            return iter(self._names)
        if key == "neuron_id":
            return map(str, self._ids)
        if key == "png_url":
            return (self._png_url(pos, g) for g in self._groups for pos in range(g.start, g.stop))
        index = _COMPUTED.index(key)
        return (self._surfaces(pos)[index] for pos in range(len(self._ids)))

    def partition(self, field: str) -> dict[str, int]:
        """Value -> number of neurons having it (a neuron counts once per distinct list element)."""
        if field in POSITIONAL_FIELDS:
            return dict(self._summary(*POSITIONAL_FIELDS[field]))
        key = self.field_key(field)
        if key in _PER_NEURON:
            return dict(Counter(v for v in self._column(key) if v is not None))
        return dict(self._summary(key))

    def field_values(self, field: str) -> list[str]:
        """Distinct values of a field, list fields flattened, nulls left out, in the server's order.

        The real server's order is not alphabetical (E: species come as mouse, rat, drosophila
        melanogaster, human, ...): here the most common value first, ties in order of first appearance
        (inferred); ids in id order, other per-neuron fields in id order. Values keep their case and spaces.
        A :data:`POSITIONAL_FIELDS` name (``brain_region_2``) lists the values at that place of the list.
        Each list is built once and kept: callers get the cached list and must not change it.
        """
        key = field if field in POSITIONAL_FIELDS else self.field_key(field)
        cached = self._field_values.get(key)
        if cached is not None:
            return cached
        if key in POSITIONAL_FIELDS:
            values = [value for value, _ in self._summary(*POSITIONAL_FIELDS[key]).most_common()]
        elif key == "neuron_id":
            values = [str(i) for i in self._ids]
        elif key in _PER_NEURON:
            values = [v for v in dict.fromkeys(self._column(key)) if v is not None]
        else:
            values = [value for value, _ in self._summary(key).most_common()]
        self._field_values[key] = values
        return values

    def _summary(self, key: str, at: int | None = None) -> Counter[str]:
        """Neuron counts per value of a group-level field (of a list's ``at``-th element only, when given),
        counted group by group; small, so cached."""
        if (key, at) in self._summaries:
            return self._summaries[key, at]
        counts = Counter[str]()
        for group in self._groups:
            options = self._options(key, group)
            if len(options) == 1:
                per_option = {0: group.stop - group.start}
            else:
                column = self._variants[_VARIANT_KEY[key]][group.start : group.stop]
                per_option = Counter(byte % len(options) for byte in column)
            for index, count in per_option.items():
                # dict.fromkeys, not set: a set of strings iterates in the process's hash order, and
                # field_values breaks ties in first-seen order (same seed => same bytes in every process).
                elements = _elements(options[index])
                for element in dict.fromkeys(elements if at is None else elements[at : at + 1]):
                    counts[element] += count
        self._summaries[key, at] = counts
        return counts


def _fold_digest(folded: str) -> int:
    return zlib.crc32(folded.encode("utf-8", "surrogatepass"))


def _elements(value: Value) -> tuple[str, ...]:
    """A value as the strings a query or a partition sees: a list's elements, nothing for null."""
    if isinstance(value, tuple):
        return value
    return () if value is None else (value,)
