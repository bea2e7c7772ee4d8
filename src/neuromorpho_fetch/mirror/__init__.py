"""The mirror engine: a pipeline of values (docs/architecture.md).

:mod:`.listing` yields batches of neurons (or rejected records) and how each selection ended;
:mod:`.plan` turns them into :class:`~.plan.FilePlan` values (:func:`~.plan.plan_file`, the only
per-file decision); :mod:`.work` turns plans into :class:`~.work.Outcome` values; :mod:`.recorder`
consumes outcomes and is the only writer of the numbers; :mod:`.run` puts the steps in order and
builds the report at the end. :mod:`.sinks` writes the archive folders' JSON-lines files,
:mod:`.metadata` the batched morphometry and pvec requests, :mod:`.dataset_hook` the dataset step.
"""

from __future__ import annotations

from ..progress import ProgressEvent
from ..report import MirrorReport
from .options import MirrorOptions, parse_duration
from .plan import Action, FilePlan, plan_file
from .run import mirror, run_mirror

__all__ = [
    "Action",
    "FilePlan",
    "MirrorOptions",
    "MirrorReport",
    "ProgressEvent",
    "mirror",
    "parse_duration",
    "plan_file",
    "run_mirror",
]
