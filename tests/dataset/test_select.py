"""Offline select answers like the server's select, and the find command prints paths for pipelines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch import NeuroMorpho
from neuromorpho_fetch.dataset import LocalMirror
from neuromorpho_fetch.dataset.cli import main as find_main
from neuromorpho_fetch.dataset.local import Matcher
from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.errors import UnknownFieldError, UsageError

from .conftest import ARCHIVES

SCALARS = (
    "stain",
    "strain",
    "gender",
    "species",
    "physical_Integrity",
    "protocol",
    "reconstruction_software",
)
LISTS = ("brain_region", "cell_type", "experiment_condition")
SYNTAX = set("()/&,:+")

#: Kinds of query, each built from the mirrored records (the emulator's data is free to change).
KINDS = (
    "exact",
    "multi-word value",
    "OR within a field",
    "AND across fields",
    "element of a list field",
    "syntax characters in a value",
    "* wildcard",
    "? wildcard",
    "wildcard with a space",
    "other case",
    "Physical_Integrity spelling",
    "no hit",
    "no hit by AND",
)


def elements(value: Any) -> list[str]:
    return [] if value is None else [str(v) for v in value] if isinstance(value, list) else [str(value)]


def build_queries(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One query per kind, chosen so that each selects a proper subset of the mirror (or nothing)."""
    total = len(records)

    def holders(field: str, value: str) -> set[int]:
        return {r["neuron_id"] for r in records if value in elements(r.get(field))}

    def proper(fields: tuple[str, ...], keep: Any = lambda v: True) -> list[tuple[str, str]]:
        found = []
        for field in fields:
            values = sorted({v for r in records for v in elements(r.get(field))})
            found += [(field, v) for v in values if keep(v) and 0 < len(holders(field, v)) < total]
        assert found, f"the mirror has no proper value in {fields} for this kind: change the archives"
        return found

    plain: dict[str, list[str]] = {}
    for f, v in proper(SCALARS):
        if " " not in v and not SYNTAX & set(v):
            plain.setdefault(f, []).append(v)
    field, (value, second) = next((f, vs[:2]) for f, vs in plain.items() if len(vs) >= 2)
    candidates = proper(SCALARS + LISTS, lambda v: " " in v.strip() and not SYNTAX & set(v))
    # Prefer a value that ends another value ("entorhinal cortex" inside "medial entorhinal cortex"): a
    # select that matched words or substrings instead of whole values would then select too much.
    spaced = max(candidates, key=lambda fv: any(v.endswith(" " + fv[1]) for _, v in candidates))
    pairs = [
        (a, b)
        for a in proper(SCALARS)
        for b in proper(LISTS)
        if 0 < len(holders(*a) & holders(*b)) < min(len(holders(*a)), len(holders(*b)))
    ]
    disjoint = next((a, b) for a in proper(SCALARS) for b in proper(LISTS) if not holders(*a) & holders(*b))
    names = sorted(r["neuron_name"] for r in records)
    prefix = next(
        n[: len(n) // 2] for n in names if 0 < sum(m.startswith(n[: len(n) // 2]) for m in names) < total
    )
    words = spaced[1].split()
    integrity = proper(("physical_Integrity",))[0][1]
    return {
        "exact": {field: value},
        "multi-word value": {spaced[0]: spaced[1]},
        "OR within a field": {field: [value, second]},
        "AND across fields": {pairs[0][0][0]: pairs[0][0][1], pairs[0][1][0]: pairs[0][1][1]},
        "element of a list field": dict([proper(LISTS)[0]]),
        "syntax characters in a value": dict([proper(SCALARS + LISTS, lambda v: bool(SYNTAX & set(v)))[0]]),
        "* wildcard": {"neuron_name": prefix + "*"},
        "? wildcard": {"neuron_name": names[0][:-1] + "?"},
        "wildcard with a space": {spaced[0]: f"{words[0]} {words[1][:2]}*"},
        "other case": {field: value.swapcase()},
        "Physical_Integrity spelling": {"Physical_Integrity": integrity},
        "no hit": {"species": "no such species"},
        "no hit by AND": {disjoint[0][0]: disjoint[0][1], disjoint[1][0]: disjoint[1][1]},
    }


@pytest.fixture(scope="session")
def queries(mirror_root: Path) -> dict[str, dict[str, Any]]:
    records = [json.loads(line) for p in mirror_root.glob("*/metadata.jsonl") for line in p.open()]
    return build_queries(records)


async def server_ids(emu: Emulator, criteria: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    async with NeuroMorpho(emu.base_url, rate=1000) as nm:
        return [(n.id, dict(n.record)) async for n in nm.select(archive=list(ARCHIVES), **criteria)]


@pytest.mark.parametrize("kind", KINDS)
async def test_offline_select_equals_the_servers(
    mirror_root: Path, emu: Emulator, queries: dict[str, dict[str, Any]], kind: str
) -> None:
    criteria = queries[kind]
    expected = await server_ids(emu, criteria)
    with LocalMirror(mirror_root) as mirror:
        found = [(n.id, dict(n.neuron.record)) for n in mirror.select(**criteria)]
    assert found == expected, criteria


def test_the_query_table_is_not_trivial(mirror_root: Path, queries: dict[str, dict[str, Any]]) -> None:
    """Each kind selects a non-empty proper subset (or nothing where meant), so equality means something."""
    with LocalMirror(mirror_root) as mirror:
        total = len(mirror)
        sizes = {kind: len(list(mirror.select(**criteria))) for kind, criteria in queries.items()}
    assert {k: n for k, n in sizes.items() if k.startswith("no hit")} == {"no hit": 0, "no hit by AND": 0}
    assert all(0 < n < total for k, n in sizes.items() if not k.startswith("no hit")), (sizes, queries)
    assert sizes["OR within a field"] > sizes["exact"] == sizes["other case"]


def test_selected_neurons_carry_their_local_files(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        chosen = list(mirror.select(archive="Siegert"))
    assert chosen
    for item in chosen:
        assert set(item.paths) == {"CNG", "source"}
        assert item.path("cng") == item.paths["CNG"]
        assert item.paths["CNG"].read_bytes().lstrip().startswith(b"#") or item.paths["CNG"].stat().st_size


def test_two_selects_at_once(mirror_root: Path, queries: dict[str, dict[str, Any]]) -> None:
    """A select inside another's loop (a join by hand) works: each has its own matcher functions."""
    with LocalMirror(mirror_root) as mirror:
        pairs = [
            (a.id, b.id)
            for a in mirror.select(**queries["exact"])
            for b in mirror.select(**queries["element of a list field"])
        ]
        expected = len(list(mirror.select(**queries["exact"]))) * len(
            list(mirror.select(**queries["element of a list field"]))
        )
    assert len(pairs) == expected > 0


def test_to_pandas(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        frame = mirror.to_pandas(archive=list(ARCHIVES), neuron_name="*1*")
        expected = [n.id for n in mirror.select(archive=list(ARCHIVES), neuron_name="*1*")]
    assert 0 < len(expected) < len(LocalMirror(mirror_root))
    assert list(frame["neuron_id"]) == expected
    assert all(Path(p).is_file() for p in frame["path_CNG"])
    assert isinstance(frame["brain_region"].iloc[0], list)


def test_bad_queries_are_usage_errors(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        with pytest.raises(UnknownFieldError):
            list(mirror.select(specie="rat"))
        with pytest.raises(UsageError):
            list(mirror.select(q="species:rat"))
        with pytest.raises(UsageError):
            list(mirror.select(species=[]))


def test_no_catalogue_and_no_mirror_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        LocalMirror(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("criterion", "value", "hit"),
    [
        ("rat", "rat", True),
        ("rat", "Rat", True),
        ("rat", "rats", False),
        ("rat", ["mouse", "rat"], True),
        ("rat", None, False),
        ("r*", "rat", True),
        ("r?t", "rat", True),
        ("r?t", "root", False),
        ("layer 2*", "layer 2/3", True),
        ("layer 2*", "layerX2/3", True),  # the space went out as ? (one character)
        ("layer*", None, False),
        ("7", 7, True),
        ("a.b", "axb", False),  # a dot is not a wildcard
    ],
)
def test_matcher_table(criterion: str, value: Any, hit: bool) -> None:
    assert Matcher([criterion]).accept(value) is hit


@given(st.text(alphabet=st.characters(blacklist_characters="*?"), min_size=1))
def test_a_value_without_wildcards_matches_itself_in_any_case(text: str) -> None:
    matcher = Matcher([text])
    assert matcher.accept(text)
    assert matcher.accept(text.upper()) == (text.upper().casefold() == text.casefold())


def test_find_prints_paths_and_exit_codes(
    mirror_root: Path, queries: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    ((field, value),) = queries["multi-word value"].items()
    with LocalMirror(mirror_root) as mirror:
        expected = [str(n.paths["CNG"]) for n in mirror.select(**{field: value})]
    assert find_main(["--root", str(mirror_root), f"--{field.replace('_', '-')}", value]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    ids = ["--query", "archive:Siegert,Amaral", "--print", "ids", "--limit", "2"]
    assert find_main(["--root", str(mirror_root), *ids]) == 0
    assert len(capsys.readouterr().out.split()) == 2
    assert find_main(["--root", str(mirror_root), "--species", "cortex"]) == 1
    assert capsys.readouterr().out == ""
    assert find_main(["--root", str(mirror_root), "--query", "specie:rat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "specie" in err


@pytest.mark.system
def test_find_in_a_shell_pipeline(mirror_root: Path) -> None:
    """``neuromorpho-fetch-find -0 ... | xargs -0 sha256sum``: every path reaches the next command."""
    script = (
        f"{sys.executable} -m neuromorpho_fetch.dataset.cli --root {str(mirror_root)!r} "
        "--archive Siegert --version CNG --version source -0 | xargs -0 sha256sum"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=60)
    with LocalMirror(mirror_root) as mirror:
        wanted = sorted(str(p) for n in mirror.select(archive="Siegert") for p in n.paths.values())
    assert sorted(line.split("  ", 1)[1] for line in done.stdout.splitlines()) == wanted


def test_find_jsonl_prints_records(mirror_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert find_main(["--root", str(mirror_root), "--archive", "siegert", "--print", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    on_disk = [json.loads(line) for line in (mirror_root / "siegert" / "metadata.jsonl").open()]
    assert sorted(lines, key=lambda r: r["neuron_id"]) == sorted(on_disk, key=lambda r: r["neuron_id"])


def test_find_builds_a_missing_catalogue_and_says_so(
    mirror_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (mirror_copy / "catalogue.sqlite").unlink()
    assert find_main(["--root", str(mirror_copy), "--archive", "Siegert", "--print", "names"]) == 0
    captured = capsys.readouterr()
    assert "building a private catalogue" in captured.err and captured.err.count("\n") == 1
    assert not (mirror_copy / "catalogue.sqlite").exists()  # a reader never writes into the mirror
    on_disk = {
        json.loads(line)["neuron_name"] for line in (mirror_copy / "siegert" / "metadata.jsonl").open()
    }
    assert set(captured.out.splitlines()) == on_disk


def test_find_on_no_mirror_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert find_main(["--root", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
