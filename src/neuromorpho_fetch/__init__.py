"""neuromorpho-fetch: a fast, polite, resumable downloader and async client for NeuroMorpho.Org.

The public API is what this module exports (pinned by a test), plus the modules
:mod:`neuromorpho_fetch.config`, :mod:`neuromorpho_fetch.errors`, :mod:`neuromorpho_fetch.sync`,
:mod:`neuromorpho_fetch.testing`, :mod:`neuromorpho_fetch.dataset` and :mod:`neuromorpho_fetch.emulator`.
Every other module is internal (no ``__all__``): it may change in any release (docs/architecture.md).
"""

from ._version import (
    __version__,
)
from .client import (
    NeuroMorpho,
    SelectPage,
)
from .config import (
    ClientConfig,
    RetryPolicy,
    Timeouts,
)
from .download import (
    DownloadResult,
)
from .errors import (
    BadRequestError,
    BadResponseError,
    ConnectError,
    DatabaseBusyError,
    DiskError,
    DiskFullError,
    FileTooLargeError,
    HeaderTimeoutError,
    HTTPStatusError,
    InFlightLimitError,
    IntegrityError,
    NeuroMorphoError,
    NoSuchFileError,
    NotFoundError,
    NotFoundPageError,
    OutputDirError,
    PagingError,
    ProxyError,
    RedirectError,
    RequestTimeout,
    ServerBusyError,
    ServerUnreachableError,
    StateCorruptError,
    TLSError,
    TooSlowError,
    TransportError,
    UnknownArchiveError,
    UnknownFieldError,
    UnreadableJSONError,
    UsageError,
    WeakKeyError,
)
from .layout import (
    FileTask,
    file_task,
    file_url,
    relative_path,
)
from .mirror.options import (
    MirrorOptions,
)
from .mirror.run import (
    mirror,
)
from .models import (
    Neuron,
    RejectedRecord,
    Version,
)
from .progress import (
    Counters,
    ProgressEvent,
)
from .query import (
    Query,
)
from .report import (
    MirrorReport,
)
from .retry import (
    RetryEvent,
)
from .tls import (
    ssl_context,
)

__all__ = [
    "BadRequestError",
    "BadResponseError",
    "ClientConfig",
    "ConnectError",
    "Counters",
    "DatabaseBusyError",
    "DiskError",
    "DiskFullError",
    "DownloadResult",
    "FileTask",
    "FileTooLargeError",
    "HTTPStatusError",
    "HeaderTimeoutError",
    "InFlightLimitError",
    "IntegrityError",
    "MirrorOptions",
    "MirrorReport",
    "NeuroMorpho",
    "NeuroMorphoError",
    "Neuron",
    "NoSuchFileError",
    "NotFoundError",
    "NotFoundPageError",
    "OutputDirError",
    "PagingError",
    "ProgressEvent",
    "ProxyError",
    "Query",
    "RedirectError",
    "RejectedRecord",
    "RequestTimeout",
    "RetryEvent",
    "RetryPolicy",
    "SelectPage",
    "ServerBusyError",
    "ServerUnreachableError",
    "StateCorruptError",
    "TLSError",
    "Timeouts",
    "TooSlowError",
    "TransportError",
    "UnknownArchiveError",
    "UnknownFieldError",
    "UnreadableJSONError",
    "UsageError",
    "Version",
    "WeakKeyError",
    "__version__",
    "file_task",
    "file_url",
    "mirror",
    "relative_path",
    "ssl_context",
]
