"""Bytes of the emulator's files: SWC trees, Neurolucida ASC/DAT, MBF XML, StdSwc logs and PNG thumbnails.

Everything here is a pure function of its integer arguments, so the catalogue can rebuild any file at any
time instead of keeping 265,000 of them in memory. Trees are grown by a seeded random walk that writes
nodes in creation order, which is what makes every prefix of the node list a valid SWC tree (each parent
precedes its children); :func:`swc_body` uses that to cut a tree at an exact byte budget.

The formats are plausible rather than exact: they are what a downloader has to store untouched, and the
SWC is what tests parse. Real quirks the client must survive are reproduced on purpose: the two CNG
header styles, columns aligned with leading spaces, and Latin-1 bytes that are not valid UTF-8.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from array import array
from dataclasses import dataclass, field

__all__ = [
    "DAT_RECORD_BYTES",
    "Tree",
    "asc_body",
    "asc_preamble",
    "cng_header",
    "dat_file",
    "dat_records",
    "grow_tree",
    "png_image",
    "std_log",
    "swc_body",
    "xml_body",
    "xml_document",
]

#: Rough bytes per SWC line; only used to decide how many nodes to grow before cutting to size.
_SWC_LINE_BYTES = 26
_ALIGNED_LINE_BYTES = 48


@dataclass(frozen=True, slots=True)
class Tree:
    """A skeleton as parallel columns: node ``k`` (0-based) has SWC id ``k + 1``; parents are SWC ids.

    Unboxed arrays, not lists: a 5 MB file has ~150,000 nodes, and a million boxed floats would leave
    the emulator's heap fragmented long after the tree is gone.
    """

    kind: array[int] = field(default_factory=lambda: array("b"))
    x: array[float] = field(default_factory=lambda: array("d"))
    y: array[float] = field(default_factory=lambda: array("d"))
    z: array[float] = field(default_factory=lambda: array("d"))
    r: array[float] = field(default_factory=lambda: array("d"))
    parent: array[int] = field(default_factory=lambda: array("i"))

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, kind: int, x: float, y: float, z: float, r: float, parent: int) -> None:
        self.kind.append(kind)
        self.x.append(x)
        self.y.append(y)
        self.z.append(z)
        self.r.append(r)
        self.parent.append(parent)


def grow_tree(seed: int, nodes: int) -> Tree:
    """Grow a neuron-like tree of exactly ``max(nodes, 3)`` nodes: a 3-point soma, then branching stems.

    Stems are random walks that bifurcate or end after a random run; when every tip has ended and nodes
    remain, a new stem starts at the soma. Types: 1 soma, 2 axon, 3 basal, 4 apical dendrite.
    """
    rng = random.Random(seed)
    soma_r = rng.uniform(4.0, 12.0)
    tree = Tree()
    for y, parent in ((0.0, -1), (soma_r, 1), (-soma_r, 1)):
        tree.add(1, 0.0, y, 0.0, soma_r, parent)
    total = max(nodes, 3)
    stem = 0
    while len(tree) < total:
        kind = 4 if stem == 0 else (2 if stem == 1 else 3)
        angle = rng.uniform(0.0, 2.0 * math.pi)
        tips = [(1, math.cos(angle), math.sin(angle), rng.uniform(-0.3, 0.3), rng.uniform(0.8, 2.0))]
        while tips and len(tree) < total:
            parent, dx, dy, dz, radius = tips.pop()
            _grow_run(rng, tree, kind, parent, (dx, dy, dz), radius, total)
            if len(tree) < total and rng.random() < 0.7:
                last = len(tree)
                for _ in range(2):
                    tips.append(
                        (
                            last,
                            dx + rng.gauss(0, 0.6),
                            dy + rng.gauss(0, 0.6),
                            dz + rng.gauss(0, 0.3),
                            max(0.15, tree.r[-1] * 0.8),
                        )
                    )
        stem += 1
    return tree


def _grow_run(
    rng: random.Random,
    tree: Tree,
    kind: int,
    parent: int,
    heading: tuple[float, float, float],
    radius: float,
    total: int,
) -> None:
    """Append one unbranched run of nodes starting from SWC id ``parent``.

    The hot loop of every master body (a 5 MB file is ~150,000 nodes), so it uses uniform jitter (cheaper
    than Gaussian) and bound methods.
    """
    dx, dy, dz = heading
    x, y, z = tree.x[parent - 1], tree.y[parent - 1], tree.z[parent - 1]
    rnd, sqrt = rng.random, math.sqrt
    add_kind, add_x, add_y, add_z = tree.kind.append, tree.x.append, tree.y.append, tree.z.append
    add_r, add_parent = tree.r.append, tree.parent.append
    for _ in range(min(rng.randint(8, 60), total - len(tree))):
        dx += (rnd() - 0.5) * 0.86
        dy += (rnd() - 0.5) * 0.86
        dz += (rnd() - 0.5) * 0.35
        step = (0.8 + 2.2 * rnd()) / (sqrt(dx * dx + dy * dy + dz * dz) or 1.0)
        x, y, z = x + step * dx, y + step * dy, z + step * dz
        radius = max(0.1, radius * (0.97 + 0.03 * rnd()))
        add_kind(kind)
        add_x(x)
        add_y(y)
        add_z(z)
        add_r(radius)
        add_parent(parent)
        parent = len(tree.kind)


def swc_body(seed: int, target_bytes: int, *, aligned: bool = False) -> bytes:
    """SWC node lines (no header) of about ``target_bytes``: cut at the first line that reaches it.

    ``aligned`` pads the columns with leading spaces, as some archives' files are
    (``  1 1 -0.78  -0.33 0    2.52262 -1``).
    """
    per_line = _ALIGNED_LINE_BYTES if aligned else _SWC_LINE_BYTES
    tree = grow_tree(seed, target_bytes // per_line + 8)
    out = bytearray()
    chunk: list[str] = []  # flushed every 1,024 lines, so no million-string list ever exists
    for k in range(len(tree)):
        if aligned:
            line = (
                f"{k + 1:6d} {tree.kind[k]} {tree.x[k]:10.4f} {tree.y[k]:10.4f} {tree.z[k]:9.4f} "
                f"{tree.r[k]:8.5f} {tree.parent[k]:6d}\n"
            )
        else:
            line = (
                f"{k + 1} {tree.kind[k]} {tree.x[k]:.2f} {tree.y[k]:.2f} {tree.z[k]:.2f} "
                f"{tree.r[k]:.5g} {tree.parent[k]}\n"
            )
        chunk.append(line)
        if len(chunk) == 1024:
            out += "".join(chunk).encode("ascii")
            chunk.clear()
        if len(out) >= target_bytes:
            break
    out += "".join(chunk).encode("ascii")
    cut = out.find(b"\n", target_bytes - 1)
    return bytes(out if cut < 0 else out[: cut + 1])


def cng_header(
    name: str, source_file: str, *, old_style: bool, when: tuple[int, int, int], latin1_note: str | None
) -> bytes:
    """The comment block of a ``.CNG.swc`` file, in one of the two styles the real archive has.

    The short style is StdSwc 1.31's two lines plus ``#``; the old style is the 9-line L-Measure header with
    Duncan Donohue's StdSwc line. ``latin1_note`` adds a comment encoded in Latin-1, so the file is not
    valid UTF-8 (as some real files are not).
    """
    year, month, day = when
    date = f"{month}/{day}/{year % 100:02d}"
    if old_style:
        lines = [
            f"#  L-Measure conversion of file: {source_file}",
            f"#  created on {year}-{month:02d}-{day:02d}",
            "#  ",
            f"# Original file {name}.swc edited by Duncan Donohue using StdSwc version 1.31 on {date}.",
            f"# Irregularities and fixes documented in {name}.swc.std. "
            "See StdSwc1.31.doc for more information.",
            "#",
            "# SOMA_AREA ",
            "# SHINKAGE_CORRECTION 1.0 1.0 1.0",
            "# VERSION_NUMBER 1.0",
        ]
    else:
        lines = [
            f"# Original file {name}.swc edited using StdSwc version 1.31 on {date}.",
            f"# Irregularities and fixes documented in {name}.swc.std.",
            "#",
        ]
    head = ("\n".join(lines) + "\n").encode("utf-8")
    if latin1_note is not None:
        head += f"# {latin1_note}\n".encode("latin-1", "replace")
    return head


def asc_body(seed: int, nodes: int) -> bytes:
    """Neurolucida ASCII without its preamble: a soma contour, then each tree as nested point lists.

    Branches of a split are separated by ``|``. The per-neuron preamble is :func:`asc_preamble`, kept apart
    so that one body can be shared by many neurons.
    """
    tree = grow_tree(seed, nodes)
    children: list[list[int]] = [[] for _ in range(len(tree) + 1)]
    for k in range(3, len(tree)):
        children[tree.parent[k]].append(k + 1)
    out = [
        '(ImageCoords Filename "stack.tif" Merge 65535 65535 65535 0)',
        "",
        '("CellBody"',
        "  (Color Red)",
        "  (CellBody)",
    ]
    out += [
        f"  ({tree.x[k]:8.2f} {tree.y[k]:8.2f} {tree.z[k]:8.2f} {2 * tree.r[k]:6.2f})  ; 1, {k + 1}"
        for k in range(3)
    ]
    out.append(")  ;  End of contour\n")
    names = {2: "Axon", 3: "Dendrite", 4: "Apical"}
    for root in children[1]:
        out.append(f"( (Color Yellow)\n  ({names.get(tree.kind[root - 1], 'Dendrite')})")
        _asc_branch(tree, children, root, 1, out)
        out.append(")  ;  End of tree\n")
    return "\n".join(out).encode("ascii")


def asc_preamble(name: str) -> bytes:
    """The first lines of a Neurolucida ASCII file, which name the neuron."""
    return f'; V3 text file written for MicroBrightField products.\n(Description "{name}")\n'.encode()


def _asc_branch(tree: Tree, children: list[list[int]], node: int, depth: int, out: list[str]) -> None:
    """Write the run from ``node`` down to its split, then each child branch between ``|`` separators.

    Iterative over the run and recursive only at splits; split depth stays small for grown trees.
    """
    pad = "  " * depth
    while True:
        k = node - 1
        out.append(
            f"{pad}({tree.x[k]:8.2f} {tree.y[k]:8.2f} {tree.z[k]:8.2f} {2 * tree.r[k]:6.2f})  ; {node}"
        )
        kids = children[node]
        if len(kids) != 1:
            break
        node = kids[0]
    if not kids:
        out.append(f"{pad}Normal")
        return
    out.append(f"{pad}(")
    for i, kid in enumerate(kids):
        if i:
            out.append(f"{pad}|")
        _asc_branch(tree, children, kid, depth + 1, out)
    out.append(f"{pad})  ;  End of split")


DAT_RECORD_BYTES = 20
_DAT_MAGIC = b"\x00\x00\x00\x00\x00V3 DAT file\x00"
_DAT_END = b"\x00\x00\xff\xff"


def dat_records(seed: int, nodes: int) -> bytes:
    """Neurolucida-DAT-like point records, :data:`DAT_RECORD_BYTES` each: tag, type, x, y, z, d (float32)."""
    tree = grow_tree(seed, nodes)
    record = struct.Struct("<HHffff")
    out = bytearray(record.size * len(tree))
    for k in range(len(tree)):
        record.pack_into(
            out, k * record.size, 0x0101, tree.kind[k], tree.x[k], tree.y[k], tree.z[k], 2 * tree.r[k]
        )
    return bytes(out)


def dat_file(records: bytes) -> bytes:
    """A binary DAT file around whole records (any prefix of :func:`dat_records` at a record boundary)."""
    return _DAT_MAGIC + records + _DAT_END


def xml_body(seed: int, nodes: int) -> bytes:
    """The ``<point>`` lines of an MBF-style XML file; :func:`xml_document` wraps them for one neuron."""
    tree = grow_tree(seed, nodes)
    types = {1: "CellBody", 2: "Axon", 3: "Dendrite", 4: "Apical"}
    lines = [
        f'  <point type="{types[tree.kind[k]]}" x="{tree.x[k]:.2f}" y="{tree.y[k]:.2f}" '
        f'z="{tree.z[k]:.2f}" d="{2 * tree.r[k]:.2f}" parent="{tree.parent[k]}"/>\n'
        for k in range(len(tree))
    ]
    return "".join(lines).encode("ascii")


def xml_document(name: str, points: bytes) -> bytes:
    """A whole XML file around :func:`xml_body`'s points; the name is escaped, the encoding UTF-8."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<mbf version="4.0" appname="Neurolucida" apprev="11.03" insrc="{_xml_escape(name)}">\n'
    )
    return head.encode("utf-8") + points + b"</mbf>\n"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def std_log(seed: int, title: str, *, cng: bool) -> bytes:
    """A short StdSwc report: what the standardisation found and fixed (or what remains, for ``cng``)."""
    rng = random.Random(seed)
    checks = [
        "Soma is not the root of the tree",
        "Node has a zero or negative diameter",
        "Branch point with more than two children",
        "Parent of a node was not defined before it",
        "Type of node differs from its parent",
        "Z-jump larger than 10 micrometers",
        "Dendrite origin not on soma surface",
        "Diameter changes abruptly along a branch",
    ]
    verdict = "Remaining issues" if cng else "Fixes applied"
    lines = [f"StdSwc version 1.31 report for {title}", "", f"{verdict}:"]
    for check in rng.sample(checks, rng.randint(1, 5)):
        lines.append(f"  {check}: {rng.randint(1, 40)} node(s)")
    lines.append("")
    lines.append("No other irregularities found." if cng else "File written after corrections.")
    return ("\n".join(lines) + "\n").encode("utf-8")


def png_image(seed: int, size: int = 32) -> bytes:
    """A valid greyscale PNG of ``size`` x ``size`` pixels with a seeded pattern (no imaging library)."""
    rng = random.Random(seed)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    rows = b"".join(
        b"\x00" + bytes(((x * a + y * b) * 7 + (x ^ y) * 3) & 0xFF for x in range(size)) for y in range(size)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
