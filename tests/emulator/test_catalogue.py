"""The emulator's synthetic catalogue: deterministic, realistic records and files."""

from __future__ import annotations

from neuromorpho_fetch.emulator.catalogue import FIELDS, Catalogue


def test_same_seed_gives_same_records() -> None:
    a, b = Catalogue(300, seed=3), Catalogue(300, seed=3)
    assert list(a.neuron_ids()) == list(b.neuron_ids())
    assert all(a.record(i) == b.record(i) for i in a.neuron_ids())
    assert len(FIELDS) == 44
