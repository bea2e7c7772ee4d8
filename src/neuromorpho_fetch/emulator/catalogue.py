"""The emulator's synthetic NeuroMorpho.Org catalogue: records, morphometry, persistence vectors and files.

Everything is a deterministic function of ``seed`` (``random.Random`` seeded with ints and a splitmix64
hash; never Python's salted ``hash()``), so two processes with the same seed serve identical records and
bytes, and a test can compare a download byte-for-byte with :meth:`Catalogue.file_for`.

**Shape of the data.** Neurons come in *groups* (one upload from one lab: same species, stain, software,
publication...), and each group belongs to an *archive*. Archive sizes follow the real archive's skew:
``Allen Cell Types`` holds 30% of the catalogue, ``Siegert`` 7%, ``Jefferis`` and ``Wearne_Hof`` 2% each,
and the remaining 59% is spread over a Zipf-like long tail of about ``1.1 * sqrt(neurons)`` archives (a few
hundred neurons down to a handful). The recorded neurons are real (:mod:`.recorded`): id 1 is
``cnic_001`` of ``Wearne_Hof`` and Siegert's first group is the tutorial's 15
``CB_CKp25_2w_F_Animal01_TraceNNN``; the rest of Siegert is synthetic (``CB_Ctrl_6w_M_Animal07_CA1_0007``).
Species follow the 2026 counts (E): mouse ~63%, rat ~24%, human ~6%, and at full size all 95 species
(tail groups draw mouse, rat or the next of the other species in turn); about 35% of neurons are glia,
about half have only ``Neurites``/``Processes`` as domain, ``soma_surface`` is null for one in five.
Groups are shuffled before ids are given out (cnic_001's first), so an archive's neurons are spread over
the id range in blocks, and ids have gaps (about 3% of steps skip 2 to 16 ids: the highest id is about
1.28 times the count, as E's 322,002 for 253,545). Every 137th neuron gets an awkward name (spaces,
parentheses, ``+``, ``#``, ``%``, dots, non-ASCII letters); ``hostile_names=True`` appends
:data:`HOSTILE_NAMES` (names that try to leave a directory) as one more group.

**Why it is compact.** At 265,000 neurons the emulator must stay small and start fast, so no record is
stored: a neuron is its position in the id order. Per neuron we keep only its id (``array('I')``), its
name, and one random byte per *variant key*; a group keeps, for each field, a tuple of options, and a
neuron's value is ``options[byte % len(options)]`` (one option = constant over the group). Record fields
``soma_surface``, ``surface`` and ``volume`` are derived from a hash of ``(seed, id)``. Searching a field
therefore scans a few thousand groups, and only the groups whose options partly match are scanned
neuron by neuron (see :meth:`Catalogue.scan`).

**Files.** A CNG file is a per-neuron header (either CNG header style, sometimes with a Latin-1 line)
followed by a prefix of a *master* SWC body: a tree written parents-first stays a valid tree when cut
after any line, so a few masters per run (by size tier, variant and column alignment; shared by every
catalogue of the seed in the process) give every neuron its body by slicing. Sizes are log-normal
(median 50 KB, about 1% over 1 MB, capped at 5 MB, snapped to classes 10 KB x 1.15^k) unless ``file_kb``
fixes them. Source files are cut the same way (SWC, binary DAT, MBF XML), except Neurolucida ASCII, whose
nesting cannot be cut and which is pooled per size. Built files sit in a small byte-bounded LRU cache.
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

from . import morphology, recorded
from ._lru import ByteLRU
from .recorded import original_format_extension

__all__ = ["FIELDS", "HOSTILE_NAMES", "KINDS", "LIST_FIELDS", "Catalogue", "EmulatedFile", "Value"]

#: The 44 names of ``GET /api/neuron/fields``, in the server's order (reference A7).
FIELDS: tuple[str, ...] = (
    "neuron_id", "neuron_name", "archive", "age_scale", "gender", "reference_pmid", "reference_doi",
    "note", "age_classification", "brain_region", "cell_type", "species", "strain", "scientific_name",
    "stain", "experiment_condition", "protocol", "slicing_direction", "reconstruction_software",
    "objective_type", "original_format", "domain", "attributes", "magnification", "upload_date",
    "deposition_date", "shrinkage_reported", "shrinkage_corrected", "reported_value", "reported_xy",
    "reported_z", "corrected_value", "corrected_xy", "corrected_z", "soma_surface", "surface", "volume",
    "slicing_thickness", "min_age", "max_age", "min_weight", "max_weight", "png_url", "Physical_Integrity",
)  # fmt: skip

#: Key order of a served record (that of the real example record, reference A7).
_RECORD_KEYS: tuple[str, ...] = (
    "neuron_id", "neuron_name", "archive", "note", "age_scale", "gender", "age_classification",
    "brain_region", "cell_type", "species", "strain", "scientific_name", "stain", "experiment_condition",
    "protocol", "slicing_direction", "reconstruction_software", "objective_type", "original_format",
    "domain", "attributes", "magnification", "upload_date", "deposition_date", "shrinkage_reported",
    "shrinkage_corrected", "reported_value", "reported_xy", "reported_z", "corrected_value", "corrected_xy",
    "corrected_z", "soma_surface", "surface", "volume", "slicing_thickness", "min_age", "max_age",
    "min_weight", "max_weight", "png_url", "reference_pmid", "reference_doi", "physical_Integrity",
)  # fmt: skip

LIST_FIELDS = frozenset(
    {"brain_region", "cell_type", "experiment_condition", "reference_pmid", "reference_doi"}
)
KINDS = ("CNG", "source", "remaining-issues", "standardization-log", "images")

#: Names added by ``hostile_names=True``: each tries to escape the download directory or confuse a path.
HOSTILE_NAMES: tuple[str, ...] = (
    "../../escape", "sub/dir/name", "..", ".hidden", "back\\slash", "C:\\win", "%2e%2e%2fescape",
    "long_" + "n" * 295,
)  # fmt: skip

#: A field's value: a string, a list field's elements, or null.
Value = str | tuple[str, ...] | None

_FOLDER_KIND = {
    "CNG version": "CNG",
    "Source-Version": "source",
    "Remaining issues": "remaining-issues",
    "Standardization log": "standardization-log",
}
_COMPUTED = ("soma_surface", "surface", "volume")
_PER_NEURON = frozenset({"neuron_id", "neuron_name", "png_url", *_COMPUTED})  # not held by groups
#: Fields whose value may differ inside a group, and which random byte column picks it. Fields sharing
#: a key vary together (an age range and its classification).
_VARIANT_KEY = {
    "brain_region": "region", "cell_type": "cell", "experiment_condition": "cond",
    "original_format": "format", "physical_Integrity": "integrity", "domain": "domain",
    "age_classification": "age", "min_age": "age", "max_age": "age", "min_weight": "age", "max_weight": "age",
}  # fmt: skip
_SPECIAL_EVERY = 137
_SPECIAL_NAMES = (
    "Zellé {k} (b)#2", "n+{k}%x.v2", "cell {k} (apical)", "Ñeurona_{k}.tif", "slice#{k} 50%",
    "Pyr.{k}.a+b", "Körnerzelle {k}", "neuron({k})_übung", "{k}% stain+1", "jäger #{k}",
)  # fmt: skip

_MASK64 = (1 << 64) - 1
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


def mix64(*parts: int) -> int:
    """splitmix64 over the parts: a stable 64-bit hash, the same in every process (unlike ``hash()``)."""
    z = 0x9E3779B97F4A7C15
    for part in parts:
        z = ((z ^ (part & _MASK64)) + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z


@dataclass(frozen=True, slots=True)
class EmulatedFile:
    """One file as the server holds it; ``etag`` and ``last_modified`` are stable for (seed, id, kind)."""

    neuron_id: int
    kind: str
    body: bytes
    etag: str
    last_modified: datetime
    content_type: str


# --- vocabularies -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Species:
    species: str
    scientific: str
    strains: tuple[str, ...]
    regions: str  # key of _REGIONS
    cells: str  # key of _CELLS
    age_scale: str


_REGIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mammal": (
        ("neocortex", "prefrontal", "layer 3"), ("neocortex", "somatosensory", "layer 5"),
        ("neocortex", "occipital", "layer 6"), ("neocortex", "visual cortex", "layer 2-3"),
        ("entorhinal cortex", "medial entorhinal cortex", "layer 2"), ("entorhinal cortex", "layer 3"),
        ("cortex", "layer 4"), ("cortex",), ("hippocampus", "CA1", "stratum oriens"),
        ("hippocampus", "CA3", "stratum radiatum"), ("hippocampus", "dentate gyrus", "granule layer"),
        ("cerebellum", "Purkinje layer"), ("spinal cord", "dorsal horn", "lamina I"),
        ("retina", "ganglion cell layer"), ("basal ganglia", "striatum", "dorsal striatum"),
        ("thalamus", "ventral posteromedial nucleus"), ("amygdala", "basolateral amygdala"),
        ("olfactory bulb", "mitral cell layer"), ("brainstem", "nucleus of the solitary tract"),
    ),
    "fly": (
        ("antennal lobe",), ("mushroom body", "calyx"), ("lateral horn",),
        ("protocerebrum", "central complex", "fan-shaped body"), ("optic lobe", "medulla"),
        ("ventral nerve cord", "abdominal neuromere"),
    ),
    "fish": (
        ("optic tectum", "stratum periventriculare"), ("hindbrain", "rhombomere 4"),
        ("spinal cord", "ventral horn"), ("retina", "inner plexiform layer"),
    ),
    "bird": (("optic tectum", "layer 5"), ("nucleus magnocellularis",), ("hippocampus",)),
}  # fmt: skip

_CELLS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mammal": (
        ("pyramidal", "principal cell"), ("Local projecting", "pyramidal", "principal cell"),
        ("interneuron", "basket", "Parvalbumin (PV)-positive"),
        ("interneuron", "Martinotti", "Somatostatin (SOM)-positive"), ("granule", "principal cell"),
        ("Purkinje", "principal cell"), ("stellate", "interneuron"), ("medium spiny", "principal cell"),
        ("ganglion", "principal cell"), ("motoneuron", "principal cell"),
    ),
    "glia": (("microglia", "glia"), ("astrocyte", "glia")),
    "fly": (
        ("projection neuron", "uniglomerular", "principal cell"), ("Kenyon cell", "principal cell"),
        ("local neuron", "interneuron"), ("lobula plate tangential cell",),
    ),
    "fish": (("Mauthner", "principal cell"), ("periventricular neuron", "principal cell"),
             ("motoneuron", "principal cell")),
}  # fmt: skip

_SPECIES: dict[str, _Species] = {
    s.scientific: s
    for s in (
        _Species("mouse", "Mus musculus", ("C57BL/6", "C57BL/6J", "Thy1-YFP-H", "Ai14", "Sst-IRES-Cre"),
                 "mammal", "mammal", "Day"),
        _Species("rat", "Rattus norvegicus", ("Sprague-Dawley", "Wistar", "Long-Evans"),
                 "mammal", "mammal", "Day"),
        _Species("drosophila melanogaster", "Drosophila melanogaster", ("Canton-S", "OregonR", "GH146-Gal4"),
                 "fly", "fly", "Day"),
        _Species("human", "Homo sapiens", ("Not applicable",), "mammal", "mammal", "Year"),
        _Species("zebrafish", "Danio rerio", ("AB", "Tübingen"), "fish", "fish", "Day"),
        _Species("monkey", "Macaca mulatta", ("Rhesus",), "mammal", "mammal", "Year"),
        _Species("C. elegans", "Caenorhabditis elegans", ("N2",), "fly", "fly", "Day"),
        _Species("monkey", "Macaca fascicularis", ("Cynomolgus",), "mammal", "mammal", "Year"),
        *(_Species(common, scientific, ("Not reported",), kind, kind if kind != "bird" else "mammal", "Day")
          for common, scientific, kind in (
            ("cat", "Felis catus", "mammal"), ("chicken", "Gallus gallus domesticus", "bird"),
            ("guinea pig", "Cavia porcellus", "mammal"), ("elephant", "Loxodonta africana", "mammal"),
            ("Hamster", "Mesocricetus auratus", "mammal"), ("dragonfly ", "Anax junius", "fly"),
            ("Praying mantis (Hierodula membranacea)", "Hierodula membranacea", "fly"),
            ("Steller's Sculpin", "Myoxocephalus stelleri", "fish"),
            ("blowfly", "Calliphora vicina", "fly"), ("katydid", "Neoconocephalus triops", "fly"),
            ("grasshopper", "Chorthippus biguttulus", "fly"), ("butterfly", "Danaus plexippus", "fly"),
            ("wasp", "Vespula vulgaris", "fly"), ("termite", "Zootermopsis nevadensis", "fly"),
            ("ferret", "Mustela putorius furo", "mammal"), ("rabbit", "Oryctolagus cuniculus", "mammal"),
            ("sheep", "Ovis aries", "mammal"), ("llama", "Lama glama", "mammal"),
            ("dog", "Canis familiaris", "mammal"), ("giraffe", "Giraffa camelopardalis", "mammal"),
            ("manatee", "Trichechus manatus", "mammal"), ("cow", "Bos taurus", "mammal"),
            ("earthworm", "Lumbricus terrestris", "fly"), ("crayfish", "Procambarus clarkii", "fly"),
            ("lobster", "Homarus americanus", "fly"), ("spider", "Cupiennius salei", "fly"),
            ("squid", "Doryteuthis pealeii", "fly"), ("octopus", "Octopus vulgaris", "fly"),
            ("bat", "Eptesicus fuscus", "mammal"),
            ("gray short-tailed opossum", "Monodelphis domestica", "mammal"),
            ("Azara's agouti", "Dasyprocta azarae", "mammal"), ("hedgehog", "Erinaceus europaeus", "mammal"),
            ("degu", "Octodon degus", "mammal"), ("tamarin", "Saguinus oedipus", "mammal"),
            ("chimpanzee", "Pan troglodytes", "mammal"), ("baboon", "Papio anubis", "mammal"),
            ("goldfish", "Carassius auratus", "fish"), ("toad", "Rhinella marina", "fish"),
            ("salamander", "Ambystoma mexicanum", "fish"), ("turtle", "Trachemys scripta", "fish"),
            ("lizard", "Anolis carolinensis", "fish"), ("hagfish", "Myxine glutinosa", "fish"),
            ("starling", "Sturnus vulgaris", "bird"), ("canary", "Serinus canaria", "bird"),
            ("heron", "Ardea cinerea", "bird"), ("budgerigar", "Melopsittacus undulatus", "bird"),
            ("magpie", "Pica pica", "bird"), ("armadillo", "Dasypus novemcinctus", "mammal"),
            ("mole", "Talpa europaea", "mammal"), ("capybara", "Hydrochoerus hydrochaeris", "mammal"),
            ("seal", "Phoca vitulina", "mammal"), ("walrus", "Odobenus rosmarus", "mammal"),
            ("Proechimys", "Proechimys guyannensis", "mammal"),
            ("long-tailed chinchilla", "Chinchilla lanigera", "mammal"),
            ("naked mole-rat", "Heterocephalus glaber", "mammal"),
            ("Mongolian gerbil", "Meriones unguiculatus mongolicus", "mammal"),
            ("sea lamprey", "Petromyzon marinus marinus", "fish"),
            ("Etruscan shrew", "Suncus etruscus etr", "mammal"),
            ("clouded leopard", "Neofelis nebulosa", "mammal"),
            ("Siberian tiger", "Panthera tigris altaica", "mammal"),
            ("domestic pig", "Sus scrofa domesticus", "mammal"),
            ("rock pigeon", "Columba livia domestica", "bird"),
            ("grey squirrel", "Sciurus carolinensis gr", "mammal"),
            ("bottlenose dolphin", "Tursiops truncatus bd", "mammal"),
            ("humpback whale", "Megaptera novaeangliae hw", "mammal"),
            ("minke whale", "Balaenoptera acutorostrata", "mammal"),
            ("sperm whale", "Physeter macrocephalus", "mammal"),
            ("pygmy hippopotamus", "Choeropsis liberiensis", "mammal"),
            ("common marmoset", "Callithrix jacchus cm", "mammal"),
            ("squirrel monkey (Saimiri)", "Saimiri sciureus", "mammal"),
            ("tree shrew", "Tupaia belangeri", "mammal"),
            ("Japanese quail", "Coturnix japonica jq", "bird"),
            ("zebra finch", "Taeniopygia guttata zf", "bird"), ("barn owl", "Tyto alba ba", "bird"),
            ("house sparrow", "Passer domesticus hs", "bird"),
            ("spiny dogfish", "Squalus acanthias", "fish"),
            ("electric fish", "Apteronotus leptorhynchus", "fish"),
            ("medicinal leech", "Hirudo verbana", "fly"), ("blue crab", "Callinectes sapidus", "fly"),
            ("sea slug", "Aplysia californica", "fly"), ("honey bee", "Apis mellifera ligustica", "fly"),
            ("desert locust", "Schistocerca gregaria dl", "fly"), ("hawk moth", "Manduca sexta hm", "fly"),
            ("house cricket", "Acheta domesticus", "fly"),
            ("American cockroach", "Periplaneta americana ac", "fly"),
            ("African clawed frog", "Xenopus laevis acf", "fish"),
            ("Axolotl", "Ambystoma mexicanum ax", "fish"),
            ("red-eared slider", "Trachemys scripta elegans", "fish"),
          ))
    )
}  # fmt: skip
#: Share of the 2026 catalogue per species (E: mouse 160,070, rat 60,771, human 15,676 of 253,545
#: single-word-species neurons; about 95 species in all). The catalogue is apportioned by these shares:
#: the big archives' species first, the rest of the archives draw per group (``_tail_species``).
_MAIN_SPECIES = ("Mus musculus", "Rattus norvegicus", "Homo sapiens")
_OTHER_SPECIES = tuple(k for k in _SPECIES if k not in _MAIN_SPECIES)
#: Weights for a tail group's species: mouse, rat, then "another species" (taken in turn, so that at full
#: scale every one of the ~95 species appears; inferred: the real long tail is many small uploads).
_TAIL_WEIGHTS = (0.54, 0.41, 0.05)
#: Share of tail groups that are glia (with Siegert's microglia, about 35% of records, E).
_GLIA_SHARE = 0.47

_STAINS = (
    "lucifer yellow", "biocytin", "Golgi", "neurobiotin", "green fluorescent protein (GFP)",
    "horseradish peroxidase (HRP)", "Alexa Fluor 594", "DiI", "tdTomato", "Golgi-Cox",
)  # fmt: skip
_SOFTWARE = (
    ("Neurolucida", "Neurolucida.DAT"), ("Neurolucida", "Neurolucida.asc"),
    ("Neurolucida", "Neurolucida.xml"),
    ("Neurozoom", "Neurozoom.swc"), ("Vaa3D", "Vaa3D.swc"), ("Imaris", "Imaris.swc"),
    ("Simple Neurite Tracer", "SNT.swc"), ("Custom", "Custom.xml"), ("Eutectics", "Eutectics.asc"),
    ("Neuron_Morpho", "Neuron_Morpho.swc"),
)  # fmt: skip
_PROTOCOLS = ("in vivo", "in vitro", "culture", "ex vivo", "Not reported")
_SLICING = ("coronal", "sagittal", "horizontal", "custom", "transverse", "Not reported")
_OBJECTIVES = ("Not reported", "oil", "water", "dry", "glycerin", "multiphoton")
_DOMAINS = ("Dendrites, Soma, No Axon", "Dendrites, Soma, Axon", "Axon, Soma, No Dendrites",
            "Dendrites, No Soma, No Axon", "Processes, Soma")  # fmt: skip
_ATTRIBUTES = ("Diameter, 3D, Angles", "No Diameter, 3D, Angles", "Diameter, 2D, Angles",
               "Diameter, 3D, No Angles")  # fmt: skip
_INTEGRITY = ("Dendrites Moderate", "Dendrites Complete", "Dendrites & Axon Complete", "Dendrites Incomplete",
              "Axon Complete", "Processes Complete")  # fmt: skip
_GENDERS = ("Male", "Female", "Male/Female", "Not reported")
_CONDITIONS = (("Control",), ("Control", "Aging"), ("Transgenic", "CKp25"), ("Treated with LPS",),
               ("Knockout",), ("In vitro culture",))  # fmt: skip
_NOTE = (
    "When originally released, this reconstruction had been incompletely processed, and this issue was "
    "fixed in a later release. The previous version of the processed file is available on request."
)
_AGE_CLASSES = ("young", "adult", "old", "neonatal", "embryonic", "larval", "Not reported")

_BIG_ARCHIVES = (  # name, share of the catalogue, name style, species (scientific names, weights)
    ("Allen Cell Types", 0.30, "allen", (("Homo sapiens", 0.2), ("Mus musculus", 0.8))),
    ("Jefferis", 0.02, "jefferis", (("Drosophila melanogaster", 1.0),)),
    ("Siegert", 0.07, "siegert", (("Mus musculus", 1.0),)),
    ("Wearne_Hof", 0.02, "cnic", (("Macaca mulatta", 1.0),)),
)
_TAIL_ARCHIVES = (
    "Amaral", "Smith", "Scanziani", "Chiang", "Turner", "Kawaguchi", "Ascoli", "Martone", "Yuste",
    "Claiborne", "Jaffe", "Spruston", "Svoboda", "Larkman", "Markram", "DeFelipe", "Dendritica", "Hay",
    "Buzsaki",
    "Helmstaedter", "Staiger", "Chen", "Wang", "Zhang", "Kisvarday", "Mizrahi", "Bergstrom", "Tolias",
    "Brown", "Cauli", "Gulyas", "Soltesz", "Urban", "Miller", "Pinto", "Topolnik", "Nedivi", "Ferrante",
    "Cline", "Meyer",
    "Gonzalez Burgos", "Müller", "Hof", "Jacobs", "Kole", "Lübke", "Segev", "Stuart", "Wittner", "Zilles",
)  # fmt: skip
_TAIL_STYLES = ("abbr_num", "cellx", "dated", "ground", "long")
_SIEGERT_PREFIX = recorded.SIEGERT_PREFIX
#: Name styles of the groups that hold recorded neurons (their names and values are not synthetic).
_RECORDED_STYLES = frozenset({"cnic_001", "trace"})
_TRACE_NAMES = frozenset(recorded.SIEGERT_TRACES)


# --- the catalogue --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Group:
    """One upload: neurons at positions ``start..stop-1`` sharing an archive and a set of field options."""

    archive: int
    start: int
    stop: int
    options: dict[str, tuple[Value, ...]]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a neuron's group looks like before positions are given out."""

    archive: int
    size: int
    options: dict[str, tuple[Value, ...]]
    token: str
    style: str


class Catalogue:
    """A deterministic synthetic NeuroMorpho.Org database; see the module docstring for its shape."""

    def __init__(
        self, neurons: int = 2000, seed: int = 7, *, hostile_names: bool = False, file_kb: float | None = None
    ) -> None:
        if neurons < 0:
            raise ValueError("neurons must be >= 0")
        self.seed = seed
        self.file_kb = file_kb
        rng = random.Random(seed)
        self._archives: list[str] = []
        self._other_turn = -1
        plans = self._plan_groups(rng, neurons)
        rng.shuffle(plans)
        plans.sort(key=lambda plan: plan.style != "cnic_001")  # cnic_001 is neuron id 1
        if hostile_names:
            plans.append(self._hostile_plan(rng))
        self._groups: list[_Group] = []
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._layout(plans)
        self._group_starts = [g.start for g in self._groups]
        self._ids = self._make_ids(rng, len(self._names))
        #: Id of the recorded neuron cnic_001 (always 1 when the catalogue holds it).
        self._cnic_id = self._ids[0] if self._names[:1] == ["cnic_001"] else None
        variant_keys = sorted(set(_VARIANT_KEY.values()))
        self._variants = {key: rng.randbytes(len(self._names)) for key in variant_keys}
        self._folded_index: tuple[array[int], array[int]] | None = None
        self._bodies: ByteLRU[tuple[Hashable, ...], bytes] = ByteLRU(_BODY_CACHE_BYTES)
        self._files: ByteLRU[tuple[int, str], EmulatedFile] = ByteLRU(_FILE_CACHE_BYTES)
        self._summaries: dict[str, Counter[str]] = {}
        self._field_values: dict[str, list[str]] = {}

    # -- construction -----------------------------------------------------------------------------------

    def _plan_groups(self, rng: random.Random, neurons: int) -> list[_Plan]:
        """Archive sizes (fixed shares for the big four, Zipf tail), each split into groups."""
        tail_count = max(6, round(1.1 * math.sqrt(neurons)))
        weights = [1.0 / (j + 1) ** 1.1 for j in range(tail_count)]
        tail_share = 1.0 - sum(share for _, share, _, _ in _BIG_ARCHIVES)
        shares = [share for _, share, _, _ in _BIG_ARCHIVES] + [
            tail_share * w / sum(weights) for w in weights
        ]
        sizes = _apportion(neurons, shares)
        if neurons >= 4 * len(recorded.SIEGERT_TRACES):
            # The recorded neurons exist in every catalogue big enough to hold them (taken from Allen).
            for i, least in ((2, len(recorded.SIEGERT_TRACES)), (3, 1)):
                missing = max(0, least - sizes[i])
                sizes[i] += missing
                sizes[0] -= missing
        plans: list[_Plan] = []
        tail_names = _tail_archive_names(rng, tail_count)
        for i, size in enumerate(sizes):
            if size == 0:
                continue
            species: tuple[tuple[str, float], ...] | None = None  # None: drawn per group (tail)
            if i < len(_BIG_ARCHIVES):
                name, _, style, species = _BIG_ARCHIVES[i]
            else:
                name, style = tail_names[i - len(_BIG_ARCHIVES)], rng.choice(_TAIL_STYLES)
            self._archives.append(name)
            plans += self._plan_archive(rng, len(self._archives) - 1, size, style, species)
        return plans

    def _group_species(self, rng: random.Random, species: tuple[tuple[str, float], ...] | None) -> _Species:
        """A group's species: the archive's own, or for the tail mouse, rat or the next other species."""
        if species is not None:
            names, weights = zip(*species, strict=True)
            return _SPECIES[rng.choices(names, weights)[0]]
        pick = rng.choices((0, 1, 2), _TAIL_WEIGHTS)[0]
        if pick < 2:
            return _SPECIES[_MAIN_SPECIES[pick]]
        self._other_turn += 1
        return _SPECIES[_OTHER_SPECIES[self._other_turn % len(_OTHER_SPECIES)]]

    def _plan_archive(
        self,
        rng: random.Random,
        archive: int,
        size: int,
        style: str,
        species: tuple[tuple[str, float], ...] | None,
    ) -> list[_Plan]:
        formats = rng.sample(_SOFTWARE, rng.randint(1, 2))
        stains = rng.sample(_STAINS, rng.randint(1, 3))
        plans: list[_Plan] = []
        if style == "cnic":  # neuron id 1, verbatim (reference A7, E)
            options: dict[str, tuple[Value, ...]] = {
                k: (tuple(v) if isinstance(v, list) else v,) for k, v in recorded.CNIC_001.items()
            }
            plans.append(_Plan(archive, 1, options, "", "cnic_001"))
            size -= 1
        elif style == "siegert" and size:  # the tutorial's 15 Trace neurons (E)
            count = min(size, len(recorded.SIEGERT_TRACES))
            options = _group_options(rng, _SPECIES["Mus musculus"], recorded.TRACE_FORMAT, stains)
            options["original_format"] = (recorded.TRACE_FORMAT[1],)  # every Trace has its SWC original
            plans.append(_Plan(archive, count, _siegert(options), _SIEGERT_PREFIX, "trace"))
            size -= count
        while size > 0:
            count = min(size, rng.randint(20, 45) if style == "siegert" else rng.randint(5, 150))
            size -= count
            kind = self._group_species(rng, species)
            options = _group_options(rng, kind, rng.choice(formats), stains)
            if style == "siegert":
                options = _siegert(options)
            elif species is None and rng.random() < _GLIA_SHARE:
                options["cell_type"] = tuple(rng.sample(_CELLS["glia"], rng.choice((1, 2))))
                options["domain"] = (rng.choice(("Processes", "Neurites")),)
            elif rng.random() < 0.23:
                options["domain"] = ("Neurites",)
            token = _group_token(rng, style)
            plans.append(_Plan(archive, count, options, token, style))
        return plans

    def _hostile_plan(self, rng: random.Random) -> _Plan:
        """One extra group in the first archive (``Allen Cell Types`` has a space too) with hostile names."""
        if not self._archives:
            self._archives.append(_BIG_ARCHIVES[0][0])
        options = _group_options(
            rng, _SPECIES["Mus musculus"], ("Neurolucida", "Neurolucida.asc"), _STAINS[:1]
        )
        return _Plan(0, len(HOSTILE_NAMES), options, "", "hostile")

    def _layout(self, plans: Iterable[_Plan]) -> None:
        """Give out positions and names; a name that would repeat one already given gets ``~<position>``."""
        per_archive = [0] * len(self._archives)
        for plan in plans:
            start = len(self._names)
            self._groups.append(_Group(plan.archive, start, start + plan.size, plan.options))
            archive = self._archives[plan.archive]
            for j in range(plan.size):
                per_archive[plan.archive] += 1
                pos = len(self._names)
                if plan.style == "hostile":
                    name = HOSTILE_NAMES[j]
                elif plan.style == "trace":
                    name = recorded.SIEGERT_TRACES[j]
                elif plan.style == "cnic_001":
                    name = "cnic_001"
                elif pos % _SPECIAL_EVERY == 36 and plan.style not in _RECORDED_STYLES:
                    name = _SPECIAL_NAMES[(pos // _SPECIAL_EVERY) % len(_SPECIAL_NAMES)].format(k=pos)
                else:
                    name = _neuron_name(plan.style, archive, plan.token, per_archive[plan.archive])
                if name in self._index:
                    name = f"{name}~{pos}"
                self._index[name] = pos
                self._names.append(name)

    @staticmethod
    def _make_ids(rng: random.Random, count: int) -> array[int]:
        """Ascending ids from 1 with gaps: about 3% of steps skip 2 to 16 ids, so the highest id is about
        1.28 times the count, as in 2026 (E: 253,545 neurons seen, highest id 322,002). Id 1 is never
        skipped (it is cnic_001)."""
        ids = array("I", bytes(4 * count))
        current = 0
        for pos, byte in enumerate(rng.randbytes(count)):
            current += 1 if byte < 248 or pos == 0 else 1 + (byte - 247) * 2
            ids[pos] = current
        return ids

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

    def _group_at(self, pos: int) -> _Group:
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

    def value(self, key: str, pos: int, group: _Group | None = None) -> Value:
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
            return self._surfaces(self._ids[pos])[_COMPUTED.index(key)]
        options = group.options[key]
        if len(options) == 1:
            return options[0]
        return options[self._variants[_VARIANT_KEY[key]][pos] % len(options)]

    def values(self, key: str, positions: Iterable[int]) -> list[Value]:
        """:meth:`value` for many ascending positions, finding each group once (for sorting)."""
        out: list[Value] = []
        group: _Group | None = None
        for pos in positions:
            if group is None or not group.start <= pos < group.stop:
                group = self._group_at(pos)
            out.append(self.value(key, pos, group))
        return out

    def _png_url(self, pos: int, group: _Group) -> str:
        archive = self._archives[group.archive]
        return f"http://neuromorpho.org/images/imageFiles/{archive}/{self._names[pos]}.png"

    def _surfaces(self, neuron_id: int) -> tuple[str | None, str, str]:
        """``soma_surface``, ``surface`` and ``volume`` as the record's strings, from one hash of the id.

        ``soma_surface`` is null for one neuron in five (E: "missing for about one neuron in five").
        """
        if neuron_id == self._cnic_id:
            return (
                recorded.CNIC_001["soma_surface"],
                recorded.CNIC_001["surface"],
                recorded.CNIC_001["volume"],
            )
        h = mix64(self.seed, neuron_id, 0x5EED)
        u1, u2, u3 = (h & 0x1FFFFF) / 0x200000, ((h >> 21) & 0x1FFFFF) / 0x200000, (h >> 42) / 0x400000
        surface = 2000.0 * math.exp(3.0 * u2)
        return (
            None if u1 < 0.2 else str(round(150.0 + 1500.0 * u1 * u1, 2)),
            str(round(surface, 2)),
            str(round(surface * (0.2 + 0.6 * u3), 2)),
        )

    def record(self, neuron_id: int) -> dict[str, Any] | None:
        """The record as the real API serves it, without ``_links`` (numbers as strings, lists as lists)."""
        pos = self.position(neuron_id)
        if pos is None:
            return None
        group = self._group_at(pos)
        computed = dict(zip(_COMPUTED, self._surfaces(neuron_id), strict=True))  # one hash, three fields
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

    def _options(self, key: str, group: _Group) -> tuple[Value, ...]:
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
        return (self._surfaces(neuron_id)[index] for neuron_id in self._ids)

    def partition(self, field: str) -> dict[str, int]:
        """Value -> number of neurons having it (a neuron counts once per distinct list element)."""
        key = self.field_key(field)
        if key in _PER_NEURON:
            return dict(Counter(v for v in self._column(key) if v is not None))
        return dict(self._summary(key))

    def field_values(self, field: str) -> list[str]:
        """Distinct values of a field, list fields flattened, nulls left out, in the server's order.

        The real server's order is not alphabetical (E: species come as mouse, rat, drosophila
        melanogaster, human, ...): here the most common value first, ties in order of first appearance
        (inferred); ids in id order, other per-neuron fields in id order. Values keep their case and spaces.
        Each list is built once and kept: callers get the cached list and must not change it.
        """
        key = self.field_key(field)
        cached = self._field_values.get(key)
        if cached is not None:
            return cached
        if key == "neuron_id":
            values = [str(i) for i in self._ids]
        elif key in _PER_NEURON:
            values = [v for v in dict.fromkeys(self._column(key)) if v is not None]
        else:
            values = [value for value, _ in self._summary(key).most_common()]
        self._field_values[key] = values
        return values

    def _summary(self, key: str) -> Counter[str]:
        """Neuron counts per value of a group-level field, counted group by group; small, so cached."""
        if key in self._summaries:
            return self._summaries[key]
        counts = Counter[str]()
        for group in self._groups:
            options = self._options(key, group)
            if len(options) == 1:
                per_option = {0: group.stop - group.start}
            else:
                column = self._variants[_VARIANT_KEY[key]][group.start : group.stop]
                per_option = Counter(byte % len(options) for byte in column)
            for index, count in per_option.items():
                for element in set(_elements(options[index])):
                    counts[element] += count
        self._summaries[key] = counts
        return counts

    # -- morphometry and persistence vectors ---------------------------------------------------------------

    def morphometry(self, neuron_id: int) -> dict[str, Any] | None:
        """The ``/api/morphometry/id`` object: numbers, consistent with the record's surface figures
        (``soma_Surface`` null where the record's ``soma_surface`` is); cnic_001's as recorded (E)."""
        pos = self.position(neuron_id)
        if pos is None:
            return None
        if neuron_id == self._cnic_id:
            return dict(recorded.CNIC_001_MORPHOMETRY)
        soma_text, surface_text, volume_text = self._surfaces(neuron_id)
        soma = None if soma_text is None else float(soma_text)
        surface, volume = float(surface_text), float(volume_text)
        rng = random.Random(mix64(self.seed, neuron_id, 0x3E7))
        stems = rng.randint(1, 12)
        bifs = rng.randint(stems, 40 * stems)
        length = round(rng.uniform(300.0, 12000.0), 2)
        return {
            "neuron_id": neuron_id, "neuron_name": self._names[pos], "surface": surface, "volume": volume,
            "soma_Surface": soma, "n_stems": float(stems), "n_bifs": float(bifs),
            "n_branch": float(2 * bifs + stems), "width": round(rng.uniform(50, 900), 2),
            "height": round(rng.uniform(50, 1200), 2), "depth": round(rng.uniform(10, 400), 2),
            "diameter": round(rng.uniform(0.3, 2.5), 4), "length": length,
            "eucDistance": round(rng.uniform(40, 800), 2), "pathDistance": round(rng.uniform(60, 1500), 2),
            "branch_Order": float(rng.randint(2, 40)), "contraction": round(rng.uniform(0.7, 0.97), 4),
            "fragmentation": float(rng.randint(int(length // 4), int(length))),
            "partition_asymmetry": round(rng.uniform(0.3, 0.7), 4),
            "pk_classic": round(rng.uniform(1.5, 3.0), 4),
            "bif_ampl_local": round(rng.uniform(40, 90), 3), "bif_ampl_remote": round(rng.uniform(30, 80), 3),
            "fractal_Dim": round(rng.uniform(1.0, 1.1), 5),
        }  # fmt: skip

    def pvec(self, neuron_id: int) -> dict[str, Any] | None:
        """The ``/api/pvec/id`` object: a scale, a distance, and 100 coefficients of a decaying curve."""
        if self.position(neuron_id) is None:
            return None
        rng = random.Random(mix64(self.seed, neuron_id, 0x9EC))
        peak = rng.uniform(500.0, 5000.0)
        decay = rng.uniform(0.01, 0.08)
        coefficients = [round(peak * math.exp(-decay * i) * rng.uniform(0.9, 1.1), 4) for i in range(100)]
        return {"neuron_id": neuron_id, "scaling_factor": round(rng.uniform(50.0, 500.0), 3), "distance": 0.0,
                "coefficients": coefficients}  # fmt: skip

    # -- files ---------------------------------------------------------------------------------------------

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


def _fold_digest(folded: str) -> int:
    return zlib.crc32(folded.encode("utf-8", "surrogatepass"))


def _elements(value: Value) -> tuple[str, ...]:
    """A value as the strings a query or a partition sees: a list's elements, nothing for null."""
    if isinstance(value, tuple):
        return value
    return () if value is None else (value,)


#: Master bodies by (seed, format, tier, variant); see :meth:`Catalogue._master`.
_MASTERS: ByteLRU[tuple[int, str, int, int], bytes] = ByteLRU(_MASTER_CACHE_BYTES)


# --- helpers for construction ---------------------------------------------------------------------------


def _apportion(total: int, shares: Sequence[float]) -> list[int]:
    """Split ``total`` by ``shares`` (largest remainders), so the counts add up exactly."""
    scale = sum(shares)
    raw = [total * s / scale for s in shares]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _tail_archive_names(rng: random.Random, count: int) -> list[str]:
    """The curated names first, then ``A_B`` pairs; unique even when lower-cased (they become folders)."""
    names = list(_TAIL_ARCHIVES)
    seen = {n.lower() for n in names} | {a[0].lower() for a in _BIG_ARCHIVES}
    while len(names) < count:
        pair = f"{rng.choice(_TAIL_ARCHIVES)}_{rng.choice(_TAIL_ARCHIVES)}".replace(" ", "_")
        if pair.lower() not in seen:
            seen.add(pair.lower())
            names.append(pair)
    return names[:count]


def _group_options(
    rng: random.Random, species: _Species, software: tuple[str, str], stains: Sequence[str]
) -> dict[str, tuple[Value, ...]]:
    """Field options for one group; several options only for fields listed in ``_VARIANT_KEY``."""
    upload = datetime(2006, 1, 1) + timedelta(days=rng.randint(0, 18 * 365))
    deposit = upload - timedelta(days=rng.randint(30, 900))
    reported = rng.random() < 0.35
    pmids = tuple(str(rng.randint(10_000_000, 39_999_999)) for _ in range(rng.randint(1, 2)))
    ages = _age_options(rng, species)
    weights = _weight_options(rng, species, len(ages))
    options: dict[str, tuple[Value, ...]] = {
        "note": (_NOTE if rng.random() < 0.08 else None,),
        "age_scale": (species.age_scale,),
        "gender": (rng.choice(_GENDERS),),
        "age_classification": tuple(a[0] for a in ages),
        "min_age": tuple(a[1] for a in ages),
        "max_age": tuple(a[2] for a in ages),
        "min_weight": tuple(w[0] for w in weights),
        "max_weight": tuple(w[1] for w in weights),
        "brain_region": tuple(rng.sample(_REGIONS[species.regions], rng.choice((1, 1, 2, 3)))),
        "cell_type": tuple(rng.sample(_CELLS[species.cells], rng.choice((1, 1, 2)))),
        "species": (species.species,),
        "strain": (rng.choice(species.strains),),
        "scientific_name": (species.scientific,),
        "stain": (rng.choice(stains),),
        "experiment_condition": tuple(rng.sample(_CONDITIONS, rng.choice((1, 1, 2)))),
        "protocol": (rng.choice(_PROTOCOLS),),
        "slicing_direction": (rng.choice(_SLICING),),
        "reconstruction_software": (software[0],),
        "objective_type": (rng.choice(_OBJECTIVES),),
        # About 1% of neurons have no original format, hence no source file.
        "original_format": (software[1],) * 99 + (None,),
        "domain": tuple(rng.sample(_DOMAINS, rng.choice((1, 2)))),
        "attributes": (rng.choice(_ATTRIBUTES),),
        "magnification": (rng.choice(("100", "60", "63", "40", "20", None)),),
        "upload_date": (upload.date().isoformat(),),
        "deposition_date": (deposit.date().isoformat(),),
        "shrinkage_reported": ("Reported" if reported else "Not reported",),
        "shrinkage_corrected": (rng.choice(("Corrected", "Not Corrected")) if reported else "Not reported",),
        "slicing_thickness": (rng.choice(("50", "100", "200", "300", "350", "400", None)),),
        "reference_pmid": (pmids,),
        "reference_doi": (
            tuple(f"10.{rng.randint(1000, 9999)}/j.{rng.randint(1000, 99999)}" for _ in pmids),
        ),
        "physical_Integrity": tuple(rng.sample(_INTEGRITY, rng.choice((1, 2)))),
    }
    for key in (
        "reported_value",
        "reported_xy",
        "reported_z",
        "corrected_value",
        "corrected_xy",
        "corrected_z",
    ):
        options[key] = (str(round(rng.uniform(0.6, 1.0), 2)) if reported and rng.random() < 0.6 else None,)
    return options


def _age_options(rng: random.Random, species: _Species) -> list[tuple[str, str | None, str | None]]:
    """(age_classification, min_age, max_age) choices; ages are strings like ``"24.0"`` or null."""
    out: list[tuple[str, str | None, str | None]] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if rng.random() < 0.15:
            out.append(("Not reported", None, None))
            continue
        low = float(rng.randint(1, 90 if species.age_scale == "Day" else 30))
        out.append((rng.choice(_AGE_CLASSES[:6]), str(low), str(low + rng.randint(0, 5))))
    return out


def _weight_options(rng: random.Random, species: _Species, count: int) -> list[tuple[str | None, str | None]]:
    """(min_weight, max_weight) per age option; only mammals weighed at all, and often not reported."""
    if species.regions != "mammal" or rng.random() < 0.5:
        return [(None, None)] * count
    out: list[tuple[str | None, str | None]] = []
    for _ in range(count):
        low = round(rng.uniform(15.0, 5000.0), 1)
        out.append((str(low), str(round(low * rng.uniform(1.0, 2.2), 1))))
    return out


def _group_token(rng: random.Random, style: str) -> str:
    """The part of a neuron name a group shares (an animal, a donor, a fly line)."""
    if style == "siegert":
        # Never the tutorial's prefix: ``CB_CKp25_2w_F_Animal01_*`` selects exactly the 15 Traces (E).
        while True:
            genotype, weeks, sex = rng.choice(("CKp25", "Ctrl")), rng.choice(("2w", "6w")), rng.choice("FM")
            token = f"CB_{genotype}_{weeks}_{sex}_Animal{rng.randint(1, 12):02d}_"
            if token.casefold() != _SIEGERT_PREFIX.casefold():
                return token
    if style == "allen":
        return rng.choice((f"H{rng.randint(15, 19)}-{rng.randint(1, 12):02d}-{rng.randint(1, 30):03d}",
                           f"Sst-IRES-Cre;Ai14-{rng.randint(100000, 999999)}"))  # fmt: skip
    if style == "jefferis":
        return rng.choice(("FruMARCM", "GH146", "Mz19", "VGlut"))
    return f"{rng.randint(8, 24):02d}-{rng.randint(1, 12):02d}"


def _siegert(options: dict[str, tuple[Value, ...]]) -> dict[str, tuple[Value, ...]]:
    """Siegert's groups are mouse microglia (inferred from the CKp25 microglia study the names cite)."""
    options["cell_type"] = (("microglia", "glia"),)
    options["stain"] = ("Iba1 immunostaining",)
    options["domain"] = ("Processes",)
    return options


def _neuron_name(style: str, archive: str, token: str, k: int) -> str:
    """The ``k``-th (1-based) ordinary name of an archive; ``k`` keeps names in one archive unique."""
    abbr = "".join(ch for ch in archive if ch.isalnum())
    if style == "cnic":
        return f"cnic_{k:03d}"
    if style == "allen":
        return f"{token}-{k % 97:02d}_{500000000 + 73 * k}_m"
    if style == "siegert":
        return f"{token}{('CA1', 'CA3', 'DG', 'Ctx')[k % 4]}_{k:04d}"
    if style == "jefferis":
        return f"{token}-M{k:06d}_seg{1 + k % 3:03d}"
    if style == "cellx":
        return f"{abbr}-Cell{k}-{(40, 60, 100)[k % 3]}x"
    if style == "dated":
        return f"{abbr[:2].upper()}{token}-c{k}"
    if style == "ground":
        return f"cell{k:03d}_{abbr}"
    if style == "long":
        return f"{k}_{token}-{abbr}-Ctl-CA1Finished{k % 7}e"
    return f"{abbr}_{k:03d}"
