"""Issue 15 (the second hostile round) items 1, 2, 5-9 and 17's long name, through the CLI.

Each test turns on one of the emulator's hostile switches (``HostileConfig``), for the whole archive or
for one file of it (``paths``), and checks what every run must hold (``run_checked``: no traceback, the
report equal to the exit code, counts that add up, no ``.part``, nothing outside ``--out`` changed),
then what this item promises: the exit code, the one line that names the cause, and the bytes.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from neuromorpho_fetch import Version
from neuromorpho_fetch.emulator import Emulator, HostileConfig
from neuromorpho_fetch.layout import relative_path

from .conftest import (
    ARCHIVE,
    Serve,
    archive_neurons,
    assert_one_line,
    base_args,
    data_files,
    expected_files,
    run_checked,
    run_cli,
    tree,
)

#: Siegert's size with seed 7 and 400 neurons (conftest).
NEURONS = 28


def _victim(server: Emulator) -> tuple[str, str]:
    """(relative path, URL regex) of one CNG file of the archive: the only one that misbehaves."""
    neuron = archive_neurons(server, ARCHIVE)[3]
    return relative_path(neuron, Version.CNG).as_posix(), re.escape(quote(f"{neuron.name}.CNG.swc"))


def _only_victim_lost(server: Emulator, out: Path, victim: str, report: dict[str, object]) -> str:
    """The victim is the one failure and is not on disk; every other file is the server's bytes.
    Returns the failure's reason."""
    failures = report["failures"]
    assert isinstance(failures, list) and len(failures) == 1, failures
    held = data_files(out)
    assert victim not in held
    assert held == {k: v for k, v in expected_files(server, ARCHIVE).items() if k != victim}
    reason: str = failures[0]["reason"]
    return reason


def _metadata_lines(out: Path) -> list[dict[str, object]]:
    folder = next(p for p in out.iterdir() if p.is_dir() and p.name.lower() == ARCHIVE.lower())
    text = (folder / "metadata.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


# -- item 1: a listing that stops short --------------------------------------------------------------


@pytest.mark.system
def test_a_short_listing_marks_nothing_gone_and_deletes_nothing(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole mirror, then a run whose listing brings half the records while ``totalElements`` still
    says 28, with ``--delete-gone``: exit 1 naming the archive and the counts, no file deleted, every
    old ``metadata.jsonl`` row kept, and the report says the listing was incomplete."""
    out = tmp_path / "m"
    good = serve()
    code, _, _ = run_checked(good, out, capsys)
    assert code == 0
    before = tree(out)
    short = serve(hostile=HostileConfig(short_listing=1.0))
    code, err, report = run_checked(short, out, capsys, "--delete-gone")
    assert code == 1
    line = assert_one_line(err, ARCHIVE, f"14 of the {NEURONS}", "nothing marked gone")
    assert "incomplete" in line
    assert data_files(out) == {k: v for k, v in before.items() if not k.endswith(".jsonl")}
    assert len(_metadata_lines(out)) == NEURONS
    assert len(report["listing_errors"]) == 1
    (listing,) = report["listings"]
    assert (listing["announced"], listing["listed"], listing["complete"]) == (NEURONS, 14, False)


# -- item 2: a 304 without validators ---------------------------------------------------------------


@pytest.mark.system
def test_a_304_to_an_unconditional_get_is_never_a_file_present(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every first GET answered 304 although it carried no validators: not "skipped", and the retry
    brings every file, byte for byte."""
    server = serve(hostile=HostileConfig(not_modified=1.0, max_per_url=1))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 0 and report["skipped"] == 0 and report["downloaded"] == NEURONS
    assert server.stats()["file_requests"] >= 2 * NEURONS  # each file asked again (in the second pass)
    assert data_files(out) == expected_files(server, ARCHIVE)


@pytest.mark.system
def test_a_server_that_always_answers_304_loses_the_file_and_says_why(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(not_modified=1.0, paths=pattern))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 1 and report["skipped"] == 0
    assert "carried no validators" in _only_victim_lost(server, out, victim, report)


# -- item 5: one bad record is one rejected record ---------------------------------------------------

#: Every kind but the 1 MB name (a valid record whose file the server does not have: item 17 below).
REJECTED_KINDS = (
    "surrogate",
    "id-infinity",
    "id-huge",
    "id-text",
    "name-null",
    "name-empty",
    "name-int",
    "archive-null",
    "archive-empty",
    "field-10mb",
)


@pytest.mark.system
def test_bad_records_are_rejected_and_the_good_ones_mirrored(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(hostile=HostileConfig(bad_records=REJECTED_KINDS))
    good = {n.name for n in archive_neurons(server, ARCHIVE)[len(REJECTED_KINDS) :]}
    out = tmp_path / "m"
    code, err, report = run_checked(server, out, capsys)
    assert code == 1, err  # records rejected: not everything asked for is present
    assert report["rejected"] == len(REJECTED_KINDS) and report["failed"] == 0
    reasons = " | ".join(r["reason"] for r in report["rejected_records"])
    for needle in ("surrogate", "not a whole number", "neuron_name is", "not text", "archive is", "bytes"):
        assert needle in reasons, reasons
    assert report["downloaded"] == len(good) == report["files"]
    assert {Path(k).name.removesuffix(".CNG.swc") for k in data_files(out)} == good
    assert not any("None" in k for k in tree(out))
    assert len(_metadata_lines(out)) == len(good)
    expected = expected_files(server, ARCHIVE)
    assert all(expected[k] == v for k, v in data_files(out).items())
    code, _, again = run_checked(server, out, capsys)  # the dataset step never sees a bad one
    assert code == 1 and again["downloaded"] == 0 and again["rejected"] == len(REJECTED_KINDS)
    assert again["dataset"] is not None


@pytest.mark.system
def test_a_page_nested_too_deep_is_a_listing_error_with_the_url(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(hostile=HostileConfig(deep_page=1.0))
    code, err, report = run_checked(server, tmp_path / "m", capsys)
    assert code == 1 and report["files"] == 0
    assert_one_line(err, ARCHIVE, "/api/neuron/select", "nested too deep")


@pytest.mark.system
def test_validators_that_are_not_utf8_are_dropped_not_fatal(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(hostile=HostileConfig(bad_validators=1.0))
    out = tmp_path / "m"
    code, _, _ = run_checked(server, out, capsys)
    assert code == 0
    assert data_files(out) == expected_files(server, ARCHIVE)
    code, _, again = run_checked(server, out, capsys, "--refresh")
    assert code == 0 and again["failed"] == 0


# -- item 6: headers have a deadline -----------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.system
def test_trickled_headers_are_cut_by_the_header_deadline_and_retried(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One byte of status line and headers per 0.3 s (about a minute for the whole head) against
    ``--header-timeout 1``: the first attempt of the victim is cut at 1 s and retried."""
    probe = serve()
    _, pattern = _victim(probe)
    hostile = HostileConfig(header_trickle=1.0, trickle_interval_s=0.3, paths=pattern, max_per_url=1)
    server = serve(hostile=hostile)
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys, "--header-timeout", "1")
    assert code == 0 and report["retries"] >= 1
    assert data_files(out) == expected_files(server, ARCHIVE)


@pytest.mark.timeout(120)
@pytest.mark.system
def test_a_server_that_always_trickles_headers_names_the_header_deadline(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(header_trickle=1.0, trickle_interval_s=0.3, paths=pattern))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys, "--header-timeout", "1", "--retries", "1")
    assert code == 1
    reason = _only_victim_lost(server, out, victim, report)
    assert "headers within 1 s of sending the request (--header-timeout)" in reason


# -- item 7: content codings -------------------------------------------------------------------------


@pytest.mark.system
def test_unasked_gzip_cut_short_is_a_damaged_transfer_and_retried(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(hostile=HostileConfig(unasked_gzip=1.0, max_per_url=1))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 0 and report["downloaded"] == NEURONS
    assert server.stats()["file_requests"] >= 2 * NEURONS
    assert data_files(out) == expected_files(server, ARCHIVE)


@pytest.mark.system
def test_a_server_that_always_cuts_its_gzip_loses_that_file_only(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(unasked_gzip=1.0, paths=pattern))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 1
    assert "gzip stream ends before its end marker" in _only_victim_lost(server, out, victim, report)


# -- item 8: redirects -------------------------------------------------------------------------------


@pytest.mark.system
@pytest.mark.parametrize(
    ("to", "needle"), [("http", "from https to plain http"), ("ftp", "redirect to a non-http URL")]
)
def test_a_refused_redirect_is_one_permanent_failure(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str], to: str, needle: str
) -> None:
    """Over https, one file redirects to plain http (a downgrade) or to ftp: that file fails at once,
    named, without a run of retries; the rest is mirrored."""
    probe = serve(tls="modern")
    victim, pattern = _victim(probe)
    server = serve(tls="modern", hostile=HostileConfig(redirect=1.0, redirect_to=to, paths=pattern))  # type: ignore[arg-type]
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 1
    assert needle in _only_victim_lost(server, out, victim, report)
    assert report["retries"] == 0


# -- item 9: header overflows are named --------------------------------------------------------------


@pytest.mark.system
@pytest.mark.parametrize(
    ("kind", "needle"),
    [("many", "more response headers than"), ("long", "header line longer than the 8,190-byte limit")],
)
def test_a_header_overflow_is_named_not_a_content_length_problem(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, needle: str
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    hostile = HostileConfig(header_overflow=1.0, overflow_kind=kind, paths=pattern)  # type: ignore[arg-type]
    server = serve(hostile=hostile)
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys, "--retries", "1")
    assert code == 1
    reason = _only_victim_lost(server, out, victim, report)
    assert needle in reason and "header overflow" in reason
    assert "Content-Length" not in reason


# -- item 17: a 1 MB name ----------------------------------------------------------------------------


@pytest.fixture
def quiet_server_log() -> Iterator[None]:
    """The emulator runs in this process, and aiohttp's server logs a request line over its limit
    with a traceback; that is the server's log, not the CLI's stderr (it would not be there with the
    CLI in its own process), so it is kept out of what the test reads."""
    server_log = logging.getLogger("aiohttp.server")
    server_log.disabled = True
    try:
        yield
    finally:
        server_log.disabled = False


@pytest.mark.system
@pytest.mark.usefixtures("quiet_server_log")
def test_a_1_mb_name_is_shortened_in_the_summary(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose name is 1 MiB is a valid neuron the server has no file for (it refuses the
    request line): one failure, shown shortened on the terminal, whole in the report."""
    server = serve(hostile=HostileConfig(bad_records=("name-long",)))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 1 and report["failed"] == 1
    assert len(report["failures"][0]["neuron_name"]) == 1 << 20  # whole in the report
    result = run_cli([*base_args(server, out), "--archive", ARCHIVE], capsys)  # to see what it prints
    assert result.code == 1
    shown = result.out.splitlines() + result.err.splitlines()
    assert max(map(len, shown)) < 1000
    assert any("n" * 50 + "…" in line for line in shown)
