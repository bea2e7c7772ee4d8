"""Decoding JSON, the project's one way: :func:`loads` (the standard library) for every document, and
:func:`loads_fast` (orjson where it is installed, the ``[fast]`` extra) where many are decoded at once;
the same value and the same errors either way.

A document nested deeper than the interpreter's recursion limit makes :func:`json.loads` raise
``RecursionError``, not ``ValueError``: every ``except ValueError`` of a reader then let it through (a
503 whose body was 1,500 ``[``, a ``metadata.jsonl`` line edited by hand: a traceback, or a catalogue
never updated again). :func:`loads` raises :class:`NestedTooDeep` instead, a
:class:`json.JSONDecodeError`, so each reader's own rule for unreadable JSON applies to it too.

:func:`loads_fast` is used where records are decoded in bulk and dropped at once: the catalogue
step's reading of ``metadata.jsonl`` at a run's end (5,000 lines of 1.5 KB: 57 -> 35 ms; 2-core
machine, 2026-12-04), where the wall waits for it. Not for the listing's pages, whose records the run
keeps for a while (the look-ahead, the planner): orjson builds each dict presized, 2,264 bytes against
the standard library's 1,584 for a served record, and a 100,000-neuron mirror's RSS was 8-12 MB higher
with it (benchmark scenario 6, median and peak) for 28 ms per 5,000 records saved.

The values are the standard library's. orjson refuses some documents :func:`json.loads` accepts
(``NaN`` and ``Infinity``, escaped lone surrogates, a byte order mark, nesting deeper than 1,024
levels); each of those is decoded again by :func:`loads`, which returns its value or raises its own
error, as it did before orjson was used. And it reads an integer
beyond 64 bits as a float, where :func:`json.loads` keeps it exact: a document with a run of 19 digits
anywhere (found with one ``bytes.translate``, ~5 ms per 7.5 MB) goes to :func:`loads` whole.
For every other document orjson returns what :func:`json.loads` returns (``tests/test_jsonio.py``
checks both on generated documents). Only decoding: the lines the mirror writes stay the standard
library's encoding, so installing orjson never changes a byte of ``metadata.jsonl``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

#: The decoder in use: ``"orjson"`` or ``"json"``.
BACKEND = "orjson" if orjson is not None else "json"


#: Digits to ``0``, every other byte to a space: a run of 19 digits is then a run of 19 zeros.
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
#: Integers of up to 18 digits fit in 64 bits, where orjson is exact; from 19 digits on
#: (-9223372036854775809) one may not.
_LONG_RUN = b"0" * 19


class NestedTooDeep(json.JSONDecodeError):
    """A document nested too deep to decode (module docstring): unreadable, like any invalid JSON."""


def loads(data: bytes | str) -> Any:
    """The value of the JSON document ``data`` (:func:`json.loads`), or a ``ValueError``: a document nested
    past the recursion limit is :class:`NestedTooDeep`, never ``RecursionError``."""
    try:
        return json.loads(data)
    except RecursionError:
        text = data if isinstance(data, str) else data[:200].decode("utf-8", "replace")
        raise NestedTooDeep(
            f"JSON nested too deep to read (over {sys.getrecursionlimit()} levels)", text[:200], 0
        ) from None


def loads_fast(data: bytes | str) -> Any:
    """:func:`loads`, with orjson where it is installed: the same value, or the same error."""
    if orjson is not None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if _LONG_RUN not in raw.translate(_DIGITS):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass  # the standard library decides: a value it accepts, or its own error
    return loads(data)
