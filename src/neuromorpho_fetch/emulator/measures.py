"""Per-neuron numbers derived from a hash of ``(seed, id)``: the record's surface figures, the morphometry
object and the persistence vector. Nothing is stored; the recorded cnic_001 is the caller's business
(:class:`.catalogue.Catalogue` serves its recorded values instead).
"""

from __future__ import annotations

import math
import random
from typing import Any

from .hashing import mix64


def surfaces(seed: int, neuron_id: int) -> tuple[str | None, str, str]:
    """``soma_surface``, ``surface`` and ``volume`` as the record's strings, from one hash of the id.

    ``soma_surface`` is null for one neuron in five (E: "missing for about one neuron in five").
    """
    h = mix64(seed, neuron_id, 0x5EED)
    u1, u2, u3 = (h & 0x1FFFFF) / 0x200000, ((h >> 21) & 0x1FFFFF) / 0x200000, (h >> 42) / 0x400000
    surface = 2000.0 * math.exp(3.0 * u2)
    return (
        None if u1 < 0.2 else str(round(150.0 + 1500.0 * u1 * u1, 2)),
        str(round(surface, 2)),
        str(round(surface * (0.2 + 0.6 * u3), 2)),
    )


def morphometry(seed: int, neuron_id: int, name: str) -> dict[str, Any]:
    """The ``/api/morphometry/id`` object: numbers, consistent with the record's surface figures
    (``soma_Surface`` null where the record's ``soma_surface`` is)."""
    soma_text, surface_text, volume_text = surfaces(seed, neuron_id)
    soma = None if soma_text is None else float(soma_text)
    surface, volume = float(surface_text), float(volume_text)
    rng = random.Random(mix64(seed, neuron_id, 0x3E7))
    stems = rng.randint(1, 12)
    bifs = rng.randint(stems, 40 * stems)
    length = round(rng.uniform(300.0, 12000.0), 2)
    return {
        "neuron_id": neuron_id, "neuron_name": name, "surface": surface, "volume": volume,
        "soma_Surface": soma, "n_stems": float(stems), "n_bifs": float(bifs),
        "n_branch": float(2 * bifs + stems), "width": round(rng.uniform(50, 900), 2),
        "height": round(rng.uniform(50, 1200), 2), "depth": round(rng.uniform(10, 400), 2),
        "diameter": round(rng.uniform(0.3, 2.5), 4), "length": length,
        "eucDistance": round(rng.uniform(40, 800), 2), "pathDistance": round(rng.uniform(60, 1500), 2),
        "branch_Order": float(rng.randint(2, 40)), "contraction": round(rng.uniform(0.7, 0.97), 4),
        "fragmentation": float(rng.randint(int(length // 4), int(length))),
        "partition_asymmetry": round(rng.uniform(0.3, 0.7), 4),
        "pk_classic": round(rng.uniform(1.5, 3.0), 4),
        "bif_ampl_local": round(rng.uniform(40, 90), 3), "bif_ampl_remote": round(rng.uniform(30, 80), 3),
        "fractal_Dim": round(rng.uniform(1.0, 1.1), 5),
    }  # fmt: skip


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
