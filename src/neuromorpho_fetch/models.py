"""The value types that cross module boundaries: a neuron record (or a rejected one) and a file version.

Every record the server sends is validated once, here, where it enters (:func:`parse_record`): it becomes
a typed :class:`Neuron` or a :class:`RejectedRecord` with a one-line reason, and nothing downstream (the
planner, the state store, ``metadata.jsonl``, the catalogue) ever sees a record that failed. Issue 15
item 5: a lone surrogate in a string, ``neuron_id`` ``Infinity`` or ``10**30``, a null, empty or
non-string name or archive, a 10 MB field each crashed every run before any file was fetched, or
blocked the catalogue for good (a null name was even fetched as a neuron named ``None``).

The rules, and why each:

* ``neuron_id`` is a whole number in ``1..2**53`` (an ``int``, or a float or digit string that is one):
  ids index the state store and the catalogue (SQLite integers stop at 2**63) and are read by other JSON
  tools (exact to 2**53); the real ids reach about 322,000 (reference E);
* ``neuron_name`` and ``archive`` are non-empty strings: they name the file and its folder;
* ``original_format`` and ``png_url`` are strings or absent: they name the source file and the thumbnail;
* the whole record encodes as UTF-8 JSON of at most :data:`MAX_RECORD_BYTES`: a lone surrogate cannot be
  written to ``metadata.jsonl`` or SQLite, and a record of megabytes is not metadata. The encoded line is
  kept on the :class:`Neuron` (``line``), so it is made once and written as is.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

#: The largest record accepted, as one line of UTF-8 JSON. A real record is 2-4 KB (reference A7); a
#: 1 MB name is still accepted (its file name is shortened with a hash), a 10 MB field is not.
MAX_RECORD_BYTES = 4 << 20
#: The largest neuron id accepted: exact in every JSON reader, and within SQLite's integers.
MAX_NEURON_ID = 2**53


class Version(enum.StrEnum):
    """Which file of a neuron; the value is also the folder name in the local tree."""

    CNG = "CNG"  # standardized SWC, /CNG%20version/<name>.CNG.swc
    SOURCE = "source"  # original upload, /Source-Version/<name>.<ext of original_format>
    CNG_LOG = "remaining-issues"  # /Remaining%20issues/<name>.CNG.swc.std
    SOURCE_LOG = "standardization-log"  # /Standardization%20log/<name>.std
    PNG = "images"  # thumbnail at the record's png_url

    @classmethod
    def parse(cls, text: str) -> Version:
        """Accept the value or the member name in any case (``cng``, ``source``, ``png``)."""
        wanted = text.strip().lower()
        for member in cls:
            if wanted in (member.value.lower(), member.name.lower()):
                return member
        choices = ", ".join(m.value for m in cls)
        raise UsageError(f"unknown file version {text!r}: choose one of {choices}")


@dataclass(frozen=True, slots=True)
class Neuron:
    """One neuron record as served, with typed access to the fields downloads depend on.

    ``record`` is the JSON object exactly as the server sent it (numbers as strings, list fields as
    lists); ``line`` is it as one line of UTF-8 JSON, what ``metadata.jsonl`` stores.
    """

    id: int
    name: str
    archive: str
    original_format: str | None
    png_url: str | None
    record: Mapping[str, Any] = field(compare=False, repr=False)
    line: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, line: bytes | None = None) -> Neuron:
        """The record as a :class:`Neuron`, or ``ValueError`` saying why it is not one.

        ``line``: the record's JSON line as read (:func:`parse_record`), so it is not encoded again."""
        parsed = parse_record(record, line=line)
        if isinstance(parsed, RejectedRecord):
            raise ValueError(f"not a neuron record: {parsed.reason}")
        return parsed


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record that is not a usable neuron: why, which id it claimed (when it had a usable one), and
    the start of it as text (for the report; never the whole of a 10 MB record)."""

    reason: str
    neuron_id: int | None = None
    excerpt: str = ""


def _excerpt(record: object) -> str:
    try:
        text = repr(record)
    except Exception:  # a repr that fails is not the reason we reject the record
        return "<unprintable>"
    # backslashreplace: a lone surrogate must not make the excerpt itself unprintable
    return text[:200].encode("utf-8", "backslashreplace").decode("utf-8")


def _whole_number(value: object) -> int | None:
    """``value`` as an id when it is exactly a whole number in range (not a bool, not NaN or Infinity)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 17:
        number = int(value.strip())
    else:
        return None
    return number if 1 <= number <= MAX_NEURON_ID else None


def _text(record: Mapping[str, Any], key: str, *, required: bool) -> tuple[str | None, str | None]:
    """``(value, None)`` for a usable string field, ``(None, reason)`` when it is not one."""
    value = record.get(key)
    if value is None or value == "":
        return None, (f"{key} is {'missing' if key not in record else repr(value)}" if required else None)
    if not isinstance(value, str):
        return None, f"{key} is not text ({type(value).__name__})"
    if required and not value.strip():
        return None, f"{key} is blank"
    return value, None


def parse_record(record: object, *, line: bytes | None = None) -> Neuron | RejectedRecord:
    """Validate one record as served (module docstring): a :class:`Neuron`, or why it is not one.

    ``line`` is the record's JSON line when the caller decoded it from one (``metadata.jsonl``): kept
    instead of encoding the record again, which was a third of typing a catalogue's records. Only a line
    without ``\\u`` escapes can be taken so: valid UTF-8 text decodes to valid text, but an escape can
    make a lone surrogate, which only the encoding finds.
    """
    if not isinstance(record, Mapping):
        return RejectedRecord(f"not a JSON object ({type(record).__name__})", None, _excerpt(record))
    raw_id = record.get("neuron_id")
    neuron_id = _whole_number(raw_id)
    if neuron_id is None:
        shown = repr(raw_id)[:40] if "neuron_id" in record else "missing"
        return RejectedRecord(f"neuron_id is not a whole number in 1..2^53: {shown}", None, _excerpt(record))
    name, why = _text(record, "neuron_name", required=True)
    if why is None:
        archive, why = _text(record, "archive", required=True)
    if why is None:
        fmt, why = _text(record, "original_format", required=False)
    if why is None:
        png, why = _text(record, "png_url", required=False)
    if why is not None:
        return RejectedRecord(why, neuron_id, _excerpt(record))
    try:
        if line is None or b"\\u" in line:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
    except UnicodeEncodeError as exc:
        return RejectedRecord(
            f"holds a lone surrogate (text that is not valid Unicode: {exc.reason})",
            neuron_id,
            _excerpt(record),
        )
    except (TypeError, ValueError) as exc:  # not JSON-serialisable, or a circular structure
        return RejectedRecord(f"cannot be written as JSON ({exc})", neuron_id, _excerpt(record))
    if len(line) > MAX_RECORD_BYTES:
        return RejectedRecord(
            f"is {len(line):,} bytes as JSON, more than the {MAX_RECORD_BYTES:,}-byte limit for a record",
            neuron_id,
            _excerpt(record),
        )
    assert name is not None and archive is not None
    return Neuron(neuron_id, name, archive, fmt, png, record, line)
