"""What a mirror run did, as a value: counts, bytes, time, and the exact list of what failed.

The list of failures is a product, not a side effect of logging (rclone's lesson): it is written as JSON
with ``--report PATH`` and read back by ``--retry-failed PATH``, so its shape is part of the CLI contract
(documented in ``docs/cli.md``). Every failure carries the relative ``path`` besides the fields the issue
asks for, so a retry needs neither the listing nor the server's metadata.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs shipped; types-tqdm not a dependency

from .atomic import atomic_write
from .errors import INTERNAL_ERROR_EXIT, UsageError

__all__ = [
    "REPORT_FORMAT",
    "Failure",
    "MirrorReport",
    "format_bytes",
    "format_duration",
    "read_failures",
    "write_crash_log",
    "write_json_atomic",
]

#: Bumped when a field changes meaning; readers accept any report with the fields they need.
REPORT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Failure:
    """One file (or morphometry record) that could not be had, and why, in one line."""

    neuron_name: str
    url: str
    reason: str
    path: str = ""
    archive: str = ""
    version: str = ""


@dataclass(slots=True)
class MirrorReport:
    """The numbers of one run: the live tally while it runs (progress callbacks read it as
    ``event.counters``), the report when it ends. One object, so nothing is copied or recounted.

    ``exit_code`` is what the CLI returns for it (0, 1, 3 or 130).

    Counts add up: every planned file (``files``) is in exactly one of ``downloaded``, ``skipped``,
    ``failed`` (files only; a morphometry failure is listed but is not a file) and ``not_started``,
    however the run ended (issue 10: a full disk left 458 of 499 files in no count).
    """

    downloaded: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    neurons: int = 0
    files: int = 0
    revalidated: int = 0
    adopted: int = 0
    damaged: list[str] = field(default_factory=list)
    retries: int = 0
    not_started: int = 0
    unavailable: int = 0
    dry_run: bool = False
    interrupted: bool = False
    stopped_by_deadline: bool = False
    error: str | None = None
    #: Listings that ended early (the server kept failing, or its paging made no sense): what they
    #: listed was fetched, the rest is missing, so the run is not a success (exit code 1).
    listing_errors: list[str] = field(default_factory=list)
    #: TLS level per https host: ``modern`` or ``legacy-dh`` (``--tls auto`` fell back for it).
    tls: dict[str, str] = field(default_factory=dict)
    #: An unexpected error (a bug) ended the run; ``crash_log`` holds its traceback.
    internal_error: bool = False
    crash_log: str | None = None
    out: str = ""
    report_path: str | None = None
    failures: list[Failure] = field(default_factory=list)
    #: Whether the listing has ended (until then ``files`` is still growing).
    listing_done: bool = False
    #: What the listing is expected to yield (from archive counts or ``count``); None when unknown.
    neurons_total: int | None = None
    files_expected: int | None = None
    #: The dataset step's outcome (issue 12: catalogue, manifests, changes, coverage; ``summary`` holds
    #: its lines); None when it did not run (dry run, a run stopped by an error). mirror/dataset_hook.py.
    dataset: dict[str, Any] | None = None

    @property
    def done(self) -> int:
        """Files settled so far, whichever way."""
        return self.downloaded + self.skipped + self.failed

    @property
    def exit_code(self) -> int:
        """0 when everything asked for is present, 3 after an internal error, 130 when interrupted,
        else 1."""
        if self.internal_error:
            return INTERNAL_ERROR_EXIT
        if self.interrupted:
            return 130
        if self.failed or self.error or self.stopped_by_deadline or self.listing_errors:
            return 1
        return 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = REPORT_FORMAT
        data["exit_code"] = self.exit_code
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data

    def summary(self) -> str:
        """A few lines for a person: what happened, and where the full list is when anything failed."""
        rate = self.bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0
        if self.dry_run:
            head = (
                f"dry run: would download {self.downloaded}, would skip {self.skipped}"
                f" of {self.files} files ({self.neurons} neurons); nothing written"
            )
        else:
            head = (
                f"downloaded {self.downloaded}, skipped {self.skipped}, failed {self.failed}"
                f" of {self.files} files ({self.neurons} neurons); "
                f"{format_bytes(self.bytes)} in {format_duration(self.elapsed_s)} ({format_bytes(rate)}/s)"
            )
        lines = [head]
        extras = []
        if self.revalidated:
            extras.append(f"{self.revalidated} unchanged upstream (304)")
        if self.adopted:
            extras.append(f"{self.adopted} complete files from an interrupted run recorded")
        if self.damaged:
            extras.append(f"{len(self.damaged)} damaged files re-fetched")
        if self.retries:
            extras.append(f"{self.retries} retried requests")
        if extras:
            lines.append("  " + "; ".join(extras))
        if self.interrupted:
            lines.append("  interrupted: re-run the same command to resume")
        if self.stopped_by_deadline:
            lines.append(
                f"  stopped by --max-duration: {self.not_started} files not started; "
                "re-run the same command to continue"
            )
        if self.error:
            lines.append(f"  stopped by an error: {self.error}")
        for problem in self.listing_errors[:5]:
            lines.append(f"  listing incomplete, what it listed was fetched: {problem}")
        if self.not_started and not self.stopped_by_deadline:
            lines.append(f"  {self.not_started} files not finished; re-run the same command to continue")
        if self.failures:
            for failure in self.failures[:5]:
                lines.append(f"  failed: {failure.neuron_name} ({failure.url}): {failure.reason}")
            if len(self.failures) > 5:
                lines.append(f"  ... and {len(self.failures) - 5} more")
            if self.report_path:
                lines.append(f"  full list of failures: {self.report_path}")
        if self.dataset:
            lines.extend(f"  {line}" for line in self.dataset.get("summary", []))
        return "\n".join(lines)


def format_bytes(n: float) -> str:
    """Bytes as tqdm's bars show them (``12.1kB``: tqdm's own formatter, base 1024)."""
    return str(tqdm.format_sizeof(n, suffix="B", divisor=1024))


def format_duration(seconds: float) -> str:
    """Seconds as tqdm's bars show them (``00:09``, ``1:02:05``)."""
    return str(tqdm.format_interval(max(0.0, seconds)))


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON through :func:`~neuromorpho_fetch.atomic.atomic_write`: a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_crash_log(folder: Path | None, error: BaseException) -> Path:
    """The full traceback of an unexpected error, in ``folder/crash-<UTC time>.log`` (the state
    folder), or in the temp dir when that cannot be written (the state folder may be the problem).

    Why a file: the user sees one line naming the error and this path, not 100 lines (issue 10); the
    traceback is still there to attach to a bug report.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    text = "".join(traceback.format_exception(error))
    candidates = [folder] if folder is not None else []
    candidates.append(Path(tempfile.gettempdir()))
    for where in candidates:
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / f"crash-{stamp}.log"
            n = 1
            while path.exists():
                n += 1
                path = where / f"crash-{stamp}-{n}.log"
            atomic_write(path, text.encode("utf-8", "backslashreplace"), fsync=False)
            return path
        except OSError:
            continue
    raise OSError("no folder to write a crash log in")


def read_failures(path: Path) -> list[Failure]:
    """The failures of an earlier ``--report``; a missing or malformed report is a usage error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--retry-failed: report {str(path)!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--retry-failed: cannot read report {str(path)!r}: {exc}") from None
    items = data.get("failures") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UsageError(f"--retry-failed: {str(path)!r} is not a neuromorpho-fetch report (no 'failures')")
    failures = []
    for item in items:
        if not isinstance(item, dict) or not item.get("url") or not item.get("path"):
            raise UsageError(
                f"--retry-failed: a failure in {str(path)!r} lacks 'url' or 'path': {item!r:.120}"
            )
        failures.append(
            Failure(
                neuron_name=str(item.get("neuron_name", "")),
                url=str(item["url"]),
                reason=str(item.get("reason", "")),
                path=str(item["path"]),
                archive=str(item.get("archive", "")),
                version=str(item.get("version", "")),
            )
        )
    return failures
