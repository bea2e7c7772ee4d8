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

QUERIES: list[dict[str, Any]] = [
    {"species": "mouse"},  # exact
    {"species": "drosophila melanogaster"},  # multi-word value, matched whole
    {"species": ["mouse", "elephant"]},  # OR within a field
    {"species": "drosophila melanogaster", "brain_region": "antennal lobe"},  # AND across fields
    {"brain_region": "CA1"},  # one element of a list field
    {"cell_type": "Somatostatin (SOM)-positive"},  # syntax characters inside a value
    {"neuron_name": "CB_CKp25_2w_F_Animal01_CA3_*"},  # * wildcard
    {"neuron_name": "CB_CKp25_2w_F_Animal01_CA?_0001"},  # ? wildcard
    {"brain_region": "mitral cell*"},  # wildcard with a space (sent as ?)
    {"stain": "alexa fluor 594"},  # case
    {"brain_region": "olfactory*", "gender": "Not reported"},
    {"Physical_Integrity": "Axon Complete"},  # the fields list's spelling of physical_Integrity
    {"experiment_condition": ["Aging", "Control"], "species": "mouse"},
    {"species": "cortex"},  # no hit
    {"strain": "Not applicable", "species": "mouse"},  # no hit by AND
]


async def server_ids(emu: Emulator, criteria: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    async with NeuroMorpho(emu.base_url, rate=1000) as nm:
        return [(n.id, dict(n.record)) async for n in nm.select(archive=list(ARCHIVES), **criteria)]


@pytest.mark.parametrize("criteria", QUERIES, ids=lambda c: json.dumps(c))
async def test_offline_select_equals_the_servers(mirror_root: Path, emu: Emulator, criteria: dict) -> None:
    expected = await server_ids(emu, criteria)
    with LocalMirror(mirror_root) as mirror:
        found = [(n.id, dict(n.neuron.record)) for n in mirror.select(**criteria)]
    assert found == expected


def test_the_query_table_is_not_trivial(mirror_root: Path) -> None:
    """Each kind of query in the table selects a proper, non-empty subset (or none where meant)."""
    with LocalMirror(mirror_root) as mirror:
        total = len(mirror)
        sizes = [len(list(mirror.select(**c))) for c in QUERIES]
    assert all(0 < n < total for n in sizes[:-2]), sizes
    assert sizes[-2:] == [0, 0]


def test_selected_neurons_carry_their_local_files(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        chosen = list(mirror.select(species="mouse"))
    assert chosen
    for item in chosen:
        assert set(item.paths) == {"CNG", "source"}
        assert item.path("cng") == item.paths["CNG"]
        assert item.paths["CNG"].read_bytes().lstrip().startswith(b"#") or item.paths["CNG"].stat().st_size


def test_to_pandas(mirror_root: Path) -> None:
    with LocalMirror(mirror_root) as mirror:
        frame = mirror.to_pandas(species=["mouse", "elephant"])
        expected = [n.id for n in mirror.select(species=["mouse", "elephant"])]
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


def test_find_prints_paths_and_exit_codes(mirror_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalMirror(mirror_root) as mirror:
        expected = [str(n.paths["CNG"]) for n in mirror.select(species="mouse")]
    assert find_main(["--root", str(mirror_root), "--species", "mouse"]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    ids = ["--query", "species:mouse", "--print", "ids", "--limit", "2"]
    assert find_main(["--root", str(mirror_root), *ids]) == 0
    assert len(capsys.readouterr().out.split()) == 2
    assert find_main(["--root", str(mirror_root), "--species", "cortex"]) == 1
    assert capsys.readouterr().out == ""
    assert find_main(["--root", str(mirror_root), "--query", "specie:rat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "specie" in err


def test_find_in_a_shell_pipeline(mirror_root: Path) -> None:
    """``neuromorpho-fetch-find -0 ... | xargs -0 sha256sum``: every path reaches the next command."""
    script = (
        f"{sys.executable} -m neuromorpho_fetch.dataset.cli --root {str(mirror_root)!r} "
        "--brain-region CA1 --version CNG --version source -0 | xargs -0 sha256sum"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=60)
    with LocalMirror(mirror_root) as mirror:
        wanted = sorted(str(p) for n in mirror.select(brain_region="CA1") for p in n.paths.values())
    assert sorted(line.split("  ", 1)[1] for line in done.stdout.splitlines()) == wanted


def test_find_jsonl_prints_records(mirror_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert find_main(["--root", str(mirror_root), "--neuron_name", "CB_*", "--print", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and all(r["archive"] == "Siegert" for r in lines)
