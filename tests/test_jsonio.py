"""jsonio.loads is json.loads whose every failure is a ValueError; jsonio.loads_fast gives exactly its value
or error, whichever decoder does the work."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson  # noqa: F401  (the test extra has it: a missing orjson fails here, never skips)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuromorpho_fetch import jsonio


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (NaN equal to NaN, -0.0 not equal to 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def outcome(decode: Any, data: bytes | str) -> tuple[str, Any]:
    try:
        return "value", decode(data)
    except ValueError as exc:
        return "error", type(exc)


def assert_same(data: bytes | str) -> None:
    theirs, ours = outcome(jsonio.loads, data), outcome(jsonio.loads_fast, data)
    assert theirs[0] == ours[0], (data, theirs, ours)
    if theirs[0] == "value":
        assert same(theirs[1], ours[1]), (data, theirs, ours)
    else:
        assert theirs[1] is ours[1]


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values, st.booleans())
def test_every_generated_document_decodes_as_the_standard_library_does(value: Any, ascii_: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_)
    assert_same(text)
    assert_same(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "data",
    [
        b"123456789012345678901234567890",  # beyond 64 bits: orjson would make it a float
        b"-9223372036854775809",
        b'{"neuron_id": 99999999999999999999}',
        b"18446744073709551615",
        b"NaN",
        b"[Infinity, -Infinity]",
        b"1e400",
        b'"\\ud800"',  # an escaped lone surrogate
        '"\ud800"',  # a lone surrogate in the text itself
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'{"a": 1, "a": 2}',
        b'"\xe9"',  # not UTF-8
        b"[1,]",
        b"",
        b"[" * 5000 + b"]" * 5000,  # nested too deep: NestedTooDeep, both ways
    ],
)
def test_what_orjson_refuses_or_reads_otherwise_gets_the_standard_library_s_answer(data: bytes | str) -> None:
    assert_same(data)


def test_a_listing_page_decodes_to_the_same_records() -> None:
    record = {"neuron_id": 1, "neuron_name": "cell \u00e9", "soma_surface": "834.0", "volume": 1.5e-7}
    page = json.dumps({"_embedded": {"neuronResources": [record] * 3}, "page": {"totalElements": 3}})
    assert jsonio.loads_fast(page.encode()) == jsonio.loads(page.encode()) == json.loads(page)
    assert jsonio.BACKEND == "orjson"


@pytest.mark.parametrize("data", [b"[" * 1500, '{"a": ' * 5000, b"[" * 100_000 + b"]" * 100_000])
def test_a_document_nested_too_deep_is_a_value_error_not_a_recursion_error(data: bytes | str) -> None:
    """json.loads raises RecursionError here, which every reader's ``except ValueError`` let through."""
    with pytest.raises(RecursionError):
        json.loads(data)
    for decode in (jsonio.loads, jsonio.loads_fast):
        with pytest.raises(jsonio.NestedTooDeep, match="nested too deep") as caught:
            decode(data)
        assert isinstance(caught.value, json.JSONDecodeError)
