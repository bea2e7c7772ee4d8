"""File locations: server URLs as NeuroMorpho.Org builds them, and local paths that cannot escape."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch.errors import NoSuchFileError, UsageError
from neuromorpho_fetch.layout import file_url, relative_path, source_extension
from neuromorpho_fetch.models import Neuron, Version
from neuromorpho_fetch.paths import MAX_NAME_BYTES, safe_component

BASE = "https://neuromorpho.org"


def neuron(name: str, archive: str = "Wearne_Hof", **extra: Any) -> Neuron:
    record = {"neuron_id": 1, "neuron_name": name, "archive": archive, **extra}
    return Neuron.from_record(record)


def test_cng_url_matches_the_documented_pattern() -> None:
    n = neuron("cnic_001")
    assert file_url(BASE, n, Version.CNG) == f"{BASE}/dableFiles/wearne_hof/CNG%20version/cnic_001.CNG.swc"


def test_archive_with_space_is_lowercased_and_encoded() -> None:
    n = neuron("H16-03", archive="Allen Cell Types")
    url = file_url(BASE + "/", n, Version.CNG)
    assert url == f"{BASE}/dableFiles/allen%20cell%20types/CNG%20version/H16-03.CNG.swc"


@pytest.mark.parametrize(
    ("version", "tail"),
    [
        (Version.SOURCE, "Source-Version/n%201%23.DAT"),
        (Version.CNG_LOG, "Remaining%20issues/n%201%23.CNG.swc.std"),
        (Version.SOURCE_LOG, "Standardization%20log/n%201%23.std"),
    ],
)
def test_other_versions_and_awkward_names(version: Version, tail: str) -> None:
    n = neuron("n 1#", original_format="Neurolucida.DAT")
    assert file_url(BASE, n, version) == f"{BASE}/dableFiles/wearne_hof/{tail}"


def test_name_is_one_encoded_segment_that_decodes_back() -> None:
    name = "Zellé (3)+x%y#z?.v2"
    url = file_url(BASE, neuron(name), Version.CNG)
    last = urlsplit(url).path.rsplit("/", 1)[1]
    assert "/" not in last and "#" not in last and "?" not in last
    assert unquote(last) == f"{name}.CNG.swc"


def test_thumbnail_url_keeps_the_path_but_uses_our_server() -> None:
    n = neuron("cnic_001", png_url="http://neuromorpho.org/images/imageFiles/Wearne_Hof/cnic_001.png")
    assert (
        file_url("https://127.0.0.1:8443", n, Version.PNG)
        == "https://127.0.0.1:8443/images/imageFiles/Wearne_Hof/cnic_001.png"
    )
    assert relative_path(n, Version.PNG) == PurePosixPath("wearne_hof/images/cnic_001.png")


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [("Neurozoom.swc", "swc"), ("Neurolucida.DAT", "DAT"), ("Custom.xml", "xml"), (None, None), ("", None)],
)
def test_source_extension(fmt: str | None, ext: str | None) -> None:
    assert source_extension(fmt) == ext


def test_missing_source_or_thumbnail_is_a_clear_error() -> None:
    n = neuron("x")
    with pytest.raises(NoSuchFileError, match="original_format"):
        file_url(BASE, n, Version.SOURCE)
    with pytest.raises(NoSuchFileError, match="png_url"):
        relative_path(n, Version.PNG)


def test_ordinary_names_keep_their_server_name_locally() -> None:
    n = neuron("CB_CKp25_2w_F_Animal01_1 (a)+b", archive="Siegert")
    expected = PurePosixPath("siegert/CNG/CB_CKp25_2w_F_Animal01_1 (a)+b.CNG.swc")
    assert relative_path(n, Version.CNG) == expected


@pytest.mark.parametrize(
    "name", ["../../escape", "..", ".hidden", "sub/dir/name", "back\\slash", "/abs", "nul\x00byte", "C:\\win"]
)
def test_hostile_names_stay_inside_the_tree(name: str, tmp_path: Path) -> None:
    rel = relative_path(neuron(name, archive="../Evil/Archive"), Version.CNG)
    assert len(rel.parts) == 3
    for part in rel.parts:
        assert part not in ("", ".", "..") and "\\" not in part and "\x00" not in part
        assert not part.startswith(".")
    target = (tmp_path / rel).resolve()
    assert target.is_relative_to(tmp_path.resolve())


def test_long_names_are_cut_keep_extension_and_stay_distinct() -> None:
    a = relative_path(neuron("x" * 300 + "a"), Version.CNG).name
    b = relative_path(neuron("x" * 300 + "b"), Version.CNG).name
    assert a != b
    assert a.endswith(".CNG.swc") and len(a.encode()) <= MAX_NAME_BYTES


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_safe_component_is_one_to_one(a: str, b: str) -> None:
    if a != b:
        assert safe_component(a) != safe_component(b)


@given(st.text(min_size=1, max_size=80))
def test_safe_component_never_yields_a_path(name: str) -> None:
    safe = safe_component(name)
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".") and "\x00" not in safe


def test_version_parse_accepts_names_and_values_in_any_case() -> None:
    assert Version.parse("cng") is Version.CNG
    assert Version.parse("SOURCE") is Version.SOURCE
    assert Version.parse("png") is Version.PNG
    with pytest.raises(UsageError, match="choose one of"):
        Version.parse("zip")


@pytest.mark.parametrize("name", ["../../escape", "..", "sub/dir/name", "a#b?c%d e"])
def test_thumbnail_of_a_hostile_name_is_one_segment(name: str) -> None:
    png = f"http://neuromorpho.org/images/imageFiles/Allen Cell Types/{name}.png"
    n = neuron(name, archive="Allen Cell Types", png_url=png)
    url = file_url(BASE, n, Version.PNG)
    prefix = f"{BASE}/images/imageFiles/Allen%20Cell%20Types/"
    assert url.startswith(prefix)
    tail = url[len(prefix) :]
    assert "/" not in tail and unquote(tail) == f"{name}.png"
    escaped = relative_path(n, Version.PNG)
    plain_png = "http://neuromorpho.org/images/imageFiles/Allen Cell Types/escape.png"
    plain = relative_path(neuron("escape", archive="Allen Cell Types", png_url=plain_png), Version.PNG)
    assert escaped.parent == PurePosixPath("allen cell types/images") and escaped != plain
