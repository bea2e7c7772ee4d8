"""What to do about each file: :func:`plan_file`, the only place that decision is made, and the one
thread hop per batch that gathers what it needs (state rows, sizes on disk, stale temp files swept).

Every file of a run passes :func:`plan_file` once with what is known without reading it (the state row
and the size on disk). Two answers need the bytes first (``ADOPT`` records what is there; ``VERIFY``
compares it with the record); a ``VERIFY`` is asked again with the hash, and that answer is final.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from ..atomic import sweep_temp
from ..dataset.manifests import hash_file
from ..errors import NoSuchFileError
from ..layout import file_task
from ..models import Neuron, Version
from ..paths import safe_target
from ..state import FileRow

__all__ = ["Action", "FileJob", "PlanDisk", "file_jobs", "hash_file", "plan_file"]


class Action(enum.Enum):
    """What to do about one file, decided from the state row and the file on disk alone."""

    SKIP = "skip"  # recorded complete, present, same size (and same hash under --verify): no request
    FETCH = "fetch"  # missing, or damaged (size or hash differs from the record)
    ADOPT = "adopt"  # present under its final name but not recorded: a run died after the rename
    VERIFY = "verify"  # --verify: re-hash against the record, then ask again with the hash
    REVALIDATE = "revalidate"  # --refresh: conditional request with the recorded ETag/Last-Modified
    CHECK = "check"  # --verify on a file never checked against the server: fetch it and compare


def plan_file(
    row: FileRow | None,
    local_size: int | None,
    *,
    verify: bool,
    refresh: bool,
    sha256: str | None = None,
) -> Action:
    """Decide without any request. Only a file both on disk and recorded complete is skipped.

    A file present without a complete row is adopted, not fetched: the downloader only ever puts a
    verified body under a final name, so such a file is complete; what was lost is the bookkeeping
    (the state store commits in batches). This is what makes "no completed file fetched twice" hold
    across ``kill -9``. ``sha256`` is the file's hash when it has been read (``--verify``'s second
    question): a hash other than the recorded one means the file is damaged.

    What each mode trusts: a plain run, the size; ``--verify``, the hash in the state store, and for a
    row never checked against the server (adopted from the tree: ``verified`` false) the server's
    bytes (``CHECK``: fetched and compared; an adopted file has no validators of its own, and a
    conditional request would only say whether the *server's* file changed, not whether ours is
    right); ``--refresh``, the server's validators.
    """
    if local_size is None:
        return Action.FETCH
    if row is None or row.status != "complete":
        return Action.ADOPT
    if row.size is not None and row.size != local_size:
        return Action.FETCH
    if sha256 is None and verify:
        return Action.VERIFY
    if sha256 is not None and sha256 != row.sha256:
        return Action.FETCH
    if sha256 is not None and not row.verified:
        return Action.CHECK
    if refresh:
        return Action.REVALIDATE
    return Action.SKIP


@dataclass(slots=True)
class FileJob:
    """One file of the run, with what :func:`plan_file` was told about it."""

    url: str
    path: str
    archive: str
    neuron_name: str
    version: str
    action: Action = Action.FETCH
    row: FileRow | None = None
    local_size: int | None = None  # size on disk when planned; None = no file there
    local_sha256: str | None = None  # the local file's hash, when CHECK compares it with the server's

    @property
    def check_swc(self) -> bool:
        """Only the standardized SWC has a format the client can check before the rename."""
        return self.version == Version.CNG


def file_jobs(base_url: str, neuron: Neuron, versions: tuple[Version, ...]) -> tuple[list[FileJob], int]:
    """The neuron's files in ``versions``, and how many of them its record says cannot exist."""
    jobs: list[FileJob] = []
    unavailable = 0
    for version in versions:
        try:
            task = file_task(base_url, neuron, version)
        except NoSuchFileError:
            unavailable += 1
            continue
        jobs.append(
            FileJob(
                url=task.url,
                path=task.path.as_posix(),
                archive=neuron.archive,
                neuron_name=neuron.name,
                version=version.value,
            )
        )
    return jobs, unavailable


class PlanDisk:
    """The disk side of planning, in a worker thread: stale temp files swept once per folder, sizes."""

    def __init__(self, out: Path, *, sweep: bool) -> None:
        self.out = out
        self.sweep = sweep
        self._swept: set[str] = set()

    def sizes(self, paths: list[str]) -> dict[str, int]:
        """Size on disk of each path that exists (blocking)."""
        sizes: dict[str, int] = {}
        for path in paths:
            folder = path.rpartition("/")[0]
            if self.sweep and folder not in self._swept:
                self._swept.add(folder)
                sweep_temp_files(self.out / folder)
            try:
                st = safe_target(self.out, path).stat()
            except (OSError, ValueError):
                continue
            sizes[path] = st.st_size
        return sizes


def sweep_temp_files(folder: Path) -> None:
    """Remove temp files a killed run left behind (:func:`~neuromorpho_fetch.atomic.is_temp_name`;
    the caller holds the directory lock, so nobody else is writing them)."""
    sweep_temp(folder)
