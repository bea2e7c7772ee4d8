"""A whole mirror run through the CLI sends no ``neuron_info.jsp`` request (Terms of Use, reference A9.1).

The emulator serves the .jsp page (as the real server does) and counts every request for it, so this
would catch a client that scraped the page for file links instead of building them from the API record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neuromorpho_fetch import cli
from neuromorpho_fetch.emulator import Emulator

FAST = [
    "--rate",
    "2000",
    "--concurrency",
    "8",
    "--retries",
    "2",
    "--retry-wait",
    "0.01",
    "--cool-down",
    "0.05",
]


@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
def test_a_mirror_run_sends_zero_jsp_requests(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.reset()
    out = tmp_path / "mirror"
    args = ["--base-url", emulator.base_url, "--out", str(out), "--no-progress", *FAST]
    args += ["--ca-file", str(emulator.ca_file), "--archive", "Siegert", "--version", "both"]
    args += ["--with-logs", "--with-images", "--with-morphometry"]
    assert cli.main(args) == 0, capsys.readouterr().err
    stats = emulator.stats()
    siegert = dict(emulator.catalogue.archives())["Siegert"]
    assert stats["file_requests"] >= 2 * siegert  # the run really fetched the archive's files
    assert stats["jsp_requests"] == 0
    assert list(out.rglob("CB_CKp25_2w_F_Animal01_Trace009.swc"))  # the recorded original, mirrored
