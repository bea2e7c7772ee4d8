"""Upstream changes on top of a seed's catalogue: neurons added, removed, records edited (issue 12).

Why: "what changed since the last run" is tested by mirroring, then serving *the same seed changed*
and mirroring again. The change is made to the generated :class:`~.generation.Layout`, before the
catalogue is built from it, so records, selects (masks), counts, partitions, field values and files all
see one consistent catalogue: nothing downstream knows it was changed.

* removed ids: their positions are dropped (names, ids, every variant byte column, group bounds);
* edited records: the neuron gets a group of its own whose option for the field is the new value, so
  every other field keeps the value it had (same variant bytes, same options) and its files are the
  same bytes (they depend on the id, the name and the seed, not on the edited field, unless the edit is
  to ``original_format``, which decides the source file's format);
* added neurons: appended after the highest id (ids stay ascending), in a group with the options of the
  archive's last group, named ``<archive>_added_<n>``; their files are built like any other neuron's.

Everything is a pure function of the layout and the :class:`~._config.CatalogueChanges`: two processes
given the same seed and changes serve identical bytes.
"""

from __future__ import annotations

import bisect
import re
from array import array
from dataclasses import replace

from ._config import CatalogueChanges
from .generation import Group, Layout
from .index import CatalogueIndex
from .vocabulary import _PER_NEURON, _RECORD_KEYS, _VARIANT_KEY, LIST_FIELDS, Value


def editable_fields() -> tuple[str, ...]:
    """Record keys an edit may change: every group-held field except ``archive``."""
    return tuple(k for k in _RECORD_KEYS if k not in _PER_NEURON and k != "archive")


def apply_changes(layout: Layout, changes: CatalogueChanges) -> Layout:
    """``layout`` with ``changes`` applied: removals, then edits, then additions.

    Raises ``ValueError`` for an id that is not in the catalogue, a field that cannot be edited, or an
    archive that does not exist.
    """
    if changes.remove:
        layout = _remove(layout, set(changes.remove))
    for neuron_id, field, value in changes.edit:
        layout = _edit(layout, neuron_id, field, value)
    for archive, count in changes.add:
        layout = _add(layout, archive, count)
    return layout


def _position(layout: Layout, neuron_id: int) -> int:
    ids = layout.ids
    lo = bisect.bisect_left(ids, neuron_id)
    if lo == len(ids) or ids[lo] != neuron_id:
        raise ValueError(f"catalogue change: no neuron with id {neuron_id}")
    return lo


def _remove(layout: Layout, ids: set[int]) -> Layout:
    missing = ids.difference(layout.ids)
    if missing:
        raise ValueError(f"catalogue change: no neuron with id {min(missing)} to remove")
    keep = [pos for pos, neuron_id in enumerate(layout.ids) if neuron_id not in ids]
    kept = set(keep)
    groups: list[Group] = []
    start = 0
    for group in layout.groups:
        size = sum(1 for pos in range(group.start, group.stop) if pos in kept)
        if size:
            groups.append(replace(group, start=start, stop=start + size))
            start += size
    names = [layout.names[pos] for pos in keep]
    return Layout(
        archives=layout.archives,
        groups=groups,
        names=names,
        index={name: pos for pos, name in enumerate(names)},
        ids=array("I", (layout.ids[pos] for pos in keep)),
        variants={key: bytes(column[pos] for pos in keep) for key, column in layout.variants.items()},
    )


def _edit(layout: Layout, neuron_id: int, field: str, value: str) -> Layout:
    try:
        key = CatalogueIndex.field_key(field)
    except KeyError:
        key = ""  # not a field at all: refused below with the same message
    if key not in editable_fields():
        raise ValueError(f"catalogue change: field {field!r} cannot be edited")
    pos = _position(layout, neuron_id)
    groups: list[Group] = []
    for group in layout.groups:
        if not group.start <= pos < group.stop:
            groups.append(group)
            continue
        new: Value = (value,) if key in LIST_FIELDS else value
        options = dict(group.options)
        # The neuron's current option for every other field, so only ``key`` changes.
        for name, choices in group.options.items():
            if name in _VARIANT_KEY and len(choices) > 1:
                column = layout.variants[_VARIANT_KEY[name]]
                options[name] = (choices[column[pos] % len(choices)],)
        options[key] = (new,)
        if group.start < pos:
            groups.append(replace(group, stop=pos))
        groups.append(Group(group.archive, pos, pos + 1, options))
        if pos + 1 < group.stop:
            groups.append(replace(group, start=pos + 1))
    return replace(layout, groups=groups)


def _add(layout: Layout, archive: str, count: int) -> Layout:
    if archive not in layout.archives:
        raise ValueError(f"catalogue change: no archive {archive!r} to add neurons to")
    index = layout.archives.index(archive)
    template = next(g for g in reversed(layout.groups) if g.archive == index)
    start = len(layout.names)
    token = re.sub(r"[^A-Za-z0-9]+", "_", archive).strip("_") or "archive"
    first = (layout.ids[-1] if layout.ids else 0) + 1
    added = [f"{token}_added_{first + i}" for i in range(count)]
    names = [*layout.names, *added]
    index_by_name = dict(layout.index)
    index_by_name.update({name: start + i for i, name in enumerate(added)})
    ids = array("I", layout.ids)
    ids.extend(range(first, first + count))
    variants = {key: bytes(column) + bytes(count) for key, column in layout.variants.items()}
    groups = [*layout.groups, Group(index, start, start + count, dict(template.options))]
    return Layout(layout.archives, groups, names, index_by_name, ids, variants)
