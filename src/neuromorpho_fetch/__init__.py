"""neuromorpho-fetch: a fast, polite, resumable downloader and async client for NeuroMorpho.Org."""

from ._version import __version__
from .config import ClientConfig, RetryPolicy, Timeouts
from .errors import (
    BadRequestError,
    ConnectError,
    DiskError,
    HTTPStatusError,
    IntegrityError,
    NeuroMorphoError,
    NotFoundError,
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
from .models import Neuron, Version
from .tls import ssl_context

__all__ = [
    "BadRequestError",
    "ClientConfig",
    "ConnectError",
    "DiskError",
    "FileTask",
    "HTTPStatusError",
    "IntegrityError",
    "NeuroMorphoError",
    "Neuron",
    "NotFoundError",
    "OutputDirError",
    "RequestTimeout",
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
    "relative_path",
    "ssl_context",
]
