"""Request counters, so tests can assert politeness and benchmarks can count work.

Kept to plain integers and dicts mutated on the event loop thread: the hot path pays a few dict
updates, nothing more. Readers on other threads go through :meth:`Emulator.stats`, which takes the
snapshot on the loop thread, so no lock is needed here.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any


class Stats:
    """Counters behind ``GET /_emulator/stats``; ``/_emulator/*`` itself is never counted."""

    __slots__ = (
        "api_requests",
        "by_status",
        "bytes_sent",
        "faults_by_kind",
        "faults_injected",
        "file_requests",
        "file_requests_by_path",
        "in_flight",
        "jsp_requests",
        "max_in_flight",
        "max_per_second",
        "other_requests",
        "recent",
        "rejected_busy",
        "requests_total",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Clear every counter except ``in_flight`` (requests still running stay counted)."""
        self.requests_total = 0
        self.api_requests = 0
        self.file_requests = 0
        self.other_requests = 0
        # neuron_info.jsp pages asked for: the Terms of Use forbid scripted .jsp calls (reference A9.1).
        self.jsp_requests = 0
        self.by_status: Counter[int] = Counter()
        self.bytes_sent = 0
        self.faults_injected = 0
        self.faults_by_kind: Counter[str] = Counter()
        self.file_requests_by_path: Counter[str] = Counter()
        self.rejected_busy = 0
        self.max_in_flight = self.in_flight
        # Arrival times within the last second: the most requests any one-second window held is the
        # server's own measure of a client's request rate (politeness, seen from this side).
        self.recent: deque[float] = deque()
        self.max_per_second = 0

    def enter(self, kind: str, raw_path: str) -> None:
        """A request arrived; ``kind`` is ``api``, ``file`` or ``other``."""
        self.requests_total += 1
        if kind == "file":
            self.file_requests += 1
            self.file_requests_by_path[raw_path] += 1
        elif kind == "api":
            self.api_requests += 1
        else:
            self.other_requests += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        now = time.monotonic()
        recent = self.recent
        recent.append(now)
        while recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) > self.max_per_second:
            self.max_per_second = len(recent)

    def leave(self) -> None:
        self.in_flight -= 1

    def answered(self, status: int, body_bytes: int) -> None:
        self.by_status[status] += 1
        self.bytes_sent += body_bytes

    def fault(self, kind: str) -> None:
        self.faults_injected += 1
        self.faults_by_kind[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy; ``by_status`` keys are strings because JSON keys are."""
        return {
            "requests_total": self.requests_total,
            "api_requests": self.api_requests,
            "file_requests": self.file_requests,
            "other_requests": self.other_requests,
            "jsp_requests": self.jsp_requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "bytes_sent": self.bytes_sent,
            "faults_injected": self.faults_injected,
            "faults_by_kind": dict(sorted(self.faults_by_kind.items())),
            "rejected_busy": self.rejected_busy,
            "max_in_flight": self.max_in_flight,
            "max_per_second": self.max_per_second,
            "in_flight": self.in_flight,
            "file_requests_by_path": dict(self.file_requests_by_path),
        }
