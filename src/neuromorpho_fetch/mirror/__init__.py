"""The mirror engine: listing → plan → bounded queue → N workers → state, tally and report.

A package along its seams (see ``docs/architecture.md``): :mod:`.options` (what to do, holding a
:class:`~neuromorpho_fetch.config.ClientConfig`), :mod:`.listing` (selections, expected counts, the
walk), :mod:`.plan` (:func:`plan_file`, the only per-file decision, and the one stat/sweep hop),
:mod:`.transfer` (workers: fetch or settle, record), :mod:`.tally` (the run's one set of numbers, which
is the report) and :mod:`.run` (the lifecycle on one ``AsyncExitStack``).
"""

from __future__ import annotations

from ..errors import NeuroMorphoError
from ..paths import LAST_REPORT
from ..progress import ProgressEvent
from ..report import MirrorReport
from .options import MirrorOptions, parse_duration
from .plan import Action, plan_file
from .run import mirror
from .transfer import UNREACHABLE_STREAK

__all__ = [
    "LAST_REPORT",
    "UNREACHABLE_STREAK",
    "Action",
    "MirrorOptions",
    "MirrorReport",
    "ProgressEvent",
    "failure_kind",
    "mirror",
    "parse_duration",
    "plan_file",
]


def failure_kind(error: BaseException) -> str:
    """``"file"`` when only this file is lost (listed, retried in the second pass), else ``"fatal"``.

    A read of ``error.stops_run`` (:mod:`neuromorpho_fetch.errors`); an unknown error stops the run.
    """
    return "file" if isinstance(error, NeuroMorphoError) and not error.stops_run else "fatal"
