"""What a person watching a run sees: tqdm bars on a terminal, periodic log lines otherwise.

The engine knows nothing about terminals: it calls a ``progress(event)`` callback with a
:class:`ProgressEvent` carrying a frozen :class:`Counters` snapshot (never the live numbers; at most every
0.1 s but for phase changes and the end). :class:`ProgressDisplay`
is the CLI's callback. Bars go to stderr and only when stderr is a terminal (a cron job's mail should not
be 300 kB of carriage returns, tqdm issue #506); without them, a one-line summary is logged every
``log_interval`` seconds, like rclone's ``--stats``. When bars are shown, the CLI wraps the run in
``tqdm.contrib.logging.logging_redirect_tqdm`` so log records are printed above the bars, never
through them.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Literal

from .report import MirrorReport, format_bytes

log = logging.getLogger("neuromorpho_fetch.progress")

EventKind = Literal["listed", "planned", "downloaded", "skipped", "failed", "retry", "phase", "finished"]


@dataclass(frozen=True, slots=True)
class Counters:
    """The run's numbers at one moment (a snapshot: the recorder's own numbers are its alone)."""

    neurons: int = 0
    neurons_total: int | None = None
    files: int = 0
    files_expected: int | None = None
    listing_done: bool = False
    downloaded: int = 0
    skipped: int = 0
    failed: int = 0
    retries: int = 0
    bytes: int = 0

    @property
    def done(self) -> int:
        """Files settled so far, whichever way."""
        return self.downloaded + self.skipped + self.failed


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """What happened (``kind``, with the ``path`` or ``message`` it concerns) and the numbers then; the
    last event of a run has ``kind="finished"`` and carries the ``report``."""

    kind: EventKind
    counters: Counters
    path: str | None = None
    message: str | None = None
    report: MirrorReport | None = None


def progress_enabled(no_progress: bool, stream: IO[str] | None = None) -> bool:
    """Bars only on an interactive stderr, and never when the user said ``--no-progress``."""
    stream = stream if stream is not None else sys.stderr
    try:
        return not no_progress and stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


class ProgressDisplay:
    """The CLI's progress callback: three bars, or a log line every ``log_interval`` seconds."""

    def __init__(
        self, *, bars: bool, log_interval: float = 30.0, stream: IO[str] | None = None, quiet: bool = False
    ) -> None:
        self.quiet = quiet
        self.log_interval = log_interval
        self.stream = stream if stream is not None else sys.stderr
        self.report: MirrorReport | None = None
        self._started = time.monotonic()
        self._last_log = self._started
        self._neurons: Any = None
        self._files: Any = None
        self._bytes: Any = None
        if bars:
            # Imported here: a run without bars (cron, -q, --no-progress) never pays tqdm's ~40 ms import.
            from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs; types-tqdm not a dependency

            common = {"file": self.stream, "dynamic_ncols": True, "leave": True, "mininterval": 0.2}
            self._neurons = tqdm(desc="neurons listed", unit=" neuron", position=0, **common)
            self._files = tqdm(desc="files", unit=" file", total=0, position=1, **common)
            self._bytes = tqdm(
                desc="bytes",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                position=2,
                **common,
            )

    def __call__(self, event: ProgressEvent) -> None:
        c = event.counters
        if event.kind == "finished":
            self.report = event.report
            if self._files is not None and self._neurons is not None and self._bytes is not None:
                # Snapshots are spaced out: the bars end on the run's final numbers, not the last snapshot.
                self._neurons.n = c.neurons
                self._files.total = max(c.files, self._files.total or 0)
                self._files.n = c.done
                self._files.set_postfix(self._postfix(c), refresh=False)
                if c.bytes > self._bytes.n:
                    self._bytes.update(c.bytes - self._bytes.n)
                for bar in (self._neurons, self._files, self._bytes):
                    bar.refresh()
            self.close()
            return
        if self._files is not None and self._neurons is not None and self._bytes is not None:
            if event.kind == "listed":
                if c.neurons_total is not None and self._neurons.total != c.neurons_total:
                    self._neurons.total = c.neurons_total
                self._neurons.n = c.neurons
                self._neurons.refresh()
            elif event.kind == "planned":
                # Until the listing ends, the estimate (neurons x versions) gives the bar an ETA.
                estimate = 0 if c.listing_done else (c.files_expected or 0)
                self._files.total = max(c.files, estimate)
                self._files.refresh()
            elif event.kind in ("downloaded", "skipped", "failed", "retry"):
                if c.bytes > self._bytes.n:
                    self._bytes.update(c.bytes - self._bytes.n)
                self._files.n = c.done
                self._files.set_postfix(self._postfix(c), refresh=False)
                self._files.update(0)  # redraws at most every mininterval
            elif event.kind == "phase" and event.message:
                self._files.set_description_str(event.message)
            return
        if event.kind == "phase" and event.message and not self.quiet:
            log.info("%s", event.message)
        now = time.monotonic()
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            self.log_line(c, now - self._started)

    @staticmethod
    def _postfix(c: Counters) -> dict[str, int]:
        return {"new": c.downloaded, "skipped": c.skipped, "retries": c.retries, "failed": c.failed}

    def log_line(self, c: Counters, elapsed: float) -> None:
        if self.quiet:
            return
        rate = c.bytes / elapsed if elapsed > 0 else 0.0
        total = f"{c.files}" + ("" if c.listing_done else "+")
        log.info(
            "progress: %d neurons listed; %d/%s files (%d new, %d skipped, %d failed); %s at %s/s; "
            "%d retries",
            c.neurons,
            c.done,
            total,
            c.downloaded,
            c.skipped,
            c.failed,
            format_bytes(c.bytes),
            format_bytes(rate),
            c.retries,
        )

    def close(self) -> None:
        for bar in (self._neurons, self._files, self._bytes):
            if bar is not None:
                bar.close()
        self._neurons = self._files = self._bytes = None
