"""neuromorpho-fetch: a fast, polite, resumable downloader and async client for NeuroMorpho.Org."""

from ._version import __version__
from .client import NeuroMorpho
from .config import ClientConfig, RetryPolicy, Timeouts
from .download import DownloadResult
from .errors import (
    BadRequestError,
    ConnectError,
    DiskError,
    HTTPStatusError,
    IntegrityError,
    NeuroMorphoError,
    NoSuchFileError,
    NotFoundError,
    NotFoundPageError,
    OutputDirError,
    RequestTimeout,
    ServerBusyError,
    TLSError,
    TransportError,
    UnknownArchiveError,
    UnknownFieldError,
    UsageError,
)
from .layout import FileTask, file_task, file_url, relative_path
from .mirror import MirrorOptions, MirrorReport, ProgressEvent, mirror
from .models import Neuron, Version
from .query import Query
from .retry import RetryEvent
from .tls import ssl_context

__all__ = [
    "BadRequestError",
    "ClientConfig",
    "ConnectError",
    "DiskError",
    "DownloadResult",
    "FileTask",
    "HTTPStatusError",
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
    "ProgressEvent",
    "Query",
    "RequestTimeout",
    "RetryEvent",
    "RetryPolicy",
    "ServerBusyError",
    "TLSError",
    "Timeouts",
    "TransportError",
    "UnknownArchiveError",
    "UnknownFieldError",
    "UsageError",
    "Version",
    "__version__",
    "file_task",
    "file_url",
    "mirror",
    "relative_path",
    "ssl_context",
]
