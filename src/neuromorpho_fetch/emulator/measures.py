"""Per-neuron numbers: the record's surface figures and the persistence vector from a hash of
``(seed, id)``, the morphometry object from the neuron's CNG file. Nothing is stored; the recorded
cnic_001 is the caller's business (:class:`.catalogue.Catalogue` serves its recorded values instead).
"""

from __future__ import annotations

import math
import random
from typing import Any

from . import lmeasure, neurons
from .hashing import mix64


def surfaces(seed: int, neuron_id: int, shape: str) -> tuple[str | None, str, str]:
    """``soma_surface``, ``surface`` and ``volume`` as the record's strings, from one hash of the id.

    Drawn around what a neuron of ``shape`` measures (:data:`.neurons.TYPICAL`): the soma a sphere of a
    radius in the shape's range, the surface that soma plus the shape's typical neurite surface times
    ``e^(+/-0.6)``, and the volume from the shape's volume-to-surface ratio; the file is then grown to
    this surface (:func:`.neurons.match_surface`). ``soma_surface`` is null for one neuron in five (E:
    "missing for about one neuron in five").
    """
    lateral, (low, high), ratio = neurons.TYPICAL[shape]
    h = mix64(seed, neuron_id, 0x5EED)
    u1, u2, u3 = (h & 0x1FFFFF) / 0x200000, ((h >> 21) & 0x1FFFFF) / 0x200000, (h >> 42) / 0x400000
    radius = low + (high - low) * u2
    soma = 4.0 * math.pi * radius * radius
    surface = soma + lateral * math.exp(1.2 * u3 - 0.6)
    return (
        None if u1 < 0.2 else str(round(soma, 2)),
        str(round(surface, 2)),
        str(round(surface * ratio * math.exp(0.4 * u1 - 0.2), 2)),
    )


def morphometry(body: bytes, neuron_id: int, name: str, *, soma_reported: bool) -> dict[str, Any]:
    """The ``/api/morphometry/id`` object of a neuron: L-Measure's numbers computed from its served CNG
    file (:mod:`.lmeasure`), so the file and its numbers agree. ``soma_Surface`` is null where the
    record's ``soma_surface`` is (not ``soma_reported``)."""
    values = lmeasure.measure(lmeasure.parse(body))
    if not soma_reported:
        values["soma_Surface"] = None
    return {"neuron_id": neuron_id, "neuron_name": name, **values}


def pvec(seed: int, neuron_id: int) -> dict[str, Any]:
    """The ``/api/pvec/id`` object: a scale, a distance, and 100 coefficients of a decaying curve."""
    rng = random.Random(mix64(seed, neuron_id, 0x9EC))
    peak = rng.uniform(500.0, 5000.0)
    decay = rng.uniform(0.01, 0.08)
    coefficients = [round(peak * math.exp(-decay * i) * rng.uniform(0.9, 1.1), 4) for i in range(100)]
    return {"neuron_id": neuron_id, "scaling_factor": round(rng.uniform(50.0, 500.0), 3), "distance": 0.0,
            "coefficients": coefficients}  # fmt: skip


# --- which neurons have no morphometry (issue 18; kept apart from the values above) --------------------

#: Neurons without a morphometry record, per 10,000 (F [CWN]: "About 0.4% of neurons have no morphometry
#: (/morphometry/id/{id} answers 404 for them)").
NO_MORPHOMETRY_PER_10K = 40


def has_morphometry(seed: int, neuron_id: int) -> bool:
    """Whether ``/api/morphometry/id/{neuron_id}`` has a record: all but about 0.4% of ids, picked by a
    hash of the seed and id; never id 1 (cnic_001's morphometry is recorded, E)."""
    return neuron_id == 1 or mix64(seed, neuron_id, 0x404) % 10_000 >= NO_MORPHOMETRY_PER_10K
