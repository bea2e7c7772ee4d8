"""The exception tree of neuromorpho-fetch.

Every error a user can meet is one of these, named by *what failed*, because that is what both a person
and the retry policy need to decide what happens next::

    NeuroMorphoError                  base; ``str(err)`` is one line saying what failed and what to do
    ├── UsageError                    bad input from the user; exit code 2, raised before any download
    │   ├── UnknownArchiveError       archive not in the catalogue (carries close matches)
    │   ├── UnknownFieldError         query field the server does not know (carries the valid ones)
    │   └── OutputDirError            --out cannot be created or written, or is locked by another run
    ├── TransportError                could not talk to the server at all            (transient)
    │   ├── ConnectError              refused / DNS / unreachable / reset before a response
    │   ├── TLSError                  handshake or certificate failure (permanent: names the flag)
    │   └── RequestTimeout            connect or read timeout
    ├── HTTPStatusError               the server answered with a non-success status
    │   ├── NotFoundError             404: the neuron/file/no-hit select is not there   (permanent)
    │   │   └── NotFoundPageError     404 as an HTML page, not the API's JSON (retried a little)
    │   ├── BadRequestError           400 and other 4xx the client caused              (permanent)
    │   └── ServerBusyError           429, 500, 502, 503, 504 (``retry_after`` seconds) (transient)
    ├── IntegrityError                a body arrived but is wrong: short, HTML, not SWC (transient)
    └── DiskError                     writing the local file failed (full disk, permissions)

``transient`` errors are retried by :mod:`neuromorpho_fetch.retry`; everything else is raised at once.
The flag lives on the class (``error.transient``) so the policy never has to guess from messages.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BadRequestError",
    "ConnectError",
    "DiskError",
    "HTTPStatusError",
    "IntegrityError",
    "NeuroMorphoError",
    "NotFoundError",
    "NotFoundPageError",
    "OutputDirError",
    "RequestTimeout",
    "ServerBusyError",
    "TLSError",
    "TransportError",
    "UnknownArchiveError",
    "UnknownFieldError",
    "UsageError",
]


class NeuroMorphoError(Exception):
    """Base of every error this package raises on purpose."""

    #: Whether retrying the same request later may succeed.
    transient: bool = False

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return self.message


class UsageError(NeuroMorphoError):
    """The user asked for something that cannot work; nothing was downloaded."""


class UnknownArchiveError(UsageError):
    def __init__(self, archive: str, suggestions: Sequence[str]) -> None:
        hint = (
            f"did you mean {', '.join(repr(s) for s in suggestions)}?"
            if suggestions
            else "run with --list-archives to see every archive"
        )
        super().__init__(f"unknown archive {archive!r}: {hint}")
        self.archive = archive
        self.suggestions = list(suggestions)


class UnknownFieldError(UsageError):
    def __init__(self, field: str, valid: Sequence[str]) -> None:
        super().__init__(f"unknown query field {field!r}; valid fields are: {', '.join(valid)}")
        self.field = field
        self.valid = list(valid)


class OutputDirError(UsageError):
    """The output directory cannot be used (not writable, or another run holds its lock)."""


class TransportError(NeuroMorphoError):
    """No HTTP response at all: the connection could not be made or broke."""

    transient = True


class ConnectError(TransportError):
    pass


class TLSError(TransportError):
    """The TLS handshake or certificate check failed; retrying will not help, a flag will."""

    transient = False


class RequestTimeout(TransportError):
    pass


class HTTPStatusError(NeuroMorphoError):
    """The server answered with a status we do not accept."""

    def __init__(
        self,
        status: int,
        url: str,
        detail: str = "",
        *,
        retry_after: float | None = None,
    ) -> None:
        what = f"HTTP {status} from {url}"
        super().__init__(f"{what}: {detail}" if detail else what, url=url)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class NotFoundError(HTTPStatusError):
    pass


class NotFoundPageError(NotFoundError):
    """A 404 whose body is an HTML page (Tomcat, a proxy) rather than the API's JSON error.

    The API says "not found" in JSON; an HTML 404 can come from a front end that is having a bad
    moment, so it is retried, but only a couple of times (``retry.NOT_FOUND_PAGE_ATTEMPTS``): a file
    that is really gone also answers this way, and must not cost a full retry budget.
    """

    transient = True


class BadRequestError(HTTPStatusError):
    pass


class ServerBusyError(HTTPStatusError):
    transient = True


class IntegrityError(NeuroMorphoError):
    """The body arrived but is not what was asked for (short, HTML error page, not SWC)."""

    transient = True


class DiskError(NeuroMorphoError):
    """The local file system refused a write: full disk, permissions, read-only mount."""
