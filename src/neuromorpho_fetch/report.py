"""What a mirror run did, as a value: counts, bytes, time, and the exact list of what failed.

The list of failures is a product, not a side effect of logging (rclone's lesson): it is written as JSON
with ``--report PATH`` and read back by ``--retry-failed PATH``, so its shape is part of the CLI contract
(documented in ``docs/cli.md``). Every failure carries the relative ``path`` besides the fields the issue
asks for, so a retry needs neither the listing nor the server's metadata.

A :class:`MirrorReport` is built once, at the end, by the run's recorder
(:mod:`neuromorpho_fetch.mirror.recorder`, the one writer of the numbers); nothing changes it after.
Its exit code is read from the same error policy the CLI uses (:func:`exit_code_of`), so the report and
the process never disagree (issue 15 item 3).
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

from .atomic import atomic_write
from .errors import INTERNAL_ERROR_EXIT, UNREACHABLE_EXIT, UsageError
from .jsonio import loads

#: Bumped when a field changes meaning; readers accept any report with the fields they need.
REPORT_FORMAT = 2
#: Rejected records kept in the report (the count is exact; the summary shows the first few).
REJECTED_KEPT = 100


def shorten(text: str, most: int = 160) -> str:
    """``text`` cut to ``most`` characters with an ellipsis (a 1 MB neuron name in a summary line)."""
    return text if len(text) <= most else text[: most - 1] + "…"


@dataclass(frozen=True, slots=True)
class Failure:
    """One file (or morphometry record) that could not be had, and why, in one line."""

    neuron_name: str
    url: str
    reason: str
    path: str = ""
    archive: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the server sent that is not a usable neuron (a
    :class:`~neuromorpho_fetch.models.RejectedRecord`), and the selection it came in."""

    selection: str
    reason: str
    neuron_id: int | None = None
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class ListingSummary:
    """How one selection's listing ended: what the server announced, what was listed, whether that is
    the whole truth (issue 15 item 1), and why not."""

    selection: str
    archive: str | None
    announced: int | None
    listed: int
    rejected: int = 0
    repeats: int = 0
    recount: int | None = None
    complete: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MirrorReport:
    """The numbers of one run, built once at its end (module docstring).

    Counts add up: every planned file (``files``) is in exactly one of ``downloaded``, ``skipped``,
    ``failed`` (files only; a morphometry failure is listed but is not a file) and ``not_started``,
    however the run ended.
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
    damaged: tuple[str, ...] = ()
    retries: int = 0
    not_started: int = 0
    unavailable: int = 0
    dry_run: bool = False
    interrupted: bool = False
    stopped_by_deadline: bool = False
    error: str | None = None
    #: The exit code the error that stopped the run carries (``errors.*.exit_code``), if one did.
    error_exit: int | None = None
    #: No request to the server ever got an answer (closed port, DNS, proxy refused): exit 4.
    unreachable: bool = False
    #: Listings that are not the whole truth: they ended early, or listed fewer records than the server
    #: announced. What they listed was fetched; nothing was marked gone (exit code 1).
    listing_errors: tuple[str, ...] = ()
    listings: tuple[ListingSummary, ...] = ()
    #: Records that are not usable neurons: counted exactly, the first :data:`REJECTED_KEPT` kept.
    rejected: int = 0
    rejected_records: tuple[Rejected, ...] = ()
    #: TLS level per https host: ``modern`` or ``legacy-dh`` (``--tls auto`` fell back for it).
    tls: Mapping[str, str] = field(default_factory=dict)
    #: An unexpected error (a bug) ended the run; ``crash_log`` holds its traceback.
    internal_error: bool = False
    crash_log: str | None = None
    #: The mirror's root, absolute: ``--retry-failed`` works on this mirror (issue 17 item 3).
    out: str = ""
    report_path: str | None = None
    failures: tuple[Failure, ...] = ()
    #: Morphometry / pvec records the server has none of (404 for that neuron): a fact, not a failure.
    metadata_missing: int = 0
    listing_done: bool = False
    neurons_total: int | None = None
    files_expected: int | None = None
    #: A dry run: files it would download per archive folder, and the bytes of those whose size is
    #: known (from the state store: a re-fetch); NeuroMorpho's records carry no file sizes.
    would_download: Mapping[str, int] = field(default_factory=dict)
    estimated_bytes: int | None = None
    known_sizes: int = 0
    #: The dataset step's outcome (catalogue, manifests, changes, coverage; ``summary`` holds its lines);
    #: None when it did not run (dry run, a run stopped by an error).
    dataset: Mapping[str, Any] | None = None

    @property
    def done(self) -> int:
        """Files settled, whichever way."""
        return self.downloaded + self.skipped + self.failed

    @property
    def exit_code(self) -> int:
        """The process's exit code for this run (:func:`exit_code_of`)."""
        return exit_code_of(self)

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
        if self.dry_run and self.downloaded:
            unknown = self.downloaded - self.known_sizes
            parts = []
            if self.known_sizes:
                estimate = format_bytes(self.estimated_bytes or 0)
                parts.append(f"{estimate} in {self.known_sizes} files of known size")
            if unknown:
                parts.append(f"{unknown} of unknown size (the records give no file sizes)")
            lines.append(f"  size: {', '.join(parts)}")
            shown = list(self.would_download.items())
            per = ", ".join(f"{folder} {count}" for folder, count in shown[:10])
            more = f", and {len(shown) - 10} more archives" if len(shown) > 10 else ""
            lines.append(f"  would download per archive: {per}{more} (-v lists every path)")
        extras = []
        if self.revalidated:
            extras.append(f"{self.revalidated} unchanged upstream (304)")
        if self.adopted:
            extras.append(f"{self.adopted} complete files from an interrupted run recorded")
        if self.damaged:
            extras.append(f"{len(self.damaged)} damaged files re-fetched")
        if self.retries:
            extras.append(f"{self.retries} retried requests")
        if self.metadata_missing:
            extras.append(f"{self.metadata_missing} neurons have no morphometry/pvec upstream")
        if extras:
            lines.append("  " + "; ".join(extras))
        if self.interrupted:
            lines.append("  interrupted: re-run the same command to resume")
        if self.stopped_by_deadline:
            lines.append(
                f"  stopped by --max-duration: {self.not_started} files not started; "
                "re-run the same command to continue"
            )
        if self.unreachable:
            lines.append(f"  the server could not be reached: {shorten(self.error or '?', 300)}")
        elif self.error:
            lines.append(f"  stopped by an error: {shorten(self.error, 300)}")
        for problem in self.listing_errors[:5]:
            lines.append(f"  listing incomplete (nothing marked gone): {shorten(problem, 300)}")
        if len(self.listing_errors) > 5:
            lines.append(f"  ... and {len(self.listing_errors) - 5} more incomplete listings")
        if self.rejected:
            lines.append(f"  {self.rejected} records rejected (not usable neurons), not mirrored:")
            for bad in self.rejected_records[:3]:
                which = f"neuron_id {bad.neuron_id}" if bad.neuron_id is not None else "a record"
                lines.append(f"    {which} in {shorten(bad.selection, 60)}: {shorten(bad.reason, 200)}")
        if self.not_started and not self.stopped_by_deadline:
            lines.append(f"  {self.not_started} files not finished; re-run the same command to continue")
        if self.failures:
            for failure in self.failures[:5]:
                lines.append(
                    f"  failed: {shorten(failure.neuron_name, 80)} ({shorten(failure.url, 160)}): "
                    f"{shorten(failure.reason, 300)}"
                )
            if len(self.failures) > 5:
                lines.append(f"  ... and {len(self.failures) - 5} more")
        if (self.failures or self.rejected or self.listing_errors) and self.report_path:
            lines.append(f"  full list of failures: {self.report_path}")
        if self.dataset:
            lines.extend(f"  {line}" for line in self.dataset.get("summary", []))
        return "\n".join(lines)


def exit_code_of(report: MirrorReport) -> int:
    """0 when everything asked for is present; 3 after an internal error; 130 when interrupted; the
    stopping error's own code (``errors.*.exit_code``: 2 for TLS, a full disk, a usage problem); 4
    when the server could never be reached; else 1 (files failed, records rejected, a listing that is
    not the whole truth, a deadline, a dataset step that failed: the files are there, but the catalogue,
    manifests or citations are not up to date, and a script must be able to tell)."""
    if report.internal_error:
        return INTERNAL_ERROR_EXIT
    if report.interrupted:
        return 130
    if report.error_exit is not None:
        return report.error_exit
    if report.unreachable:
        return UNREACHABLE_EXIT
    if (
        report.failed
        or report.error
        or report.stopped_by_deadline
        or report.listing_errors
        or report.rejected
        or (report.dataset or {}).get("error")
    ):
        return 1
    return 0


def format_bytes(n: float) -> str:
    """Bytes as tqdm's bars show them (``12.1kB``: tqdm's own formatter, base 1024)."""
    from tqdm import tqdm  # type: ignore[import-untyped]  # here: a -q run never formats, never imports it

    return str(tqdm.format_sizeof(n, suffix="B", divisor=1024))


def format_duration(seconds: float) -> str:
    """Seconds as tqdm's bars show them (``00:09``, ``1:02:05``)."""
    from tqdm import tqdm

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


@dataclass(frozen=True, slots=True)
class ReportFile:
    """What ``--retry-failed`` needs from an earlier report: its failures and the mirror it belongs to."""

    failures: tuple[Failure, ...]
    out: Path | None


def read_report(path: Path) -> ReportFile:
    """The failures (and mirror) of an earlier ``--report``; a missing or malformed report is a usage
    error."""
    try:
        data = loads(path.read_text(encoding="utf-8"))
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
    out = data.get("out")
    return ReportFile(tuple(failures), Path(out) if isinstance(out, str) and out else None)
