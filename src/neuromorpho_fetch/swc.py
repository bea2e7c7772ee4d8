"""A fast, streaming "is this an SWC file at all?" check for standardized (CNG) downloads.

It answers the failures seen in the wild (reference A9.6): an HTML error page served instead of the
file (with 200 or 404), an empty body, a body cut short mid-line. It is not a morphology validator
(trees with several roots or odd types are the data's business, reference A9.5). Rules:

* at least one sample line;
* every line is blank, a ``#`` comment (any bytes: real headers carry Latin-1 and worse, so the
  check works on bytes and never decodes), or at least 7 whitespace-separated numbers (the SWC
  columns ``n T x y z R P``; leading spaces, tabs, CRLF and extra columns are tolerated);
* the body does not start like HTML.

The check is one pass of a compiled regular expression over each chunk's complete lines (possessive
quantifiers, so no backtracking); the slower per-line walk runs only on a failure, to name the offending
line. The regular expression costs 6-9 us per KB, which made it 38% of the client's CPU on benchmark
scenario 5 (208 KB files: 2.2 of 5.8 ms per file, py-spy, 2026-11-30). So the exact check covers the
first :data:`EXACT_HEAD` bytes and the body's last line, and in between a block of whole lines made only
of number characters and whitespace passes on a ``bytes.translate`` scan (~0.8 us per KB, C speed); a
block holding any other byte (a comment, a tag, a letter, binary junk) gets the exact check. What the
scan does not re-check is the column count of a purely numeric line in the middle of a body, which no
failure seen in the wild produces: HTML pages, error text and empty bodies are caught at the start,
bodies cut short at the end (and by the ``Content-Length`` check), garbage anywhere by the scan.
"""

from __future__ import annotations

import re

#: Bytes at the start of a body that always get the exact line-by-line check: the header comments and
#: the first samples, where an error page or a wrong format shows. 4 KB, not 16: on the 20 KB files of
#: benchmark scenario 2 the exact check of 16 KB cost 150 us a file, of 4 KB 49 us (2026-12-03), and what
#: lies past the head still gets the exact check wherever a byte is not a number character.
EXACT_HEAD = 4 * 1024

# Bytes a sample line may hold: digits, signs, decimal point, exponent, separators.
_NUMERIC = b"0123456789.-+eE \t\r"
#: What a block of sample lines may hold for the fast scan (``_NUMERIC`` and line ends).
_NUMERIC_LINES = _NUMERIC + b"\n"
_MIN_COLUMNS = 7
_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<body")
#: Complete lines that are blank, a comment, or at least seven runs of number characters.
_VALID_LINES = re.compile(rb"(?:[ \t]*+(?:#[^\n]*+|(?:[-+.0-9eE]++[ \t\r]*+){7,}+|\r?)\n)*+")
#: A sample line: after optional blanks, a number character (comments start with '#').
_DATA_LINE = re.compile(rb"^[ \t]*+[-+.0-9eE]", re.M)


def looks_like_html(head: bytes) -> bool:
    """True for the start of an HTML page, after optional BOM and whitespace (XML source files pass)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()[:16].lower()
    return text.startswith(_HTML_PREFIXES)


class SwcChecker:
    """Feed chunks as they arrive; :meth:`finish` returns ``None`` or the reason it is not SWC."""

    def __init__(self) -> None:
        self._tail = b""
        self._started = False
        self._data_lines = 0
        self._exact_bytes = 0
        #: The last line of the last block that only the scan saw (checked exactly at the end).
        self._scanned_last = b""
        self.error: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self.error is not None or not chunk:
            return
        if not self._started:
            # Decide on the first bytes that are not whitespace.
            probe = (self._tail + chunk).lstrip(b"\xef\xbb\xbf").lstrip()
            if not probe:
                self._tail += chunk
                return
            self._started = True
            if looks_like_html(probe):
                self.error = "body is an HTML page, not SWC"
                return
            chunk = (self._tail + chunk).removeprefix(b"\xef\xbb\xbf")
            self._tail = b""
        data = self._tail + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._tail = data
            return
        self._tail = data[cut + 1 :]
        self._check(data[: cut + 1])

    def _check(self, block: bytes, *, exact: bool = False) -> None:
        """``block`` holds whole lines, each ending in ``\\n``; past the head, clean ones are scanned."""
        head_left = EXACT_HEAD - self._exact_bytes
        if not exact and 0 < head_left < len(block):
            # One chunk often holds a whole body (aiohttp hands over what is buffered, up to 1 MiB):
            # split it at the first line end past the head, so only the head gets the exact check.
            cut = block.find(b"\n", head_left) + 1
            if 0 < cut < len(block):
                self._check(block[:cut], exact=True)
                if self.error is None:
                    self._check(block[cut:])
                return
        if (
            not exact
            and self._data_lines
            and self._exact_bytes >= EXACT_HEAD
            and not block.translate(None, _NUMERIC_LINES)
        ):
            self._scanned_last = block[block.rfind(b"\n", 0, -1) + 1 :]
            return
        self._scanned_last = b""
        self._exact_bytes += len(block)
        stop = _VALID_LINES.match(block)
        end = stop.end() if stop is not None else 0
        if end != len(block):
            self.error = _describe(block[end : block.index(b"\n", end)])
            return
        if not self._data_lines and _DATA_LINE.search(block):
            self._data_lines = 1

    def finish(self) -> str | None:
        if self.error is None and self._tail:
            tail, self._tail = self._tail, b""
            if not self._started and looks_like_html(tail):
                self.error = "body is an HTML page, not SWC"
            elif self._started or tail.strip():
                tail = tail if self._started else tail.removeprefix(b"\xef\xbb\xbf")
                self._started = True
                self._check(tail + b"\n", exact=True)
        if self.error is None and self._scanned_last:
            last, self._scanned_last = self._scanned_last, b""
            self._check(last, exact=True)
        if self.error is None and self._data_lines == 0:
            self.error = "empty SWC: no sample lines" if self._started else "empty body"
        return self.error


def _describe(line: bytes) -> str:
    """Why one line is not an SWC line (the slow path: runs once, on failure)."""
    text = line[:60].decode("latin-1").strip()
    if line.translate(None, _NUMERIC):
        return f"not an SWC line: {text!r}"
    return f"SWC line with {len(line.split())} columns, need {_MIN_COLUMNS}: {text!r}"


def check_swc(data: bytes) -> str | None:
    """Whole-body form of :class:`SwcChecker`: ``None`` when ``data`` is plausibly SWC."""
    checker = SwcChecker()
    checker.feed(data)
    return checker.finish()
