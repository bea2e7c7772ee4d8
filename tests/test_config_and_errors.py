"""Configuration validation and the error tree's contract with the retry policy."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

import neuromorpho_fetch
from neuromorpho_fetch import errors
from neuromorpho_fetch.config import ClientConfig, RetryPolicy, Timeouts, default_base_url
from neuromorpho_fetch.tls import ssl_context, tls_error


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ClientConfig(base_url="neuromorpho.org"), "must start with http"),
        (lambda: ClientConfig(base_url="https://x", concurrency=0), "concurrency must be"),
        (lambda: ClientConfig(base_url="https://x", rate=0), "rate must be"),
        (lambda: RetryPolicy(attempts=0), "at least one attempt"),
        (lambda: Timeouts(idle=0), "idle timeout"),
    ],
)
def test_bad_settings_raise_one_line_usage_errors(build: object, message: str) -> None:
    with pytest.raises(errors.UsageError, match=message) as info:
        build()  # type: ignore[operator]
    assert "\n" not in str(info.value)


def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROMORPHO_BASE_URL", "http://127.0.0.1:9")
    assert default_base_url() == "http://127.0.0.1:9"
    assert ClientConfig().base_url == "http://127.0.0.1:9"
    monkeypatch.delenv("NEUROMORPHO_BASE_URL")
    assert default_base_url() == "https://neuromorpho.org"


def test_transient_flags_drive_retries() -> None:
    transient = [errors.ConnectError, errors.RequestTimeout, errors.IntegrityError]
    assert all(cls("x").transient for cls in transient)
    assert errors.ServerBusyError(503, "u").transient
    assert not errors.NotFoundError(404, "u").transient
    assert not errors.BadRequestError(400, "u").transient
    assert not errors.TLSError("x").transient
    assert not errors.DiskError("x").transient


def test_error_policy_lives_on_the_classes() -> None:
    """One policy: whether an error stops a mirror run and its exit code are class attributes."""
    stops = [errors.TLSError("x"), errors.DiskError("x"), errors.UsageError("x"), errors.OutputDirError("x")]
    assert all(e.stops_run for e in stops)
    per_file = [
        errors.ConnectError("x"),
        errors.RequestTimeout("x"),
        errors.NotFoundError(404, "u"),
        errors.ServerBusyError(503, "u"),
        errors.IntegrityError("x"),
        errors.NoSuchFileError("x"),
    ]
    assert not any(e.stops_run for e in per_file)
    assert [e.exit_code for e in (errors.UsageError("x"), errors.TLSError("x"))] == [2, 2]
    assert [e.exit_code for e in (errors.DiskError("x"), errors.ConnectError("x"))] == [1, 1]
    assert errors.NoSuchFileError.__name__ in errors.__doc__ and "NoSuchFileError" in errors.__all__


def test_unknown_archive_names_close_matches() -> None:
    err = errors.UnknownArchiveError("segert", ["Siegert"])
    assert "Siegert" in str(err) and isinstance(err, errors.UsageError)
    assert "--list-archives" in str(errors.UnknownArchiveError("zzz", []))


def test_context_verifies_and_accepts_legacy_dh() -> None:
    ctx = ssl_context(legacy=True)
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.security_level == 1
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_insecure_context_is_explicit() -> None:
    ctx = ssl_context(insecure=True)
    assert ctx.verify_mode is ssl.CERT_NONE and not ctx.check_hostname


def test_missing_or_bad_ca_file_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.UsageError, match="does not exist"):
        ssl_context(ca_file=tmp_path / "nope.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(errors.UsageError, match="not a PEM"):
        ssl_context(ca_file=bad)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "gone.pem"))
    with pytest.raises(errors.UsageError, match="SSL_CERT_FILE"):
        ssl_context()


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("[SSL: DH_KEY_TOO_SMALL] dh key too small", "ssl_context(legacy=True)"),
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "--ca-file"),
    ],
)
def test_tls_errors_name_the_fix(text: str, flag: str) -> None:
    err = tls_error(ssl.SSLError(1, text), "https://neuromorpho.org/api/health")
    assert flag in str(err) and not err.transient


PUBLIC_API = {
    "BadRequestError", "BadResponseError", "ClientConfig", "ConnectError", "Counters", "DatabaseBusyError",
    "DiskError", "DiskFullError", "DownloadResult", "FileTask", "FileTooLargeError", "HTTPStatusError",
    "HeaderTimeoutError", "InFlightLimitError", "IntegrityError", "MirrorOptions", "MirrorReport",
    "NeuroMorpho", "NeuroMorphoError", "Neuron", "NoSuchFileError", "NotFoundError", "NotFoundPageError",
    "OutputDirError", "PagingError", "ProgressEvent", "ProxyError", "Query", "RedirectError",
    "RejectedRecord", "RequestTimeout", "RetryEvent", "RetryPolicy", "SelectPage", "ServerBusyError",
    "ServerUnreachableError", "ServiceUnavailable", "StateCorruptError", "TLSError", "Timeouts",
    "TooSlowError", "TransportError", "UnknownArchiveError", "UnknownFieldError", "UnreadableJSONError",
    "UsageError", "Version", "WeakKeyError", "__version__", "file_task", "file_url", "mirror",
    "relative_path", "ssl_context",
}  # fmt: skip
#: The modules whose ``__all__`` is a public API (docs/architecture.md); every other module is internal.
PUBLIC_MODULES = {
    "neuromorpho_fetch", "neuromorpho_fetch.config", "neuromorpho_fetch.errors", "neuromorpho_fetch.sync",
    "neuromorpho_fetch.testing", "neuromorpho_fetch.dataset", "neuromorpho_fetch.emulator",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    """Adding or removing a public name is a decision: this list changes with it, on purpose."""
    assert set(neuromorpho_fetch.__all__) == PUBLIC_API
    assert neuromorpho_fetch.__all__ == sorted(neuromorpho_fetch.__all__)
    for name in neuromorpho_fetch.__all__:
        assert hasattr(neuromorpho_fetch, name), name


def test_only_public_modules_declare_all() -> None:
    """The convention that marks internal modules: ``__all__`` only where it is a public API, and
    every error of the documented tree is exported at the top level."""
    import pkgutil

    root = Path(neuromorpho_fetch.__file__).parent
    declared = set()
    for info in pkgutil.walk_packages([str(root)], "neuromorpho_fetch."):
        path = root.joinpath(*info.name.split(".")[1:])
        source = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
        if "\n__all__ = [" in source.read_text(encoding="utf-8"):
            declared.add(info.name)
    internal = declared - PUBLIC_MODULES
    assert internal == set()
    assert PUBLIC_MODULES - {"neuromorpho_fetch"} <= declared | {"neuromorpho_fetch.errors"}
    documented = {name for name in errors.__all__ if not name.isupper()}
    assert documented <= set(neuromorpho_fetch.__all__)


def test_the_event_loop_is_a_choice_never_a_requirement() -> None:
    """``--loop``: uvloop when installed (the ``fast`` extra), asyncio's always; asking for uvloop without
    it is one usage error, never an ImportError."""
    import asyncio
    import importlib.util

    from neuromorpho_fetch import loops

    assert loops.loop_factory("asyncio") is None
    if importlib.util.find_spec("uvloop") is None:
        assert loops.loop_factory("auto") is None
        with pytest.raises(errors.UsageError, match="fast"):
            loops.loop_factory("uvloop")
    else:
        factory = loops.loop_factory("uvloop")
        assert factory is not None and loops.loop_factory("auto") is factory
    with pytest.raises(errors.UsageError, match="--loop"):
        loops.loop_factory("trio")

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loops.run(which(), "asyncio").startswith("asyncio")
