"""neuromorphopy's documented flow, run as written against the emulator (issue 18's acceptance).

neuromorphopy (kpeez/neuromorphopy, the PyPI release in the test extra) documents one flow in its README:
write a query file (``filters:`` field -> values), then ``neuromorpho fields``, ``neuromorpho preview
query.yaml`` and ``neuromorpho download query.yaml --output-dir DIR``. Its commands are invoked here
in-process through its own Typer app, with the README's arguments. The one change is the server's
address: its three module constants (``NEUROMORPHO``, ``NEUROMORPHO_API``, ``NEURON_INFO``, bound by
name in each module that imports them) get ``https://neuromorpho.org`` replaced by
``https://neuromorpho.org:<port>``, a name that resolves to the emulator (see conftest), exactly the
replacement the seed tests make in their cells. Its TLS code is untouched: it turns verification off and
lowers the security level to 1, so it connects in both ``legacy-dh`` and ``modern`` modes.

What its code asks the server, read from its source (0.3.3): ``/api/neuron/fields`` and
``/api/neuron/fields/{field}`` to validate the query; ``/api/neuron/select?q=archive:Siegert`` with
``page``/``size`` (one request of size 1 for the count, then pages of 100); for every neuron the HTML page
``/neuron_info.jsp?neuron_name=<name>``, scraped for the ``Morphology File (Standardized)`` link
(reference A8); then that ``/dableFiles/...`` URL, whose ``response.text`` it writes to
``downloads/<name>.swc``. The .jsp scraping is what the Terms of Use forbid (reference A9.1); the emulator
serves the page so that tools written against it work, and counts every request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import morphio
import neuromorphopy.api as nmpy_api
import neuromorphopy.cli as nmpy_cli
import neuromorphopy.io.swc as nmpy_swc
import neuromorphopy.query as nmpy_query
import neuromorphopy.utils as nmpy_utils
import neuromorphopy.utils.api_utils as nmpy_api_utils
import pandas as pd
import pytest
from typer.testing import CliRunner

from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.swcread import read_swc

pytestmark = pytest.mark.system  # a served emulator over real sockets, TLS in both modes

REAL = "https://neuromorpho.org"
CONSTANTS = ("NEUROMORPHO", "NEUROMORPHO_API", "NEURON_INFO")

#: The README's query file, with Siegert's archive as its one filter.
QUERY = """\
filters:
  archive: ["Siegert"]
"""


@pytest.fixture
def nmpy_host(real_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """neuromorphopy pointed at ``https://neuromorpho.org:<port>``: only the host in its constants."""
    # Each of its modules binds the constants by name at import, so each gets the new host.
    modules = (nmpy_api_utils, nmpy_utils, nmpy_api, nmpy_query, nmpy_swc)
    for module in modules:
        for name in CONSTANTS:
            if hasattr(module, name):
                value = getattr(module, name)
                assert value.startswith(REAL)
                monkeypatch.setattr(module, name, value.replace(REAL, real_host, 1))
    caches = (
        nmpy_query.QueryFields.get_fields,
        nmpy_query.QueryFields.get_values,
        nmpy_query.QueryConfig.get_valid_fields,
        nmpy_query.QueryConfig.get_field_values,
    )
    for cached in caches:  # its lru_caches hold the answers of the previous module's server
        cached.cache_clear()
    yield real_host
    for cached in caches:
        cached.cache_clear()
    logger = logging.getLogger("neuromorphopy")  # its CLI adds a log-file handler on every download
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def neuromorpho(*args: str) -> str:
    """``neuromorpho ARGS`` (its console script is ``neuromorphopy.cli:main``, i.e. this Typer app)."""
    result = CliRunner().invoke(nmpy_cli.app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def table_row(line: str) -> list[str]:
    """The cells of one line of a rich table (``│ a │ b │``)."""
    return [cell.strip() for cell in line.strip().strip("│").split("│")] if line.startswith("│") else []


def siegert(emulator: Emulator) -> dict[str, int]:
    """Siegert's neurons in the emulator's catalogue, name -> id."""
    records = (emulator.catalogue.record(i) for i in emulator.catalogue.neuron_ids())
    return {r["neuron_name"]: int(r["neuron_id"]) for r in records if r and r["archive"] == "Siegert"}


def test_fields_and_preview(emulator: Emulator, nmpy_host: str, tmp_path: Path) -> None:
    """``neuromorpho fields``, ``neuromorpho fields archive`` and ``neuromorpho preview query.yaml``."""
    query = tmp_path / "query.yaml"
    query.write_text(QUERY)
    assert "archive" in neuromorpho("fields")
    assert "Siegert" in neuromorpho("fields", "archive")
    preview = neuromorpho("preview", str(query))
    rows = {cells[0]: cells[1] for cells in map(table_row, preview.splitlines()) if len(cells) == 2}
    assert rows["Total neurons"] == str(len(siegert(emulator)))  # its count request (size=1)
    assert rows["Sample neurons"] in siegert(emulator)


def test_download_every_siegert_file(emulator: Emulator, nmpy_host: str, tmp_path: Path) -> None:
    """``neuromorpho download query.yaml --output-dir DIR``: every Siegert neuron's CNG file arrives with
    the bytes the emulator serves, loads in our reader and in MorphIO, and the metadata lists them all.

    Its exit code alone proves nothing: it logs a failed file and carries on (exit 0 with no file written
    under ``--jsp 403``), so every file is checked."""
    names = siegert(emulator)
    assert len(names) == 140
    query = tmp_path / "query.yaml"
    query.write_text(QUERY)
    out = tmp_path / "data"
    emulator.reset()
    neuromorpho("download", str(query), "--output-dir", str(out))

    metadata = pd.read_csv(out / "metadata.csv")
    assert sorted(metadata["neuron_name"]) == sorted(names)
    got = {p.stem: p for p in (out / "downloads").glob("*.swc")}
    assert sorted(got) == sorted(names)
    morphio.set_raise_warnings(True)  # a warning (malformed soma, type change) fails the load
    try:
        for name, neuron_id in names.items():
            served = emulator.catalogue.file_for(neuron_id, "CNG")
            assert served is not None
            body = got[name].read_bytes()
            assert body == served.body, name
            points = read_swc(got[name]).points
            assert len(points) == sum(1 for line in body.splitlines() if line.strip()[:1] not in (b"", b"#"))
            assert len(morphio.Morphology(str(got[name])).root_sections) > 0, name
    finally:
        morphio.set_raise_warnings(False)

    stats = emulator.stats()
    # One HTML page per neuron: its scraper's route to the file link (forbidden by the Terms, A9.1).
    assert stats["jsp_requests"] == len(names)
    assert stats["file_requests"] == len(names)
