"""The few value types that cross module boundaries: a neuron record and a file version."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

__all__ = ["Neuron", "Version"]


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
    lists); it is what ``metadata.jsonl`` stores.
    """

    id: int
    name: str
    archive: str
    original_format: str | None
    png_url: str | None
    record: Mapping[str, Any]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Neuron:
        try:
            neuron_id = int(record["neuron_id"])
            name = str(record["neuron_name"])
            archive = str(record["archive"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a neuron record (missing or bad {exc}): {dict(record)!r:.200}") from exc
        fmt = record.get("original_format")
        png = record.get("png_url")
        return cls(
            id=neuron_id,
            name=name,
            archive=archive,
            original_format=str(fmt) if fmt else None,
            png_url=str(png) if png else None,
            record=record,
        )
