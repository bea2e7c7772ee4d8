"""The one atomic-write helper: a final name holds the old or the new file, never a prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch.atomic import atomic_open, atomic_write
from neuromorpho_fetch.paths import is_temp_name, temp_path


def test_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.swc"
    target.write_bytes(b"old")
    atomic_write(target, [b"new ", b"body"])
    assert target.read_bytes() == b"new body"
    assert [p.name for p in tmp_path.iterdir()] == ["a.swc"]


def test_error_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.swc"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.swc"]


@given(
    st.text(min_size=1, max_size=60).filter(
        lambda s: "/" not in s and "\x00" not in s and s not in {".", ".."}
    )
)
def test_temp_names_are_recognised(name: str) -> None:
    tmp = temp_path(Path("/x") / name)
    assert tmp.parent == Path("/x")
    assert is_temp_name(tmp.name)


@pytest.mark.parametrize("name", ["a.swc", "a.part", ".a.part", "a.1234abcd.part", ".hidden", "SHA256SUMS"])
def test_data_names_are_not_temp(name: str) -> None:
    assert not is_temp_name(name)
