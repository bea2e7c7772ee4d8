"""Issue 10 items 1, 4 and 9: bad input is one line and exit 2 before anything starts, whichever door it
comes through (a flag, or a library call: the same validators, in ``config.py`` and ``MirrorOptions``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch import cli
from neuromorpho_fetch.config import MAX_SECONDS, ClientConfig, RetryPolicy, Timeouts
from neuromorpho_fetch.emulator import Emulator
from neuromorpho_fetch.errors import UsageError
from neuromorpho_fetch.mirror.options import MirrorOptions
from neuromorpho_fetch.mirror.steps import warn_plain_http
from neuromorpho_fetch.paths import WINDOWS_RESERVED, is_plain_name, safe_component

from .conftest import ARCHIVE, assert_one_line, base_args, run_cli


def exit_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and stderr of ``main(args)``, whether argparse or our own validation refused."""
    capsys.readouterr()
    try:
        code = cli.main(args)
    except SystemExit as exited:
        code = int(exited.code or 0)
    return code, capsys.readouterr().err


BAD_FLAGS = [
    # item 1: overflow inside aiohttp, header injection, a port out of range, no host, another scheme
    (["--timeout", "inf"], "finite"),
    (["--timeout", "1e309"], "finite"),
    (["--timeout", "nan"], "finite"),
    (["--timeout", "1e300"], "--timeout"),
    (["--user-agent", "me\r\nX-Evil: 1"], "control characters"),
    (["--user-agent", "tab\there"], "control characters"),
    (["--base-url", "https://localhost:99999"], "Port out of range"),
    (["--base-url", "https://"], "no host"),
    (["--base-url", "ftp://example.org"], "http:// or https://"),
    # item 4: every float flag
    (["--cool-down", "nan"], "finite"),
    (["--cool-down", "inf"], "finite"),
    (["--cool-down", "1e20"], "--cool-down"),
    (["--retry-wait", "nan"], "finite"),
    (["--retry-after-max", "inf"], "finite"),
    (["--rate", "nan"], "finite"),
    (["--rate", "inf"], "finite"),
    (["--rate", "0"], "--rate"),
    (["--max-duration", "999999999999d"], "--max-duration"),
    (["--max-duration", "nan"], "--max-duration"),
    # item 9: OR across fields is refused, not turned into a wildcard that matches nothing
    (["--query", "species:rat OR archive:*"], "OR is not supported"),
]


@pytest.mark.parametrize(("flags", "needle"), BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flag_is_one_line_exit_2_and_nothing_is_asked(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    args = base_args(plain, out, "--archive", ARCHIVE)
    # A later --base-url overrides the emulator's: the run must not start at all.
    code, err = exit_of([*args, *flags], capsys)
    assert code == 2
    assert_one_line(err, needle)
    assert plain.stats()["requests_total"] == 0
    assert not (out / ".neuromorpho-fetch" / "last-report.json").exists()


FLOAT_FIELDS = [
    lambda v: ClientConfig(rate=v),
    lambda v: Timeouts(connect=v),
    lambda v: ClientConfig().with_settings(idle_timeout=v),
    lambda v: ClientConfig().with_settings(attempt_timeout=v),
    lambda v: ClientConfig().with_settings(header_timeout=v),
    lambda v: RetryPolicy(backoff_base=v, backoff_max=max(v, 30.0) if math.isfinite(v) else v),
    lambda v: RetryPolicy(retry_after_max=v),
    lambda v: MirrorOptions(archives=("x",), cool_down=v),
    lambda v: MirrorOptions(archives=("x",), max_duration=v),
    lambda v: ClientConfig().with_settings(retry_wait=v),
]


@pytest.mark.parametrize("build", FLOAT_FIELDS)
@given(
    value=st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.floats(min_value=MAX_SECONDS * 1.0001, allow_infinity=False),
        st.floats(max_value=-1e-9, allow_infinity=False),
    )
)
def test_library_refuses_nan_infinity_and_overflow(build: object, value: float) -> None:
    """The same refusals for a library user as for a flag: one validator per value."""
    with pytest.raises(UsageError):
        build(value)  # type: ignore[operator]


@given(value=st.floats(min_value=0.001, max_value=MAX_SECONDS))
def test_finite_values_in_range_are_accepted(value: float) -> None:
    assert ClientConfig().with_settings(idle_timeout=value).timeouts.idle == value
    assert MirrorOptions(archives=("x",), cool_down=value, max_duration=value).cool_down == value


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:99999",
        "https://:443/",
        "http://",
        "file:///etc",
        "https://a b.org",
        "https://x\n.org",
    ],
)
def test_library_refuses_bad_base_urls(url: str) -> None:
    with pytest.raises(UsageError):
        ClientConfig(base_url=url)


def test_library_refuses_control_characters_in_user_agent() -> None:
    for text in ("a\rb", "a\nb", "a\x00b", "a\x7fb"):
        with pytest.raises(UsageError, match="control characters"):
            ClientConfig(user_agent=text)
    assert ClientConfig(user_agent="my-lab/1.0 (me@example.org)").user_agent


def test_report_to_an_unwritable_path_is_exit_2_before_starting(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10 item 8: ``os.access`` says yes to root everywhere, so the check passed and the run went
    on; now the check writes a probe file, and a path under a regular file or /proc is refused."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for report in (blocker / "report.json", Path("/proc/neuromorpho-nope/report.json")):
        args = base_args(plain, tmp_path / "out", "--archive", ARCHIVE, "--report", str(report))
        code, err = exit_of(args, capsys)
        assert code == 2
        assert_one_line(err, "--report")
    assert plain.stats()["file_requests"] == 0


def test_query_matching_nothing_says_so_and_exits_0(
    plain: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Decided: nothing failed, so exit 0, but one warning line says nothing matched (it said nothing)."""
    result = run_cli(
        base_args(plain, tmp_path / "out", "--query", "species:no-such-species-anywhere"), capsys
    )
    assert result.code == 0
    assert_one_line(result.err, "the query matched no neurons")
    assert plain.stats()["file_requests"] == 0


def test_plain_http_warns_once_unless_loopback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="neuromorpho_fetch"):
        warn_plain_http("http://neuromorpho.org")
        warn_plain_http("https://neuromorpho.org")
        warn_plain_http("http://127.0.0.1:8080")
        warn_plain_http("http://localhost:8080")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "plain http" in warnings[0] and "neuromorpho.org" in warnings[0]


WINDOWS_NAMES = [
    ("CON", "%43ON"),
    ("con.CNG.swc", "%63on.CNG.swc"),
    ("Com1.CNG.swc", "%43om1.CNG.swc"),
    ("NUL.txt", "%4EUL.txt"),
    ("nul .swc", "%6Eul .swc"),  # Windows ignores spaces before the extension too
    ("LPT9.a.b", "%4CPT9.a.b"),
    ("aux", "%61ux"),
    ("COM10", "COM10"),  # not reserved
    ("CONSOLE.swc", "CONSOLE.swc"),
    ("name.", "name%2E"),  # Windows drops a trailing dot or space
    ("name ", "name%20"),
    ("..", "%2E%2E"),
    ("%43ON", "%2543ON"),  # a literal name that looks encoded stays distinct
]


@pytest.mark.parametrize(("name", "safe"), WINDOWS_NAMES)
def test_windows_reserved_names_are_encoded(name: str, safe: str) -> None:
    assert safe_component(name) == safe


def _windows_trouble(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_RESERVED or name[-1:] in (".", " ")


@given(
    st.text(
        alphabet=st.sampled_from(["C", "O", "N", "c", "n", "u", "l", "1", ".", " ", "%", "x", "/"]),
        max_size=8,
    )
)
def test_safe_names_are_windows_safe_and_decodable(name: str) -> None:
    """Every result is safe on Windows, and percent-decoding gives the name back (so the mapping is
    one-to-one: two names never share a file)."""
    safe = safe_component(name)
    assert not _windows_trouble(safe)
    if name:
        assert unquote(safe) == name


@given(st.text(max_size=12), st.text(max_size=12))
def test_distinct_names_never_share_a_file(a: str, b: str) -> None:
    if a != b:
        assert safe_component(a) != safe_component(b)


@given(st.one_of(st.text(max_size=12), st.sampled_from([n for n, _ in WINDOWS_NAMES])))
def test_the_fast_check_agrees_with_the_encoder(name: str) -> None:
    """``is_plain_name`` (the dataset's hot path) is true exactly when nothing would be encoded."""
    assert is_plain_name(name) == (safe_component(name) == name)
