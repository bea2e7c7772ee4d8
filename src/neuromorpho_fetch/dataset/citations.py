"""``CITATION.md`` and ``references.bib`` at the mirror's root, from the mirrored records alone.

NeuroMorpho.Org's terms of use (reference E, [TOU]) ask for three citations: the original publication
of each reconstruction (the record's ``reference_pmid``/``reference_doi``), the resource itself
(RRID:SCR_002145), and its reference paper, Tecuatl et al. 2024, doi:10.1096/fba.2024-00048; the
founding paper (Ascoli et al. 2007) is cited with it (reference F). Only neurons whose files are present
count: a paper cites what it could use. No network
call resolves a DOI: an entry carries what the records give (DOI, PMID, which archives, how many
neurons), which is enough for a reference manager to fetch the rest.

Publications: a record's ``reference_doi`` and ``reference_pmid`` are parallel lists in the real record
(A7: two PMIDs, two DOIs, same order), so they are paired by position when the lengths agree; a PMID
with no DOI becomes its own entry. DOIs compare case-insensitively (they are, by the DOI handbook) and
lose a ``https://doi.org/`` or ``doi:`` prefix; values that are not DOIs/PMIDs (``Not reported``, empty)
are left out.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, sweep_temp
from ..jsonio import loads
from ..paths import BIB_FILE, CITATION_FILE

RESOURCE_RRID = "RRID:SCR_002145"
TECUATL_2024_DOI = "10.1096/fba.2024-00048"
ASCOLI_2007_DOI = "10.1523/JNEUROSCI.2055-07.2007"

_DOI = re.compile(r"10\.\d{4,9}(?:\.\d+)*/\S+")
_PMID = re.compile(r"\d{1,9}")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


@dataclass(slots=True)
class Publication:
    """One original publication cited by mirrored neurons."""

    doi: str | None
    pmid: str | None
    archives: dict[str, int] = field(default_factory=dict)  # archive → neurons citing it

    @property
    def key(self) -> str:
        """A BibTeX key that is unique per publication and safe in every BibTeX dialect."""
        raw = f"doi_{self.doi}" if self.doi else f"pmid_{self.pmid}"
        return re.sub(r"[^A-Za-z0-9_]+", "_", raw.lower()).strip("_")

    @property
    def neurons(self) -> int:
        return sum(self.archives.values())


def _doi(value: Any) -> str | None:
    text = _DOI_PREFIX.sub("", str(value).strip()) if value is not None else ""
    return text if _DOI.fullmatch(text) else None


def _pmid(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if _PMID.fullmatch(text) else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def publications_of(dois: Any, pmids: Any) -> list[tuple[str | None, str | None]]:
    """The ``(doi, pmid)`` publications one record cites (pure; see the module docstring)."""
    doi_list, pmid_list = _as_list(dois), _as_list(pmids)
    paired = len(doi_list) == len(pmid_list)
    out: dict[tuple[str | None, str | None], None] = {}
    used_pmids: set[str] = set()
    for i, raw in enumerate(doi_list):
        doi = _doi(raw)
        if doi is None:
            continue
        pmid = _pmid(pmid_list[i]) if paired else None
        if pmid:
            used_pmids.add(pmid)
        out[(doi, pmid)] = None
    for raw in pmid_list:
        pmid = _pmid(raw)
        if pmid and pmid not in used_pmids:
            out[(None, pmid)] = None
    return list(out)


def collect_publications(groups: Iterable[tuple[str, Any, Any, int]]) -> list[Publication]:
    """Merge ``(archive, reference_doi, reference_pmid, neurons)`` groups into publications.

    One entry per distinct DOI (its PMID taken from any record that pairs them), then one per PMID that
    no DOI entry carries. Sorted by neurons (most cited first), then key.
    """
    by_doi: dict[str, Publication] = {}
    by_pmid: dict[str, Publication] = {}
    for archive, dois, pmids, count in groups:
        for doi, pmid in publications_of(dois, pmids):
            if doi is not None:
                pub = by_doi.setdefault(doi.lower(), Publication(doi, pmid))
                pub.pmid = pub.pmid or pmid
            else:
                assert pmid is not None
                pub = by_pmid.setdefault(pmid, Publication(None, pmid))
            pub.archives[archive] = pub.archives.get(archive, 0) + count
    doi_pmids = {p.pmid for p in by_doi.values() if p.pmid}
    pubs = list(by_doi.values())
    for pmid, pub in by_pmid.items():
        if pmid in doi_pmids:  # the same paper cited by PMID only in some records
            owner = next(p for p in by_doi.values() if p.pmid == pmid)
            for archive, n in pub.archives.items():
                owner.archives[archive] = owner.archives.get(archive, 0) + n
        else:
            pubs.append(pub)
    return sorted(pubs, key=lambda p: (-p.neurons, p.key))


def _bib(text: str) -> str:
    """A BibTeX field value: braces balanced away, LaTeX specials escaped."""
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"([&%$#_])", r"\\\1", text)


def _verbatim(text: str) -> str:
    """A DOI or URL field (read verbatim by biblatex and the url package): only braces and
    backslashes, which would unbalance the entry, are removed."""
    return text.replace("{", "").replace("}", "").replace("\\", "")


def _where(pub: Publication) -> str:
    return "; ".join(f"{archive}: {n}" for archive, n in sorted(pub.archives.items()))


#: The resource and the two papers NeuroMorpho.Org asks to be cited (reference E [TOU], F), complete
#: for any BibTeX style (author, title, journal, year, volume, number, pages, doi).
REQUIRED_BIBTEX = f"""@misc{{neuromorpho_org,
  author = {{{{NeuroMorpho.Org}}}},
  title = {{{{NeuroMorpho.Org}}: a centrally curated inventory of digitally reconstructed neurons and glia}},
  url = {{https://neuromorpho.org}},
  note = {{{RESOURCE_RRID}}},
}}

@article{{tecuatl_2024_neuromorpho,
  author = {{Tecuatl, Carolina and Ljungquist, Bengt and Ascoli, Giorgio A.}},
  title = {{Accelerating the continuous community sharing of digital neuromorphology data}},
  journal = {{FASEB BioAdvances}},
  year = {{2024}},
  volume = {{6}},
  number = {{7}},
  pages = {{207--221}},
  doi = {{{TECUATL_2024_DOI}}},
  url = {{https://doi.org/{TECUATL_2024_DOI}}},
}}

@article{{ascoli_2007_neuromorpho,
  author = {{Ascoli, Giorgio A. and Donohue, Duncan E. and Halavi, Maryam}},
  title = {{{{NeuroMorpho.Org}}: a central resource for neuronal morphologies}},
  journal = {{Journal of Neuroscience}},
  year = {{2007}},
  volume = {{27}},
  number = {{35}},
  pages = {{9247--9251}},
  doi = {{{ASCOLI_2007_DOI}}},
  url = {{https://doi.org/{ASCOLI_2007_DOI}}},
}}
"""


def render_bibtex(pubs: Sequence[Publication]) -> str:
    """``references.bib``: the resource and its two papers, then one entry per original publication.

    An original paper carries what the records give: its DOI (and URL, both verbatim), its PMID (a
    ``pmid`` field, and in the title: ``eprint`` would print as arXiv in the standard styles) and, in
    the non-printing ``annote`` field, which archives cite it and for how many neurons; a ``title``
    that names the identifiers keeps the standard styles (which want one) from failing on it.
    """
    parts = [REQUIRED_BIBTEX]
    for pub in pubs:
        label = " ".join(
            ([f"doi:{_bib(pub.doi)}"] if pub.doi else []) + ([f"{{PMID}} {pub.pmid}"] if pub.pmid else [])
        )
        lines = [f"@misc{{{pub.key},", f"  title = {{Original publication, {label}}},"]
        if pub.doi:
            doi = _verbatim(pub.doi)
            lines += [f"  doi = {{{doi}}},", f"  url = {{https://doi.org/{doi}}},"]
        if pub.pmid:
            lines.append(f"  pmid = {{{pub.pmid}}},")
        lines.append(f"  annote = {{Cited by {pub.neurons} mirrored neurons ({_bib(_where(pub))})}},")
        parts.append("\n".join(lines) + "\n}\n")
    return "\n".join(parts)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(pubs: Sequence[Publication], held: str, *, title: str = "Citing this mirror") -> str:
    """``CITATION.md``: what to cite and why, and the publications table. ``held`` says what the
    folder holds (:meth:`~.coverage.Holdings.sentence`); ``None``-free so a subset can say its own."""
    lines = [
        f"# {title}",
        "",
        f"From NeuroMorpho.Org: {held}. Its terms of use ask for these citations when you use them:",
        "",
        f"1. **The resource**: NeuroMorpho.Org, {RESOURCE_RRID}, https://neuromorpho.org",
        "2. **Its reference paper**: Tecuatl C, Ljungquist B, Ascoli GA (2024). Accelerating the continuous",
        "   community sharing of digital neuromorphology data. FASEB BioAdvances 6(7):207-221,",
        f"   doi:{TECUATL_2024_DOI}",
        "3. **Its founding paper**, which NeuroMorpho.Org asks to be cited with it: Ascoli GA, Donohue DE,",
        "   Halavi M (2007). NeuroMorpho.Org: a central resource for neuronal morphologies.",
        f"   J Neurosci 27(35):9247-9251, doi:{ASCOLI_2007_DOI}",
        "4. **The original publication of each reconstruction you use** (below; the records' own",
        "   `reference_doi` / `reference_pmid`; `neuromorpho-fetch-find ... --cite` prints them for the",
        "   neurons a query selects).",
        "",
        "`references.bib` holds the same entries for a reference manager (generated offline: DOIs are",
        "not resolved, so original papers carry their DOI/PMID; archive and neuron counts are in `annote`).",
        "",
        "| publication | PMID | archive: neurons |",
        "|---|---|---|",
    ]
    for pub in pubs:
        doi = f"[doi:{_md(pub.doi)}](https://doi.org/{_md(pub.doi)})" if pub.doi else "(no DOI)"
        lines.append(f"| {doi} | {pub.pmid or ''} | {_md(_where(pub))} |")
    if not pubs:
        lines.append("| (no record names a publication) | | |")
    return "\n".join(lines) + "\n"


#: Publications of the neurons whose files are present (what the folder can be used for), grouped by
#: the two list columns so memory holds one row per distinct reference pair, not one per neuron.
_GROUPS = """
SELECT archive, reference_doi, reference_pmid, COUNT(*) FROM neurons n WHERE gone_upstream = 0
AND EXISTS (SELECT 1 FROM files f WHERE f.neuron_id = n.neuron_id) {ids}
GROUP BY archive, reference_doi, reference_pmid
"""


def publications(conn: sqlite3.Connection, ids: Sequence[int] | None = None) -> list[Publication]:
    """The original publications of the held neurons (all, or those of ``ids``)."""
    if ids is None:
        rows = conn.execute(_GROUPS.format(ids=""))
    else:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS cite_ids (neuron_id INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM temp.cite_ids")
        conn.executemany("INSERT OR IGNORE INTO temp.cite_ids VALUES (?)", ((i,) for i in ids))
        rows = conn.execute(_GROUPS.format(ids="AND neuron_id IN (SELECT neuron_id FROM temp.cite_ids)"))
    return collect_publications((a, _decode(d), _decode(p), n) for a, d, p, n in rows)


def write_citations(conn: sqlite3.Connection, root: Path, held: str) -> int:
    """Write both files from the catalogue; returns the publication count."""
    pubs = publications(conn)
    for name in (CITATION_FILE, BIB_FILE):
        sweep_temp(root, name)
    atomic_write(root / BIB_FILE, render_bibtex(pubs).encode("utf-8"))
    atomic_write(root / CITATION_FILE, render_markdown(pubs, held).encode("utf-8"))
    return len(pubs)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return loads(value)
        except ValueError:
            return value
    return value
