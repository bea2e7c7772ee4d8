"""The select query engine: q, fq, POST body, wildcards, phrases and sort."""

from __future__ import annotations

from neuromorpho_fetch.emulator.catalogue import Catalogue
from neuromorpho_fetch.emulator.search import select


def test_match_all_returns_every_id_in_order() -> None:
    cat = Catalogue(300)
    assert list(select(cat, q="*:*")) == list(cat.neuron_ids())
