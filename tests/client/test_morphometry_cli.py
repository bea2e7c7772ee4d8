"""Issue 18 item 4's acceptance through the CLI: ``--with-morphometry`` over N neurons makes at most
ceil(N/50) plus a few morphometry requests (the emulator's own counters), and still gets every record when
the batch route answers 400.

The emulator counts API requests, not routes; a run without ``--with-morphometry`` makes the same listing
requests, so the difference between the two runs is what the morphometry cost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from neuromorpho_fetch import cli
from neuromorpho_fetch.emulator import Catalogue, Emulator
from neuromorpho_fetch.paths import MirrorPaths, archive_folder

from .conftest import Start

pytestmark = pytest.mark.system

#: The largest archive of the 600-neuron test catalogue after Allen's: more than one batch of 50.
ARCHIVE = "Amaral"


def mirror(emu: Emulator, out: Path, *extra: str) -> int:
    """One CLI run over ``ARCHIVE`` (in this process); the API requests it made."""
    emu.reset()
    args = ["--base-url", emu.base_url, "--out", str(out), "--archive", ARCHIVE, "--no-progress", "-q"]
    args += ["--rate", "2000", "--concurrency", "8", "--retry-wait", "0.01", *extra]
    assert cli.main(args) == 0
    requests: int = emu.stats()["api_requests"]
    return requests


@pytest.mark.parametrize("batch", ["ok", "400"])
def test_with_morphometry_asks_50_neurons_a_request(
    start: Start, catalogue: Catalogue, tmp_path: Path, batch: str
) -> None:
    emu = start(batch_select=batch, file_kb=2)
    plain = mirror(emu, tmp_path / "plain")
    with_morphometry = mirror(emu, tmp_path / "morph", "--with-morphometry")
    ids = {i for i in catalogue.neuron_ids() if (catalogue.record(i) or {}).get("archive") == ARCHIVE}
    n = len(ids)
    assert n > 50  # more than one batch
    asked = with_morphometry - plain
    if batch == "ok":
        assert asked <= math.ceil(n / 50) + 2, (asked, n)
    else:  # every batch refused (400): one try per batch at most, then one request per neuron
        assert asked <= n + 2 * math.ceil(n / 50), (asked, n)
    lines = MirrorPaths(tmp_path / "morph").morphometry(archive_folder(ARCHIVE)).read_text(encoding="utf-8")
    got = {json.loads(line)["neuron_id"] for line in lines.splitlines()}
    assert got == {i for i in ids if catalogue.has_morphometry(i)}
