"""The seed documents' code, run as written against the emulator (issue 8's acceptance test).

The code below is copied from the seed package's README quickstart and its executed tutorial
(``/work/shared/seeds``; rossbar/neuromorpho-api). The one change is the server's address:
``https://neuromorpho.org`` becomes ``https://neuromorpho.org:<port>``, a name that resolves to the
emulator (see conftest). Each snippet runs with ``exec`` in a fresh namespace, so what it computes is what
a user of those documents would see.

The tutorial imports plain ``requests``; its rendered output shows that failing with ``DH_KEY_TOO_SMALL``
against the legacy server (2023), which is what it does against ``legacy-dh`` too. The README's own
remedy, ``from neuromorpho_api import requestor as requests``, makes the same code work there; against
``modern`` TLS (the 2026 server, E) plain ``requests`` works.
"""

from __future__ import annotations

import ast
import random
from typing import Any

import pytest
import requests

from neuromorpho_fetch.emulator import Emulator

#: neuromorpho_api 0.2 warns at import that it is no longer needed (the DH key is gone in 2026, E).
pytestmark = pytest.mark.filterwarnings("ignore:.*neuromorpho_api package:DeprecationWarning")

#: README "Quickstart", its doctest lines.
QUICKSTART = [
    """
from neuromorpho_api import requestor as requests

neuron_endpoint = "https://neuromorpho.org/api/neuron/"
resp = requests.get(neuron_endpoint + "fields")
resp.json()
"""
]

#: The tutorial's code cells, verbatim and in order; a cell's last expression is its displayed output.
TUTORIAL = [
    "import requests",
    """
endpoint = "https://neuromorpho.org/api/"
r = requests.get(endpoint + "neuron/id/1")
# Check that the status_code is 200 and raise if not
r.raise_for_status()
data = r.json()
data
""",
    """
# Neuron name - note the `*` wildcard to select all neurons whose name matches
# this pattern
siegert_dataset = "CB_CKp25_2w_F_Animal01_*"

# The GET parameters
query_params = {"q": f"neuron_name:{siegert_dataset}"}

r = requests.get(endpoint + "neuron/select/", params=query_params)
# We let requests handle the URL construction
r.url
""",
    """
r.raise_for_status()  # Make sure the request was successful
data = r.json()["_embedded"]["neuronResources"]
f"Number of neurons matching query: {len(data)}"
""",
    """
# Individual neuron names
sorted(record["neuron_name"] for record in data)
""",
    """
import random
import string

# A general-ish URL template for accessing SWC data
swc_url_template = string.Template(
    "https://neuromorpho.org/dableFiles/$archive/$version/$fname.swc"
)
""",
    """
record = random.choice(data)
record["neuron_name"]
""",
    """
# Construct the SWC URL for the original (source) version of this specific neuron
swc_url = swc_url_template.substitute(
    archive=record["archive"].lower(),
    version="Source-Version",
    fname=record["neuron_name"],
)
swc_url
""",
    """
r = requests.get(swc_url)
r.raise_for_status()
""",
    """
import io
import pandas as pd

raw_data = io.BytesIO(r.content)
df = pd.read_csv(raw_data, delimiter=" ")
df
""",
]

#: The README's recommended alias for the legacy server, in place of the tutorial's ``import requests``.
WITH_REQUESTOR = ["from neuromorpho_api import requestor as requests", *TUTORIAL[1:]]

TRACES = [f"CB_CKp25_2w_F_Animal01_Trace{k:03d}" for k in range(1, 16)]


def run(cells: list[str], base: str, namespace: dict[str, Any] | None = None) -> list[Any]:
    """Run notebook cells with only the host changed, as Jupyter would; returns each cell's output."""
    namespace = {"__name__": "seed"} if namespace is None else namespace
    outputs: list[Any] = []
    for cell in cells:
        tree = ast.parse(cell.replace("https://neuromorpho.org", base))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        assert last is None or isinstance(last, ast.Expr)
        exec(compile(tree, "<seed>", "exec"), namespace)
        shown = (
            None if last is None else eval(compile(ast.Expression(last.value), "<seed>", "eval"), namespace)
        )
        outputs.append(shown)
    return outputs


def test_quickstart_fields(emulator: Emulator, real_host: str) -> None:
    (fields_json,) = run(QUICKSTART, real_host)
    fields = fields_json["Neuron Fields"]
    assert fields[:5] == ["neuron_id", "neuron_name", "archive", "age_scale", "gender"]
    assert len(fields) == 44


def check_tutorial(out: list[Any], real_host: str, emulator: Emulator) -> None:
    record_1, select_url, count, names, _, name, swc_url, _, df = out[1:]
    assert record_1["neuron_name"] == "cnic_001" and record_1["archive"] == "Wearne_Hof"
    assert select_url == f"{real_host}/api/neuron/select/?q=neuron_name%3ACB_CKp25_2w_F_Animal01_%2A"
    assert count == "Number of neurons matching query: 15"
    assert names == TRACES  # exactly the 15 recorded names
    assert swc_url == f"{real_host}/dableFiles/siegert/Source-Version/{name}.swc"
    lines = emulator.catalogue.file_for(emulator.catalogue.id_by_name(name) or 0, "source")
    assert lines is not None
    # pandas takes the first line as the header; every line starts with a space, so the first column is
    # empty (NaN) and the seven SWC columns follow.
    assert len(df) == len(lines.body.splitlines()) - 1 and df.shape[1] == 8
    assert df.iloc[:, 0].isna().all()
    if name.endswith("Trace009"):
        assert len(df) == 2041  # E: 2,042 lines


@pytest.mark.parametrize("choice", range(3))
def test_tutorial_with_the_readme_requestor(
    emulator: Emulator, real_host: str, choice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tutorial with the README's alias: works in both TLS modes (``random.choice`` made repeatable)."""
    monkeypatch.setattr(random, "choice", lambda seq: sorted(seq, key=lambda r: r["neuron_name"])[8 - choice])
    check_tutorial(run(WITH_REQUESTOR, real_host), real_host, emulator)


@pytest.mark.system
def test_tutorial_with_plain_requests(emulator: Emulator, real_host: str) -> None:
    """Plain ``requests``: DH_KEY_TOO_SMALL on the legacy server (the tutorial's recorded output), fine on
    the modern one (E: plain requests with certifi connects in 2026)."""
    if emulator.config.tls == "legacy-dh":
        with pytest.raises(requests.exceptions.SSLError, match=r"DH_KEY_TOO_SMALL|dh key too small"):
            run(TUTORIAL, real_host)
        return
    check_tutorial(run(TUTORIAL, real_host), real_host, emulator)
