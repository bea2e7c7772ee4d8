"""``neuromorpho-fetch`` / ``python -m neuromorpho_fetch``: a thin layer over :func:`run_mirror`.

The CLI only turns flags into :class:`~neuromorpho_fetch.mirror.MirrorOptions` (the client's flags come
from :data:`neuromorpho_fetch.config.SETTINGS`, the one table of settings; this module's own flags are
the table :data:`FLAGS`), sets up logging and progress, turns SIGINT, SIGTERM and SIGHUP into the run's
``stop`` event, and returns the report's exit code (documented in ``docs/cli.md``):

* 0 every requested file is present;
* 1 some files failed for good (listed in the summary and the report), records were rejected, a listing
  was not the whole truth, or the run was stopped by ``--max-duration`` before finishing;
* 2 usage or configuration error, or the machine must change (bad flag, unknown archive or query field,
  unusable or locked ``--out``, a full disk, a damaged or locked state store, TLS failure);
* 3 internal error (a bug): one line naming it and the crash log holding the traceback;
* 4 the server could not be reached at all: no request ever got an answer (closed port, DNS, proxy);
* 5 ``--doctor`` only: the server answered but is busy or its API changed shape (``docs/doctor.md``);
* 130 interrupted (Ctrl-C, SIGTERM, SIGHUP).

Nothing reaches the user as a traceback: a :class:`~neuromorpho_fetch.errors.NeuroMorphoError` is one
line, ``neuromorpho-fetch: error: ...``; anything else (a bug) is one line, ``neuromorpho-fetch:
internal error: ...``, naming the crash log that holds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import loops
from ._argparse import OneLineParser
from ._version import __version__
from .config import (
    SETTINGS,
    ClientConfig,
    Setting,
    check_number,
    check_seconds,
    format_size,
    overlay,
    parse_size,
)
from .errors import INTERNAL_ERROR_EXIT, NeuroMorphoError, UsageError
from .loops import LOOPS
from .mirror.options import DEADLINE_GRACE_MAX, MirrorOptions, parse_duration
from .models import Version
from .paths import ARCHIVE_FILES, MANIFEST, STATE_DIR
from .tls import build_early, first_context, forget_early

if TYPE_CHECKING:  # the engine is imported when a run starts: -V and --help stay fast (issue 19)
    from .progress import ProgressDisplay
    from .report import MirrorReport

PROG = "neuromorpho-fetch"
DEMO_ARCHIVE = "Siegert"
log = logging.getLogger("neuromorpho_fetch")


# -- argparse types: each one a config.py check, so a flag and a library call get the same answer -----


def _checked(convert: Callable[[str], Any], check: Callable[[Any], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        try:
            return check(value)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _whole(low: int) -> Callable[[str], int]:
    def check(value: int) -> int:
        if value < low:
            raise UsageError(f"must be >= {low}, got {value}")
        return value

    return _checked(int, check)


def _size(text: str) -> int:
    try:
        return parse_size(text, "the size")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("the size: ")) from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-duration: ")) from None


def _version_choice(text: str) -> str:
    wanted = text.strip().lower()
    if wanted not in ("cng", "source", "both"):
        raise argparse.ArgumentTypeError(f"choose CNG, source or both, not {text!r}")
    return wanted


_TYPES: dict[str, Callable[[str], Any]] = {
    "int": _whole(1),
    "count": _whole(0),
    "seconds": _checked(float, lambda v: check_seconds(v, "the value", zero_ok=True)),
    "positive-seconds": _checked(float, lambda v: check_seconds(v, "the value")),
    "rate": _checked(float, lambda v: check_number(v, "the value", low=0.0, high=1e6, low_ok=False)),
    "speed": _checked(float, lambda v: check_number(v, "the value", low=0.0, high=1e12)),
    "size": _size,
    "text": str,
}


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _add_setting(group: argparse._ArgumentGroup, setting: Setting, defaults: ClientConfig) -> None:
    """One client setting as a flag (no argparse default: a flag not given leaves the config's own)."""
    default = setting.get(defaults)
    shown = format_size(default) if setting.kind == "size" else _shown(default)
    names = [setting.flag, *setting.aliases]
    if setting.kind == "flag":
        group.add_argument(*names, dest=setting.name, action="store_true", default=None, help=setting.help)
        return
    help_text = setting.help if default in (None, False) else f"{setting.help} (default {shown})"
    if setting.kind == "choice":
        group.add_argument(*names, dest=setting.name, choices=setting.choices, help=help_text)
        return
    group.add_argument(
        *names, dest=setting.name, type=_TYPES[setting.kind], metavar=setting.metavar, help=help_text
    )


@dataclass(frozen=True, slots=True)
class Flag:
    """One of the mirror command's own flags: its group, names and ``add_argument`` keywords."""

    group: str
    names: tuple[str, ...]
    options: dict[str, Any]


def _mirror_default(name: str) -> str:
    value = next(f.default for f in fields(MirrorOptions) if f.name == name)
    return _shown(value)


def _f(group: str, *names: str, help: str, **options: Any) -> Flag:
    return Flag(group, names, {**options, "help": help})


_WHAT, _FILES, _WHERE, _HOW, _OUT = "what to mirror", "which files", "where", "how", "output"

FLAGS: tuple[Flag, ...] = (
    _f(_WHAT, "--archive", action="append", default=[], metavar="NAME",
       help="an archive, in any case (repeatable)"),
    _f(_WHAT, "--all", action="store_true", dest="all_archives", help="every archive"),
    _f(_WHAT, "--query", action="append", default=[], metavar="FIELD:VALUE",
       help="select neurons by metadata, e.g. species:rat,mouse (repeatable, AND-ed)"),
    _f(_WHAT, "--limit", type=_whole(1), metavar="N", help="stop after N neurons"),
    _f(_WHAT, "--retry-failed", type=Path, metavar="REPORT",
       help="fetch exactly the failures listed in an earlier report, into that report's mirror"),
    _f(_WHAT, "--list-archives", action="store_true", help="print every archive with its neuron count"),
    _f(_WHAT, "--doctor", action="store_true",
       help="check the path to the server step by step and say whose problem it is (docs/doctor.md)"),
    _f(_WHAT, "--record", type=Path, metavar="FILE",
       help="with --doctor: write what the server answered (statuses, headers, JSON key shapes) as JSON"),
    _f(_WHAT, "--demo", action="store_true",
       help="start the bundled emulator and mirror its Siegert archive (offline)"),
    _f(_FILES, "--version", type=_version_choice, default="cng", metavar="CNG|source|both",
       help="standardized SWC (CNG, default), the original upload (source), or both"),
    _f(_FILES, "--with-logs", action="store_true",
       help="also the standardization logs of the chosen versions"),
    _f(_FILES, "--with-images", action="store_true", help="also the PNG thumbnails"),
    _f(_FILES, "--with-morphometry", action="store_true",
       help="also <archive>/morphometry.jsonl (one API request per 50 neurons)"),
    _f(_FILES, "--with-pvec", action="store_true",
       help="also <archive>/pvec.jsonl, the persistence vectors (one API request per 50 neurons)"),
    _f(_WHERE, "--out", type=Path, metavar="DIR",
       help="output folder (default ./neuromorpho; ./neuromorpho-demo with --demo; with --retry-failed, "
            "the report's mirror)"),
    _f(_HOW, "--cool-down", type=_TYPES["seconds"], metavar="S",
       help=f"pause before the second pass over failed files (default {_mirror_default('cool_down')} s)"),
    _f(_HOW, "--dry-run", action="store_true",
       help="list and plan only: say what would be downloaded (per archive; -v: every path), write nothing"),
    _f(_HOW, "--verify", action="store_true",
       help="re-hash local files against the state store, check files never checked against the server "
            "by fetching them, and fetch again what is damaged"),
    _f(_HOW, "--refresh", action="store_true",
       help="revalidate files with conditional requests and fetch what changed upstream"),
    _f(_HOW, "--delete-gone", action="store_true",
       help="delete the files of neurons gone upstream (default: keep them, flagged in the catalogue)"),
    _f(_HOW, "--rebuild-state", action="store_true",
       help="if the state store is damaged, move it aside and rebuild it from the files on disk"),
    _f(_HOW, "--report", type=Path, metavar="PATH", help="write the run's report as JSON"),
    _f(_HOW, "--max-duration", type=_duration, metavar="D",
       help="stop after D (7h, 30m, 90s, 1h30m): nothing new starts, files in flight get "
            f"min({DEADLINE_GRACE_MAX:g} s, D/10) to finish, then are cancelled"),
    _f(_HOW, "--loop", choices=LOOPS, default="auto",
       help="event loop: uvloop (the [fast] extra) or asyncio's; auto takes uvloop when installed"),
    _f(_OUT, "--no-progress", action="store_true", help="no progress bars (log lines instead)"),
    _f(_OUT, "-q", "--quiet", action="count", default=0, help="only errors (and failures)"),
    _f(_OUT, "-v", "--verbose", action="count", default=0, help="more detail (-vv: debug)"),
    _f(_OUT, "-V", action="version", version=f"{PROG} {__version__}", help="print the version"),
)  # fmt: skip

#: Where the client settings go among the groups.
_CLIENT_GROUP = _HOW
_GROUPS = (_WHAT, _FILES, _WHERE, _HOW, _OUT)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Mirror NeuroMorpho.Org (or part of it) into a local folder: fast, polite, resumable.",
        epilog="Exit codes: 0 all files present, 1 some failed (listed) or stopped early, 2 usage/"
        "configuration error, 3 internal error (see the crash log), 4 server unreachable, 130 interrupted. "
        "Full documentation: docs/cli.md.",
    )
    groups = {name: parser.add_argument_group(name) for name in _GROUPS}
    defaults = ClientConfig()
    for setting in SETTINGS:
        _add_setting(groups[_CLIENT_GROUP], setting, defaults)
    for flag in FLAGS:
        groups[flag.group].add_argument(*flag.names, **flag.options)
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


def config_from_args(args: argparse.Namespace, **overrides: Any) -> ClientConfig:
    """The client flags over :class:`ClientConfig`'s defaults, through the one :func:`overlay`."""
    given = {s.name: getattr(args, s.name) for s in SETTINGS}
    given.update(overrides)
    return overlay(None, **given)


def options_from_args(args: argparse.Namespace, **overrides: Any) -> MirrorOptions:
    """The flags as options; a flag not given leaves the default (the config's, or the options')."""
    client = {k: overrides.pop(k) for k in list(overrides) if k in {s.name for s in SETTINGS}}
    given: dict[str, Any] = {
        "out": args.out,
        "archives": tuple(args.archive),
        "all_archives": args.all_archives,
        "query": tuple(args.query),
        "limit": args.limit,
        "versions": versions_from_args(args),
        "morphometry": args.with_morphometry,
        "pvec": args.with_pvec,
        "config": config_from_args(args, **client),
        "dry_run": args.dry_run,
        "verify": args.verify,
        "refresh": args.refresh,
        "delete_gone": args.delete_gone,
        "report_path": args.report,
        "retry_failed": args.retry_failed,
        "max_duration": args.max_duration,
        "cool_down": args.cool_down,
        "rebuild_state": args.rebuild_state,
    }
    values = {name: value for name, value in given.items() if value is not None}
    values.update(overrides)
    return MirrorOptions(**values)


@contextlib.contextmanager
def setup_logging(quiet: int, verbose: int) -> Iterator[None]:
    """One stderr handler on the root logger while ``main()`` runs; removed, levels restored, after."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    root, ours, aiohttp = (logging.getLogger(name) for name in ("", "neuromorpho_fetch", "aiohttp"))
    saved = [(logger, logger.level) for logger in (root, ours, aiohttp)]
    ours.setLevel(logging.DEBUG if verbose and not quiet else logging.NOTSET)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    aiohttp.setLevel(max(level, logging.WARNING))  # aiohttp's own loggers say nothing our errors do not
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, saved_level in saved:
            logger.setLevel(saved_level)


def _say(text: str, stream: Any) -> None:
    """Print, surviving a terminal that is gone (SIGHUP: the ssh session closed)."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=stream, flush=True)


def _error(message: str) -> None:
    _say(f"{PROG}: error: {message}", sys.stderr)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def _with_stop(
    options: MirrorOptions, display: ProgressDisplay
) -> tuple[MirrorReport, BaseException | None]:
    """The run with SIGINT, SIGTERM and SIGHUP as its ``stop`` input; a second signal cancels it."""
    import asyncio

    from .mirror.run import run_mirror

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    installed = []
    for sig in _STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not the main thread
            pass
    try:
        return await run_mirror(options, progress=display, stop=stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run_cli_mirror(options: MirrorOptions, *, quiet: int, no_progress: bool, loop: str = "auto") -> int:
    import asyncio

    from .progress import ProgressDisplay, progress_enabled

    cfg = options.config
    if (legacy := first_context(cfg.base_url, cfg.tls)) is not None:
        build_early(cfg.ca_file, cfg.insecure, legacy=legacy)  # while the engine is imported
    bars = progress_enabled(no_progress) and not quiet
    display = ProgressDisplay(bars=bars, quiet=bool(quiet))
    redirect: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if bars:  # log records above the bars, not through them; without bars tqdm is never imported
        from tqdm.contrib.logging import logging_redirect_tqdm  # type: ignore[import-untyped]

        redirect = logging_redirect_tqdm()
    try:
        with redirect:
            try:
                report, error = loops.run(_with_stop(options, display), loop)
            finally:
                forget_early()
                display.close()
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130
    except NeuroMorphoError as exc:  # nothing ran: no report
        _error(str(exc))
        return exc.exit_code
    except Exception as exc:
        return crashed(exc, options.out / STATE_DIR if options.out is not None else None)
    if not quiet or report.exit_code != 0:
        _say(report.summary(), sys.stdout)
    if report.internal_error:
        where = f"the full traceback is in {report.crash_log}" if report.crash_log else "no crash log"
        _say(f"{PROG}: {report.error}; {where} (please report it)", sys.stderr)
    elif error is not None or report.unreachable:
        _error(report.error or str(error))
    return report.exit_code


def crashed(error: BaseException, folder: Path | None, crash_log: str | None = None) -> int:
    """An unexpected error: one line naming it and the crash log, and exit 3. Never a traceback."""
    from .report import write_crash_log

    if crash_log is None:
        try:
            crash_log = str(write_crash_log(folder, error))
        except OSError:
            crash_log = None
    where = f"the full traceback is in {crash_log}" if crash_log else "no crash log could be written"
    first = str(error).splitlines()[0] if str(error) else ""
    _say(f"{PROG}: internal error: {type(error).__name__}: {first}; {where} (please report it)", sys.stderr)
    return INTERNAL_ERROR_EXIT


async def _list_archives(args: argparse.Namespace) -> dict[str, int]:
    from .client import NeuroMorpho

    async with NeuroMorpho(config=config_from_args(args)) as client:
        return await client.archives()


def list_archives(args: argparse.Namespace) -> int:
    """``--list-archives``: name and neuron count, one per line, then the totals; takes no lock."""

    counts = loops.run(_list_archives(args), args.loop)
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
        code = run_cli_mirror(options, quiet=args.quiet, no_progress=args.no_progress, loop=args.loop)
    if code in (0, 1) and out.is_dir():
        print_tree(out)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with setup_logging(args.quiet, args.verbose):
        try:
            if args.record is not None and not args.doctor:
                raise UsageError("--record is for --doctor: neuromorpho-fetch --doctor --record FILE")
            if args.doctor:
                from .doctor import main as doctor

                return doctor(config_from_args(args), record=args.record, loop=args.loop)
            if args.demo:
                return run_demo(args)
            if args.list_archives:
                return list_archives(args)
            options = options_from_args(args)
            return run_cli_mirror(options, quiet=args.quiet, no_progress=args.no_progress, loop=args.loop)
        except NeuroMorphoError as exc:
            _error(str(exc))
            return exc.exit_code
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `neuromorpho-fetch --list-archives | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as exc:  # a bug outside a run (listing archives, building options)
            out = args.out if args.out is not None and (args.out / STATE_DIR).is_dir() else None
            return crashed(exc, out / STATE_DIR if out is not None else None)


def console_main() -> NoReturn:
    """The ``neuromorpho-fetch`` command (and ``python -m neuromorpho_fetch``): :func:`main`, then exit.

    Before the exit, ``gc.freeze()`` moves every object the run left to the collector's permanent
    generation: the interpreter's shutdown otherwise runs full collections over all of them, 25-50 ms of
    every run on the 2-core benchmark machine (a tenth of a 10-file mirror; benchmarks/README.md,
    scenario 7), to free memory the process is about to give back anyway. Measured: the same saving as
    ending with ``os._exit``, without skipping what a normal exit does (atexit hooks, flushing, and the
    wrappers that rely on them, such as ``coverage run`` or ``python -m cProfile``).
    """
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console_main()
