"""The error table in docs/library.md is the error policy as users read it: it must say what the classes do.

Every exported error has one row, and each row's transient / stops-run / exit columns equal the class's
attributes, so a changed policy that the docs do not follow fails here rather than in a user's script.
"""

from __future__ import annotations

import re
from pathlib import Path

import neuromorpho_fetch.errors as errors

LIBRARY_MD = Path(__file__).resolve().parents[2] / "docs" / "library.md"
ROW = re.compile(r"^\| `(\w+)` \| (yes|no) \| (yes|no) \| (\d) \|", re.MULTILINE)


def _rows() -> dict[str, tuple[bool, bool, int]]:
    text = LIBRARY_MD.read_text(encoding="utf-8")
    return {m[1]: (m[2] == "yes", m[3] == "yes", int(m[4])) for m in ROW.finditer(text)}


def _exported_errors() -> dict[str, type[errors.NeuroMorphoError]]:
    out = {}
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, errors.NeuroMorphoError):
            out[name] = value
    return out


def test_every_exported_error_has_a_row() -> None:
    assert sorted(_exported_errors()) == sorted(_rows())


def test_each_row_says_what_the_class_does() -> None:
    rows = _rows()
    for name, cls in _exported_errors().items():
        assert rows[name] == (cls.transient, cls.stops_run, cls.exit_code), name
