"""``read_swc``: the points of an SWC file, whatever its header's encoding.

Header comments are free text written by many labs' tools, and some source files carry Latin-1 bytes (an
``é`` or ``µ``); whether standardized CNG files do is not known (the emulator's rate of such headers is a
switch). ``open(path).read()``, and navis, fail on them. The numbers of an SWC
file are ASCII, so each line is decoded as UTF-8 and, when that fails, as Latin-1 (which decodes any
byte): the points are exact and the comments readable. Pure apart from reading the file.

Columns, per the SWC format: ``n`` (sample id), ``type``, ``x``, ``y``, ``z``, ``radius``, ``parent``
(-1 for a root).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

COLUMNS = ("n", "type", "x", "y", "z", "radius", "parent")

#: One point: ``(n, type, x, y, z, radius, parent)``.
Point = tuple[int, int, float, float, float, float, int]


@dataclass(frozen=True, slots=True)
class Swc:
    """An SWC file read: its points as plain tuples and its header comments (without ``#``)."""

    points: list[Point]
    comments: list[str] = field(default_factory=list)
    path: Path | None = None

    def to_pandas(self) -> pandas.DataFrame:
        """The points as a DataFrame (columns :data:`COLUMNS`); the comments in ``frame.attrs``."""
        try:
            import pandas
        except ImportError:
            raise UsageError("to_pandas needs pandas: pip install 'neuromorpho-fetch[dataset]'") from None
        frame = pandas.DataFrame(self.points, columns=list(COLUMNS))
        frame = frame.astype({"n": "int64", "type": "int64", "parent": "int64"})
        frame.attrs["comments"] = list(self.comments)
        if self.path is not None:
            frame.attrs["path"] = str(self.path)
        return frame

    def text(self) -> str:
        """The file as UTF-8 text (comments re-encoded), for a library that reads SWC from a string or
        a UTF-8 file (navis, NeuroM, MorphIO)."""
        head = [f"# {c}" if c else "#" for c in self.comments]
        body = [f"{n} {t} {x!r} {y!r} {z!r} {r!r} {p}" for n, t, x, y, z, r, p in self.points]
        return "\n".join([*head, *body]) + "\n"


def decode_line(raw: bytes) -> str:
    """One line as text: UTF-8, else Latin-1 (any byte decodes; an SWC number is ASCII either way)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_swc(data: bytes, path: Path | None = None) -> Swc:
    """The points and comments of SWC bytes; ``ValueError`` naming the line for a malformed point."""
    points: list[Point] = []
    comments: list[str] = []
    for number, raw in enumerate(data.splitlines(), 1):
        line = decode_line(raw).strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        parts = line.split()
        try:
            if len(parts) < 7:
                raise ValueError(f"{len(parts)} columns, SWC has 7")
            n, kind, parent = int(float(parts[0])), int(float(parts[1])), int(float(parts[6]))
            x, y, z, radius = (float(v) for v in parts[2:6])
        except ValueError as exc:
            where = f"{path}: " if path is not None else ""
            raise ValueError(f"{where}line {number} is not an SWC point: {exc}") from None
        points.append((n, kind, x, y, z, radius, parent))
    return Swc(points, comments, path)


def read_swc(path: Path | str, *, as_frame: bool = False) -> Any:
    """Read an SWC file: an :class:`Swc` (``.points`` tuples, ``.comments``), or with
    ``as_frame=True`` a pandas DataFrame (needs the ``dataset`` extra). Headers that are not UTF-8
    are decoded as Latin-1; see the module docstring."""
    target = Path(path)
    swc = parse_swc(target.read_bytes(), target)
    return swc.to_pandas() if as_frame else swc
