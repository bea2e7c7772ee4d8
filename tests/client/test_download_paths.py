"""Both ways a body reaches the disk: in memory then one worker-thread write (small), or streamed (large)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from neuromorpho_fetch import DiskError, Version
from neuromorpho_fetch.emulator import Catalogue
from neuromorpho_fetch.transport import CHUNK_SIZE

from .conftest import Start, big_neuron_id, client, files_under


async def test_large_body_streams_to_disk_intact(start: Start, big_files: Catalogue, tmp_path: Path) -> None:
    emu = start(cat=big_files)
    async with client(emu) as nm:
        neuron = await nm.neuron(big_neuron_id(big_files, CHUNK_SIZE))
        result = await nm.download(neuron, Version.CNG, tmp_path)
    served = emu.catalogue.file_for(neuron.id, "CNG")
    assert served is not None and len(served.body) > CHUNK_SIZE
    assert result.path.read_bytes() == served.body and result.size == len(served.body)
    assert files_under(tmp_path) == [result.path]


async def test_small_body_disk_failure_leaves_nothing(start: Start, tmp_path: Path) -> None:
    emu = start()
    async with client(emu) as nm:
        neuron = await nm.neuron(emu.catalogue.neuron_ids()[0])
        result = await nm.download(neuron, Version.CNG, tmp_path)
        assert result.size < CHUNK_SIZE
        folder = result.path.parent
        result.path.unlink()
        folder.chmod(0o500)  # the folder exists but refuses new files (root ignores modes: checked below)
        try:
            probe = folder / "probe"
            try:
                probe.touch()
            except PermissionError:
                with pytest.raises(DiskError, match="cannot write"):
                    await nm.download(neuron, Version.CNG, tmp_path)
            else:
                probe.unlink()
                (folder / result.path.name).mkdir()  # a folder where the file must go: rename fails
                with pytest.raises(DiskError, match="cannot write"):
                    await nm.download(neuron, Version.CNG, tmp_path)
                (folder / result.path.name).rmdir()
        finally:
            folder.chmod(0o700)
    assert list(tmp_path.rglob("*.part")) == []


async def test_group_commit_publishes_each_file_and_isolates_failures(tmp_path: Path) -> None:
    """Bodies handed over together are written in one batch; one bad target does not sink the rest."""
    from neuromorpho_fetch.download import Publisher

    publisher = Publisher()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder must be")
    targets = [tmp_path / "a" / f"n{i}.CNG.swc" for i in range(20)] + [blocked / "x.CNG.swc"]
    bodies = [[f"1 1 0 0 0 1 -{i}\n".encode()] for i in range(len(targets))]
    results = await asyncio.gather(
        *(
            publisher.publish(body, target, f"u{i}")
            for i, (body, target) in enumerate(zip(bodies, targets, strict=True))
        ),
        return_exceptions=True,
    )
    await publisher.aclose()
    assert results[:-1] == [hashlib.sha256(body[0]).hexdigest() for body in bodies[:-1]]  # hashed there
    assert isinstance(results[-1], DiskError)
    for body, target in zip(bodies[:-1], targets[:-1], strict=True):
        assert target.read_bytes() == body[0]
    assert list(tmp_path.rglob("*.part")) == []


async def test_a_body_handed_over_as_the_last_drainer_finishes_is_written(tmp_path: Path) -> None:
    """A drainer that has emptied the queue and returned is done at once, but leaves the publisher's set
    only in a later callback; a body handed over in between (another worker's callback in the same loop
    iteration) must still get a drainer. Counting the finished one left it queued with none, and the run
    waiting for it forever: a benchmark run hung so, at 999 of 1,000 files. The set is put in that state
    directly (a finished task in it), since the loop's callback order cannot be arranged from outside."""
    from neuromorpho_fetch.download import Publisher

    publisher = Publisher()
    finished = asyncio.ensure_future(asyncio.sleep(0))
    await finished
    publisher._drainers = {finished} | {asyncio.ensure_future(asyncio.sleep(0))}  # both lanes "taken"
    await asyncio.sleep(0)
    body = b"1 1 0 0 0 1 -1\n"
    digest = await asyncio.wait_for(publisher.publish([body], tmp_path / "b.swc", "b"), 10)
    assert digest == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "b.swc").read_bytes() == body
    await asyncio.wait_for(publisher.aclose(), 10)


async def test_many_concurrent_small_downloads_all_land(start: Start, tmp_path: Path) -> None:
    emu = start()
    async with client(emu, concurrency=16, rate=10_000) as nm:
        neurons = [n async for n in nm.select(archive="Siegert")][:60]
        results = await asyncio.gather(*(nm.download(n, Version.CNG, tmp_path) for n in neurons))
    for neuron, result in zip(neurons, results, strict=True):
        served = emu.catalogue.file_for(neuron.id, "CNG")
        assert served is not None and result.path.read_bytes() == served.body
    assert list(tmp_path.rglob("*.part")) == []
