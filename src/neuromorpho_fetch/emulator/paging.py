"""Spring Data paging as NeuroMorpho.Org's API speaks it: the page a request asks for, the ``page`` object
in the server's key order, and the page-level ``_links`` the API reference describes.

The reference (A3) describes first/self/next/last links on every page, but a page saved from the live
server (F, "Select page envelope") has none: top-level keys exactly ``_embedded`` and ``page``. The routes
serve links only under ``EmulatorConfig.page_links``; :func:`page_links` is their one builder (the hostile
looping pages reuse it for links that agree with their lie).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Page:
    """One requested page of a listing of ``total`` items (0-based ``number``)."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.size)

    def items(self, items: Sequence[Any]) -> Sequence[Any]:
        return items[self.number * self.size : (self.number + 1) * self.size]

    def info(self) -> dict[str, int]:
        """Spring's ``page`` object in a select page's key order: ``size, totalElements, totalPages,
        number`` (F, "Select page envelope": "Select pages order page keys size, totalElements,
        totalPages, number")."""
        return {
            "size": self.size,
            "totalElements": self.total,
            "totalPages": self.pages,
            "number": self.number,
        }


def field_page_info(count: int, number: int) -> dict[str, int]:
    """The ``page`` object of ``fields/{f}``: all ``count`` values on one page, keys ``size, totalPages,
    totalElements, number`` (E [CWN]; F: "the fields/{f} page orders them size, totalPages,
    totalElements, number")."""
    return {"size": count, "totalPages": 1 if count else 0, "totalElements": count, "number": number}


def requested_page(query: Mapping[str, str], largest: int, refuse_oversize: bool) -> tuple[int, int] | str:
    """``(page, size)`` from the query (0-based, 50 by default; A4), or the message of its 400.

    A size above ``largest`` is clamped to it, or refused when ``refuse_oversize`` (``--oversize 400``).
    """
    try:
        page = int(query.get("page", "0"))
        size = int(query.get("size", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        return "page and size must be integers"
    if page < 0 or size < 1:
        return "page must be >= 0 and size >= 1"
    if size > largest:
        if refuse_oversize:
            return f"size must not exceed {largest}"
        size = largest
    return page, size


def page_links(request: web.Request, number: int, size: int, pages: int) -> dict[str, dict[str, str]]:
    """The documented ``_links`` of a page (A3, inferred form): ``first``, ``prev`` past the first page,
    ``self``, ``next`` before the last, ``last``; ``http://`` hrefs like the real server's."""
    base = f"http://{request.host}"

    def href(n: int) -> dict[str, str]:
        return {"href": base + str(request.rel_url.update_query(page=n, size=size))}

    links = {"first": href(0)}
    if number > 0:
        links["prev"] = href(number - 1)
    links["self"] = href(number)
    if number + 1 < pages:
        links["next"] = href(number + 1)
    links["last"] = href(max(pages - 1, 0))
    return links
