"""Building a catalogue's layout from its seed: archives, groups, names, ids and variant bytes.

The order of every draw from the seeded ``random.Random`` is part of the emulator's contract (two processes
with one seed serve identical bytes), so :func:`generate` keeps one order: plan the archives' groups,
shuffle them (cnic_001's first), append the hostile group, give out names, then ids, then one byte column
per variant key. See :mod:`.catalogue` for the shape this produces.
"""

from __future__ import annotations

import functools
import math
import random
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import recorded
from .vocabulary import (
    _ADULT_GRAMS,
    _AGE_RANGES,
    _ATTRIBUTES,
    _BIG_ARCHIVES,
    _CELL_REGIONS,
    _CELLS,
    _CONDITIONS,
    _DOMAINS,
    _GENDERS,
    _GLIA_DOMAINS,
    _GLIA_SHARE,
    _INTEGRITY,
    _MAIN_SPECIES,
    _NAMED_ARCHIVES,
    _NOTE,
    _OBJECTIVES,
    _OTHER_SPECIES,
    _PROTOCOLS,
    _REGIONS,
    _SIEGERT_PREFIX,
    _SLICING,
    _SOFTWARE,
    _SPECIAL_NAMES,
    _SPECIES,
    _STAINS,
    _TAIL_ARCHIVES,
    _TAIL_STYLES,
    _TAIL_WEIGHTS,
    _VARIANT_KEY,
    HOSTILE_NAMES,
    Value,
    _Species,
)


@dataclass(frozen=True, slots=True)
class Group:
    """One upload: neurons at positions ``start..stop-1`` sharing an archive and a set of field options."""

    archive: int
    start: int
    stop: int
    options: dict[str, tuple[Value, ...]]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a neuron's group looks like before positions are given out."""

    archive: int
    size: int
    options: dict[str, tuple[Value, ...]]
    token: str
    style: str


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything a catalogue stores: per neuron only an id, a name and one byte per variant key."""

    archives: list[str]
    groups: list[Group]
    names: list[str]
    index: dict[str, int]  # name -> position
    ids: array[int]  # ascending, with gaps
    variants: dict[str, bytes]  # variant key -> one random byte per position


def generate(neurons: int, seed: int, hostile_names: bool) -> Layout:
    """The layout of ``Catalogue(neurons, seed, hostile_names=...)``, drawn in the order above."""
    rng = random.Random(seed)
    planner = _Planner()
    plans = planner.plan_groups(rng, neurons)
    rng.shuffle(plans)
    plans.sort(key=lambda plan: plan.style != "cnic_001")  # cnic_001 is neuron id 1
    if hostile_names:
        plans.append(planner.hostile_plan(rng))
    planner.layout(plans)
    ids = _make_ids(rng, len(planner.names))
    variant_keys = sorted(set(_VARIANT_KEY.values()))
    variants = {key: rng.randbytes(len(planner.names)) for key in variant_keys}
    return Layout(planner.archives, planner.groups, planner.names, planner.index, ids, variants)


class _Planner:
    """The state of one generation: archives named so far, the tail's species turn, and the layout."""

    def __init__(self) -> None:
        self.archives: list[str] = []
        self.other_turn = -1
        self.groups: list[Group] = []
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def plan_groups(self, rng: random.Random, neurons: int) -> list[Plan]:
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
            for i, least in ((2, len(recorded.SIEGERT_TRACES)), (3, 1), (4, 10)):
                missing = max(0, least - sizes[i])
                sizes[i] += missing
                sizes[0] -= missing
        plans: list[Plan] = []
        tail_names = _tail_archive_names(rng, tail_count)
        for i, size in enumerate(sizes):
            if size == 0:
                continue
            species: tuple[tuple[str, float], ...] | None = None  # None: drawn per group (tail)
            if i < len(_BIG_ARCHIVES):
                name, _, style, species = _BIG_ARCHIVES[i]
            else:
                name, style = tail_names[i - len(_BIG_ARCHIVES)], rng.choice(_TAIL_STYLES)
                style = _NAMED_ARCHIVES.get(name, style)
            self.archives.append(name)
            plans += self.plan_archive(rng, len(self.archives) - 1, size, style, species)
        return plans

    def group_species(self, rng: random.Random, species: tuple[tuple[str, float], ...] | None) -> _Species:
        """A group's species: the archive's own, or for the tail mouse, rat or the next other species."""
        if species is not None:
            names, weights = zip(*species, strict=True)
            return _SPECIES[rng.choices(names, weights)[0]]
        pick = rng.choices((0, 1, 2), _TAIL_WEIGHTS)[0]
        if pick < 2:
            return _SPECIES[_MAIN_SPECIES[pick]]
        self.other_turn += 1
        return _SPECIES[_OTHER_SPECIES[self.other_turn % len(_OTHER_SPECIES)]]

    def plan_archive(
        self,
        rng: random.Random,
        archive: int,
        size: int,
        style: str,
        species: tuple[tuple[str, float], ...] | None,
    ) -> list[Plan]:
        formats = rng.sample(_SOFTWARE, rng.randint(1, 2))
        stains = rng.sample(_STAINS, rng.randint(1, 3))
        plans: list[Plan] = []
        if style == "cnic":  # neuron id 1, verbatim (reference A7, E)
            options: dict[str, tuple[Value, ...]] = {
                k: (tuple(v) if isinstance(v, list) else v,) for k, v in recorded.CNIC_001.items()
            }
            plans.append(Plan(archive, 1, options, "", "cnic_001"))
            size -= 1
        elif style == "siegert" and size:  # the tutorial's 15 Trace neurons (E)
            count = min(size, len(recorded.SIEGERT_TRACES))
            options = _group_options(rng, _SPECIES["Mus musculus"], recorded.TRACE_FORMAT, stains)
            options["original_format"] = (recorded.TRACE_FORMAT[1],)  # every Trace has its SWC original
            plans.append(Plan(archive, count, _siegert(options), _SIEGERT_PREFIX, "trace"))
            size -= count
        while size > 0:
            count = min(size, rng.randint(20, 45) if style == "siegert" else rng.randint(5, 150))
            size -= count
            kind = self.group_species(rng, species)
            options = _group_options(rng, kind, rng.choice(formats), stains)
            if style == "siegert":
                options = _siegert(options)
            elif species is None and rng.random() < _GLIA_SHARE:
                cells = tuple(rng.sample(_CELLS["glia"], rng.choice((1, 2))))
                options["cell_type"] = cells
                options["brain_region"] = tuple(rng.choice(_REGIONS[kind.regions]) for _ in cells)
                options["domain"] = (rng.choice(_GLIA_DOMAINS),)
            elif rng.random() < 0.23:
                options["domain"] = ("Neurites",)
            token = _group_token(rng, style)
            plans.append(Plan(archive, count, options, token, style))
        return plans

    def hostile_plan(self, rng: random.Random) -> Plan:
        """One extra group in the first archive (``Allen Cell Types`` has a space too) with hostile names."""
        if not self.archives:
            self.archives.append(_BIG_ARCHIVES[0][0])
        options = _group_options(
            rng, _SPECIES["Mus musculus"], ("Neurolucida", "Neurolucida.asc"), _STAINS[:1]
        )
        return Plan(0, len(HOSTILE_NAMES), options, "", "hostile")

    def layout(self, plans: Iterable[Plan]) -> None:
        """Give out positions and names; a name that would repeat one already given gets ``~<position>``."""
        per_archive = [0] * len(self.archives)
        for plan in plans:
            start = len(self.names)
            self.groups.append(Group(plan.archive, start, start + plan.size, plan.options))
            archive = self.archives[plan.archive]
            for j in range(plan.size):
                per_archive[plan.archive] += 1
                pos = len(self.names)
                if plan.style == "hostile":
                    name = HOSTILE_NAMES[j]
                elif plan.style == "trace":
                    name = recorded.SIEGERT_TRACES[j]
                elif plan.style == "cnic_001":
                    name = "cnic_001"
                elif plan.style == "awkward":
                    k = per_archive[plan.archive]
                    name = _SPECIAL_NAMES[k % len(_SPECIAL_NAMES)].format(k=k)
                else:
                    name = _neuron_name(plan.style, archive, plan.token, per_archive[plan.archive])
                if name in self.index:
                    name = f"{name}~{pos}"
                self.index[name] = pos
                self.names.append(name)


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
    weights = _weight_options(rng, species, ages)
    options: dict[str, tuple[Value, ...]] = {
        "note": (_NOTE if rng.random() < 0.08 else None,),
        "age_scale": (species.age_scale,),
        "gender": (rng.choice(_GENDERS),),
        "age_classification": tuple(a[0] for a in ages),
        "min_age": tuple(a[1] for a in ages),
        "max_age": tuple(a[2] for a in ages),
        "min_weight": tuple(w[0] for w in weights),
        "max_weight": tuple(w[1] for w in weights),
        **_cells_and_regions(rng, species),
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


def _cells_and_regions(rng: random.Random, species: _Species) -> dict[str, tuple[Value, ...]]:
    """``cell_type`` and ``brain_region`` options of equal length, paired (they share a variant key): each
    cell type sits in a region where it lives (``_CELL_REGIONS``; any region when none fits)."""
    cells = rng.sample(_CELLS[species.cells], rng.choice((1, 1, 2, 3)))
    regions: list[tuple[str, ...]] = []
    for cell in cells:
        homes = next((h for key, h in _CELL_REGIONS.items() if key in cell), _CELL_REGIONS["interneuron"])
        fits = [r for r in _REGIONS[species.regions] if any(_region_fits(r, home) for home in homes)]
        regions.append(rng.choice(fits or list(_REGIONS[species.regions])))
    return {"cell_type": tuple(cells), "brain_region": tuple(regions)}


def _region_fits(region: tuple[str, ...], home: str) -> bool:
    """Whether ``region`` starts with ``home``'s levels (``hippocampus/CA`` matches CA1 and CA3)."""
    levels = home.split("/")
    return len(region) >= len(levels) and all(r.startswith(h) for r, h in zip(region, levels, strict=False))


def _age_options(rng: random.Random, species: _Species) -> list[tuple[str, str | None, str | None]]:
    """(age_classification, min_age, max_age) choices; the ages lie in the class's range for the species'
    scale (``_AGE_RANGES``), as strings like ``"24.0"``, or all three unreported."""
    table = _AGE_RANGES["Larval" if species.regions in ("fly", "fish") else species.age_scale]
    out: list[tuple[str, str | None, str | None]] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if rng.random() < 0.15:
            out.append(("Not reported", None, None))
            continue
        label = rng.choice(list(table))
        low_bound, high_bound, _ = table[label]
        low = float(rng.randint(int(low_bound), int(high_bound)))
        high = min(low + rng.randint(0, max(1, int((high_bound - low_bound) / 10))), high_bound)
        out.append((label, str(low), str(high)))
    return out


def _weight_options(
    rng: random.Random, species: _Species, ages: list[tuple[str, str | None, str | None]]
) -> list[tuple[str | None, str | None]]:
    """(min_weight, max_weight) in grams per age option: the species' adult range (``_ADULT_GRAMS``)
    times the class's share; unweighed species, unreported ages and half the groups have none."""
    grams = _ADULT_GRAMS.get(species.scientific)
    if grams is None or rng.random() < 0.5:
        return [(None, None)] * len(ages)
    table = _AGE_RANGES[species.age_scale]
    out: list[tuple[str | None, str | None]] = []
    for label, _, _ in ages:
        if label not in table:
            out.append((None, None))
            continue
        share = table[label][2]
        low = round(rng.uniform(grams[0], grams[1]) * share, 1)
        out.append((str(low), str(round(min(low * rng.uniform(1.0, 1.3), grams[1] * share * 1.2), 1))))
    return out


def _group_token(rng: random.Random, style: str) -> str:
    """The part of a neuron name a group shares (an animal, a donor, a fly line)."""
    if style == "siegert":
        # Never the tutorial's prefix: ``CB_CKp25_2w_F_Animal01_*`` selects exactly the 15 Traces (E). The
        # other prefixes follow the recorded ``FC_5xFAD_6mpos_F_Animal02_Trace053`` (F).
        while True:
            genotype = rng.choice(("CB_CKp25", "CB_Ctrl", "FC_5xFAD", "FC_WT"))
            weeks, sex = rng.choice(("2w", "6w", "6mpos", "6mneg")), rng.choice("FM")
            token = f"{genotype}_{weeks}_{sex}_Animal{rng.randint(1, 12):02d}_"
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
    options["brain_region"] = (("hippocampus", "CA1"),)
    return options


@functools.cache
def _abbr(archive: str) -> str:
    """An archive's name without spaces or punctuation, made once per archive, not once per neuron."""
    return "".join(ch for ch in archive if ch.isalnum())


def _neuron_name(style: str, archive: str, token: str, k: int) -> str:
    """The ``k``-th (1-based) ordinary name of an archive; ``k`` keeps names in one archive unique."""
    abbr = _abbr(archive)
    if style == "cnic":
        return f"cnic_{k:03d}"
    if style == "allen":
        return f"{token}-{k % 97:02d}_{500000000 + 73 * k}_m"
    if style == "siegert":
        return f"{token}Trace{k:03d}"
    if style == "ascoli":  # F: ids 1013-1041 are n1fts ... n29fts
        return f"n{k}fts"
    if style == "scanziani":  # A7: TypeA-10
        return f"Type{'ABCD'[k % 4]}-{k}"
    if style == "smith":  # A7: 0-2
        return f"{k // 10}-{k % 10}"
    if style == "amaral":  # A7: c91662
        return f"c{91000 + k}"
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
