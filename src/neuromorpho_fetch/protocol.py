"""Pure parsers of what NeuroMorpho.Org sends: error bodies, pages, field lists, neuron records, dedupe.

No I/O and no session: every function here takes bytes or decoded JSON and returns a value or one of our
errors, so each server quirk is a table-driven test without sockets. :mod:`neuromorpho_fetch.transport`
calls :func:`status_error` for a non-success answer; :mod:`neuromorpho_fetch.client` calls the rest.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import (
    BadRequestError,
    HTTPStatusError,
    IntegrityError,
    NotFoundError,
    NotFoundPageError,
    ServerBusyError,
    UnknownArchiveError,
    UnreadableJSONError,
)
from .jsonio import NestedTooDeep, loads
from .models import Neuron, RejectedRecord, parse_record
from .retry import parse_retry_after
from .swc import looks_like_html

log = logging.getLogger("neuromorpho_fetch.client")

#: Statuses that mean "not now": retried, honouring Retry-After.
BUSY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _detail(body: bytes) -> tuple[str, bool]:
    """The Spring error body's ``message`` (or the start of the text), and whether it was HTML."""
    if looks_like_html(body[:256]):
        return "HTML error page", True
    text = body[:2000].decode("utf-8", "replace").strip()
    try:
        data = loads(text)
    except ValueError:
        return text[:200], False
    if isinstance(data, dict):
        message = data.get("message") or data.get("error") or ""
        return str(message)[:200], False
    return text[:200], False


def status_error(
    status: int, url: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> HTTPStatusError:
    """The typed error for a non-success response (see the tree in :mod:`neuromorpho_fetch.errors`)."""
    detail, is_html = _detail(body)
    content_type = headers.get("Content-Type", "")
    is_html = is_html or "html" in content_type.lower()
    if status == 404:
        return (NotFoundPageError if is_html else NotFoundError)(status, url, detail)
    if status == 304:
        # Only a conditional request may be answered "not modified" (issue 15 item 2: a 304 to a plain
        # GET was counted as a file present, with nothing on disk, on every run).
        return HTTPStatusError(
            status, url, "304 Not Modified to a request that carried no validators: no file was sent"
        )
    if status in BUSY_STATUSES:
        retry_after = parse_retry_after(headers.get("Retry-After"), now=now)
        return ServerBusyError(status, url, detail, retry_after=retry_after)
    if 400 <= status < 500:
        return BadRequestError(status, url, detail)
    return HTTPStatusError(status, url, detail)


#: The longest validator kept (an ``ETag`` is a short opaque token; a date is about 30 characters).
VALIDATOR_MAX = 256


def validator(value: str | None) -> str | None:
    """An ``ETag`` or ``Last-Modified`` worth keeping and sending back, else ``None``.

    aiohttp decodes header bytes that are not UTF-8 into lone surrogates; such a value cannot be stored
    in SQLite or sent back in a header (issue 15 item 5 blocked the state store for good). A validator
    is kept only when it is printable ASCII and short: anything else is as if the server sent none.
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > VALIDATOR_MAX or not text.isascii() or not text.isprintable():
        return None
    return text


def parse_json(body: bytes, url: str) -> Any:
    """A JSON body, or an :class:`IntegrityError` (retried) saying what came instead.

    A document nested too deep for the decoder (``RecursionError``: a page nested 100,000 levels, issue
    15 item 5) is refused with :class:`UnreadableJSONError`, permanent: the server would send it again.
    """
    try:
        return loads(body)
    except NestedTooDeep:
        raise UnreadableJSONError(
            f"{url} answered with JSON nested too deep to read (over {sys.getrecursionlimit()} levels)",
            url=url,
        ) from None
    except ValueError as exc:
        what = "an HTML page" if looks_like_html(body[:256]) else "a body that is not JSON"
        raise IntegrityError(f"{url} answered with {what}", url=url) from exc


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged endpoint, as the server described it."""

    items: list[Any]
    number: int | None = None
    size: int | None = None
    total_pages: int | None = None
    total_elements: int | None = None
    #: What is wrong with the ``page`` object as sent (``totalPages is 'NaN'``), if anything.
    problem: str | None = None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str | float):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return None
    return None


def parse_page(data: object, url: str) -> Page:
    """Read a HAL page (``_embedded`` + ``page``) or a ``/fields/{field}`` page (``fields`` + ``page``).

    ``_embedded`` is absent on an empty page (Spring HATEOAS); its list key differs by endpoint, so
    whatever list sits in it is taken. The real ``/fields/{field}`` answers with every value on one page
    (``{"field_name": ..., "fields": [...], "page": {"totalPages": 1, ...}}``, reference E); an older
    paged shape has the same keys over several pages, so both read the same way.
    """
    if not isinstance(data, dict):
        raise IntegrityError(f"{url}: expected a JSON object, got {type(data).__name__}", url=url)
    items: list[Any] = []
    embedded = data.get("_embedded")
    if isinstance(embedded, dict):
        for value in embedded.values():
            if isinstance(value, list):
                items = value
                break
    elif isinstance(data.get("fields"), list):
        items = data["fields"]
    meta = data.get("page")
    meta = meta if isinstance(meta, dict) else {}
    problem = next(
        (
            f"{key} is {meta[key]!r}"
            for key in ("number", "size", "totalPages", "totalElements")
            if key in meta and meta[key] is not None and not _is_count(meta[key])
        ),
        None,
    )
    return Page(
        items=items,
        number=_int_or_none(meta.get("number")),
        size=_int_or_none(meta.get("size")),
        total_pages=_int_or_none(meta.get("totalPages")),
        total_elements=_int_or_none(meta.get("totalElements")),
        problem=problem,
    )


def _is_count(value: object) -> bool:
    """A non-negative whole number, as JSON may spell it (``3``, ``3.0``, ``"3"``); not NaN, not -7."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer() and value >= 0
    return isinstance(value, str) and value.strip().isdigit()


def paging_problem(page: Page, asked_size: int) -> str | None:
    """Why a page's paging numbers cannot be trusted, or ``None`` (issue 10 item 5).

    Numbers that are not non-negative integers (``totalPages: "NaN"``, ``number: -7``), and more pages
    than ``totalElements`` allows at the page size (``totalPages: 1e9`` over 400 records): a client
    that believes them pages forever.
    """
    if page.problem is not None:
        return page.problem
    total, pages = page.total_elements, page.total_pages
    size = page.size or asked_size
    if total is not None and pages is not None and size > 0:
        allowed = max(1, -(-total // size))
        if pages > allowed:
            return (
                f"totalPages {pages} is more than totalElements {total} allows at {size} per page ({allowed})"
            )
    return None


def has_next_page(requested: int, page: Page) -> bool:
    """Whether to ask for page ``requested + 1``: trust ``totalPages`` when given, else "not empty"."""
    if not page.items:
        return False
    if page.total_pages is not None:
        current = page.number if page.number is not None else requested
        return current + 1 < page.total_pages
    return True


def parse_fields(data: object, url: str) -> list[str]:
    """``/api/neuron/fields``: ``{"Neuron Fields": [...]}`` (or a bare list)."""
    values = data.get("Neuron Fields") if isinstance(data, dict) else data
    if not isinstance(values, list):
        raise IntegrityError("unexpected /api/neuron/fields answer", url=url)
    return [str(v) for v in values]


def parse_counts(data: object, url: str) -> dict[str, int]:
    """``/api/neuron/partition/{field}``: value → neurons (``{"fields": {...}}`` or the bare mapping)."""
    table = data.get("fields", data) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise IntegrityError(f"unexpected partition answer from {url}", url=url)
    return {str(k): int(v) for k, v in table.items() if _int_or_none(v) is not None}


def match_field(name: str, fields: Sequence[str]) -> str | None:
    """The server's spelling of ``name``: exact, else the one case-insensitive match.

    Answers ``physical_Integrity`` (the JSON key) against ``Physical_Integrity`` (the fields list).
    """
    if name in fields:
        return name
    folded = [f for f in fields if f.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def match_archive(name: str, archives: Sequence[str]) -> str:
    """Case-insensitive archive lookup; an unknown name lists the closest real ones."""
    if name in archives:
        return name
    by_fold = {a.casefold(): a for a in archives}
    found = by_fold.get(name.strip().casefold())
    if found is not None:
        return found
    close = difflib.get_close_matches(name.strip().casefold(), list(by_fold), n=5, cutoff=0.5)
    raise UnknownArchiveError(name, [by_fold[c] for c in close])


def parse_neurons(records: Sequence[Any]) -> list[Neuron | RejectedRecord]:
    """The page's records, each validated once (:func:`~neuromorpho_fetch.models.parse_record`): a bad
    record is a :class:`RejectedRecord` with its reason, never the end of the walk."""
    return [parse_record(record) for record in records]


class Dedupe:
    """Never yield a neuron twice, in constant memory while the server honours ``sort=neuron_id``.

    Sorted results need only the highest id yielded so far: anything at or below it is a repeat (a
    page boundary that shifted because neurons were added mid-walk). A page that arrives out of order
    means the server is not sorting; from then on every id goes into a set (ints, ~10 MB for the whole
    database in the worst case), seeded with the previous page's ids, the only earlier ones kept.

    The one dedupe of a mirror run too: the mirror's selections are disjoint by construction (one
    archive each, or one query), so a repeat can only come from inside one walk, which this catches.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.seen: set[int] | None = None
        self._previous: list[int] = []

    def keep(self, ids: Sequence[int]) -> list[bool]:
        """For one page's ids in server order: which to yield."""
        ascending = all(a <= b for a, b in itertools.pairwise(ids))
        if self.seen is None and not ascending:
            log.debug("select results are not sorted by neuron_id; deduplicating with a set")
            self.seen = set(self._previous)
        flags: list[bool] = []
        if self.seen is not None:
            for neuron_id in ids:
                flags.append(neuron_id not in self.seen)
                self.seen.add(neuron_id)
            return flags
        for neuron_id in ids:
            fresh = self.last is None or neuron_id > self.last
            flags.append(fresh)
            if fresh:
                self.last = neuron_id
        self._previous = list(ids)
        return flags
