"""The walk through a paged answer: which page to ask for next, when the walk is over, when it is wrong.

Kept apart from the client because it is one rule with its own bounds, and the client only names
endpoints: :func:`walk_pages` is given a ``fetch(params, page_number)`` coroutine and knows nothing of
URLs beyond the one it names in its errors. What a page *says* is parsed in
:mod:`neuromorpho_fetch.protocol` (:func:`~neuromorpho_fetch.protocol.has_next_page`,
:func:`~neuromorpho_fetch.protocol.paging_problem`); here is only what the walk does with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from .errors import BadRequestError, NotFoundError, NotFoundPageError, PagingError
from .protocol import Page, has_next_page, paging_problem
from .tasks import drop

log = logging.getLogger("neuromorpho_fetch.client")

#: The documented maximum; the server may serve fewer per page and we follow what it says.
PAGE_SIZE = 500
#: The server's documented default page size: always accepted.
FALLBACK_PAGE_SIZE = 50
#: The most pages one walk may take whatever the server says: 5 million records at 500 a page, about
#: 20 times the whole database (264,771 cells in 2024, reference section D).
MAX_PAGES = 10_000

FetchPage = Callable[[Sequence[tuple[str, str]], int], Awaitable[Page]]


async def walk_pages(
    fetch: FetchPage,
    url: str,
    params: Sequence[tuple[str, str]],
    *,
    size: int = PAGE_SIZE,
    label: str = "",
) -> AsyncGenerator[Page, None]:
    """Every page in order, the next one fetched while the caller works on the current one.

    The server's ``page`` object decides whether there is a next page (it may serve fewer records
    than asked). Past the last page servers answer with an empty page, 404 or 400: all mean "done".
    A 400 on the very first page at a large size is retried once at the documented default size,
    for servers that refuse an oversized page instead of clamping it. Only one prefetch task
    exists at a time; it is cancelled and awaited if the consumer stops early.

    Bounded (issue 10 item 5): a page whose numbers make no sense (:func:`protocol.paging_problem`),
    a walk past the pages page 0's ``totalElements`` allows (one page of slack for records added
    meanwhile), or past :data:`MAX_PAGES`, is yielded (its records are real) and then ends the walk
    with a :class:`PagingError` naming the URL and the problem. An HTML 404 is a front end's answer,
    not the API's "no results": it is never read as an empty or finished listing.
    """
    sized = [*params, ("size", str(size))]
    number = 0
    announced: int | None = None
    allowed = MAX_PAGES
    pending: asyncio.Task[Page] | None = asyncio.ensure_future(fetch(sized, 0))
    try:
        while pending is not None:
            try:
                page = await pending
            except (NotFoundError, BadRequestError) as exc:
                pending = None
                if isinstance(exc, NotFoundPageError):
                    raise
                if number > 0:
                    if announced is not None and number < announced:
                        log.warning("%s: page %d of %d is gone (%s); stopping", label, number, announced, exc)
                    return
                if isinstance(exc, BadRequestError) and size > FALLBACK_PAGE_SIZE:
                    log.info(
                        "server refused page size %d (%s); retrying at %d", size, exc, FALLBACK_PAGE_SIZE
                    )
                    size = FALLBACK_PAGE_SIZE
                    sized = [*params, ("size", str(size))]
                    pending = asyncio.ensure_future(fetch(sized, 0))
                    continue
                if isinstance(exc, NotFoundError):  # the API's JSON 404: no results
                    return
                raise
            pending = None
            announced = page.total_pages
            if number == 0 and page.total_elements is not None and page.problem is None:
                per_page = page.size or size
                if per_page > 0:
                    allowed = min(MAX_PAGES, max(1, -(-page.total_elements // per_page)) + 1)
            problem = paging_problem(page, size)
            if problem is None and number + 1 > allowed and page.items:
                problem = f"{number + 1} pages so far, more than the {allowed} that totalElements allows"
            if problem is None and has_next_page(number, page):
                pending = asyncio.ensure_future(fetch(sized, number + 1))
            yield page
            if problem is not None:
                raise PagingError(
                    f"listing {url} stopped at page {number}: {problem}; what was listed is kept", url=url
                )
            number += 1
    finally:
        if pending is not None:
            await drop(pending)
