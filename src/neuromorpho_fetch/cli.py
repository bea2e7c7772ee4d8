"""``neuromorpho-fetch`` / ``python -m neuromorpho_fetch``: a thin layer over :func:`mirror`.

The CLI only turns flags into a :class:`~neuromorpho_fetch.mirror.MirrorOptions`, sets up logging and
progress, and maps outcomes to exit codes (documented in ``docs/cli.md``):

* 0 every requested file is present;
* 1 some files failed for good (listed in the summary and ``--report``), the run was stopped by
  ``--max-duration`` before finishing, or an error stopped it after it started (server unreachable,
  disk full);
* 2 usage or configuration error, before any download (bad flag, unknown archive or query field,
  unusable ``--out``, locked ``--out``, a full disk at start, a damaged state store, TLS failure: a
  flag or the machine must change);
* 3 internal error (a bug): one line naming it and the crash log holding the traceback;
* 130 interrupted (Ctrl-C / SIGTERM).

Nothing reaches the user as a traceback: a :class:`~neuromorpho_fetch.errors.NeuroMorphoError` is one
line, ``neuromorpho-fetch: error: ...``; anything else (a bug) is one line, ``neuromorpho-fetch:
internal error: ...``, naming the crash log (``<out>/.neuromorpho-fetch/crash-<time>.log``, or the temp
folder) that holds the traceback, and the report carries exit code 3 (issue 10: a crash printed 100
lines and its report said success).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from tqdm.contrib.logging import logging_redirect_tqdm  # type: ignore[import-untyped]

from ._argparse import OneLineParser
from ._version import __version__
from .client import NeuroMorpho
from .config import DEFAULT_BASE_URL, TLS_MODES, ClientConfig, check_number, check_seconds
from .errors import INTERNAL_ERROR_EXIT, NeuroMorphoError, UsageError
from .mirror import MirrorOptions, mirror, parse_duration
from .mirror.options import ClientShorthands, client_config
from .mirror.run import DEADLINE_GRACE_MAX
from .models import Version
from .paths import ARCHIVE_FILES, MANIFEST, STATE_DIR
from .progress import ProgressDisplay, progress_enabled
from .report import MirrorReport, write_crash_log

__all__ = ["build_parser", "config_from_args", "main", "options_from_args", "print_tree"]

PROG = "neuromorpho-fetch"
DEMO_ARCHIVE = "Siegert"
log = logging.getLogger("neuromorpho_fetch")
_N = TypeVar("_N", int, float)


def _at_least(convert: Callable[[str], _N], minimum: _N, what: str) -> Callable[[str], _N]:
    """An argparse ``type=``: ``convert`` the text, refuse values below ``minimum`` in one line."""

    def parse(text: str) -> _N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _at_least(int, 1, "a whole number")
_non_negative_int = _at_least(int, 0, "a whole number")


def _checked_float(check: Callable[[float], float]) -> Callable[[str], float]:
    """An argparse ``type=`` for a number, checked by the config's own validator (one place: a library
    user gets the same answer); NaN, infinity and overflowing values are refused in one line."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        try:
            return check(value)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


_seconds = _checked_float(lambda v: check_seconds(v, "the value", zero_ok=True))
_positive_seconds = _checked_float(lambda v: check_seconds(v, "the value"))
_rate = _checked_float(lambda v: check_number(v, "the value", low=0.0, high=1e6, low_ok=False))


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """``--max-file-size``: bytes, or a number with K, M, G or T (powers of 1024; ``B``/``iB`` optional)."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS else ""
    try:
        number = float(cleaned[: len(cleaned) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (write e.g. 500M or 2G)") from None
    if not number >= 1 or number * _SIZE_UNITS[unit] > 1 << 50:
        raise argparse.ArgumentTypeError(f"must be 1 B..1024T, got {text!r}")
    return int(number * _SIZE_UNITS[unit])


def _format_size(size: int) -> str:
    unit = next(u for u in ("T", "G", "M", "K", "") if size % _SIZE_UNITS[u] == 0)
    return f"{size // _SIZE_UNITS[unit]}{unit}"


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-duration: ")) from None


def _default(name: str) -> str:
    """A default for ``--help`` (``5``, ``0.5``, ``neuromorpho``), read from where it is defined:
    :class:`ClientConfig` (and its retry policy and timeouts) or :class:`MirrorOptions`."""
    config = ClientConfig(base_url=DEFAULT_BASE_URL)
    from_config: dict[str, object] = {
        "concurrency": config.concurrency,
        "rate": config.rate,
        "retries": config.retry.retries,
        "retry_wait": config.retry.backoff_base,
        "retry_after_max": config.retry.retry_after_max,
        "timeout": config.timeouts.read,
        "lowest_speed": config.lowest_speed,
        "speed_time": config.speed_time,
        "max_file_size": _format_size(config.max_file_size),
        "tls": config.tls,
    }
    if name in from_config:
        value = from_config[name]
    else:
        value = inspect.signature(MirrorOptions).parameters[name].default
    return f"{value:g}" if isinstance(value, float) else str(value)


def _version_choice(text: str) -> str:
    wanted = text.strip().lower()
    if wanted not in ("cng", "source", "both"):
        raise argparse.ArgumentTypeError(f"choose CNG, source or both, not {text!r}")
    return wanted


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Mirror NeuroMorpho.Org (or part of it) into a local folder: fast, polite, resumable.",
        epilog="Exit codes: 0 all files present, 1 some failed (listed) or stopped early, 2 usage/"
        "configuration error, 3 internal error (see the crash log), 130 interrupted. "
        "Full documentation: docs/cli.md.",
    )
    what = parser.add_argument_group("what to mirror")
    what.add_argument(
        "--archive", action="append", default=[], metavar="NAME", help="an archive, in any case (repeatable)"
    )
    what.add_argument("--all", action="store_true", dest="all_archives", help="every archive")
    what.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="FIELD:VALUE",
        help="select neurons by metadata, e.g. species:rat,mouse (repeatable, AND-ed)",
    )
    what.add_argument("--limit", type=_positive_int, metavar="N", help="stop after N neurons")
    what.add_argument(
        "--retry-failed",
        type=Path,
        metavar="REPORT",
        help="fetch exactly the failures listed in an earlier --report",
    )
    what.add_argument(
        "--list-archives", action="store_true", help="print every archive with its neuron count"
    )
    what.add_argument(
        "--demo",
        action="store_true",
        help="start the bundled emulator and mirror its Siegert archive (offline)",
    )

    files = parser.add_argument_group("which files")
    files.add_argument(
        "--version",
        type=_version_choice,
        default="cng",
        metavar="CNG|source|both",
        help="standardized SWC (CNG, default), the original upload (source), or both",
    )
    files.add_argument(
        "--with-logs", action="store_true", help="also the standardization logs of the chosen versions"
    )
    files.add_argument("--with-images", action="store_true", help="also the PNG thumbnails")
    files.add_argument(
        "--with-morphometry",
        action="store_true",
        help="also <archive>/morphometry.jsonl (one API request per neuron)",
    )

    where = parser.add_argument_group("where")
    where.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"output folder (default ./{_default('out')}; ./neuromorpho-demo with --demo)",
    )

    how = parser.add_argument_group("how")
    # No argparse defaults below: a flag not given leaves MirrorOptions' own default, which the help
    # text quotes (one place for each default).
    how.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help=f"requests in flight (default {_default('concurrency')})",
    )
    how.add_argument(
        "--rate",
        type=_rate,
        metavar="R",
        help=f"requests per second, all kinds (default {_default('rate')})",
    )
    how.add_argument(
        "--retries",
        type=_non_negative_int,
        metavar="N",
        help=f"retries per request after the first attempt (default {_default('retries')})",
    )
    how.add_argument(
        "--retry-wait",
        type=_seconds,
        metavar="S",
        help=f"base of the exponential backoff between retries (default {_default('retry_wait')} s)",
    )
    how.add_argument(
        "--retry-after-max",
        type=_seconds,
        metavar="S",
        help="longest pause honoured when the server sends Retry-After "
        f"(default {_default('retry_after_max')} s)",
    )
    how.add_argument(
        "--cool-down",
        type=_seconds,
        metavar="S",
        help=f"pause before the second pass over failed files (default {_default('cool_down')} s)",
    )
    how.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="S",
        help=f"longest silence on a connection before it counts as stalled (default {_default('timeout')} s)",
    )
    how.add_argument(
        "--base-url", metavar="URL", help="server (default $NEUROMORPHO_BASE_URL or neuromorpho.org)"
    )
    how.add_argument("--ca-file", metavar="PEM", help="extra CA certificates to trust")
    how.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (last resort)")
    how.add_argument(
        "--tls",
        choices=TLS_MODES,
        help="TLS level: auto tries modern TLS and falls back per host to the legacy 1024-bit DH key only "
        f"when the server needs it; modern or legacy force one (default {_default('tls')})",
    )
    how.add_argument(
        "--lowest-speed",
        type=_checked_float(lambda v: check_number(v, "the value", low=0.0, high=1e12)),
        metavar="BYTES/S",
        help="a body slower than this over --speed-time is retried; 0 turns the check off "
        f"(default {_default('lowest_speed')})",
    )
    how.add_argument(
        "--speed-time",
        type=_positive_seconds,
        metavar="S",
        help=f"window over which --lowest-speed is measured (default {_default('speed_time')} s)",
    )
    how.add_argument(
        "--max-file-size",
        type=_size,
        metavar="SIZE",
        help="largest file accepted, e.g. 500M or 2G; a larger one fails and is not retried "
        f"(default {_default('max_file_size')})",
    )
    how.add_argument("--user-agent", metavar="TEXT", help="identify your project to the server")
    how.add_argument(
        "--dry-run",
        action="store_true",
        help="list and plan only: say what would be downloaded and skipped, write nothing",
    )
    how.add_argument(
        "--verify",
        action="store_true",
        help="re-hash local files against the state store, check files never checked against the "
        "server by fetching them, and fetch again what is damaged",
    )
    how.add_argument(
        "--refresh",
        action="store_true",
        help="revalidate files with conditional requests and fetch what changed upstream",
    )
    how.add_argument(
        "--delete-gone",
        action="store_true",
        help="delete the files of neurons gone upstream (default: keep them, flagged in the catalogue)",
    )
    how.add_argument(
        "--rebuild-state",
        action="store_true",
        help="if the state store is damaged, move it aside and rebuild it from the files on disk",
    )
    how.add_argument("--report", type=Path, metavar="PATH", help="write the run's report as JSON")
    how.add_argument(
        "--max-duration",
        type=_duration,
        metavar="D",
        help="stop after D (7h, 30m, 90s, 1h30m): nothing new starts, files in flight get "
        f"min({DEADLINE_GRACE_MAX:g} s, D/10) to finish, then are cancelled",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--no-progress", action="store_true", help="no progress bars (log lines instead)")
    out.add_argument("-q", "--quiet", action="count", default=0, help="only errors (and failures)")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more detail (-vv: debug)")
    out.add_argument("-V", action="version", version=f"{PROG} {__version__}", help="print the version")
    return parser


def versions_from_args(args: argparse.Namespace) -> tuple[Version, ...]:
    """--version and --with-logs/--with-images → the file kinds to fetch, in a stable order."""
    versions: list[Version] = []
    if args.version in ("cng", "both"):
        versions.append(Version.CNG)
    if args.version in ("source", "both"):
        versions.append(Version.SOURCE)
    if args.with_logs:
        if Version.CNG in versions:
            versions.append(Version.CNG_LOG)
        if Version.SOURCE in versions:
            versions.append(Version.SOURCE_LOG)
    if args.with_images:
        versions.append(Version.PNG)
    return tuple(versions)


def config_from_args(args: argparse.Namespace) -> ClientConfig:
    """The client flags alone, over :class:`ClientConfig`'s defaults (``--list-archives`` needs no more)."""
    flags = {name: getattr(args, name) for name in ClientShorthands.__annotations__}
    return client_config(**cast(ClientShorthands, flags))


def options_from_args(args: argparse.Namespace, **overrides: Any) -> MirrorOptions:
    """The flags as options; a flag not given (None) is left out, so the default holds (client flags:
    :class:`ClientConfig`'s; the rest: :class:`MirrorOptions`')."""
    given: dict[str, Any] = {
        "out": args.out,
        "archives": tuple(args.archive),
        "all_archives": args.all_archives,
        "query": tuple(args.query),
        "limit": args.limit,
        "versions": versions_from_args(args),
        "morphometry": args.with_morphometry,
        "config": config_from_args(args),
        "dry_run": args.dry_run,
        "verify": args.verify,
        "refresh": args.refresh,
        "delete_gone": args.delete_gone,
        "report_path": args.report,
        "retry_failed": args.retry_failed,
        "max_duration": args.max_duration,
        "cool_down": args.cool_down,
        "rebuild_state": args.rebuild_state or None,
    }
    values = {name: value for name, value in given.items() if value is not None}
    values.update(overrides)
    return MirrorOptions(**values)


@contextlib.contextmanager
def setup_logging(quiet: int, verbose: int) -> Iterator[None]:
    """One stderr handler on the root logger while ``main()`` runs; removed, levels restored, after.

    ``main()`` owns what it installs: a caller that runs it in-process (tests, a notebook) keeps no
    handler bound to a stderr that may be closed or replaced by then.
    """
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    root, ours, aiohttp = (logging.getLogger(name) for name in ("", "neuromorpho_fetch", "aiohttp"))
    saved = [(logger, logger.level) for logger in (root, ours, aiohttp)]
    # -v: our own debug lines (every retry, every skip); -vv: everything, aiohttp included.
    ours.setLevel(logging.DEBUG if verbose and not quiet else logging.NOTSET)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's own loggers are noisy at INFO and say nothing our errors do not.
    aiohttp.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, saved_level in saved:
            logger.setLevel(saved_level)


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def exit_code_for(error: NeuroMorphoError) -> int:
    """The error class's own ``exit_code`` (2: a flag or the configuration must change; else 1)."""
    return error.exit_code


async def _with_sigterm(coro: Any) -> Any:
    """Treat SIGTERM like Ctrl-C: cancel the run so it cleans up and records what it did."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    with_handler = False
    if task is not None:
        try:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            with_handler = True
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread / Windows
            pass
    try:
        return await coro
    finally:
        if with_handler:
            loop.remove_signal_handler(signal.SIGTERM)


def run_mirror(options: MirrorOptions, *, quiet: int, no_progress: bool) -> int:
    display = ProgressDisplay(bars=progress_enabled(no_progress) and not quiet, quiet=bool(quiet))
    report: MirrorReport | None = None
    code: int
    try:
        with logging_redirect_tqdm():
            try:
                report = asyncio.run(_with_sigterm(mirror(options, progress=display)))
            finally:
                display.close()
        code = report.exit_code
    except (KeyboardInterrupt, asyncio.CancelledError):
        report = display.report
        code = 130
    except NeuroMorphoError as exc:
        report = display.report
        if report is not None and (report.downloaded or report.skipped or report.failed):
            _print_summary(report)
        _error(str(exc))
        return exit_code_for(exc)
    except Exception as exc:
        report = display.report
        logged = report.crash_log if report is not None else None
        return crashed(exc, options.out / STATE_DIR, logged)
    if report is not None and (not quiet or code != 0):
        _print_summary(report)
    return code


def crashed(error: BaseException, folder: Path | None, crash_log: str | None = None) -> int:
    """An unexpected error: one line naming it and the crash log (written here unless the run already
    wrote one), and :data:`~neuromorpho_fetch.errors.INTERNAL_ERROR_EXIT`. Never a traceback."""
    if crash_log is None:
        try:
            crash_log = str(write_crash_log(folder, error))
        except OSError:
            crash_log = None
    where = f"the full traceback is in {crash_log}" if crash_log else "no crash log could be written"
    print(
        f"{PROG}: internal error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        f"; {where} (please report it)",
        file=sys.stderr,
        flush=True,
    )
    return INTERNAL_ERROR_EXIT


def _print_summary(report: MirrorReport) -> None:
    print(report.summary(), flush=True)


async def _list_archives(args: argparse.Namespace) -> dict[str, int]:
    # The same client settings a mirror would use; "what to mirror" does not matter here.
    async with NeuroMorpho(config=config_from_args(args)) as client:
        return await client.archives()


def list_archives(args: argparse.Namespace) -> int:
    """``--list-archives``: name and neuron count, one per line, then the totals; takes no lock."""
    counts = asyncio.run(_list_archives(args))
    width = max((len(name) for name in counts), default=0)
    for name in sorted(counts, key=str.lower):
        print(f"{name:<{width}}  {counts[name]:>7}")
    print(f"{len(counts)} archives, {sum(counts.values())} neurons")
    return 0


def print_tree(out: Path, *, first: int = 3) -> None:
    """A short listing of a mirror: archive, metadata, each version folder's count and first files."""
    print(f"{out}/")
    for archive in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        print(f"  {archive.name}/")
        for meta in ARCHIVE_FILES:
            path = archive / meta
            if path.is_file():
                with path.open("rb") as fh:
                    records = sum(1 for _ in fh)
                print(f"    {meta}  ({records} records)")
        for folder in sorted(p for p in archive.iterdir() if p.is_dir()):
            names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST)
            total = sum((folder / n).stat().st_size for n in names)
            print(f"    {folder.name}/  ({len(names)} files, {total / 1024:.0f} KiB)")
            for name in names[:first]:
                print(f"      {name}")
            if len(names) > first:
                print(f"      ... {len(names) - first} more")


def run_demo(args: argparse.Namespace) -> int:
    """Start the bundled emulator in this process, mirror one archive from it, show the tree."""
    try:
        from .emulator import EmulatorConfig, serve_in_thread
    except ImportError as exc:  # the emulator's TLS needs trustme (the [emulator] extra)
        raise UsageError(
            f"--demo needs the emulator: pip install 'neuromorpho-fetch[emulator]' ({exc})"
        ) from None
    out = args.out if args.out is not None else Path("neuromorpho-demo")
    config = EmulatorConfig(neurons=2000, seed=7)
    with serve_in_thread(config) as emu:
        archives = [name for name, _count in emu.catalogue.archives()]
        wanted = args.archive or [
            next((a for a in archives if a.lower() == DEMO_ARCHIVE.lower()), min(archives))
        ]
        print(
            f"demo: emulator serving {len(archives)} archives at {emu.base_url}; "
            f"mirroring {', '.join(wanted)}"
        )
        options = options_from_args(
            args,
            out=out,
            archives=tuple(wanted),
            base_url=emu.base_url,
            ca_file=emu.ca_file,
            concurrency=args.concurrency or 8,
            rate=args.rate or 200.0,
        )
        code = run_mirror(options, quiet=args.quiet, no_progress=args.no_progress)
    if code in (0, 1) and out.is_dir():
        print_tree(out)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with setup_logging(args.quiet, args.verbose):
        try:
            if args.demo:
                return run_demo(args)
            if args.list_archives:
                return list_archives(args)
            options = options_from_args(args)
            return run_mirror(options, quiet=args.quiet, no_progress=args.no_progress)
        except NeuroMorphoError as exc:
            _error(str(exc))
            return exit_code_for(exc)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `neuromorpho-fetch --list-archives | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as exc:  # a bug outside a run (listing archives, building options)
            out = args.out if args.out is not None and (args.out / STATE_DIR).is_dir() else None
            return crashed(exc, out / STATE_DIR if out is not None else None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
