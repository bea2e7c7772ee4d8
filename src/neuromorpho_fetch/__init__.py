"""neuromorpho-fetch: a fast, polite, resumable downloader and async client for NeuroMorpho.Org.

The public API is what this module exports (pinned by a test), plus the modules
:mod:`neuromorpho_fetch.config`, :mod:`neuromorpho_fetch.errors`, :mod:`neuromorpho_fetch.sync`,
:mod:`neuromorpho_fetch.testing`, :mod:`neuromorpho_fetch.dataset` and :mod:`neuromorpho_fetch.emulator`.
Every other module is internal (no ``__all__``): it may change in any release (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

from ._version import __version__

if TYPE_CHECKING:
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
        ServiceUnavailable,
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

#: Where each public name lives. Imported on first use (PEP 562), so ``neuromorpho-fetch -V`` and
#: ``--help`` do not pay for aiohttp and the engine (issue 19: start-up).
_WHERE = {
    "BadRequestError": ".errors",
    "BadResponseError": ".errors",
    "ClientConfig": ".config",
    "ConnectError": ".errors",
    "Counters": ".progress",
    "DatabaseBusyError": ".errors",
    "DiskError": ".errors",
    "DiskFullError": ".errors",
    "DownloadResult": ".download",
    "FileTask": ".layout",
    "FileTooLargeError": ".errors",
    "HTTPStatusError": ".errors",
    "HeaderTimeoutError": ".errors",
    "InFlightLimitError": ".errors",
    "IntegrityError": ".errors",
    "MirrorOptions": ".mirror.options",
    "MirrorReport": ".report",
    "NeuroMorpho": ".client",
    "NeuroMorphoError": ".errors",
    "Neuron": ".models",
    "NoSuchFileError": ".errors",
    "NotFoundError": ".errors",
    "NotFoundPageError": ".errors",
    "OutputDirError": ".errors",
    "PagingError": ".errors",
    "ProgressEvent": ".progress",
    "ProxyError": ".errors",
    "Query": ".query",
    "RedirectError": ".errors",
    "RejectedRecord": ".models",
    "RequestTimeout": ".errors",
    "RetryEvent": ".retry",
    "RetryPolicy": ".config",
    "SelectPage": ".client",
    "ServerBusyError": ".errors",
    "ServerUnreachableError": ".errors",
    "ServiceUnavailable": ".errors",
    "StateCorruptError": ".errors",
    "TLSError": ".errors",
    "Timeouts": ".config",
    "TooSlowError": ".errors",
    "TransportError": ".errors",
    "UnknownArchiveError": ".errors",
    "UnknownFieldError": ".errors",
    "UnreadableJSONError": ".errors",
    "UsageError": ".errors",
    "Version": ".models",
    "WeakKeyError": ".errors",
    "file_task": ".layout",
    "file_url": ".layout",
    "relative_path": ".layout",
    "ssl_context": ".tls",
}


# The engine's package shares its name with the function below; binding the package first (a light
# import) keeps ``neuromorpho_fetch.mirror`` the function whatever is imported later.
from . import mirror as _engine_package  # noqa: E402, F401


async def mirror(
    options: MirrorOptions,
    *,
    client: NeuroMorpho | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop: asyncio.Event | None = None,
) -> MirrorReport:
    """Mirror what ``options`` asks for (:func:`neuromorpho_fetch.mirror.run.mirror`, imported on the
    first call)."""
    from .mirror.run import mirror as run

    return await run(options, client=client, progress=progress, stop=stop)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'neuromorpho_fetch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "ServiceUnavailable",
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
