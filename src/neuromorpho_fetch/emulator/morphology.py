"""Bytes of the emulator's files: SWC trees, Neurolucida ASC/DAT, MBF XML, StdSwc logs and PNG thumbnails.

Everything here is a pure function of its arguments (a :class:`Tree` grown by :mod:`.neurons`, or
integers), so the catalogue can rebuild any file at any time instead of keeping 265,000 of them in memory.
One tree is written in every format a neuron has: its CNG SWC, and its original as SWC, Neurolucida ASCII
(nested trees), binary DAT or Neurolucida XML (``<tree>``/``<branch>`` nesting).

Real quirks the client must survive are reproduced on purpose: the two CNG header styles, columns
aligned with leading spaces, and (where a switch or a synthetic archive asks) Latin-1 bytes that are not
valid UTF-8.
"""

from __future__ import annotations

import random
import struct
import zlib
from array import array
from dataclasses import dataclass, field


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


def swc_text(tree: Tree, *, aligned: bool = False, lead: str = "") -> bytes:
    """A tree's SWC lines: neurite coordinates to 2 decimals, radii to 5 significant digits.

    Soma rows are written unrounded from the same number (``0.0 8.1498 0.0 8.1498``), as CNG
    standardisation writes its three-point soma, so MorphIO sees the points at exactly +/- r on y.
    ``aligned`` pads the columns with leading spaces, as some archives' files are; ``lead`` starts every
    line (the Siegert originals' leading space).
    """
    lead = lead.replace("%", "%%")
    if aligned:
        soma = lead + "%6d 1 %r %r %r %r %6d\n"
        row = lead + "%6d %d %10.4f %10.4f %9.4f %8.5f %6d\n"
    else:
        soma = lead + "%d 1 %r %r %r %r %d\n"
        row = lead + "%d %d %.2f %.2f %.2f %.5g %d\n"
    # One %-format per line over zipped columns (every point of every file passes here).
    columns = (tree.kind, tree.x, tree.y, tree.z, tree.r, tree.parent)
    lines = [
        row % line if line[1] != 1 else soma % (line[0], *line[2:])
        for line in zip(range(1, len(tree.kind) + 1), *columns, strict=True)
    ]
    return "".join(lines).encode("ascii")


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


def asc_body(tree: Tree) -> bytes:
    """Neurolucida ASCII without its preamble: the soma as a contour, then each tree nested as Neurolucida
    writes it (a ``(Dendrite)``/``(Apical)``/``(Axon)`` marker, point lists, branches of a split between
    ``(`` ``|`` ``)``, and ``Normal`` at each ending).

    The per-neuron preamble is :func:`asc_preamble`, kept apart because it names the neuron.
    """
    children = _children(tree)
    out = [
        '(ImageCoords Filename "stack.tif" Merge 65535 65535 65535 0)',
        "",
        '("CellBody"',
        "  (Color Red)",
        "  (CellBody)",
    ]
    soma = [k for k in range(len(tree)) if tree.kind[k] == 1]
    out += [
        f"  ({tree.x[k]:8.2f} {tree.y[k]:8.2f} {tree.z[k]:8.2f} {2 * tree.r[k]:6.2f})  ; 1, {k + 1}"
        for k in soma
    ]
    out.append(")  ;  End of contour\n")
    names = {2: "Axon", 3: "Dendrite", 4: "Apical"}
    for root in _roots(tree, children):
        out.append(f"( (Color Yellow)\n  ({names.get(tree.kind[root - 1], 'Dendrite')})")
        _asc_branch(tree, children, root, 1, out)
        out.append(")  ;  End of tree\n")
    return "\n".join(out).encode("ascii")


def _children(tree: Tree) -> list[list[int]]:
    """Children (SWC ids) of every SWC id; index 0 collects the roots (parent -1)."""
    children: list[list[int]] = [[] for _ in range(len(tree) + 1)]
    for k in range(len(tree)):
        children[max(tree.parent[k], 0)].append(k + 1)
    return children


def _roots(tree: Tree, children: list[list[int]]) -> list[int]:
    """The first point of every neurite: children of soma points, and non-soma roots."""
    out = [c for c in children[0] if tree.kind[c - 1] != 1]
    for k in range(len(tree)):
        if tree.kind[k] == 1:
            out += [c for c in children[k + 1] if tree.kind[c - 1] != 1]
    return sorted(out)


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


def dat_records(tree: Tree) -> bytes:
    """Neurolucida-DAT-like point records, :data:`DAT_RECORD_BYTES` each: tag, type, x, y, z, d (float32)."""
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


def xml_tree(tree: Tree) -> bytes:
    """The body of a Neurolucida XML file: the soma as a ``<contour>``, then one ``<tree type=...>`` per
    neurite with its points and a ``<branch>`` per child of each split, nested as Neurolucida writes
    them; :func:`xml_document` wraps it for one neuron."""
    children = _children(tree)
    types = {2: "Axon", 3: "Dendrite", 4: "Apical"}
    out = ['  <contour name="CellBody" shape="Contour" closed="true">']
    out += [f"    {_xml_point(tree, k)}" for k in range(len(tree)) if tree.kind[k] == 1]
    out.append("  </contour>")
    for root in _roots(tree, children):
        kind = types.get(tree.kind[root - 1], "Dendrite")
        out.append(f'  <tree color="#FFFF00" type="{kind}" leaf="Normal">')
        _xml_branch(tree, children, root, 2, out)
        out.append("  </tree>")
    return ("\n".join(out) + "\n").encode("ascii")


def _xml_point(tree: Tree, k: int) -> str:
    return f'<point x="{tree.x[k]:.2f}" y="{tree.y[k]:.2f}" z="{tree.z[k]:.2f}" d="{2 * tree.r[k]:.2f}"/>'


def _xml_branch(tree: Tree, children: list[list[int]], node: int, depth: int, out: list[str]) -> None:
    """The run from ``node`` to its split, then a ``<branch>`` per child (iterative along runs)."""
    pad = "  " * depth
    while True:
        out.append(pad + _xml_point(tree, node - 1))
        kids = children[node]
        if len(kids) != 1:
            break
        node = kids[0]
    for kid in kids:
        out.append(f"{pad}<branch>")
        _xml_branch(tree, children, kid, depth + 1, out)
        out.append(f"{pad}</branch>")


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
