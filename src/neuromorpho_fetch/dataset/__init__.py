"""The mirror as a dataset: catalogue, offline select, checksum manifests, citations, changes, coverage.

Entry points:

* :func:`finalize` — the run's last step (catalogue, ``SHA256SUMS``, ``CITATION.md``/``references.bib``,
  ``CHANGES.jsonl``, coverage); blocking, cheap, crash-safe.
* :func:`facts_from_state` — the state store's complete files as :class:`FileFact` values for it.
* :func:`check_manifests` — re-hash the tree against the manifests (``--verify`` without a state store).
* :func:`delete_gone_files` — ``--delete-gone``: the files of neurons gone upstream, deleted on request.
* :class:`LocalMirror` — ``select(**criteria)`` / ``to_pandas()`` offline.
* :func:`read_swc` — an SWC file's points and comments, whatever its header's encoding.
* :func:`neuromorpho_fetch.dataset.cli.main` — the ``neuromorpho-fetch-find`` command.
"""

from __future__ import annotations

from ..paths import BIB_FILE, CATALOGUE_FILE, CHANGES_FILE, CITATION_FILE, MANIFEST
from ..swcread import Swc, read_swc
from .changes import ChangeSet
from .coverage import ArchiveCoverage
from .finalize import DatasetSummary, FileFact, facts_from_state, finalize
from .gone import delete_gone_files
from .local import LocalMirror, LocalNeuron
from .manifests import ManifestCheck, check_manifests

__all__ = [
    "BIB_FILE",
    "CATALOGUE_FILE",
    "CHANGES_FILE",
    "CITATION_FILE",
    "MANIFEST",
    "ArchiveCoverage",
    "ChangeSet",
    "DatasetSummary",
    "FileFact",
    "LocalMirror",
    "LocalNeuron",
    "ManifestCheck",
    "Swc",
    "check_manifests",
    "delete_gone_files",
    "facts_from_state",
    "finalize",
    "read_swc",
]
