"""The ``/api/literature`` family: a synthetic publication database (reference A2, A7).

The real backend is a separate Spring + MongoDB service (github ``p-maraver/NeuroMorphoLiterature``), so
ids are 24-hex Mongo-style strings (``56e9c95de4b0355017b314d2``) and field names are camelCase. The 18
fields, the ``globalStatus`` values and epoch-millisecond dates were seen in answers of the live server (F,
"Literature"); the record keys come from neuromorphr's ``neuromorpho_process_literature``, the embedded key
``publicationResources`` from neuromorphr and ToolUniverse; the rest (the fields list's key, one page per
``fields/{field}`` as for neurons, the query subset, the record values) is inferred and marked in
docs/emulator.md.

Records are a pure function of ``(seed, index)``: an id carries its index (hex digits 8..15) plus a hash
check, so a lookup by id needs no table, and ``count`` records cost nothing until asked for.
"""

from __future__ import annotations

import fnmatch
import random
from collections import Counter
from typing import Any

from .hashing import mix64

#: ``GET /api/literature/fields``: the 18 fields a 2019 answer listed, in its order (F, "Literature": "listed
#: 18 fields: article_id pmid doi journal title authors species brainRegion cellType tracingSystem
#: evaluatedDate publishedDate globalStatus collection dataUsage sharedReconstructions status
#: nReconstructions"). ``nReconstructions`` lives inside the record's ``status`` object (neuromorphr reads
#: ``status$nReconstructions``, A7), so both names answer with its counts.
FIELDS: tuple[str, ...] = (
    "article_id", "pmid", "doi", "journal", "title", "authors", "species", "brainRegion", "cellType",
    "tracingSystem", "evaluatedDate", "publishedDate", "globalStatus", "collection", "dataUsage",
    "sharedReconstructions", "status", "nReconstructions",
)  # fmt: skip

_JOURNALS = ("J Neurosci", "J Comp Neurol", "Neuron", "Cereb Cortex", "eLife", "Nature", "Hippocampus",
             "Front Neuroanat", "J Neurophysiol", "Brain Struct Funct")  # fmt: skip
_SPECIES = ("mouse", "rat", "human", "monkey", "drosophila melanogaster", "zebrafish", "cat", "C. elegans")
_REGIONS = (
    "neocortex",
    "hippocampus",
    "cerebellum",
    "retina",
    "spinal cord",
    "thalamus",
    "entorhinal cortex",
)
_CELLS = ("pyramidal", "interneuron", "granule", "Purkinje", "microglia", "astrocyte", "ganglion")
_TRACING = ("Neurolucida", "Imaris", "Vaa3D", "Neurozoom", "Simple Neurite Tracer", "Custom")
#: F, "Literature": "globalStatus values include "Available", "Not available", "Determining availability"".
_STATUS = ("Available", "Not available", "Determining availability")
_COLLECTIONS = ("Neuroscience", "Glia", "Development", "Computational")
_USAGE = ("Describing", "Modeling", "Citing")
_SURNAMES = (
    "Wearne",
    "Hof",
    "Siegert",
    "Jefferis",
    "Ascoli",
    "Amaral",
    "Smith",
    "Chen",
    "Müller",
    "Kawaguchi",
)


_DAY_MS = 86_400_000
_EPOCH_2006_MS = 1_136_073_600_000  # 2006-01-01T00:00:00Z


class LiteratureQueryError(ValueError):
    """A ``q``/``fq`` the literature service answers with 400."""


class Literature:
    """``count`` publications derived from ``seed`` (about one per eight neurons, as 32k to 265k)."""

    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.seed = seed
        self._partitions: dict[str, Counter[str]] = {}

    def article_id(self, index: int) -> str:
        return f"56e9c95d{index:08x}{mix64(self.seed, index, 0x11E) & 0xFFFFFFFF:08x}"

    def index_of(self, article_id: str) -> int | None:
        """The index an id names, or None for an id no record has."""
        if len(article_id) != 24:
            return None
        try:
            index = int(article_id[8:16], 16)
        except ValueError:
            return None
        ok = index < self.count and self.article_id(index) == article_id.lower()
        return index if ok else None

    def record(self, index: int) -> dict[str, Any]:
        rng = random.Random(mix64(self.seed, index, 0x1173))
        authors = [f"{rng.choice(_SURNAMES)} {chr(65 + rng.randrange(26))}" for _ in range(rng.randint(1, 6))]
        pmid = str(10_000_000 + mix64(self.seed, index) % 29_999_999)
        shared = rng.random() < 0.4
        # Dates are epoch milliseconds (F, "Literature": "dates are epoch milliseconds"), UTC midnights.
        evaluated = _EPOCH_2006_MS + rng.randrange(19 * 365) * _DAY_MS
        return {
            "article_id": self.article_id(index),
            "pmid": pmid,
            "doi": f"10.{rng.randint(1000, 9999)}/{rng.choice(_JOURNALS).replace(' ', '').lower()}.{index}",
            "journal": rng.choice(_JOURNALS),
            "title": f"Morphology of {rng.choice(_CELLS)} cells in the {rng.choice(_REGIONS)} ({index})",
            "authors": authors,
            "species": rng.sample(_SPECIES, rng.randint(1, 2)),
            "brainRegion": rng.sample(_REGIONS, rng.randint(1, 2)),
            "cellType": rng.sample(_CELLS, rng.randint(1, 2)),
            "tracingSystem": [rng.choice(_TRACING)],
            "evaluatedDate": evaluated,
            "publishedDate": evaluated - rng.randint(30, 3 * 365) * _DAY_MS,
            "globalStatus": rng.choice(_STATUS),
            "collection": rng.choice(_COLLECTIONS),
            "dataUsage": [rng.choice(_USAGE)],
            "sharedReconstructions": shared,
            "status": {"nReconstructions": rng.randint(1, 200) if shared else 0},
        }

    def select(self, q: str | None, fq: tuple[str, ...]) -> list[int]:
        """Indexes matching every ``field:v1,v2`` term (values OR-ed, ``*``/``?`` wildcards, no case)."""
        terms = [t for t in (q, *fq) if t is not None and t.strip() not in ("", "*:*")]
        tests = [_term(t) for t in terms]
        return [i for i in range(self.count) if all(test(self.record(i)) for test in tests)]

    def field_values(self, field: str) -> list[str]:
        """Distinct values, most common first (as the neuron fields are ordered; inferred)."""
        return [value for value, _ in self.partition(field).most_common()]

    def partition(self, field: str) -> Counter[str]:
        if field not in FIELDS:
            raise KeyError(field)
        counts = self._partitions.get(field)
        if counts is None:
            counts = Counter()
            for i in range(self.count):
                counts.update(_values(self.record(i), field))
            self._partitions[field] = counts
        return counts


def _values(record: dict[str, Any], field: str) -> list[str]:
    """A field's values as strings; ``status`` and ``nReconstructions`` are the status object's count."""
    if field in ("status", "nReconstructions"):
        return [str(record["status"]["nReconstructions"])]
    return _strings(record[field])


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, bool):
        return [str(value).lower()]
    return [str(value)]


def _term(term: str) -> Any:
    field, colon, criteria = term.partition(":")
    field = field.strip()
    if not colon or field not in FIELDS:
        raise LiteratureQueryError(f"Unknown literature field in query: {field!r}")
    patterns = [c.strip().strip('"').casefold() for c in criteria.split(",") if c.strip()]

    def test(record: dict[str, Any]) -> bool:
        values = [v.casefold() for v in _values(record, field)]
        return any(fnmatch.fnmatchcase(v, p) for v in values for p in patterns)

    return test
