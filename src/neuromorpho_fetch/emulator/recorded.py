"""What the real server was *seen* to serve (reference A7, A8 and E), served verbatim by the emulator.

Everything else in the catalogue is synthetic; these few records and files are the ones public documents
show from the live server, so code written against those documents (the seed package's tutorial, the
2026 notebook) runs against the emulator unmodified:

* neuron id 1 is ``cnic_001`` of ``Wearne_Hof``, field for field as in A7 (the tutorial's first call);
  its morphometry as recorded in E (``fragmentation`` 1274.0, so its CNG file has 1,274 points), and the
  pre-6.1 file its ``note`` links to;
* the Siegert archive holds ``CB_CKp25_2w_F_Animal01_Trace001`` .. ``_Trace015`` (the tutorial's wildcard
  select answered exactly these 15), with SWC originals whose data lines start with a space (the tutorial
  reads them with ``pandas.read_csv(delimiter=" ")``); ``Trace009``'s has 2,042 lines (E).

Values the documents do not show (the Trace neurons' metadata, cnic_001's other morphometry, the file
bodies past the recorded head) are synthetic and marked so in docs/emulator.md.
"""

from __future__ import annotations

import random
from typing import Any

from . import morphology, neurons

#: Record 1, key order and values as served (reference A7; E confirms it in 2026). ``_links`` are added by
#: the server, like every record's.
CNIC_001: dict[str, Any] = {
    "neuron_id": 1,
    "neuron_name": "cnic_001",
    "archive": "Wearne_Hof",
    "note": (
        "When originally released, this reconstruction had been incompletely processed, and this issue was "
        "fixed in release 6.1 (May 2015). The pre-6.1 version of the processed file is available for "
        'download <a href=" dableFiles/previous/v6.1/wearne_hof/cnic_001.CNG.swc ">here</a>.'
    ),
    "age_scale": "Year",
    "gender": "Male/Female",
    "age_classification": "old",
    "brain_region": ["neocortex", "prefrontal", "layer 3"],
    "cell_type": ["Local projecting", "pyramidal", "principal cell"],
    "species": "monkey",
    "strain": "Rhesus",
    "scientific_name": "Macaca mulatta",
    "stain": "lucifer yellow",
    "experiment_condition": ["Control"],
    "protocol": "in vivo",
    "slicing_direction": "custom",
    "reconstruction_software": "Neurozoom",
    "objective_type": "Not reported",
    "original_format": "Neurozoom.swc",
    "domain": "Dendrites, Soma, No Axon",
    "attributes": "Diameter, 3D, Angles",
    "magnification": "100",
    "upload_date": "2006-08-01",
    "deposition_date": "2005-12-31",
    "shrinkage_reported": "Reported",
    "shrinkage_corrected": "Not Corrected",
    "reported_value": None,
    "reported_xy": None,
    "reported_z": None,
    "corrected_value": None,
    "corrected_xy": None,
    "corrected_z": None,
    "soma_surface": "834.0",
    "surface": "8842.91",
    "volume": "4725.89",
    "slicing_thickness": "400",
    "min_age": "24.0",
    "max_age": "25.0",
    "min_weight": "4500.0",
    "max_weight": "10000.0",
    "png_url": "http://neuromorpho.org/images/imageFiles/Wearne_Hof/cnic_001.png",
    "reference_pmid": ["12204204", "12902394"],
    "reference_doi": ["10.1016/S0306-4522(02)00305-6", "10.1093/cercor/13.9.950"],
    "physical_Integrity": "Dendrites Moderate",
}

#: ``/api/morphometry/id/1``: the recorded figures (E) exactly; the keys E does not show are synthetic
#: but consistent (numbers, never strings).
CNIC_001_MORPHOMETRY: dict[str, Any] = {
    "neuron_id": 1, "neuron_name": "cnic_001", "surface": 8842.91, "volume": 4725.89, "soma_Surface": 834.0,
    "n_stems": 6.0, "n_bifs": 47.0, "n_branch": 100.0, "width": 287.36, "height": 393.52, "depth": 111.83,
    "diameter": 0.6131, "length": 4911.5, "eucDistance": 276.13, "pathDistance": 364.64,
    "branch_Order": 9.0, "contraction": 0.8857, "fragmentation": 1274.0, "partition_asymmetry": 0.4938,
    "pk_classic": 2.1157, "bif_ampl_local": 74.432, "bif_ampl_remote": 55.211, "fractal_Dim": 1.03411,
}  # fmt: skip

#: Points in cnic_001's CNG file (its ``fragmentation``; navis' docstring also says 1274 nodes).
CNIC_001_POINTS = 1274

#: The verbatim head of ``cnic_001.CNG.swc`` (reference A8, downloaded 2026-04-30).
CNIC_001_CNG_HEAD = (
    "# Original file cnic_001.swc edited using StdSwc version 1.31 on 9/25/13.\n"
    "# Irregularities and fixes documented in cnic_001.swc.std.\n"
    "#\n"
    "1 1 0.0 0.0 0.0 8.1498 -1\n"
    "2 1 0.67 8.12 0.0 8.1498 1\n"
    "3 1 -0.67 -8.12 0.0 8.1498 1\n"
    "4 3 1.84 8.82 -6.15 0.76016 1\n"
)

#: Where record 1's ``note`` points (relative to the site root): the file as released before 6.1.
PREVIOUS_V61_PATH = "/dableFiles/previous/v6.1/wearne_hof/cnic_001.CNG.swc"

SIEGERT_PREFIX = "CB_CKp25_2w_F_Animal01_"
#: The 15 names ``neuron_name:CB_CKp25_2w_F_Animal01_*`` selects on the real server (E, [TUT]).
SIEGERT_TRACES: tuple[str, ...] = tuple(f"{SIEGERT_PREFIX}Trace{k:03d}" for k in range(1, 16))
#: Lines of ``CB_CKp25_2w_F_Animal01_Trace009.swc`` in Source-Version (E).
TRACE009_LINES = 2042
#: ``original_format`` of the Trace neurons: the real value is not recorded; only that the originals are
#: ``.swc`` (inferred: Imaris FilamentTracer exports, the microglia lab's tool).
TRACE_FORMAT = ("Imaris", "Imaris.swc")


def original_format_extension(original_format: str | None) -> str | None:
    """The Source-Version file's extension: the suffix of ``original_format`` (``Neurozoom.swc`` -> swc).

    The emulator's own copy of the rule (reference A8); the client has its own, so the server our client
    is tested against shares no code with it.
    """
    if not original_format or "." not in original_format:
        return None
    ext = original_format.rsplit(".", 1)[1].strip()
    return ext or None


#: cnic_001's stems as (SWC type, bifurcations): six stems and 47 bifurcations, as recorded (E); the
#: first continues the recorded head (point 4 is a basal dendrite, type 3) and one is the apical.
_CNIC_TOPOLOGY = ((3, 9), (3, 7), (4, 13), (3, 6), (3, 6), (3, 6))
_CNIC_HEAD_POINT = (1.84, 8.82, -6.15, 0.76016)


def cnic_001_cng() -> bytes:
    """``cnic_001.CNG.swc``: the recorded header and first four points, then 1,270 grown points that
    continue point 4's dendrite (so no section changes type without a bifurcation) to a pyramidal cell
    with the recorded counts: 6 stems, 47 bifurcations, 100 branches, about 4,911 um of dendrite."""
    tree = neurons.grow(
        0xC01C, "pyramidal", CNIC_001["domain"], CNIC_001_POINTS, soma_radius=8.1498,
        head=_CNIC_HEAD_POINT, topology=_CNIC_TOPOLOGY, length=float(CNIC_001_MORPHOMETRY["length"]),
    )  # fmt: skip
    rest = morphology.swc_text(tree).split(b"\n", 4)[4]
    return CNIC_001_CNG_HEAD.encode("ascii") + rest


def cnic_001_previous() -> bytes:
    """The pre-6.1 release of the same file (content not recorded: the same points under an older header)."""
    body = cnic_001_cng().split(b"#\n", 1)[1]
    head = b"# Original file cnic_001.swc edited by Duncan Donohue using StdSwc version 1.31 on 2/27/08.\n#\n"
    return head + body


def trace_source(name: str) -> bytes:
    """The SWC original of one Trace neuron, a microglia: data lines only, each starting with a space (E).

    No comment lines: ``pandas.read_csv(delimiter=" ")`` in the tutorial parses the file as a table, which
    a ``#`` line with another number of fields would break.
    """
    k = int(name[-3:])
    nodes = TRACE009_LINES if k == 9 else random.Random(k).randint(900, 3200)
    tree = neurons.grow(0x51E6 + k, "microglia", "Processes", nodes)
    return morphology.swc_text(tree, lead=" ")
