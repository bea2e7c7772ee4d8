"""Every switch of the emulator, as one frozen value.

The CLI, the in-process runner and the pytest plugin all build an :class:`EmulatorConfig`, so a test can
say exactly which variant of the real server it runs against (and a failing test prints it). Where the
real server's behaviour is unknown (reference section D) the default is the most likely variant.
Validation happens here, once, so the CLI can turn a bad flag into a one-line error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

TLSMode = Literal["legacy-dh", "modern", "none"]
FaultKind = Literal["503", "429", "500", "reset", "truncate", "html200", "html404", "stall"]
FaultScope = Literal["all", "api", "files"]
Oversize = Literal["clamp", "400"]
NoHits = Literal["404", "empty"]
PastLast = Literal["empty", "404", "400"]
PathCase = Literal["sensitive", "insensitive"]
#: ``neuron_info.jsp``: the real HTML page (reference A8) or a 403 for tests that want the harsh variant.
JspMode = Literal["page", "403"]
#: ``/api/morphometry/select`` and ``/api/pvec/select``: answered (F, "Batch selects"), or refused with a
#: 400 or a 404, to test a client's fallback to one request per id.
BatchSelect = Literal["ok", "400", "404"]
#: Whitespace inside an unquoted query value (F, "Query semantics": it "does not AND the words: it acts
#: like OR or last-word-only"): only the trailing word counts (A5 [TU], the default), or each word is a
#: whole value of its own, OR-ed.
UnquotedWords = Literal["last-word", "or"]

#: The real server's largest page (reference: ``size`` above 500 is clamped or refused); the default of
#: :attr:`EmulatorConfig.max_page_size`.
MAX_PAGE_SIZE = 500

#: Every fault kind ``--faults`` accepts, in a fixed order (the order decides which kind a hash picks).
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

HostileScope = Literal["all", "api", "files"]
NonsenseKind = Literal["nan", "negative", "huge", "inconsistent", "mixed"]
#: Named steps of a status script besides a bare status number (``ok`` behaves normally).
SCRIPT_WORDS = ("ok", "html404", "html200", "reset")
#: Issue 15's bad records (``HostileConfig.bad_records``): what a listing record may carry instead of a
#: usable value; record i of a page gets kind i.
BAD_RECORD_KINDS = (
    "surrogate", "id-infinity", "id-huge", "id-text", "name-null", "name-empty", "name-int",
    "archive-null", "archive-empty", "field-10mb", "name-long",
)  # fmt: skip
RedirectTo = Literal["http", "ftp"]
OverflowKind = Literal["many", "long"]


@dataclass(frozen=True, slots=True)
class HostileConfig:
    """Issue 10's hostile server, one switch per behaviour; see ``emulator/hostile.py`` and the docs.

    A rate is the share of eligible requests that misbehave (``1.0`` = every one), drawn from a hash of
    the emulator's ``seed``, the URL and how often it was asked, like the faults. Every hostile stream
    stops after ``stream_max_s`` seconds or ``stream_max_bytes`` bytes, whichever comes first.
    """

    looping_pages: float = 0.0
    nonsense_paging: float = 0.0
    nonsense_kind: NonsenseKind = "nan"
    status_script: tuple[str, ...] = ()
    script_scope: HostileScope = "api"
    trickle: float = 0.0
    trickle_interval_s: float = 2.0
    endless: float = 0.0
    oversized: float = 0.0
    oversized_bytes: int = 3 * 10**9
    short_length: float = 0.0
    long_length: float = 0.0
    body_scope: HostileScope = "files"
    paths: str = ""  # a regex searched in path and query; "" = every URL
    max_per_url: int = 0  # 0 = no cap
    stream_max_s: float = 30.0
    stream_max_bytes: int = 64 * 2**20
    # -- issue 15 (the second hostile round) ------------------------------------------------------
    short_listing: float = 0.0  # a neuron select page keeps its `page` counts but loses half its records
    repeat_records: float = 0.0  # a neuron select page's last record is a copy of its first
    bad_records: tuple[str, ...] = ()  # BAD_RECORD_KINDS, put in place of a page's first records
    deep_page: float = 0.0  # a neuron select page nested 100,000 arrays deep
    header_trickle: float = 0.0  # the status line and headers one byte per trickle_interval_s
    unasked_gzip: float = 0.0  # gzip the client never asked for, cut before its end marker
    redirect: float = 0.0  # a redirect to redirect_to (http: the same URL over plain http)
    redirect_to: RedirectTo = "http"
    not_modified: float = 0.0  # 304 to a GET that carried no validators
    bad_validators: float = 0.0  # ETag and Last-Modified holding bytes that are not UTF-8
    header_overflow: float = 0.0  # 200 headers ("many") or one 8,190-byte header line ("long")
    overflow_kind: OverflowKind = "many"
    case_twin: str = ""  # an archive whose every second neuron is served as its lower-case twin archive
    twin_same_name: bool = False  # the twin's first neuron takes the name of the archive's first

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError(problems[0])

    def _problems(self) -> list[str]:
        out: list[str] = []
        rates: tuple[str, ...] = ("looping_pages", "nonsense_paging", "trickle", "endless", "oversized")
        rates += ("short_length", "short_listing", "repeat_records", "deep_page", "header_trickle")
        rates += ("unasked_gzip",)
        rates += ("redirect", "not_modified", "bad_validators", "header_overflow")
        for name in (*rates, "long_length"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # also rejects NaN
                out.append(f"hostile {name} must be between 0 and 1, got {value}")
        for name in ("trickle_interval_s", "stream_max_s"):
            value = getattr(self, name)
            if not 0.0 < value <= 86400.0:
                out.append(f"hostile {name} must be > 0 and at most a day, got {value}")
        for name in ("oversized_bytes", "stream_max_bytes"):
            if getattr(self, name) < 1:
                out.append(f"hostile {name} must be >= 1")
        if self.max_per_url < 0:
            out.append("hostile max_per_url must be >= 0 (0 = no cap)")
        for step in self.status_script:
            if step not in SCRIPT_WORDS and not (step.isdigit() and 100 <= int(step) <= 599):
                out.append(
                    f"hostile status_script step {step!r}: use a status 100..599 or {'|'.join(SCRIPT_WORDS)}"
                )
        for name, kind in (
            ("nonsense_kind", NonsenseKind),
            ("script_scope", HostileScope),
            ("body_scope", HostileScope),
            ("redirect_to", RedirectTo),
            ("overflow_kind", OverflowKind),
        ):
            if getattr(self, name) not in get_args(kind):
                out.append(f"hostile {name} must be one of {'|'.join(get_args(kind))}")
        out += [f"hostile bad_records kind {k!r}: use {'|'.join(BAD_RECORD_KINDS)}"
                for k in self.bad_records if k not in BAD_RECORD_KINDS]  # fmt: skip
        try:
            re.compile(self.paths)
        except re.error as exc:
            out.append(f"hostile paths is not a regular expression: {exc}")
        return out


@dataclass(frozen=True, slots=True)
class FileOddities:
    """How often generated files carry quirks seen in real data (issue 18; every rate 0..1, off by default).

    ``latin1_rate``: CNG files outside the synthetic archives whose header has a Latin-1 comment (not
    valid UTF-8; whether real CNG files do is unknown, F "Still unknown"; the ``Synthetic_Awkward``
    archive always has one). ``type0_rate``: files whose last section has SWC type 0 (F: "files with
    type-0 nodes exist", NeuroM #1110). ``soma_off_rate``: files whose three-point soma is "a bit off"
    (F, brian2 #1544), as cnic_001's recorded one is.
    """

    latin1_rate: float = 0.0
    type0_rate: float = 0.0
    soma_off_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("latin1_rate", "type0_rate", "soma_off_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1, got {value}")


@dataclass(frozen=True, slots=True)
class CatalogueChanges:
    """The seed's catalogue as it looks after upstream changes (``emulator/changes.py``; issue 12).

    ``add``: ``(archive, n)`` pairs, n new neurons appended to that archive (ids above the highest);
    ``remove``: neuron ids gone upstream; ``edit``: ``(neuron id, field, new value)`` triples (a list
    field gets a one-element list). Applied in that order: removals, edits, additions.
    """

    add: tuple[tuple[str, int], ...] = ()
    remove: tuple[int, ...] = ()
    edit: tuple[tuple[int, str, str], ...] = ()

    def __post_init__(self) -> None:
        for archive, count in self.add:
            if count < 1:
                raise ValueError(f"catalogue change: add at least 1 neuron to {archive!r}, not {count}")
        if len(set(self.remove)) != len(self.remove):
            raise ValueError("catalogue change: an id is removed twice")
        if set(self.remove) & {neuron_id for neuron_id, _, _ in self.edit}:
            raise ValueError("catalogue change: an id is both removed and edited")

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.edit)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """What to serve and how badly to behave. Defaults: a well-behaved legacy-TLS server."""

    host: str = "127.0.0.1"
    port: int = 0
    neurons: int = 2000
    seed: int = 7
    tls: TLSMode = "legacy-dh"
    # Speed and capacity.
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_kbps: float = 0.0  # 0 = unlimited; KiB/s per connection
    max_in_flight: int = 0  # 0 = unlimited; beyond it: 503 Retry-After: 1
    # Injected faults, deterministic from the seed.
    fault_rate: float = 0.0
    faults: tuple[FaultKind, ...] = FAULT_KINDS
    fault_max_per_url: int = 3
    fault_scope: FaultScope = "all"
    missing_rate: float = 0.0
    stall_ms: float = 30000.0
    retry_after_s: int = 1
    # Paging: tests lower the largest page to walk many pages over a small catalogue.
    max_page_size: int = MAX_PAGE_SIZE
    # Behaviour switches where the real server is unknown.
    oversize: Oversize = "clamp"
    no_hits: NoHits = "404"
    past_last: PastLast = "empty"
    path_case: PathCase = "sensitive"
    jsp: JspMode = "page"
    empty_selects: bool = False
    redirect_http: bool = False
    # Recorded from the live server (F), with the documented or the other possible variant as a switch.
    page_links: bool = False  # True: pages carry the documented first/prev/self/next/last _links (A3)
    batch_select: BatchSelect = "ok"
    unquoted_words: UnquotedWords = "last-word"
    # A server whose API changed shape (for ``--doctor`` and the contract tests): pages answer
    # ``{"content": [...], "paging": {...}}`` instead of Spring's ``_embedded`` and ``page``.
    shape_drift: bool = False
    # Catalogue shape.
    hostile_names: bool = False
    file_kb: float | None = None
    oddities: FileOddities = FileOddities()
    # Prepared file responses kept in memory, by URL (MB). Realistic neurons are grown per file (issue 18:
    # milliseconds a file), so benchmarks that must measure the client, not the emulator, raise this and
    # fetch every file once before timing; 32 MB is plenty for tests.
    file_cache_mb: float = 32.0
    # Issue 10's hostile server (off by default).
    hostile: HostileConfig = HostileConfig()
    # Issue 12: the seed's catalogue changed upstream (neurons added, removed, records edited).
    catalogue_changes: CatalogueChanges = CatalogueChanges()

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError(problems[0])

    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.tls not in get_args(TLSMode):
            out.append(f"tls must be one of {', '.join(get_args(TLSMode))}, got {self.tls!r}")
        if not 0 <= self.port <= 65535:
            out.append(f"port must be 0..65535, got {self.port}")
        if self.neurons < 1:
            out.append(f"neurons must be >= 1, got {self.neurons}")
        for name in ("fault_rate", "missing_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                out.append(f"{name.replace('_', '-')} must be between 0 and 1, got {value}")
        for name in ("latency_ms", "jitter_ms", "bandwidth_kbps", "stall_ms"):
            if getattr(self, name) < 0:
                out.append(f"{name.replace('_', '-')} must be >= 0")
        if self.max_in_flight < 0:
            out.append("max-in-flight must be >= 0 (0 = unlimited)")
        if self.max_page_size < 1:
            out.append(f"max-page-size must be >= 1, got {self.max_page_size}")
        if self.fault_max_per_url < 0:
            out.append("fault-max-per-url must be >= 0")
        bad = [k for k in self.faults if k not in FAULT_KINDS]
        if bad:
            out.append(f"unknown fault kind {bad[0]!r}: choose from {','.join(FAULT_KINDS)}")
        if self.fault_rate > 0 and not self.faults:
            out.append("fault-rate > 0 needs at least one fault kind")
        checks = (
            ("oversize", Oversize),
            ("no_hits", NoHits),
            ("past_last", PastLast),
            ("path_case", PathCase),
            ("jsp", JspMode),
            ("fault_scope", FaultScope),
            ("batch_select", BatchSelect),
            ("unquoted_words", UnquotedWords),
        )
        for name, kind in checks:
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                out.append(f"{name.replace('_', '-')} must be one of {'|'.join(allowed)}")
        if self.file_kb is not None and self.file_kb <= 0:
            out.append("file-kb must be > 0")
        if not self.file_cache_mb >= 0:
            out.append("file-cache-mb must be >= 0")
        if self.redirect_http and self.tls == "none":
            out.append("redirect-http needs a TLS mode (legacy-dh or modern) to redirect to")
        return out
