"""Blocking helpers: from plain code, and from inside a running event loop (a Jupyter cell)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import NeuroMorpho, NotFoundError, Version, sync
from neuromorpho_fetch.emulator import Emulator


def test_run_without_a_loop() -> None:
    async def answer() -> int:
        return 42

    assert sync.run(answer()) == 42


async def test_run_inside_a_running_loop() -> None:
    outer = threading.get_ident()

    async def where() -> int:
        return threading.get_ident()

    assert sync.run(where()) != outer  # a private loop on a worker thread


def test_helpers_from_plain_code(plain: Emulator, tmp_path: Path) -> None:
    options: dict[str, Any] = {"base_url": plain.base_url, "rate": 1000.0}
    first = plain.catalogue.neuron_ids()[0]
    neuron = sync.neuron(first, **options)
    assert sync.neuron_by_name(neuron.name, **options).id == first
    assert sync.health(**options)["status"] == "UP"
    assert "species" in sync.fields(**options)
    assert sync.count(archive=neuron.archive, client=options) == sync.archives(**options)[neuron.archive]
    found = sync.select(archive=neuron.archive, limit=3, client=options)
    assert 1 <= len(found) <= 3 and all(n.archive == neuron.archive for n in found)
    result = sync.download(neuron, Version.CNG, tmp_path, **options)
    assert result.path.is_file() and result.path.is_relative_to(tmp_path)


async def test_helpers_inside_a_running_loop(plain: Emulator) -> None:
    """What a notebook does: call the blocking helper from code that runs in an event loop."""
    options: dict[str, Any] = {"base_url": plain.base_url, "rate": 1000.0}
    first = plain.catalogue.neuron_ids()[0]
    assert sync.neuron(first, **options).id == first
    assert len(sync.select(limit=5, client=options)) == 5
    assert sync.counts("species", **options)
    assert sync.morphometry(first, **options)["neuron_id"] == first
    assert sync.field_values("species", **options)
    with pytest.raises(NotFoundError):
        sync.neuron(999_999_999, **options)
    # The running loop is unharmed and the async client still works in it.
    async with NeuroMorpho(plain.base_url) as nm:
        assert (await nm.neuron(first)).id == first
    await asyncio.sleep(0)
