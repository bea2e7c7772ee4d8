"""Realistic neuron skeletons, grown from a record's cell type and domain (issue 18, item 3).

A neuron is planned first as a *topology* (stems, each a random binary tree of sections with lengths),
then sampled into exactly the number of points its file size asks for, so one plan serves any file size
and the bifurcation, stem and branch counts of a file are exact by construction. Points are written
depth-first, parents first, as CNG standardisation writes them.

Where the numbers come from (summary statistics, ranges rather than fits):

* pyramidal cells: 4-8 basal stems and one apical dendrite, 3,000-12,000 um of dendrite, 20-90
  bifurcations (Larkman 1991, J Comp Neurol 306:307; Cuntz et al. 2010, PLoS Comput Biol 6:e1000877,
  whose minimum-spanning-tree model gives the ~1/3 terminal-to-internal length ratio used here); the
  apical trunk heads to the pia (+y), basal dendrites radiate;
* interneurons: 3-7 stems, 1,500-4,000 um of dendrite and a local axon of 4,000-15,000 um branching
  densely near the soma (Markram et al. 2004, Nat Rev Neurosci 5:793; Petilla terminology, Ascoli et
  al. 2008, Nat Rev Neurosci 9:557);
* Purkinje cells: one (sometimes two) planar dendritic trees with hundreds of bifurcations, 200 um wide
  and about 15 um deep, and a descending axon (Rapp, Segev & Yarom 1994, J Physiol 474:101);
* granule cells (dentate gyrus, cerebellum): 1-4 short stems with few bifurcations (Claiborne et al.
  1990, J Comp Neurol 302:206);
* motoneurons: 7-12 thick stems, long dendrites and an axon (Cullheim et al. 1987, J Comp Neurol
  255:68); retinal ganglion cells: 3-6 planar stems and an axon;
* glia: microglia 4-9 short primary processes, astrocytes 5-8 bushy ones, 300-2,500 um in all, all of
  type 3 (no apical, no axon; Kongsui et al. 2014, Clin Exp Neuroimmunol 5:7);
* radii taper along a section and follow Rall's 3/2 power rule at bifurcations (Rall 1959, Exp Neurol
  1:491), with NeuroMorpho.Org's typical stem diameters (Ascoli 2006, Nat Rev Neurosci 7:318).

Section lengths and radii are drawn, not fitted: this is a test double whose files analysis libraries
must load and whose numbers agree with themselves, not a model of any cell.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

from .morphology import Tree

#: SWC types (the CNG convention): soma, axon, basal dendrite, apical dendrite.
SOMA, AXON, BASAL, APICAL = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Stem:
    """One neurite leaving the soma: its SWC type, bifurcations, total length (um), root radius and the
    direction it grows towards (``bias``, a unit-ish vector; zero for no preference)."""

    kind: int
    bifs: int
    length: float
    radius: float
    bias: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Shape:
    """What a cell class looks like: a soma radius range, its stems, and how flat it is (1 = not)."""

    name: str
    soma: tuple[float, float]
    flat: float
    has_soma: bool


_UP, _DOWN, _NONE = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 0.0)

#: Shape names :func:`shape_for` returns, most specific first in its rules.
SHAPES = (
    "pyramidal", "interneuron", "purkinje", "granule", "motor", "ganglion", "medium_spiny",
    "microglia", "astrocyte", "invertebrate",
)  # fmt: skip


#: Per shape: typical neurite surface (um^2, L-Measure's cylinders), the soma radius range (um) and the
#: volume-to-surface ratio (um), measured on grown neurons of about 1,500 points; the record's surface
#: figures are drawn around them (:func:`.measures.surfaces`) so that scaling radii to the record's
#: surface (:func:`match_surface`) stays within plausible radii.
TYPICAL: dict[str, tuple[float, tuple[float, float], float]] = {
    "pyramidal": (11500.0, (6.0, 11.0), 0.47), "interneuron": (5400.0, (4.0, 8.0), 0.28),
    "purkinje": (5000.0, (9.0, 13.0), 1.0), "granule": (2600.0, (4.0, 6.0), 0.39),
    "motor": (60000.0, (14.0, 25.0), 1.07), "ganglion": (6000.0, (6.0, 12.0), 0.7),
    "medium_spiny": (4600.0, (5.0, 8.0), 0.43), "microglia": (1000.0, (3.0, 6.0), 0.52),
    "astrocyte": (1400.0, (3.0, 6.0), 0.41), "invertebrate": (5400.0, (4.0, 8.0), 0.28),
}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def shape_for(cell_type: tuple[str, ...] | str | None, domain: str | None) -> str:
    """The shape a record's ``cell_type`` names (lower-cased keywords, most specific first)."""
    words = " ".join(cell_type if isinstance(cell_type, tuple) else (cell_type or "",)).lower()
    for key, shape in (
        ("microglia", "microglia"), ("astrocyte", "astrocyte"), ("glia", "microglia"),
        ("purkinje", "purkinje"), ("granule", "granule"), ("motoneuron", "motor"), ("mauthner", "motor"),
        ("ganglion", "ganglion"), ("medium spiny", "medium_spiny"), ("pyramidal", "pyramidal"),
        ("interneuron", "interneuron"), ("basket", "interneuron"), ("stellate", "interneuron"),
        ("projection neuron", "invertebrate"), ("kenyon", "invertebrate"), ("local neuron", "invertebrate"),
        ("tangential", "invertebrate"), ("periventricular", "interneuron"),
    ):  # fmt: skip
        if key in words:
            return shape
    return "interneuron"


def _domain(domain: str | None) -> tuple[bool, bool, bool]:
    """(dendrites, axon, soma) as a record's ``domain`` says; ``Neurites``/``Processes`` are dendrites
    (type 3).

    Every file keeps a three-point soma, even for "No Soma" domains (inferred: CNG files are rooted at a
    soma; without one MorphIO warns about each disconnected neurite).
    """
    text = (domain or "").lower()
    if _undifferentiated(domain):
        return True, False, True
    dendrites = "dendrites" in text and "no dendrites" not in text
    axon = "axon" in text and "no axon" not in text
    return dendrites or not axon, axon, True


def plan_stems(rng: random.Random, shape: str, domain: str | None) -> tuple[list[Stem], float, float, bool]:
    """The stems of one neuron of ``shape`` and ``domain``: (stems, soma radius, flatness, has soma)."""
    dendrites, axon, soma = _domain(domain)
    u = rng.uniform
    stems: list[Stem] = []

    def radial(count: int, bifs: tuple[int, int], length: tuple[float, float], radius: tuple[float, float],
               kind: int = BASAL, bias: tuple[float, float, float] = _NONE) -> None:  # fmt: skip
        for _ in range(count):
            stems.append(Stem(kind, rng.randint(*bifs), u(*length), u(*radius), bias))

    soma_r, flat = u(*TYPICAL[shape][1]), 1.0  # the soma ranges the record's soma_surface is drawn from
    if shape in ("microglia", "astrocyte"):
        if shape == "microglia":
            radial(rng.randint(4, 9), (2, 10), (40.0, 160.0), (0.4, 0.9))
        else:
            radial(rng.randint(5, 8), (6, 20), (120.0, 350.0), (0.6, 1.2))
        return stems, soma_r, flat, soma
    if shape == "pyramidal":
        if dendrites:
            radial(rng.randint(4, 8), (2, 8), (300.0, 1100.0), (0.5, 1.0), bias=(0.0, -0.3, 0.0))
            stems.insert(rng.randrange(len(stems) + 1), Stem(APICAL, rng.randint(10, 35), u(1500.0, 5000.0),
                                                             u(1.5, 3.0), _UP))  # fmt: skip
        if axon:
            radial(1, (4, 20), (1500.0, 6000.0), (0.3, 0.6), AXON, _DOWN)
    elif shape == "purkinje":
        flat = 0.15
        if dendrites:
            radial(rng.choice((1, 1, 1, 2)), (150, 400), (3000.0, 7000.0), (2.0, 3.5), bias=_UP)
        if axon:
            radial(1, (1, 4), (400.0, 1200.0), (0.4, 0.7), AXON, _DOWN)
    elif shape == "granule":
        if dendrites:
            radial(rng.randint(1, 4), (1, 6), (150.0, 700.0), (0.6, 1.2), bias=_UP)
        if axon:
            radial(1, (0, 3), (500.0, 1500.0), (0.2, 0.4), AXON, _DOWN)
    elif shape == "motor":
        if dendrites:
            radial(rng.randint(7, 12), (8, 25), (1200.0, 4000.0), (2.0, 4.0))
        if axon:
            radial(1, (0, 2), (800.0, 2500.0), (1.5, 3.0), AXON, _DOWN)
    elif shape == "ganglion":
        flat = 0.2
        if dendrites:
            radial(rng.randint(3, 6), (5, 20), (300.0, 1200.0), (0.8, 1.6))
        if axon:
            radial(1, (0, 1), (600.0, 2000.0), (0.5, 1.0), AXON, (1.0, 0.0, 0.0))
    elif shape == "medium_spiny":
        if dendrites:
            radial(rng.randint(5, 8), (2, 5), (200.0, 450.0), (0.6, 1.1))
        if axon:
            radial(1, (5, 20), (1000.0, 4000.0), (0.3, 0.5), AXON, _DOWN)
    else:  # interneurons, invertebrate neurons
        if dendrites:
            radial(rng.randint(3, 7), (2, 8), (250.0, 700.0), (0.4, 0.9))
        if axon:
            radial(1, (20, 70), (4000.0, 15000.0), (0.25, 0.45), AXON, _DOWN)
    if not stems:  # an "Axon, No Soma" record that asked for nothing else: one process of each kind
        radial(1, (2, 8), (300.0, 900.0), (0.4, 0.8), AXON if axon else BASAL)
    if _undifferentiated(domain):  # "Neurites"/"Processes": traced without telling dendrite from axon
        stems = [Stem(BASAL, s.bifs, s.length, s.radius, s.bias) for s in stems]
    return stems, soma_r, flat, soma


def _undifferentiated(domain: str | None) -> bool:
    text = (domain or "").lower()
    return "neurites" in text or "processes" in text


def _split(rng: random.Random, bifs: int) -> list[tuple[int, int]]:
    """A random binary tree of ``bifs`` bifurcations as (parent section, depth) per section, depth-first.

    The remaining bifurcations of a node are split uniformly between its two children (Van Pelt's
    random-segmental model in its simplest form), which gives partition asymmetries near 0.5 as in real
    dendrites.
    """
    out: list[tuple[int, int]] = []
    todo = [(-1, 0, bifs)]
    while todo:
        parent, depth, left = todo.pop()
        out.append((parent, depth))
        me = len(out) - 1
        if left:
            a = rng.randint(0, left - 1)
            todo.append((me, depth + 1, left - 1 - a))
            todo.append((me, depth + 1, a))
    return out


def grow(
    seed: int,
    shape: str,
    domain: str | None,
    points: int,
    *,
    soma_radius: float | None = None,
    head: tuple[float, float, float, float] | None = None,
    topology: tuple[tuple[int, int], ...] | None = None,
    length: float | None = None,
) -> Tree:
    """A neuron of ``shape`` with exactly ``points`` SWC points (at least its soma and one per section).

    ``soma_radius`` fixes the soma (from the record's ``soma_surface``); ``head`` is the first point
    (x, y, z, r) of the first stem, so a recorded head can be continued; ``topology`` fixes the stems as
    (SWC type, bifurcations) pairs, for a neuron whose counts are recorded (cnic_001), and ``length``
    its total neurite length (um).
    """
    rng = random.Random(seed)
    stems, soma_r, flat, has_soma = plan_stems(rng, shape, domain)
    if topology is not None:
        template = stems
        stems = [
            Stem(kind, bifs, template[i % len(template)].length, template[i % len(template)].radius,
                 _UP if kind == APICAL else _NONE)
            for i, (kind, bifs) in enumerate(topology)
        ]  # fmt: skip
    if soma_radius is not None:
        soma_r = soma_radius
    if length is not None:
        scale = length / sum(s.length for s in stems)
        stems = [Stem(s.kind, s.bifs, s.length * scale, s.radius, s.bias) for s in stems]
    tree = Tree()
    if has_soma:
        r = round(soma_r, 4)  # written as-is at y = +/- r, so MorphIO sees an exact three-point soma
        for y, parent in ((0.0, -1), (r, 1), (-r, 1)):
            tree.add(SOMA, 0.0, y, 0.0, r, parent)
    budget = max(points - len(tree), 1)
    # A big file is a big neuron, not a finely sampled small one: points stay at least 0.25 um apart
    # (fine tracing resolution), with more bifurcations as the arbor grows.
    total = sum(s.length for s in stems)
    if topology is None and total < 0.25 * budget:
        grow_by = 0.25 * budget / total
        more = math.sqrt(grow_by)
        stems = [Stem(s.kind, int(s.bifs * more), s.length * grow_by, s.radius, s.bias) for s in stems]
    # Every section needs points: cap bifurcations so sections average at least three points.
    sections = sum(2 * s.bifs + 1 for s in stems)
    if sections * 3 > budget and topology is None:
        factor = budget / (3.0 * sections)
        stems = [Stem(s.kind, int(s.bifs * factor), s.length, s.radius, s.bias) for s in stems]
    plans = [_split(rng, s.bifs) for s in stems]
    lengths: list[list[float]] = []
    for stem, plan in zip(stems, plans, strict=True):
        tips = set(range(len(plan))) - {p for p, _ in plan if p >= 0}
        raw = [rng.expovariate(1.0) * (3.0 if i in tips else 1.0) + 0.05 for i in range(len(plan))]
        scale = stem.length / sum(raw)
        lengths.append([v * scale for v in raw])
    flat_lengths = [v for per in lengths for v in per]
    counts = _apportion(budget, flat_lengths)
    _draw(rng, tree, stems, plans, lengths, counts, soma_r if has_soma else 0.0, flat, has_soma, head)
    return tree


def _apportion(total: int, weights: list[float]) -> list[int]:
    """``total`` points over sections by length, at least one each (largest remainders)."""
    n = len(weights)
    if total <= n:
        return [1] * n  # more sections than points: one each (the caller caps bifurcations first)
    spare = total - n
    scale = spare / sum(weights)
    raw = [w * scale for w in weights]
    counts = [1 + int(r) for r in raw]
    order = sorted(range(n), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _unit(x: float, y: float, z: float) -> tuple[float, float, float]:
    norm = math.sqrt(x * x + y * y + z * z) or 1.0
    return x / norm, y / norm, z / norm


def _draw(
    rng: random.Random,
    tree: Tree,
    stems: list[Stem],
    plans: list[list[tuple[int, int]]],
    lengths: list[list[float]],
    counts: list[int],
    soma_r: float,
    flat: float,
    has_soma: bool,
    head: tuple[float, float, float, float] | None,
) -> None:
    """Sample every section as a persistent random walk of equal steps, depth-first, parents first."""
    g, rnd, sqrt = rng.gauss, rng.random, math.sqrt
    k = 0
    for s, (stem, plan) in enumerate(zip(stems, plans, strict=True)):
        bx, by, bz = stem.bias
        if bx or by or bz:
            hx, hy, hz = _unit(bx + g(0, 0.35), by + g(0, 0.35), (bz + g(0, 0.35)) * flat)
        else:
            hx, hy, hz = _unit(g(0, 1), g(0, 1), g(0, 1) * flat)
        # Per section: (SWC id of its start, heading, radius at start); index = section number.
        ends: list[tuple[int, tuple[float, float, float], float]] = []
        for i, (parent, _depth) in enumerate(plan):
            n = counts[k]
            seg = lengths[s][i] / n
            if parent < 0:
                start_id = 1 if has_soma else -1
                ox, oy, oz = hx * soma_r, hy * soma_r, hz * soma_r
                heading, r0 = (hx, hy, hz), stem.radius
                if s == 0 and head is not None:
                    ox, oy, oz = head[0] - hx * seg, head[1] - hy * seg, head[2] - hz * seg
            else:
                start_id, pheading, pr = ends[parent]
                # Rall's 3/2 rule with an asymmetric share; the child turns 20-50 degrees away.
                share = rng.uniform(0.35, 0.65)
                r0 = max(0.1, pr * share ** (2.0 / 3.0))
                turn = math.radians(rng.uniform(20.0, 50.0))
                px, py, pz = _unit(g(0, 1), g(0, 1), g(0, 1) * flat)
                dot = px * pheading[0] + py * pheading[1] + pz * pheading[2]
                px, py, pz = _unit(px - dot * pheading[0], py - dot * pheading[1], pz - dot * pheading[2])
                c, sn = math.cos(turn), math.sin(turn)
                heading = _unit(c * pheading[0] + sn * px, c * pheading[1] + sn * py,
                                (c * pheading[2] + sn * pz) * flat)  # fmt: skip
                ox, oy, oz = tree.x[start_id - 1], tree.y[start_id - 1], tree.z[start_id - 1]
            parent_id = start_id
            x, y, z = ox, oy, oz
            dx, dy, dz = heading
            radius = r0
            taper = 0.85 ** (1.0 / n)
            j = 0
            if s == 0 and parent < 0 and head is not None:
                x, y, z, radius = head
                dx, dy, dz = _unit(x - ox, y - oy, z - oz)
                tree.add(stem.kind, x, y, z, radius, parent_id)
                parent_id, j = len(tree), 1
            # The hot loop (every point of every file): uniform jitter and bound methods, as in
            # morphology._grow_run; the pull towards ``bias`` keeps apical dendrites and axons on course.
            pull = 0.04 if stem.kind in (APICAL, AXON) else 0.0
            px, py, pz = pull * bx, pull * by, pull * bz
            add_x, add_y, add_z, add_r = tree.x.append, tree.y.append, tree.z.append, tree.r.append
            add_kind, add_parent = tree.kind.append, tree.parent.append
            kind = stem.kind
            me = len(tree)
            for _ in range(j, n):
                dx += (rnd() - 0.5) * 0.4 + px
                dy += (rnd() - 0.5) * 0.4 + py
                dz += (rnd() - 0.5) * 0.4 * flat + pz
                inv = 1.0 / (sqrt(dx * dx + dy * dy + dz * dz) or 1.0)
                dx, dy, dz = dx * inv, dy * inv, dz * inv
                x, y, z = x + seg * dx, y + seg * dy, z + seg * dz
                radius = radius * taper if radius > 0.1 else 0.1
                add_kind(kind)
                add_x(x)
                add_y(y)
                add_z(z)
                add_r(radius)
                add_parent(parent_id)
                me += 1
                parent_id = me
            ends.append((parent_id, (dx, dy, dz), radius))
            k += 1


def match_surface(tree: Tree, surface: float) -> None:
    """Scale neurite radii so the tree's L-Measure surface (cylinders plus the soma sphere,
    :mod:`.lmeasure`) is ``surface``, the record's; the factor stays within 0.2-5 so radii stay
    plausible (the record's figure then differs from the file's, which is what is served)."""
    kind, x, y, z, r, parent = tree.kind, tree.x, tree.y, tree.z, tree.r, tree.parent
    soma = next((r[k] for k in range(len(kind)) if kind[k] == SOMA), 0.0)
    lateral = 0.0
    sqrt = math.sqrt
    for k, (kk, q) in enumerate(zip(kind, parent, strict=True)):
        q -= 1
        if kk != SOMA and q >= 0 and kind[q] != SOMA:
            dx, dy, dz = x[k] - x[q], y[k] - y[q], z[k] - z[q]
            lateral += r[k] * sqrt(dx * dx + dy * dy + dz * dz)
    lateral *= 2.0 * math.pi
    want = surface - 4.0 * math.pi * soma * soma
    if lateral <= 0 or want <= 0:
        return
    factor = min(max(want / lateral, 0.2), 5.0)
    for k, kk in enumerate(kind):
        if kk != SOMA:
            scaled = r[k] * factor
            r[k] = scaled if scaled > 0.05 else 0.05


def set_soma(tree: Tree, radius: float) -> None:
    """Give a grown tree's three-point soma another radius, written exactly as :func:`grow` writes it."""
    r = round(radius, 4)
    for k, y in zip(
        [k for k in range(len(tree.kind)) if tree.kind[k] == SOMA][:3], (0.0, r, -r), strict=False
    ):
        tree.y[k], tree.r[k] = y, r


def type0_tail(tree: Tree) -> None:
    """Give the last section (a terminal one: points are written depth-first) SWC type 0, as some real
    files have (F, NeuroM #1110). NeuroM refuses such files, which is why this is a switch."""
    kind, parent = tree.kind, tree.parent
    k = len(kind) - 1
    while k > 0 and kind[k] != SOMA:
        q = parent[k] - 1
        kind[k] = 0
        if q < 0 or kind[q] == SOMA or sum(1 for p in parent if p == q + 1) != 1:
            break
        k = q


def soma_off(tree: Tree) -> None:
    """Move the soma's side points off the exact +/- r, as cnic_001's recorded soma is (0.67, 8.12)."""
    side = [k for k in range(len(tree.kind)) if tree.kind[k] == SOMA][1:3]
    for k, sign in zip(side, (1.0, -1.0), strict=False):
        tree.x[k] = round(sign * 0.08 * tree.r[k], 2)
        tree.y[k] = round(tree.y[k] * 0.996, 2)
