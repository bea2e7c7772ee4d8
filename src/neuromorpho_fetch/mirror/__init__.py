"""The mirror engine: a pipeline of values (docs/architecture.md). Internal: use
:func:`neuromorpho_fetch.mirror` and :class:`neuromorpho_fetch.MirrorOptions`.

:mod:`.listing` yields batches of neurons (or rejected records) and how each selection ended;
:mod:`.plan` turns them into :class:`~.plan.FilePlan` values (:func:`~.plan.plan_file`, the only
per-file decision); :mod:`.work` turns plans into :class:`~.work.Outcome` values; :mod:`.recorder`
consumes outcomes and is the only writer of the numbers; :mod:`.run` puts the steps in order and
builds the report at the end (:mod:`.steps` holds what comes before and after the passes).
:mod:`.sinks` writes the archive folders' JSON-lines files, :mod:`.metadata` the batched morphometry
and pvec requests, :mod:`.dataset_hook` the dataset step; :mod:`.options` is what a run is asked.
"""
