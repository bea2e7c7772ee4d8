"""The one table of metadata field types, and the pure conversion of a served value to its typed value.

The server sends numbers as strings (``"soma_surface": "834.0"``), fills unknowns with words
(``"Not reported"``, ``"Not Reported"``, ``"Not applicable"``), empty strings, ``"NA"`` or a negative
placeholder PMID (``["-26"]``, reference F), and ``null``. Stored as served, a numeric filter in SQL is
silently wrong (SQLite orders any text above any number, so ``soma_surface > 100000`` is true for
"Not reported"). So every field has one kind here, and the catalogue (``catalogue.sqlite``'s
``neurons`` columns) and :meth:`LocalMirror.to_pandas` both take their types from :data:`FIELD_TYPES`;
the record exactly as served stays in the ``record`` column, so nothing is lost.

Kinds: ``integer`` and ``real`` (a value that is not a number becomes NULL), ``date`` (ISO
``YYYY-MM-DD`` text, NULL when not a date), ``list`` (JSON text of the elements that are not
placeholders; NULL when none is left), ``text`` (NULL for a placeholder).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Literal

Kind = Literal["integer", "real", "date", "list", "text"]

#: Every metadata field of a served record (reference A7, by JSON key, in the served order) and its kind.
FIELD_TYPES: dict[str, Kind] = {
    "neuron_id": "integer", "neuron_name": "text", "archive": "text", "note": "text",
    "age_scale": "text", "gender": "text", "age_classification": "text", "brain_region": "list",
    "cell_type": "list", "species": "text", "strain": "text", "scientific_name": "text", "stain": "text",
    "experiment_condition": "list", "protocol": "text", "slicing_direction": "text",
    "reconstruction_software": "text", "objective_type": "text", "original_format": "text",
    "domain": "text", "attributes": "text", "magnification": "real", "upload_date": "date",
    "deposition_date": "date", "shrinkage_reported": "text", "shrinkage_corrected": "text",
    "reported_value": "real", "reported_xy": "real", "reported_z": "real", "corrected_value": "real",
    "corrected_xy": "real", "corrected_z": "real", "soma_surface": "real", "surface": "real",
    "volume": "real", "slicing_thickness": "real", "min_age": "real", "max_age": "real",
    "min_weight": "real", "max_weight": "real", "png_url": "text", "reference_pmid": "list",
    "reference_doi": "list", "physical_Integrity": "text",
}  # fmt: skip

#: The SQLite column type of each kind (the ``neurons`` table is ``STRICT``: a wrong type is an error).
SQL_TYPES: dict[Kind, str] = {
    "integer": "INTEGER",
    "real": "REAL",
    "date": "TEXT",
    "list": "TEXT",
    "text": "TEXT",
}

#: Served values that mean "unknown" and become NULL (compared after trimming, case-insensitively);
#: a negative PMID (reference F: ``["-26"]``) is one too, and so is any non-number in a numeric field.
PLACEHOLDERS: tuple[str, ...] = ("", "Not reported", "Not Reported", "NA", "N/A", "null", "None")
_PLACEHOLDER_SET = frozenset(p.casefold() for p in PLACEHOLDERS)


def is_placeholder(value: Any) -> bool:
    """Whether a served scalar means "unknown" (``None`` included)."""
    return value is None or (isinstance(value, str) and value.strip().casefold() in _PLACEHOLDER_SET)


def _real(value: Any) -> float | None:
    # Every placeholder fails float() (or is not finite: "nan"), so none is looked up here.
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # float() itself ignores surrounding whitespace
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _real(value)
    return int(number) if number is not None and number.is_integer() else None


def _date(value: Any) -> str | None:
    if not isinstance(value, str) or is_placeholder(value):
        return None
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        return None


def _element(field: str, value: Any) -> Any:
    """A list element, or ``None`` when it is a placeholder (negative PMIDs included)."""
    if isinstance(value, list | dict):
        return value
    if is_placeholder(value):
        return None
    if field == "reference_pmid":
        pmid = _integer(value)
        if pmid is not None and pmid <= 0:
            return None
    return value


#: One encoder for every value (``json.dumps`` with an option builds a new encoder per call: measured,
#: most of the cost of typing a record).
_encode = json.JSONEncoder(ensure_ascii=False).encode


#: Typed list values by (field, served strings): records repeat them (a paper's DOI and PMID, its cell
#: types and regions), and typing a list was half of typing a record. Bounded in count and in size:
#: only short lists are kept (a record of megabytes is never held), and the table is emptied when full.
_LISTS: dict[tuple[str, tuple[str, ...]], str | None] = {}
_LISTS_MAX = 20_000
_LIST_CHARS_MAX = 512


def _list(field: str, value: Any) -> str | None:
    if value is None:
        return None
    key = None
    if type(value) is list and all(type(v) is str for v in value) and sum(map(len, value)) <= _LIST_CHARS_MAX:
        key = (field, tuple(value))
        if key in _LISTS:
            return _LISTS[key]
    typed = _typed_list(field, value)
    if key is not None:
        if len(_LISTS) >= _LISTS_MAX:
            _LISTS.clear()
        _LISTS[key] = typed
    return typed


def _typed_list(field: str, value: Any) -> str | None:
    # The common case, a list of real strings, encoded as served without a per-element pass.
    if (
        type(value) is list
        and field != "reference_pmid"
        and all(type(v) is str and v.strip().casefold() not in _PLACEHOLDER_SET for v in value)
    ):
        return _encode(value) if value else None
    items = value if isinstance(value, list) else [value]
    kept = [e for e in (_element(field, v) for v in items) if e is not None]
    return _encode(kept) if kept else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is str:
        return None if value.strip().casefold() in _PLACEHOLDER_SET else value
    if isinstance(value, list | dict):
        return _encode(value)
    return str(value)


def _converter(field: str, kind: Kind) -> Callable[[Any], Any]:
    if kind == "list":
        return functools.partial(_list, field)
    return {"real": _real, "integer": _integer, "date": _date, "text": _text}[kind]


#: ``(field, converter)`` in :data:`FIELD_TYPES` order, resolved once (a first build types every
#: record: measured, dispatching on the kind per value cost a third of it).
_CONVERTERS: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
    (name, _converter(name, kind)) for name, kind in FIELD_TYPES.items()
)
_BY_NAME: dict[str, Callable[[Any], Any]] = dict(_CONVERTERS)


def typed_value(field: str, value: Any) -> Any:
    """The catalogue's value of ``field`` for the served ``value`` (pure; see the module docstring)."""
    convert: Callable[[Any], Any] = _BY_NAME.get(field, _text)
    return convert(value)


def typed_record(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Every field of a served record, typed, in :data:`FIELD_TYPES` order."""
    get = record.get
    return tuple(convert(get(name)) for name, convert in _CONVERTERS)
