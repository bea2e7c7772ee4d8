"""``neuromorpho-fetch-find``: print the local paths (or records) of mirrored neurons matching a query.

Offline, for shell pipelines: ``neuromorpho-fetch-find --root mirror --species rat | xargs -d '\\n' wc -l``.
Names can hold spaces, so ``-0`` separates with NUL for ``xargs -0``.

Exit codes: 0 at least one match, 1 no match (as ``grep``), 2 bad input (unknown field, no mirror).
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import itertools
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from .._argparse import OneLineParser
from ..errors import NeuroMorphoError, UsageError
from ..jsonio import loads
from ..models import Version
from ..query import Query, split_values
from .catalogue import FIELD_COLUMNS, LIST_FIELDS
from .citations import render_bibtex, render_markdown
from .fieldtypes import FIELD_TYPES
from .local import LocalMirror, LocalNeuron

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
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=("jsonl", "csv", "parquet"),
        default=None,
        help="export the matching neurons' typed fields and paths as a table (parquet needs --output and "
        "the [parquet] extra); instead of --print",
    )
    parser.add_argument("--output", "-o", default=None, metavar="FILE", help="with --format: write here")
    parser.add_argument(
        "--cite",
        nargs="?",
        const="bibtex",
        choices=("bibtex", "markdown"),
        default=None,
        help="print the citations for just the matching neurons (default bibtex)",
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
        if args.fmt == "parquet" and not args.output:
            raise UsageError("--format parquet writes a file: give --output FILE")
        with LocalMirror(args.root, build=True, notice=_notice) as mirror:
            out = sys.stdout
            selected = mirror.select(query, include_gone=not args.exclude_gone)
            if args.limit is not None:
                selected = itertools.islice(selected, args.limit)
            if args.cite:
                return cite(mirror, selected, args.cite, out)
            if args.fmt:
                return export(selected, args.fmt, args.output, out)
            for item in selected:
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


def _notice(message: str) -> None:
    print(f"neuromorpho-fetch-find: {message}", file=sys.stderr)


def cite(mirror: LocalMirror, selected: Iterable[LocalNeuron], style: str, out: TextIO) -> int:
    """``--cite``: the required citations and the original papers of just the selected neurons."""
    ids = [item.id for item in selected]
    pubs = mirror.publications(ids)
    if style == "bibtex":
        out.write(render_bibtex(pubs))
    else:
        out.write(render_markdown(pubs, f"{len(ids)} neurons selected", title="Citing the selected neurons"))
    out.flush()
    return 0 if ids else 1


def export(selected: Iterable[LocalNeuron], fmt: str, output: str | None, out: TextIO) -> int:
    """``--format``: the typed rows (:meth:`LocalNeuron.typed`) as JSON lines, CSV or Parquet."""
    rows = (item.typed() for item in selected)
    if fmt == "parquet":
        assert output is not None
        return 0 if write_parquet(rows, Path(output)) else 1
    count = 0
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(open(output, "w", encoding="utf-8", newline="")) if output else out
        if fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps(_plain(row), ensure_ascii=False) + "\n")
                count += 1
        else:
            writer: csv.DictWriter[str] | None = None
            for row in rows:
                if writer is None:
                    writer = csv.DictWriter(handle, [*FIELD_COLUMNS, *_PATHS, "gone_upstream"])
                    writer.writeheader()
                writer.writerow(row)
                count += 1
        handle.flush()
    return 0 if count else 1


_PATHS = tuple(f"path_{v.value}" for v in Version)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A typed row for JSON: list fields as lists, not JSON text."""
    return {k: loads(v) if k in LIST_FIELDS and isinstance(v, str) else v for k, v in row.items()}


def write_parquet(rows: Iterable[dict[str, Any]], output: Path) -> int:
    """Parquet with the catalogue's types (``int64``, ``double``, ``date32``, ``list<string>``, strings),
    readable offline by DuckDB (``read_parquet``), polars and R's arrow; returns the row count."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'neuromorpho-fetch[parquet]'") from None
    kinds = {"integer": pyarrow.int64(), "real": pyarrow.float64(), "date": pyarrow.date32()}
    kinds |= {"list": pyarrow.list_(pyarrow.string()), "text": pyarrow.string()}
    fields = [pyarrow.field(n, kinds[k]) for n, k in FIELD_TYPES.items()]
    fields += [pyarrow.field(p, pyarrow.string()) for p in _PATHS]
    schema = pyarrow.schema([*fields, pyarrow.field("gone_upstream", pyarrow.bool_())])
    table = [_arrow_row(row) for row in rows]
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(table, schema=schema), str(output))
    return len(table)


def _arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    out = _plain(row)
    for name, kind in FIELD_TYPES.items():
        if kind == "date" and out.get(name) is not None:
            out[name] = datetime.date.fromisoformat(out[name])
        elif kind == "list" and out.get(name) is not None:
            out[name] = [v if isinstance(v, str) else json.dumps(v) for v in out[name]]
    return out


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
