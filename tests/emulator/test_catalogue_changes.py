"""``EmulatorConfig.catalogue_changes``: the seed's catalogue changed upstream, the same everywhere.

A neuron added, one removed and one record edited must show in records, selects, counts, partitions,
field values and files alike, and nothing else may change (issue 12's "what changed" test relies on
that: it expects exactly three changes).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from neuromorpho_fetch.emulator import Catalogue, CatalogueChanges, EmulatorConfig, serve_in_thread
from neuromorpho_fetch.emulator.vocabulary import KINDS

from .conftest import SMALL

ARCHIVE = "Siegert"


@pytest.fixture(scope="module")
def pair(small_catalogue: Catalogue) -> tuple[Catalogue, Catalogue, CatalogueChanges]:
    ids = [i for i in small_catalogue.neuron_ids() if small_catalogue.record(i)["archive"] == ARCHIVE]  # type: ignore[index]
    changes = CatalogueChanges(
        add=((ARCHIVE, 2),), remove=(ids[3],), edit=((ids[5], "species", "guinea pig"),)
    )
    return small_catalogue, Catalogue(SMALL.neurons, SMALL.seed, changes=changes), changes


def test_exactly_the_changed_neurons_differ_in_records_and_files(
    pair: tuple[Catalogue, Catalogue, CatalogueChanges],
) -> None:
    base, changed, changes = pair
    (removed,), ((edited, _, _),) = changes.remove, changes.edit
    before, after = set(base.neuron_ids()), set(changed.neuron_ids())
    added = sorted(after - before)
    assert before - after == {removed}
    assert len(added) == 2 and min(added) > max(before)  # appended: ids stay ascending
    assert list(changed.neuron_ids()) == sorted(after)
    # Files are grown per neuron (milliseconds each): every file of the changed archive is compared, and
    # every seventh elsewhere (a change that leaks would be systematic: files derive from (seed, id)).
    kept = sorted(before - {removed})
    for i, neuron_id in enumerate(kept):
        old, new = base.record(neuron_id), changed.record(neuron_id)
        assert old is not None and new is not None
        differs = sorted(k for k in old if old[k] != new[k])
        assert differs == (["species"] if neuron_id == edited else []), neuron_id
        if old["archive"] != ARCHIVE and i % 7:
            continue
        for kind in KINDS:
            a, b = base.file_for(neuron_id, kind), changed.file_for(neuron_id, kind)
            assert (a is None) == (b is None) and (a is None or a.body == b.body), (neuron_id, kind)  # type: ignore[union-attr]
    assert changed.record(removed) is None and changed.file_for(removed, "CNG") is None
    for neuron_id in added:
        record = changed.record(neuron_id)
        assert record is not None and record["archive"] == ARCHIVE
        assert record["neuron_name"] == f"{ARCHIVE}_added_{neuron_id}"
        assert changed.id_by_name(record["neuron_name"]) == neuron_id
        cng = changed.file_for(neuron_id, "CNG")
        assert cng is not None and record["neuron_name"].encode() in cng.body


def test_counts_partitions_and_masks_agree_with_the_records(
    pair: tuple[Catalogue, Catalogue, CatalogueChanges],
) -> None:
    base, changed, _ = pair
    assert dict(changed.archives())[ARCHIVE] == dict(base.archives())[ARCHIVE] + 1  # +2 -1
    records = [changed.record(i) for i in changed.neuron_ids()]
    for field in ("archive", "species"):
        want: dict[str, int] = {}
        for record in records:
            assert record is not None
            want[record[field]] = want.get(record[field], 0) + 1
        assert changed.partition(field) == want
        for value in ("guinea pig", ARCHIVE, "rat"):
            mask = changed.scan(field, lambda v, value=value: v == value)  # type: ignore[misc]
            assert sum(mask) == want.get(value, 0)
    assert "guinea pig" in changed.field_values("species")


def test_the_server_serves_the_changed_catalogue(pair: tuple[Catalogue, Catalogue, CatalogueChanges]) -> None:
    _, changed, changes = pair
    config = EmulatorConfig(tls="none", neurons=SMALL.neurons, seed=SMALL.seed, catalogue_changes=changes)
    with serve_in_thread(config) as emu:

        def get(path: str, **params: Any) -> Any:
            response = requests.get(emu.base_url + path, params=params, timeout=10)
            response.raise_for_status()
            return response.json()

        body = get("/api/neuron/select", q=f"archive:{ARCHIVE}", size=500)
        served = [r["neuron_id"] for r in body["_embedded"]["neuronResources"]]
        want = [i for i in changed.neuron_ids() if changed.record(i)["archive"] == ARCHIVE]  # type: ignore[index]
        assert served == want and body["page"]["totalElements"] == len(want)
        assert get("/api/neuron/partition/archive")["fields"][ARCHIVE] == len(want)
        assert changes.remove[0] not in served
        (edited, _, value) = changes.edit[0]
        assert get(f"/api/neuron/id/{edited}")["species"] == value
        assert (
            requests.get(emu.base_url + f"/api/neuron/id/{changes.remove[0]}", timeout=10).status_code == 404
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (lambda: CatalogueChanges(add=((ARCHIVE, 0),)), "at least 1"),
        (lambda: CatalogueChanges(remove=(5, 5)), "twice"),
        (lambda: CatalogueChanges(remove=(5,), edit=((5, "species", "rat"),)), "both"),
    ],
)
def test_bad_changes_are_refused_when_built(changes: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        changes()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (CatalogueChanges(remove=(10**9,)), "no neuron"),
        (CatalogueChanges(edit=((1, "archive", "Elsewhere"),)), "cannot be edited"),
        (CatalogueChanges(edit=((1, "neuron_name", "x"),)), "cannot be edited"),
        (CatalogueChanges(add=(("No Such Archive", 1),)), "no archive"),
    ],
)
def test_changes_that_do_not_fit_the_catalogue_are_refused(changes: CatalogueChanges, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Catalogue(50, 7, changes=changes)
