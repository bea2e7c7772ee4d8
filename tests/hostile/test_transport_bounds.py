"""Issue 10 items 6 and 7 through the CLI: every body is bounded in speed and size, and a lying
``Content-Length`` is a damaged transfer that is retried, not a "400 Bad status line" from the server.

Each test turns on one hostile switch for one file of Siegert (28 neurons), so the rest of the run shows
that only that file is affected: counts add up, the other files are the server's bytes, no ``.part``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from neuromorpho_fetch import NeuroMorpho, Version, cli
from neuromorpho_fetch.cli import _size
from neuromorpho_fetch.config import ClientConfig
from neuromorpho_fetch.emulator import Emulator, HostileConfig
from neuromorpho_fetch.errors import FileTooLargeError, IntegrityError, TooSlowError, UsageError
from neuromorpho_fetch.layout import relative_path
from neuromorpho_fetch.transport import translate_error

from .conftest import (
    ARCHIVE,
    Serve,
    archive_neurons,
    data_files,
    expected_files,
    run_checked,
)


def _victim(server: Emulator) -> tuple[str, str]:
    """(relative path, URL regex) of one CNG file of the archive: the only one that misbehaves."""
    neuron = archive_neurons(server, ARCHIVE)[3]
    rel = relative_path(neuron, Version.CNG).as_posix()
    return rel, re.escape(quote(f"{neuron.name}.CNG.swc"))


def _others_are_the_servers(server: Emulator, out: Path, victim: str) -> None:
    expected = {k: v for k, v in expected_files(server, ARCHIVE).items() if k != victim}
    held = {k: v for k, v in data_files(out).items() if k != victim}
    assert held == expected


# -- speed floor ---------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
def test_a_trickle_is_cut_by_the_speed_floor_and_retried(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One byte per 0.2 s against a floor of 1,000 B/s over 0.5 s: the first attempt is timed out by
    rate (the idle timeout never fires: a byte arrives every 0.2 s), the retry gets the whole file."""
    probe = serve()
    _, pattern = _victim(probe)
    hostile = HostileConfig(trickle=1.0, trickle_interval_s=0.2, paths=pattern, max_per_url=1)
    server = serve(hostile=hostile)
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys, "--lowest-speed", "1000", "--speed-time", "0.5")
    assert code == 0 and report["failed"] == 0
    assert report["retries"] >= 1
    assert data_files(out) == expected_files(server, ARCHIVE)  # the victim too, byte for byte


@pytest.mark.timeout(60)
@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
def test_a_server_that_always_trickles_loses_that_file_only(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(trickle=1.0, trickle_interval_s=0.2, paths=pattern))
    out = tmp_path / "m"
    code, _, report = run_checked(
        server, out, capsys, "--lowest-speed", "1000", "--speed-time", "0.5", "--retries", "1"
    )
    assert code == 1
    assert [f["path"] for f in report["failures"]] == [victim]
    assert "bytes/s floor" in report["failures"][0]["reason"]
    assert victim not in data_files(out)
    _others_are_the_servers(server, out, victim)


# -- size cap --------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_declared_3_gb_body_is_refused_before_the_first_byte(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default cap (1 GiB) refuses a ``Content-Length`` of 3,000,000,000 up front, as a permanent
    failure of that file (not retried within a pass; the second pass tries it once more)."""
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(oversized=1.0, paths=pattern))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 1
    assert [f["path"] for f in report["failures"]] == [victim]
    assert "declares 3,000,000,000 bytes" in report["failures"][0]["reason"]
    requests = server.stats()["file_requests_by_path"]
    assert max(requests.values()) <= 2  # one per pass: a permanent failure spends no retries
    assert server.stats()["bytes_sent"] < 64 << 20  # nothing like 3 GB went over the wire
    _others_are_the_servers(server, out, victim)


@pytest.mark.timeout(60)
def test_an_endless_body_is_stopped_at_the_size_cap(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(endless=1.0, paths=pattern))
    cap = max(len(body) for body in expected_files(server, ARCHIVE).values()) + 1  # every real file fits
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys, "--max-file-size", str(cap))
    assert code == 1
    assert [f["path"] for f in report["failures"]] == [victim]
    assert f"passed {cap + 1:,}" not in report["failures"][0]["reason"]  # stopped at the first chunk past it
    assert f"more than the {cap:,}-byte cap" in report["failures"][0]["reason"]
    _others_are_the_servers(server, out, victim)


async def test_the_cap_is_enforced_in_the_library_too(serve: Serve) -> None:
    """``NeuroMorpho(config=ClientConfig(max_file_size=...))``: the same bound without the CLI."""
    server = serve(hostile=HostileConfig(oversized=1.0, oversized_bytes=5 << 20))
    neuron = archive_neurons(server, ARCHIVE)[0]
    config = ClientConfig(base_url=server.base_url, max_file_size=1 << 20, rate=1000)
    async with NeuroMorpho(config=config, retries=3) as nm:
        with pytest.raises(FileTooLargeError, match="declares 5,242,880 bytes"):
            await nm.download(neuron, Version.CNG, "/nonexistent-never-written")
    assert server.stats()["file_requests"] == 1  # permanent: no retry


# -- Content-Length shorter than the body (item 7) ---------------------------------------------------


@pytest.mark.timeout(60)
def test_a_short_content_length_is_a_damaged_transfer_and_retried(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file lies once (half its length declared, the whole body sent, keep-alive): each is
    retried and arrives whole. Issue 10 saw "HTTP 400 ... Bad status line", not retried."""
    server = serve(hostile=HostileConfig(short_length=1.0, max_per_url=1))
    out = tmp_path / "m"
    code, err, report = run_checked(server, out, capsys)
    assert code == 0, err
    assert report["failed"] == 0 and report["retries"] >= 1
    assert data_files(out) == expected_files(server, ARCHIVE)
    assert "Bad status line" not in err


@pytest.mark.timeout(60)
def test_a_server_that_always_lies_about_length_says_so(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = serve()
    victim, pattern = _victim(probe)
    server = serve(hostile=HostileConfig(short_length=1.0, paths=pattern))
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys, "--retries", "2")
    assert code == 1
    assert [f["path"] for f in report["failures"]] == [victim]
    reason = report["failures"][0]["reason"]
    assert "damaged transfer" in reason or "cut short" in reason or "longer than Content-Length" in reason
    assert server.stats()["file_requests_by_path"]  # it was asked for, more than once
    assert max(server.stats()["file_requests_by_path"].values()) >= 3  # retried: transient


def test_aiohttps_bad_status_line_translates_to_a_retried_integrity_error() -> None:
    """aiohttp raises ``ClientResponseError(400, 'Bad status line')`` for bytes past a short body; with
    ``raise_for_status`` off that can only be a framing error, never the server's own 400."""
    info = aiohttp.RequestInfo(URL("http://x/f"), "GET", CIMultiDictProxy(CIMultiDict()), URL("http://x/f"))
    exc = aiohttp.ClientResponseError(info, (), status=400, message="Bad status line 'x'")
    error = translate_error(exc, "http://x/f")
    assert isinstance(error, IntegrityError) and error.transient
    assert "damaged transfer" in str(error) and "Content-Length" in str(error)


# -- flags and defaults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1000", 1000),
        ("10M", 10 << 20),
        ("1G", 1 << 30),
        ("1GiB", 1 << 30),
        ("512k", 512 << 10),
        ("2MB", 2 << 20),
    ],
)
def test_max_file_size_accepts_suffixes(text: str, size: int) -> None:
    assert _size(text) == size


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-file-size", "10Q"],
        ["--max-file-size", "0"],
        ["--lowest-speed", "nan"],
        ["--speed-time", "0"],
        ["--tls", "old"],
    ],
)
def test_bad_bound_flags_are_one_line_usage_errors(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.main(["--all", "--out", str(tmp_path / "m"), *flags])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_the_defaults_are_documented_values() -> None:
    config = ClientConfig(base_url="https://neuromorpho.org")
    assert (config.lowest_speed, config.speed_time, config.max_file_size, config.tls) == (
        1024.0,
        30.0,
        256 << 20,  # sized to the data (docs/cli.md): issue 15 item 10
        "auto",
    )
    assert config.max_in_flight == 1 << 30
    with pytest.raises(UsageError, match="--lowest-speed"):
        ClientConfig(base_url="https://x", lowest_speed=float("inf"))


def test_too_slow_is_transient_and_too_large_is_not() -> None:
    assert TooSlowError("x").transient and not TooSlowError("x").stops_run
    assert not FileTooLargeError("x").transient and not FileTooLargeError("x").stops_run


async def test_the_window_judges_silence_without_waiting_for_the_next_byte(serve: Serve) -> None:
    """A byte every 2 s: with a 0.3 s window the attempt ends on the window, not on the next byte
    (the idle timeout is 60 s). Bounded by the test's timeout, not asserted on the clock."""
    server = serve(hostile=HostileConfig(trickle=1.0, trickle_interval_s=2.0))
    neuron = archive_neurons(server, ARCHIVE)[0]
    config = ClientConfig(base_url=server.base_url, lowest_speed=1000, speed_time=0.3, rate=1000)
    async with NeuroMorpho(config=config, retries=0) as nm:
        with pytest.raises(TooSlowError, match="floor"):
            await asyncio.wait_for(nm.download(neuron, Version.CNG, "/nonexistent-never-written"), 1.5)
