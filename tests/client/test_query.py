"""Query building: quoting, OR within a field, AND across fields, wildcards, CLI terms."""

from __future__ import annotations

import pytest

from neuromorpho_fetch.errors import UsageError
from neuromorpho_fetch.query import Query, field_clause, format_value, split_values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rat", "rat"),
        ("Wearne_Hof", "Wearne_Hof"),
        ("H16-03-002", "H16-03-002"),
        ("entorhinal cortex", '"entorhinal cortex"'),  # unquoted would match only "cortex"
        ("layer 2,3", '"layer 2,3"'),
        ("a:b", '"a:b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("-negated", '"-negated"'),
        ("", '""'),
        ("CB_CKp25_2w_F_Animal01_*", "CB_CKp25_2w_F_Animal01_*"),
        ("cell?", "cell?"),
        ("layer 2*", "layer?2*"),  # quoting would make the star literal
        (17, "17"),
    ],
)
def test_format_value(value: str | int, expected: str) -> None:
    assert format_value(value) == expected


def test_lists_are_ored_with_commas() -> None:
    assert field_clause("species", ["rat", "mouse"]) == "species:rat,mouse"
    assert field_clause("brain_region", ["layer 3", "CA1"]) == 'brain_region:"layer 3",CA1'


def test_fields_are_anded_through_fq() -> None:
    query = Query.build(archive="Siegert", species=["rat", "mouse"], stain="lucifer yellow")
    assert query.params() == [
        ("q", "archive:Siegert"),
        ("fq", "species:rat,mouse"),
        ("fq", 'stain:"lucifer yellow"'),
    ]


def test_raw_q_keeps_criteria_in_fq() -> None:
    query = Query.build(q="species:cat,rat", fq=["strain:Macaque"], archive="Wearne_Hof")
    assert query.params() == [
        ("q", "species:cat,rat"),
        ("fq", "strain:Macaque"),
        ("fq", "archive:Wearne_Hof"),
    ]
    assert Query.build(fq="a:b").params() == [("q", "a:b")]


def test_empty_query_lists_everything() -> None:
    assert Query().is_empty and Query().params() == []
    assert str(Query()) == "(all neurons)"


def test_parse_cli_terms() -> None:
    query = Query.parse(["species:rat,mouse", 'brain_region:"layer 2,3"', "species:cat"])
    assert dict(query.criteria) == {"species": ("rat", "mouse", "cat"), "brain_region": ("layer 2,3",)}
    assert query.params()[0] == ("q", "species:rat,mouse,cat")
    assert query.params()[1] == ("fq", 'brain_region:"layer 2,3"')
    assert Query.parse(["neuron_name:CB_CKp25_2w_F_Animal01_*"]).params() == [
        ("q", "neuron_name:CB_CKp25_2w_F_Animal01_*")
    ]


@pytest.mark.parametrize("term", ["nocolon", ":value", "species:", "bad field:x", 'species:"open'])
def test_parse_rejects_malformed_terms(term: str) -> None:
    with pytest.raises(UsageError):
        Query.parse([term])


def test_split_values() -> None:
    assert split_values('a, "b,c" ,d') == ["a", "b,c", "d"]
    assert split_values(r'"say \"x\""') == ['say "x"']


def test_empty_list_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Query.build(species=[])


def test_merge_and_rename() -> None:
    merged = Query.build(species="rat").merge(Query.build(species="mouse", archive="Siegert"))
    assert dict(merged.criteria) == {"species": ("rat", "mouse"), "archive": ("Siegert",)}
    renamed = Query.build(physical_integrity="Complete").rename_fields(
        {"physical_integrity": "Physical_Integrity"}
    )
    assert renamed.params() == [("q", "Physical_Integrity:Complete")]
    both = Query(q="a:1").merge(Query(q="b:2"))
    assert both.params() == [("q", "a:1"), ("fq", "b:2")]


def test_raw_fields_found_in_text() -> None:
    query = Query(q="species:rat AND (brain_region:x OR bogus:y)", fq=("stain:z",))
    assert query.raw_fields() == ("species", "brain_region", "bogus", "stain")
    assert Query(q="png_url:http://x").raw_fields() == ("png_url",)
