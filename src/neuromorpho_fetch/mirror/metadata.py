"""``--with-morphometry`` and ``--with-pvec``: one job per :data:`META_BATCH` neurons, one request each.

The measurements are fetched through the batched select routes NeuroMorpho's own front end uses
(:meth:`~neuromorpho_fetch.client.NeuroMorpho.morphometry_many`, 50 neurons a request; issue 18 item 4:
one request per neuron doubled a 14.7-hour mirror) and land, one JSON line per neuron, in the archive
folder's ``morphometry.jsonl`` / ``pvec.jsonl`` (:mod:`.sinks`, by its merge rule). A neuron the server
has no record for (about 0.4% have no morphometry, reference F) is counted, not failed; a batch that
fails is one failure per neuron, listed in the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..atomic import blocking
from ..client import NeuroMorpho
from ..errors import NeuroMorphoError
from ..models import Neuron
from ..paths import MORPHOMETRY_FILE, PVEC_FILE, archive_folder
from ..report import Failure
from .recorder import Recorder
from .sinks import Sinks
from .work import reason

#: Neurons per job: what one batched request carries.
META_BATCH = 50
_FILES = {"morphometry": MORPHOMETRY_FILE, "pvec": PVEC_FILE}


@dataclass(frozen=True, slots=True)
class MetaJob:
    """One batch of neurons whose ``kind`` (``morphometry`` or ``pvec``) records are to be fetched."""

    kind: str
    neurons: tuple[Neuron, ...]


def _line(record: dict[str, Any]) -> bytes | None:
    try:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
    except (UnicodeEncodeError, TypeError, ValueError):
        return None


async def fetch_metadata(
    client: NeuroMorpho, job: MetaJob, sinks: Sinks, recorder: Recorder, past_deadline: Callable[[], bool]
) -> None:
    """Fetch one job's records into the sinks and tell the recorder what could not be had."""
    if past_deadline():
        return
    by_id = {neuron.id: neuron for neuron in job.neurons}
    fetch = client.morphometry_many if job.kind == "morphometry" else client.pvec_many
    got: dict[int, bytes] = {}
    error: NeuroMorphoError | None = None
    try:
        async for record in fetch(by_id):
            neuron_id = record.get("neuron_id")
            line = _line(record)
            if isinstance(neuron_id, int) and neuron_id in by_id and line is not None:
                got[neuron_id] = line
    except NeuroMorphoError as exc:
        if exc.stops_run:
            raise
        error = exc
    lines: dict[str, tuple[list[bytes], list[int]]] = {}
    for neuron_id, line in got.items():
        folder_lines, folder_ids = lines.setdefault(archive_folder(by_id[neuron_id].archive), ([], []))
        folder_lines.append(line)
        folder_ids.append(neuron_id)
    if lines:

        def write() -> None:
            for folder, (some, ids) in lines.items():
                sinks.add(folder, _FILES[job.kind], some, ids)

        await blocking(write)
    absent = [neuron for neuron_id, neuron in by_id.items() if neuron_id not in got]
    if error is None:
        recorder.metadata(missing=len(absent))
        return
    base = client.base_url
    for neuron in absent:
        path = f"{archive_folder(neuron.archive)}/{_FILES[job.kind]}"
        url = f"{base}/api/{job.kind}/id/{neuron.id}"
        recorder.metadata(Failure(neuron.name, url, reason(error), path, neuron.archive, job.kind))
