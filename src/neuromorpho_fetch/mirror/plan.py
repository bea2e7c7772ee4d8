"""What to do about each file, as a value: :func:`plan_file` decides, :class:`FilePlan` carries it.

Every file of a run passes :func:`plan_file` once with what is known without reading it (the state row
and the size on disk). Two answers need the bytes first (``ADOPT`` records what is there; ``VERIFY``
compares it with the record); a ``VERIFY`` is asked again with the hash, and that answer is final. The
answer and everything a worker needs to carry it out is one immutable :class:`FilePlan`: "what will
happen to this file" can be logged, compared and tested, and a later decision is a new plan
(:meth:`FilePlan.decided`), never a change to the old one.

:class:`Planner` gathers what :func:`plan_file` needs for a batch in one state-store lookup and one
thread hop (sizes on disk, stale temp files swept once per folder), and refuses collisions: two neurons
whose files would land on the same path, or on paths a case-insensitive or normalising file system
(macOS, Windows shares) would treat as one, are never both written (issue 15 item 12): the first is
planned, the second becomes a ``REFUSE`` plan, reported as failed. So does a file whose folder is a
symbolic link planted in the tree (issue 15 item 11): nothing is written through a link out of ``--out``.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import blocking, sweep_temp
from ..errors import NoSuchFileError
from ..layout import file_task
from ..models import Neuron, Version
from ..paths import parse_data_path, safe_target, through_link
from ..state import AsyncStateStore, FileRow


class Action(enum.Enum):
    """What to do about one file, decided from the state row and the file on disk alone."""

    SKIP = "skip"  # recorded complete, present, same size (and same hash under --verify): no request
    FETCH = "fetch"  # missing, or damaged (size or hash differs from the record)
    ADOPT = "adopt"  # present under its final name but not recorded: a run died after the rename
    VERIFY = "verify"  # --verify: re-hash against the record, then ask again with the hash
    REVALIDATE = "revalidate"  # --refresh: conditional request with the recorded ETag/Last-Modified
    CHECK = "check"  # --verify on a file never checked against the server: fetch it and compare
    REFUSE = "refuse"  # not written: another neuron's file claimed the path, or a link is in the way


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
    bytes (``CHECK``: fetched and compared); ``--refresh``, the server's validators.
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


@dataclass(frozen=True, slots=True)
class FilePlan:
    """One file of the run and the decision about it: everything a worker needs, immutable."""

    url: str
    path: str
    archive: str
    neuron_name: str
    version: str
    neuron_id: int | None = None
    action: Action = Action.FETCH
    row: FileRow | None = None
    local_size: int | None = None  # size on disk when planned; None = no file there
    local_sha256: str | None = None  # the local file's hash, when CHECK compares it with the server's
    #: Why, for a plan that is not carried out (``REFUSE``).
    note: str = ""
    #: ``--verify`` found the file on disk differs from its record: it is fetched again.
    damaged: bool = False
    #: A retry of a file that failed in the first pass.
    second_pass: bool = False

    @property
    def check_swc(self) -> bool:
        """Only the standardized SWC has a format the client can check before the rename."""
        return self.version == Version.CNG

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    def decided(self, action: Action, **changes: object) -> FilePlan:
        """The same file with a later decision (``--verify``'s answer with the hash, the second pass)."""
        return replace(self, action=action, **changes)  # type: ignore[arg-type]


def file_plans(base_url: str, neuron: Neuron, versions: Iterable[Version]) -> tuple[list[FilePlan], int]:
    """The neuron's files in ``versions`` (not yet decided), and how many its record says cannot exist."""
    plans: list[FilePlan] = []
    unavailable = 0
    for version in versions:
        try:
            task = file_task(base_url, neuron, version)
        except NoSuchFileError:
            unavailable += 1
            continue
        plans.append(
            FilePlan(
                url=task.url,
                path=task.path.as_posix(),
                archive=neuron.archive,
                neuron_name=neuron.name,
                version=version.value,
                neuron_id=neuron.id,
            )
        )
    return plans, unavailable


def _claim_key(path: str) -> str:
    """The path as a case-insensitive, normalising file system sees it (NFC, case folded)."""
    return unicodedata.normalize("NFC", path).casefold()


class Planner:
    """Plans batches of files against the state store and the disk (module docstring)."""

    def __init__(self, out: Path, state: AsyncStateStore | None, *, verify: bool, refresh: bool, sweep: bool):
        self.out = out
        self.state = state
        self.verify = verify
        self.refresh = refresh
        self.sweep = sweep
        self._swept: set[str] = set()
        #: Claimed paths of the archive folder being listed: key -> (neuron id, archive, name). Kept
        #: for one folder at a time (twin archives are listed next to each other), so it stays small.
        self._claims: dict[str, tuple[int | None, str, str]] = {}
        self._claims_folder: str | None = None
        #: Folders that go through a symbolic link: their files are refused, never written.
        self._linked: dict[str, Path] = {}

    def _collision(self, plan: FilePlan) -> FilePlan | None:
        if plan.folder != self._claims_folder:
            self._claims, self._claims_folder = {}, plan.folder
        key = _claim_key(plan.path)
        mine = (plan.neuron_id, plan.archive, plan.neuron_name)
        owner = self._claims.setdefault(key, mine)
        if owner == mine:
            return None
        return plan.decided(
            Action.REFUSE,
            note=(
                f"collision: {plan.path} is also the file of neuron {owner[2]!r} (id {owner[0]}, archive "
                f"{owner[1]!r}) on a case-insensitive or normalising file system; not written, so neither "
                "overwrites the other"
            ),
        )

    async def plan(self, plans: list[FilePlan], also: Callable[[], None] | None = None) -> list[FilePlan]:
        """Decide each file of a batch (one state lookup, one thread hop, in which ``also`` runs too:
        the batch's ``metadata.jsonl`` lines, so a batch costs one hop, not two)."""
        decided: list[FilePlan] = []
        pending: list[FilePlan] = []
        for plan in plans:
            refused = self._collision(plan)
            if refused is not None:
                decided.append(refused)
            else:
                pending.append(plan)
        paths = [p.path for p in pending]
        rows: dict[str, FileRow] = await self.state.lookup(paths) if self.state is not None else {}
        sizes = await blocking(self._hop, paths, also)
        for plan in pending:
            link = self._linked.get(plan.path.rpartition("/")[0])
            if link is not None:
                decided.append(
                    plan.decided(
                        Action.REFUSE,
                        note=f"{link} is a symbolic link; refusing to write through it out of the mirror",
                    )
                )
                continue
            row, size = rows.get(plan.path), sizes.get(plan.path)
            action = plan_file(row, size, verify=self.verify, refresh=self.refresh)
            decided.append(replace(plan, action=action, row=row, local_size=size))
        return decided

    def _hop(self, paths: list[str], also: Callable[[], None] | None) -> dict[str, int]:
        if also is not None:
            also()
        return self.sizes(paths)

    def sizes(self, paths: list[str]) -> dict[str, int]:
        """Size on disk of each path that exists (blocking): stale temp files swept once per folder.

        A data file that is a symbolic link is treated as absent: it is fetched again and the link is
        replaced by the file (never written through, issue 15 item 11).
        """
        sizes: dict[str, int] = {}
        for path in paths:
            folder = path.rpartition("/")[0]
            if folder not in self._swept:
                self._swept.add(folder)
                link = through_link(self.out, folder)
                if link is not None:
                    self._linked[folder] = link
                elif self.sweep:
                    sweep_temp(self.out / folder)  # a killed run's temp files (we hold the lock)
            if folder in self._linked:
                continue
            if parse_data_path(path) is None:
                continue
            try:
                st = safe_target(self.out, path).lstat()
            except (OSError, ValueError):
                continue
            if st.st_mode & 0o170000 == 0o100000:  # a regular file, not a link or a folder
                sizes[path] = st.st_size
        return sizes
