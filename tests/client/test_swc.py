"""The fast SWC check: accepts real-world files, rejects HTML, empty and cut-off bodies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuromorpho_fetch.swc import EXACT_HEAD, SwcChecker, check_swc, looks_like_html

CNIC = (
    b"# Original file cnic_001.swc edited using StdSwc version 1.31 on 9/25/13.\n"
    b"# Irregularities and fixes documented in cnic_001.swc.std.\n"
    b"#\n"
    b"1 1 0.0 0.0 0.0 8.1498 -1\n"
    b"2 1 0.67 8.12 0.0 8.1498 1\n"
    b"3 1 -0.67 -8.12 0.0 8.1498 1\n"
    b"4 3 1.84 8.82 -6.15 0.76016 1\n"
)


@pytest.mark.parametrize(
    "body",
    [
        CNIC,
        b"  1 1 -0.78  -0.33 0    2.52262 -1\r\n  2 3 1e3 .5 1. 2 1\r\n",  # aligned columns, CRLF
        b"# Gr\xfcn \xff\xfe not utf-8\n1 1 0 0 0 1 -1\n",  # Latin-1 header
        b"\xef\xbb\xbf# bom\n\n1 1 0 0 0 1 -1\n\n",  # BOM, blank lines
        b"1\t1\t0\t0\t0\t1\t-1\t99\n",  # tabs, an extra column
        b"1 1 0 0 0 1 -1",  # no final newline
    ],
)
def test_accepts_swc(body: bytes) -> None:
    assert check_swc(body) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"   \n\n", "empty body"),
        (b"# only comments\n#\n", "no sample lines"),
        (b"<!doctype html><html><body>404</body></html>", "HTML"),
        (b"\n  <HTML>\n", "HTML"),
        (b'{"status":404,"message":"nope"}\n', "not an SWC line"),
        (CNIC + b"5 3 1.0 2.0\n", "columns"),
        (CNIC + b"5 3 1.0 2.0 3.0 0.5 abc\n", "not an SWC line"),
    ],
)
def test_rejects(body: bytes, reason: str) -> None:
    error = check_swc(body)
    assert error is not None and reason in error


def test_streaming_across_chunk_boundaries() -> None:
    body = CNIC * 50
    for size in (1, 3, 7, 64, 1000):
        checker = SwcChecker()
        for i in range(0, len(body), size):
            checker.feed(body[i : i + size])
        assert checker.finish() is None, size
    checker = SwcChecker()
    html = b"   <html><body>Not Found</body></html>"
    for i in range(0, len(html), 2):
        checker.feed(html[i : i + 2])
    assert checker.finish() is not None


def test_truncated_mid_line_is_caught() -> None:
    assert check_swc(CNIC + b"5 3 1.84 8.8") is not None


def test_looks_like_html() -> None:
    assert looks_like_html(b"\n <!DOCTYPE html>")
    assert not looks_like_html(b"<?xml version='1.0'?><morph/>")
    assert not looks_like_html(b"# <html> in a comment\n")


#: Sample lines well past the exact head, so the middle of the body takes the fast scan.
_LONG = CNIC + b"".join(b"%d 3 1.25 -2.5 3.75 0.5 %d\n" % (i, i - 1) for i in range(5, 6000))


def _streamed(body: bytes, size: int) -> str | None:
    checker = SwcChecker()
    for i in range(0, len(body), size):
        checker.feed(body[i : i + size])
    return checker.finish()


def test_a_long_clean_body_passes_in_any_chunking() -> None:
    assert len(_LONG) > 2 * EXACT_HEAD
    for size in (1000, 8192, 65536, len(_LONG)):
        assert _streamed(_LONG, size) is None, size


@settings(max_examples=60, deadline=None)
@given(
    where=st.floats(min_value=0.0, max_value=1.0),
    bad=st.sampled_from([b"<html><body>502 Bad Gateway</body></html>", b"\x00\x01\x02", b"5 3 1 2 x 4 1"]),
    size=st.sampled_from([4096, 16384, 65536]),
)
def test_garbage_anywhere_in_a_long_body_is_caught(where: float, bad: bytes, size: int) -> None:
    """Past the exact head a block with any byte but numbers and blanks still gets the exact check."""
    cut = _LONG.index(b"\n", int(where * (len(_LONG) - 1))) + 1 if where < 1 else len(_LONG)
    body = _LONG[:cut] + bad + b"\n" + _LONG[cut:]
    assert _streamed(body, size) is not None


@pytest.mark.parametrize("size", [4096, 65536])
def test_the_last_line_is_checked_exactly_after_the_scan(size: int) -> None:
    assert _streamed(_LONG + b"6000 3 1.0 2.0\n", size) is not None  # too few columns, ends in newline
    assert _streamed(_LONG + b"6000 3 1.0 2.0", size) is not None  # cut mid-line


def test_a_comment_past_the_head_is_still_accepted() -> None:
    assert _streamed(_LONG + b"# a trailing comment\n" + _LONG[len(CNIC) :], 16384) is None


def test_a_whole_body_in_one_chunk_still_gets_the_scan_and_its_exact_parts() -> None:
    """aiohttp often hands over a whole body at once: the head and last line stay exact."""
    assert _streamed(_LONG, len(_LONG)) is None
    assert _streamed(b"5 3 1 2\n" + _LONG, len(_LONG) + 8) is not None  # bad line in the head
    assert _streamed(_LONG + b"<html>\n", len(_LONG) + 7) is not None  # garbage past the head
    assert _streamed(_LONG + b"1 2 3\n", len(_LONG) + 6) is not None  # short last line
