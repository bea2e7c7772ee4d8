"""``CITATION.md`` and ``references.bib`` at the mirror's root, from the mirrored records alone.

NeuroMorpho.Org's terms of use (reference E, [TOU]) ask for three citations: the original publication
of each reconstruction (the record's ``reference_pmid``/``reference_doi``), the resource itself
(RRID:SCR_002145), and its reference paper, Tecuatl et al. 2024, doi:10.1096/fba.2024-00048. No network
call resolves a DOI: an entry carries what the records give (DOI, PMID, which archives, how many
neurons), which is enough for a reference manager to fetch the rest.

Publications: a record's ``reference_doi`` and ``reference_pmid`` are parallel lists in the real record
(A7: two PMIDs, two DOIs, same order), so they are paired by position when the lengths agree; a PMID
with no DOI becomes its own entry. DOIs compare case-insensitively (they are, by the DOI handbook) and
lose a ``https://doi.org/`` or ``doi:`` prefix; values that are not DOIs/PMIDs (``Not reported``, empty)
are left out.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, sweep_temp
from ..paths import BIB_FILE, CITATION_FILE

__all__ = [
    "RESOURCE_RRID",
    "TECUATL_2024_DOI",
    "Publication",
    "collect_publications",
    "publications_of",
    "render_bibtex",
    "render_markdown",
    "write_citations",
]

RESOURCE_RRID = "RRID:SCR_002145"
TECUATL_2024_DOI = "10.1096/fba.2024-00048"

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


def _where(pub: Publication) -> str:
    return "; ".join(f"{archive}: {n}" for archive, n in sorted(pub.archives.items()))


def render_bibtex(pubs: Sequence[Publication]) -> str:
    """``references.bib``: the resource, its reference paper, then one entry per publication."""
    parts = [
        "@misc{neuromorpho_org,\n"
        "  title = {NeuroMorpho.Org},\n"
        "  howpublished = {\\url{https://neuromorpho.org}},\n"
        f"  note = {{{RESOURCE_RRID}}},\n"
        "}\n",
        "@article{tecuatl_2024_neuromorpho,\n"
        "  author = {Tecuatl and others},\n"
        "  journal = {FASEB BioAdvances},\n"
        "  year = {2024},\n"
        f"  doi = {{{TECUATL_2024_DOI}}},\n"
        f"  url = {{https://doi.org/{TECUATL_2024_DOI}}},\n"
        "  note = {Reference paper of NeuroMorpho.Org, required by its terms of use},\n"
        "}\n",
    ]
    for pub in pubs:
        lines = [f"@misc{{{pub.key},"]
        if pub.doi:
            lines += [f"  doi = {{{_bib(pub.doi)}}},", f"  url = {{https://doi.org/{_bib(pub.doi)}}},"]
        if pub.pmid:
            lines += [f"  eprint = {{{pub.pmid}}},", "  eprinttype = {pubmed},"]
        lines.append(
            f"  note = {{Original publication of {pub.neurons} mirrored neurons ({_bib(_where(pub))})}},"
        )
        parts.append("\n".join(lines) + "\n}\n")
    return "\n".join(parts)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(pubs: Sequence[Publication], neurons: int) -> str:
    """``CITATION.md``: what to cite and why, and the publications table."""
    lines = [
        "# Citing this mirror",
        "",
        f"This folder holds {neurons} neuron reconstructions from NeuroMorpho.Org. Its terms of use ask",
        "for three citations when you use them:",
        "",
        f"1. **The resource**: NeuroMorpho.Org, {RESOURCE_RRID}, https://neuromorpho.org",
        f"2. **Its reference paper**: Tecuatl et al. 2024, FASEB BioAdvances, doi:{TECUATL_2024_DOI}",
        "3. **The original publication of each reconstruction you use** (below; the records' own",
        "   `reference_doi` / `reference_pmid`; select your subset in `catalogue.sqlite` to narrow it).",
        "",
        "`references.bib` holds the same entries for a reference manager (generated offline: DOIs are",
        "not resolved, so entries carry the DOI/PMID only).",
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


def write_citations(conn: sqlite3.Connection, root: Path) -> int:
    """Write both files from the catalogue (neurons not gone upstream); returns the publication count.

    Grouped in SQL by the two list columns, so memory holds one row per distinct reference pair, not
    one per neuron.
    """
    rows = conn.execute(
        "SELECT archive, reference_doi, reference_pmid, COUNT(*) FROM neurons WHERE gone_upstream=0 "
        "GROUP BY archive, reference_doi, reference_pmid"
    )
    groups = ((a, _decode(d), _decode(p), n) for a, d, p, n in rows)
    pubs = collect_publications(groups)
    (neurons,) = conn.execute("SELECT COUNT(*) FROM neurons WHERE gone_upstream=0").fetchone()
    for name in (CITATION_FILE, BIB_FILE):
        sweep_temp(root, name)
    atomic_write(root / BIB_FILE, render_bibtex(pubs).encode("utf-8"))
    atomic_write(root / CITATION_FILE, render_markdown(pubs, neurons).encode("utf-8"))
    return len(pubs)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
