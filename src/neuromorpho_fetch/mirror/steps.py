"""The steps around a run's passes: what is checked before it starts, and how its end is written down.

Before: a shared client's config (:func:`shared_config`), a plain-http warning, a ``--report`` path that
can be written, the mirror's root (the report's own, for ``--retry-failed``), the state store. After: the
facts of how the run ended (:func:`end_facts`: the error's own exit code, "unreachable" when no request
ever got an answer) and the report on disk (:func:`write_report`), while the lock is still held.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from urllib.parse import urlsplit

from ..config import ClientConfig
from ..errors import (
    NeuroMorphoError,
    OutputDirError,
    ServerUnreachableError,
    StateCorruptError,
    TLSError,
    TransportError,
    UsageError,
)
from ..paths import MirrorPaths, temp_path
from ..report import MirrorReport, ReportFile, write_crash_log, write_json_atomic
from ..state import StateStore, set_aside
from .options import DEFAULT_OUT, MirrorOptions
from .recorder import Recorder, RunEnd

log = logging.getLogger("neuromorpho_fetch.mirror")


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """How the passes ended (local to one run)."""

    interrupted: bool = False
    cancelled: bool = False
    deadline: bool = False
    error: BaseException | None = None


def shared_config(asked: ClientConfig, client: ClientConfig) -> ClientConfig:
    """The run's config when a client is passed in: the client's. Options that ask for something
    else are refused (they used to be ignored without a word)."""
    default = ClientConfig()
    clash = [
        f.name
        for f in dataclasses.fields(ClientConfig)
        if getattr(asked, f.name) != getattr(default, f.name)
        and getattr(asked, f.name) != getattr(client, f.name)
    ]
    if clash:
        raise UsageError(
            f"mirror(options, client=...): the options set {', '.join(clash)} but the client has its own; "
            "set them on the client (its settings apply to the whole run)"
        )
    return client


def warn_plain_http(base_url: str) -> None:
    """One line when the server is plain http:// beyond this machine: bytes can be altered on the way
    and nothing would notice. Loopback (the emulator, a local proxy) and ``.invalid`` names (an in-memory
    server, :mod:`neuromorpho_fetch.testing`) are not warned about."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    local = host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".invalid")
    if parts.scheme == "http" and not local:
        log.warning("--base-url %s is plain http: transfers are not encrypted or authenticated", base_url)


def check_report_path(path: Path) -> None:
    """Refuse an unwritable ``--report`` before the run, not after a night of downloads."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--report {str(path)!r}: cannot create its folder ({exc.strerror or exc})"
        ) from None
    if path.is_dir():
        raise UsageError(f"--report {str(path)!r} is a folder; give a file path")
    probe = temp_path(path)
    try:
        probe.open("xb").close()
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--report {str(path)!r} cannot be written ({exc.strerror or exc}); choose another path"
        ) from None


def mirror_root(options: MirrorOptions, retry: ReportFile | None) -> Path:
    """The mirror a run works on: ``--out``; for ``--retry-failed`` the report's own mirror, which
    ``--out`` overrides with a warning when they differ (issue 17 item 3: a retry from another folder
    quietly started a second, empty mirror)."""
    recorded = retry.out if retry is not None else None
    if options.out is None:
        return (recorded or Path(DEFAULT_OUT)).absolute()
    out = options.out.absolute()
    if recorded is not None and recorded.absolute() != out:
        log.warning(
            "--retry-failed: the report belongs to the mirror %s; retrying into --out %s as asked",
            recorded,
            out,
        )
    return out


def open_store(paths: MirrorPaths, options: MirrorOptions) -> StateStore | None:
    """The state store (read-only for a dry run); with ``--rebuild-state`` a damaged one is set aside
    and a new one started (its files are then adopted from the tree, as unverified)."""
    db = paths.state_db
    if options.dry_run:
        if not db.is_file():
            return None
        try:
            return StateStore(db, read_only=True)
        except OutputDirError as exc:
            log.warning("dry run: %s; planning as if nothing were downloaded", exc)
            return None
    try:
        return StateStore(db)
    except StateCorruptError:
        if not options.rebuild_state:
            raise
    aside = set_aside(db)
    log.warning(
        "state store was damaged: moved to %s; rebuilding it from the files on disk (recorded as "
        "unverified: --verify checks them against the server)",
        aside,
    )
    return StateStore(db)


def first_error(exc: BaseException) -> BaseException:
    """The first :class:`NeuroMorphoError` inside (nested) exception groups, else the first other error.

    TaskGroups wrap a worker's error in an ``ExceptionGroup``; callers want the error that stopped the
    run, so the CLI can print one line for it.
    """
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_error(inner)
            if isinstance(found, NeuroMorphoError):
                return found
        for inner in exc.exceptions:
            found = first_error(inner)
            if not isinstance(found, asyncio.CancelledError):
                return found
    return exc


def uncancel() -> None:
    """Let the end steps run after a cancellation that :func:`run_mirror` raises again at its end."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def end_facts(
    ending: Ending, rec: Recorder, out: Path, options: MirrorOptions, tls: dict[str, str], reached: bool
) -> RunEnd:
    error = ending.error
    internal = error is not None and not isinstance(error, NeuroMorphoError)
    crash_log = None
    message: str | None = None
    code: int | None = None
    if internal:
        assert error is not None
        message = f"internal error: {type(error).__name__}: {error}"
        try:
            crash_log = str(write_crash_log(MirrorPaths(out).state_dir, error))
        except OSError as exc:
            log.error("cannot write a crash log: %s", exc)
    elif isinstance(error, NeuroMorphoError):
        message, code = str(error), error.exit_code
    # "Unreachable" is not "some files failed": no request ever got an answer (issue 15 item 16).
    transport = error if isinstance(error, TransportError) else rec.first_transport_error()
    unreachable = (
        not reached
        and not ending.interrupted
        and transport is not None
        and not isinstance(transport, TLSError)
    )
    if unreachable:
        assert transport is not None
        message = f"no request to the server got an answer: {transport}"
        code = ServerUnreachableError.exit_code
    return RunEnd(
        out=str(out),
        report_path=str(options.report_path)
        if options.report_path
        else (None if options.dry_run else str(MirrorPaths(out).last_report)),
        dry_run=options.dry_run,
        interrupted=ending.interrupted,
        stopped_by_deadline=ending.deadline,
        error=message,
        error_exit=code,
        unreachable=unreachable,
        internal_error=internal,
        crash_log=crash_log,
        tls=tls,
    )


def write_report(report: MirrorReport, paths: MirrorPaths, options: MirrorOptions) -> MirrorReport:
    """``--report PATH`` if given, and always ``<out>/.neuromorpho-fetch/last-report.json`` (not for a
    dry run): a failed overnight run always says where its full list of failures is."""
    if options.report_path is not None:
        try:
            write_json_atomic(options.report_path, report.to_json())
        except OSError as exc:
            why = f"cannot write --report {str(options.report_path)!r}: {exc.strerror or exc}"
            log.error("%s", why)
            report = dataclasses.replace(report, error=report.error or why)
    if not options.dry_run:
        try:
            write_json_atomic(paths.last_report, report.to_json())
        except OSError as exc:
            log.error("cannot write report %s: %s", paths.last_report, exc.strerror or exc)
    return report
