"""A server that sends more than its ``Content-Length``: the declared bytes are only the start of the file.

Found when the emulator's files became realistic (issue 18): with half the length declared and the
whole body sent, the cut can fall in a sample's last column, leaving valid SWC that every check passes,
and the truncated file was recorded as whole. The bytes past the declared end are on the connection
when the body's last ones are; they must make the transfer a damaged one (retried), never a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neuromorpho_fetch import NeuroMorpho
from neuromorpho_fetch.errors import BadResponseError

pytestmark = pytest.mark.system

#: Valid SWC up to the declared length (it ends on a whole sample line), and more samples after it.
HEAD = b"# a header\n1 1 0 0 0 5 -1\n2 3 1 0 0 1 1\n"
MORE = b"3 3 2 0 0 1 2\n4 3 3 0 0 1 3\n"


class Overrunning:
    """Answers every GET with ``Content-Length: len(HEAD)`` and ``HEAD + MORE`` in one write, as many
    times as asked, the headers in the same write or (``split``) in one of their own before it, so the
    client has the response in hand when the body and the bytes past it arrive; counts the requests."""

    def __init__(self, split: bool) -> None:
        self.split = split
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if not request:
                    break
                self.requests += 1
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(HEAD)}\r\nContent-Type: text/plain\r\n\r\n"
                if self.split:
                    writer.write(head.encode())
                    await writer.drain()
                    await asyncio.sleep(0.05)  # a separate segment; the test holds either way
                    writer.write(HEAD + MORE)
                else:
                    writer.write(head.encode() + HEAD + MORE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture(params=[False, True], ids=["one-write", "headers-first"])
async def overrunning(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Overrunning, str]]:
    server = Overrunning(split=request.param)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_body_longer_than_its_content_length_is_never_a_file(
    overrunning: tuple[Overrunning, str], tmp_path: Path
) -> None:
    server, base = overrunning
    target = tmp_path / "a.CNG.swc"
    async with NeuroMorpho(base_url=base, retries=2, retry_wait=0.01, rate=1000) as nm:
        with pytest.raises(BadResponseError, match="Content-Length"):
            await nm.fetch_file(f"{base}/dableFiles/x/CNG%20version/a.CNG.swc", target, check_swc=True)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left either
    assert server.requests == 3  # a damaged transfer is retried (two retries)
