"""``neuromorpho-fetch-find``: print the local paths (or records) of mirrored neurons matching a query.

Offline, for shell pipelines: ``neuromorpho-fetch-find --root mirror --species rat | xargs -d '\\n' wc -l``.
Names can hold spaces, so ``-0`` separates with NUL for ``xargs -0``.

Exit codes: 0 at least one match, 1 no match (as ``grep``), 2 bad input (unknown field, no mirror).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .._argparse import OneLineParser
from ..errors import NeuroMorphoError, UsageError
from ..models import Version
from ..paths import CATALOGUE_FILE
from ..query import Query, split_values
from .catalogue import FIELD_COLUMNS
from .local import LocalMirror

__all__ = ["main"]

_PRINT = ("paths", "jsonl", "ids", "names")


def _parser() -> OneLineParser:
    parser = OneLineParser(
        prog="neuromorpho-fetch-find",
        description="Print the local files (or records) of mirrored neurons matching a query; no network.",
        epilog="Exit status: 0 matches printed, 1 no match, 2 bad input.",
    )
    parser.add_argument("--root", default="neuromorpho", help="the mirror folder (--out of the download)")
    parser.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="FIELD:VALUE",
        help="as neuromorpho-fetch --query: rat,mouse ORs, repeated fields AND, * and ? are wildcards",
    )
    fields = parser.add_argument_group("fields (each a shorthand for --query FIELD:VALUE)")
    for name in FIELD_COLUMNS:
        flags = [f"--{name}"]
        if "_" in name and name.lower() == name:
            flags.append(f"--{name.replace('_', '-')}")
        fields.add_argument(*flags, dest=f"field_{name}", action="append", metavar="VALUE", help=None)
    parser.add_argument(
        "--print", dest="what", choices=_PRINT, default="paths", help="what to print per match"
    )
    parser.add_argument(
        "--version",
        dest="versions",
        action="append",
        default=None,
        metavar="VERSION",
        help="with --print paths: which file (CNG, source, remaining-issues, standardization-log, images); "
        "repeat for several; default CNG",
    )
    parser.add_argument("--exclude-gone", action="store_true", help="leave out neurons gone upstream")
    parser.add_argument("--limit", type=int, default=None, help="stop after N matches")
    parser.add_argument("-0", "--null", action="store_true", help="end each item with NUL, not newline")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    end = "\0" if args.null else "\n"
    try:
        query = Query.parse(args.query)
        extra = {
            name: [v for raw in getattr(args, f"field_{name}") for v in split_values(raw)]
            for name in FIELD_COLUMNS
            if getattr(args, f"field_{name}")
        }
        query = query.with_criteria(extra)
        versions = [Version.parse(v).value for v in (args.versions or ["CNG"])]
        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be >= 1, got {args.limit}")
        found = 0
        if Path(args.root).is_dir() and not (Path(args.root) / CATALOGUE_FILE).is_file():
            print(
                f"neuromorpho-fetch-find: building {CATALOGUE_FILE} from the tree (first use)",
                file=sys.stderr,
            )
        with LocalMirror(args.root, build=True) as mirror:
            out = sys.stdout
            for item in mirror.select(query, include_gone=not args.exclude_gone):
                if args.what == "paths":
                    items = [str(item.paths[v]) for v in versions if v in item.paths]
                elif args.what == "jsonl":
                    items = [json.dumps(dict(item.neuron.record), ensure_ascii=False)]
                elif args.what == "ids":
                    items = [str(item.id)]
                else:
                    items = [item.name]
                if not items:
                    continue
                out.write("".join(i + end for i in items))
                found += 1
                if args.limit is not None and found >= args.limit:
                    break
            out.flush()
    except NeuroMorphoError as exc:
        print(f"neuromorpho-fetch-find: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `| head`: the reader is gone; say nothing (Python docs' recipe: no second error at exit).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0 if found else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
