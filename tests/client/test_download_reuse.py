"""``NeuroMorpho.download`` does not fetch what it holds (issue 17 item 8, pooch's rule), over the
in-memory transport: the emulator's counters say how many file requests were made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neuromorpho_fetch import NeuroMorpho, Version
from neuromorpho_fetch.emulator import EmulatorConfig
from neuromorpho_fetch.testing import MemoryEmulator, memory_emulator


@pytest.fixture
async def emu() -> AsyncIterator[MemoryEmulator]:
    async with memory_emulator(EmulatorConfig(neurons=200, seed=7, tls="none", file_kb=4)) as server:
        yield server


async def test_a_held_file_is_reused_with_no_request(emu: MemoryEmulator, tmp_path: Path) -> None:
    async with NeuroMorpho(transport=emu.transport(rate=1000)) as nm:
        neuron = await nm.neuron(1)
        first = await nm.download(neuron, Version.CNG, tmp_path)
        before = emu.stats()["file_requests"]
        again = await nm.download(neuron, Version.CNG, tmp_path)
        assert emu.stats()["file_requests"] == before == 1  # no request for the held file
        assert first.fetched and not again.fetched
        assert (again.path, again.size, again.sha256) == (first.path, first.size, first.sha256)
        forced = await nm.download(neuron, "CNG", tmp_path, force=True)
        assert forced.fetched and emu.stats()["file_requests"] == 2


async def test_a_file_with_another_hash_is_fetched_again(emu: MemoryEmulator, tmp_path: Path) -> None:
    async with NeuroMorpho(transport=emu.transport(rate=1000)) as nm:
        neuron = await nm.neuron(1)
        first = await nm.download(neuron, Version.CNG, tmp_path)
        first.path.write_bytes(b"# damaged\n")  # same name, other bytes
        known = await nm.download(neuron, Version.CNG, tmp_path, sha256=first.sha256)
        assert known.fetched and known.path.read_bytes() != b"# damaged\n"
        assert emu.stats()["file_requests"] == 2


async def test_in_a_mirror_the_state_store_says_what_is_expected(emu: MemoryEmulator, tmp_path: Path) -> None:
    """Inside a mirror, the state store's size and hash decide: a file changed in place is fetched."""
    from neuromorpho_fetch.mirror.options import MirrorOptions
    from neuromorpho_fetch.mirror.run import run_mirror

    async with NeuroMorpho(transport=emu.transport(rate=1000)) as nm:
        report, _ = await run_mirror(
            MirrorOptions(out=tmp_path, archives=("Siegert",), config=nm.config), client=nm
        )
        (neuron, *_) = [n async for n in nm.select(archive="Siegert")]
        before = emu.stats()["file_requests"]
        held = await nm.download(neuron, Version.CNG, tmp_path)
        assert not held.fetched and emu.stats()["file_requests"] == before
        held.path.write_bytes(held.path.read_bytes().replace(b" ", b"  ", 1))  # damaged in place
        fixed = await nm.download(neuron, Version.CNG, tmp_path)
        assert fixed.fetched and fixed.sha256 == held.sha256
    assert report.downloaded == report.files
