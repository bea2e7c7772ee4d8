"""The exception tree of neuromorpho-fetch, and the one error policy: attributes on its classes.

Every error a user can meet is one of these, named by *what failed*, because that is what a person, the
retry loop, the mirror and the CLI all need to decide what happens next::

    NeuroMorphoError                  base; ``str(err)`` is one line saying what failed and what to do
    ├── UsageError                    bad input from the user; exit code 2, raised before any download
    │   ├── UnknownArchiveError       archive not in the catalogue (carries close matches)
    │   ├── UnknownFieldError         query field the server does not know (carries the valid ones)
    │   ├── OutputDirError            --out cannot be created or written, or is locked by another run
    │   │   └── StateCorruptError     the state store is damaged; ``--rebuild-state`` rebuilds it
    │   └── DatabaseBusyError         a database of ours is held locked by another program (bounded wait)
    ├── ServiceUnavailable            base of "the server is not there for us now" (see below)
    ├── TransportError                could not talk to the server at all            (transient)
    │   ├── ConnectError              refused / DNS / unreachable / reset before a response
    │   │   └── ProxyError            the proxy in use refused or failed (names the proxy)
    │   ├── TLSError                  handshake or certificate failure (permanent, stops the run, exit 2)
    │   │   └── WeakKeyError          the server's DH key is too small for a modern context (DH_KEY_TOO_SMALL)
    │   ├── RequestTimeout            connect or read timeout
    │   │   ├── TooSlowError          a body slower than ``--lowest-speed`` over ``--speed-time``
    │   │   └── HeaderTimeoutError    no complete status line and headers within ``--header-timeout``
    │   └── ServerUnreachableError    no request to the server ever succeeded (the run's verdict, exit 4)
    ├── HTTPStatusError               the server answered with a non-success status
    │   ├── NotFoundError             404: the neuron/file/no-hit select is not there   (permanent)
    │   │   └── NotFoundPageError     404 as an HTML page, not the API's JSON (retried a little)
    │   ├── BadRequestError           400 and other 4xx the client caused              (permanent)
    │   ├── ServerBusyError           408, 425, 429, 500, 502-504 (``retry_after`` s)    (transient)
    │   └── RedirectError             a redirect refused: https to http, a non-http scheme, a loop (permanent)
    ├── IntegrityError                a body arrived but is wrong: short, HTML, not SWC (transient)
    │   ├── FileTooLargeError         a body beyond ``--max-file-size`` (permanent for that file)
    │   ├── BadResponseError          the response broke HTTP: header overflow, bad framing, bad coding
    │   └── UnreadableJSONError       JSON nested too deep to read (permanent)
    ├── InFlightLimitError            a body would pass ``--max-in-flight`` (transient: fetched again later)
    ├── PagingError                   a listing's paging makes no sense or repeats itself (permanent)
    ├── NoSuchFileError               the record says this file cannot exist (no request is made)
    └── DiskError                     writing the local file failed (permissions, I/O; stops the run)
        └── DiskFullError             no space left (or quota) mid-run: free space and run again

:class:`ServiceUnavailable` is a second base, mixed into :class:`ConnectError`, :class:`RequestTimeout`,
:class:`ServerUnreachableError` and :class:`ServerBusyError` (and so their subclasses, :class:`ProxyError`
among them): one ``except ServiceUnavailable`` tells "the server (or the path to it) is down or busy,
try later" apart from :class:`NotFoundError`, "the server answered: no such neuron" (issue 18 item 6).
Its own attributes (transient, does not stop a run) say "try later"; each subclass keeps the policy
of its first base. A TLS failure is not
one: it is a setting to change, not a server to wait for.

The policy is three class attributes, read by everyone and decided nowhere else:

* ``transient``: retrying the same request later may succeed (:mod:`neuromorpho_fetch.retry`);
* ``stops_run``: the error would fail every other file the same way (TLS, disk, usage), so a mirror run
  stops; otherwise only this file is lost, listed in the report and tried again in the second pass;
* ``exit_code``: what the CLI returns when this error ends it (2 when a flag, the configuration or the
  machine must change; 4 when the server could never be reached; 1 otherwise).

Anything else that escapes (a bug) is not one of these: the CLI writes its traceback to a crash log
and exits :data:`INTERNAL_ERROR_EXIT`, and the report says so (issue 10: a crash reported success).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The CLI's exit code for an unexpected error (a bug): not a usage error (2), not a run that ended
#: with failures (1). The traceback goes to a crash log, whose path the one stderr line names.
INTERNAL_ERROR_EXIT = 3
#: The CLI's exit code when no request to the server ever succeeded (closed port, DNS, proxy refused):
#: not "some files failed" (1), not a bad flag (2).
UNREACHABLE_EXIT = 4

__all__ = [
    "INTERNAL_ERROR_EXIT",
    "UNREACHABLE_EXIT",
    "BadRequestError",
    "BadResponseError",
    "ConnectError",
    "DatabaseBusyError",
    "DiskError",
    "DiskFullError",
    "FileTooLargeError",
    "HTTPStatusError",
    "HeaderTimeoutError",
    "InFlightLimitError",
    "IntegrityError",
    "NeuroMorphoError",
    "NoSuchFileError",
    "NotFoundError",
    "NotFoundPageError",
    "OutputDirError",
    "PagingError",
    "ProxyError",
    "RedirectError",
    "RequestTimeout",
    "ServerBusyError",
    "ServerUnreachableError",
    "ServiceUnavailable",
    "StateCorruptError",
    "TLSError",
    "TooSlowError",
    "TransportError",
    "UnknownArchiveError",
    "UnknownFieldError",
    "UnreadableJSONError",
    "UsageError",
    "WeakKeyError",
]


class NeuroMorphoError(Exception):
    """Base of every error this package raises on purpose."""

    #: Whether retrying the same request later may succeed.
    transient: bool = False
    #: Whether a mirror run stops (True), or only this file is lost (False). Unknown errors stop it.
    stops_run: bool = True
    #: The CLI's exit code when this error ends the program.
    exit_code: int = 1

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return self.message


class UsageError(NeuroMorphoError):
    """The user asked for something that cannot work; nothing was downloaded."""

    exit_code = 2


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


class StateCorruptError(OutputDirError):
    """The state store is not a readable SQLite database ("database disk image is malformed", "file is
    not a database"). Nothing is lost: the files are on disk, and ``--rebuild-state`` moves the damaged
    store aside (never deletes it) and records them again, as unverified (issue 10)."""


class DatabaseBusyError(UsageError):
    """A database of ours (the state store, the catalogue) is held locked by another program: a
    ``sqlite3`` shell in a transaction, a notebook, an exclusive lock. Busy is not corrupt (issue 15
    item 13: it used to be moved aside as "corrupt" without a word): we wait a bounded time, then stop
    that step with one line saying who to close."""


class ServiceUnavailable(NeuroMorphoError):
    """The server could not be reached, or answered that it cannot serve now (a 5xx or 429 after the
    retries): the lookup said nothing about whether the neuron exists. A base for ``except``; each
    subclass keeps the policy of its first base (module docstring)."""

    transient = True
    stops_run = False


class TransportError(NeuroMorphoError):
    """No HTTP response at all: the connection could not be made or broke."""

    transient = True
    stops_run = False


class ConnectError(TransportError, ServiceUnavailable):
    pass


class ProxyError(ConnectError):
    """The proxy from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` could not be reached, refused the
    tunnel, or is of a kind we cannot speak; the message names it (issue 15 item 15)."""


class TLSError(TransportError):
    """The TLS handshake or certificate check failed; retrying will not help, a flag will."""

    transient = False
    stops_run = True
    exit_code = 2


class WeakKeyError(TLSError):
    """The handshake failed on the server's small Diffie-Hellman key (``DH_KEY_TOO_SMALL``): the one TLS
    failure that ``--tls auto`` answers by switching that host to the legacy context."""


class RequestTimeout(TransportError, ServiceUnavailable):
    pass


class TooSlowError(RequestTimeout):
    """A body arrived slower than the speed floor over a whole window (curl's ``--speed-limit`` /
    ``--speed-time``): a trickling server never goes silent long enough for the idle timeout (issue 10:
    one byte every 2 s ran forever), so it is timed out by rate instead, and retried like a stall."""


class HeaderTimeoutError(RequestTimeout):
    """No complete status line and headers within the header deadline: a server trickling its headers
    a byte at a time never goes silent for the idle timeout, and the body's speed floor does not start
    until the headers are in (issue 15 item 6: 600 s an attempt, about 2 h 20 min a file)."""


class ServerUnreachableError(TransportError, ServiceUnavailable):
    """The run's verdict when no request to the server ever succeeded: the cause is local or on the
    path (closed port, DNS, a proxy refusing), not "some files failed" (issue 15 item 16)."""

    transient = False
    exit_code = 4


class HTTPStatusError(NeuroMorphoError):
    """The server answered with a status we do not accept."""

    stops_run = False

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


class ServerBusyError(HTTPStatusError, ServiceUnavailable):
    transient = True


class RedirectError(HTTPStatusError):
    """A redirect we refuse to follow: from https to plain http (a downgrade anyone on the path could
    forge), to a scheme that is not http(s), or past the redirect limit. Permanent: the server would
    answer the same way, so it is one failure, not a run of retried connection errors (issue 15 item 8)."""


class IntegrityError(NeuroMorphoError):
    """The body arrived but is not what was asked for (short, HTML error page, not SWC)."""

    transient = True
    stops_run = False


class FileTooLargeError(IntegrityError):
    """A body beyond the size cap (``--max-file-size``), declared or streamed: the server would send it
    again the same way, so it is not retried, and only this file is lost (issue 10: a declared 3 GB body
    streamed to disk at 55 MB/s)."""

    transient = False


class BadResponseError(IntegrityError):
    """The response broke HTTP itself: a header line over aiohttp's limit, too many headers, framing
    past a too-short ``Content-Length``, a content coding we did not ask for and cannot decode, or a
    compressed stream cut before its end marker. Named for what happened (issue 15 item 9: these were
    all reported as a ``Content-Length`` problem); retried like any damaged transfer."""


class UnreadableJSONError(IntegrityError):
    """An answer that is JSON we refuse to read: nested deeper than the decoder allows. The server would
    send it again the same way, so it is not retried: a listing that meets one is a listing error
    naming the URL (issue 15 item 5), never a crash."""

    transient = False


class InFlightLimitError(NeuroMorphoError):
    """A body would take the bytes all downloads in progress hold together past ``--max-in-flight``:
    what bounds the disk a server sending endless bodies to every worker can fill (issue 15 item 10).
    Transient: the body is fetched again once others have landed."""

    transient = True
    stops_run = False


class PagingError(NeuroMorphoError):
    """A listing whose paging cannot be trusted: numbers that make no sense (NaN, negative, more pages
    than ``totalElements`` allows) or a page that brings nothing new (issue 10: a server repeating page
    0 with ``totalPages: 1e9`` was paged forever). Retrying would page the same way; the mirror keeps
    what was listed, fetches it, and reports the listing as failed."""

    stops_run = False


class NoSuchFileError(NeuroMorphoError, ValueError):
    """The record says this version cannot exist (no ``original_format``, no ``png_url``).

    Permanent and known before any request: the mirror counts such a file as unavailable.
    """

    stops_run = False


class DiskError(NeuroMorphoError):
    """The local file system refused a write: permissions, read-only mount, an I/O error."""


class DiskFullError(DiskError):
    """No space left on the device (or the quota is used up) while the run writes: the run stops with
    the advice to free space. A disk already full when a run starts is an :class:`OutputDirError`
    (exit 2, before anything ran), for a new mirror and an existing one alike (issue 15 item 4)."""
