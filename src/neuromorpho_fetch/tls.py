"""The one place where TLS is relaxed, exactly how far, and only when the server needs it.

For years neuromorpho.org preferred DHE-RSA suites with a 1024-bit Diffie-Hellman group. OpenSSL's
default security level 2 refuses such a key (``[SSL: DH_KEY_TOO_SMALL]``), so a stock
``ssl.create_default_context()`` and plain ``requests.get`` cannot talk to it. Other clients answered by
turning certificate checks off; we lower the OpenSSL *security level* from 2 to 1 instead
(``DEFAULT:@SECLEVEL=1``), which admits 1024-bit DH/RSA keys and nothing else we care about:

* certificates and host names are still verified, against the system store, ``SSL_CERT_FILE`` when
  set, and the ``ca_file`` the caller names (the emulator hands one out);
* the protocol floor stays at TLS 1.2 and the cipher list stays OpenSSL's ``DEFAULT`` list;
* a server with a modern key (neuromorpho.org since 2024) negotiates exactly as before.

The server has since moved to stock TLS (reference section E, 2026), while older deployments, mirrors
and proxies may still offer only the small key. So the client negotiates at the highest level the
server supports (``ClientConfig.tls``, ``--tls``): ``auto`` starts every host on a stock, modern
context (``ssl_context(legacy=False)``: OpenSSL's security level 2) and switches that one host to the
legacy context only when its handshake fails with ``DH_KEY_TOO_SMALL``
(:class:`~neuromorpho_fetch.errors.WeakKeyError`); ``modern`` and ``legacy`` force one.
:func:`ssl_context` returns the modern context unless asked for ``legacy=True`` (issue 16: a script
should get the stronger one by default, as the live server has used stock TLS since 2024).

``insecure=True`` turns verification off for users behind a broken proxy; the client logs a warning on
every run that uses it. The context is an ordinary :class:`ssl.SSLContext`, so the same object works
with aiohttp, httpx and a requests adapter (see ``docs/tls.md``).
"""

from __future__ import annotations

import os
import ssl
import threading
from concurrent.futures import Future
from pathlib import Path

from .errors import TLSError, UsageError, WeakKeyError

#: OpenSSL's default suites at security level 1: accepts the server's 1024-bit DH key.
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=1"


def first_context(base_url: str, tls: str) -> bool | None:
    """The context a client's first request to ``base_url`` needs under ``--tls tls``: ``None`` for
    plain HTTP, else whether it is the legacy one (``auto`` starts modern; see the module docstring)."""
    if not base_url.startswith("https:"):
        return None
    return tls == "legacy"


_Key = tuple[str | None, bool, bool, str | None]
_early: dict[_Key, Future[ssl.SSLContext]] = {}


def _key(ca_file: str | os.PathLike[str] | None, insecure: bool, legacy: bool) -> _Key:
    return (os.fspath(ca_file) if ca_file else None, insecure, legacy, os.environ.get("SSL_CERT_FILE"))


def build_early(
    ca_file: str | os.PathLike[str] | None = None, insecure: bool = False, *, legacy: bool = False
) -> None:
    """Start building the context :func:`ssl_context` will be asked for, in a thread, now.

    For the command, which knows its TLS settings before it imports its HTTP stack: loading the CA
    store is about 18 ms of reading and parsing that releases the GIL, so built here it overlaps the
    ~110 ms of imports that follow instead of delaying the first request (issue 19, benchmark
    scenario 7). The next :func:`ssl_context` call with the same arguments takes the result, once;
    its error, if any, is raised there, as if it had been built then.
    """
    key = _key(ca_file, insecure, legacy)
    if key in _early:
        return
    future: Future[ssl.SSLContext] = Future()

    def build() -> None:
        try:
            future.set_result(_build(ca_file, insecure, legacy=legacy))
        except BaseException as exc:  # handed to the caller of ssl_context
            future.set_exception(exc)

    _early[key] = future
    threading.Thread(target=build, name="neuromorpho-tls", daemon=True).start()


def forget_early() -> None:
    """Drop every context :func:`build_early` started that nobody took (a run that ended before its
    first request): a later call in the same process reads its CA files afresh."""
    _early.clear()


def ssl_context(
    ca_file: str | os.PathLike[str] | None = None, insecure: bool = False, *, legacy: bool = False
) -> ssl.SSLContext:
    """Build a verified TLS context: the stock modern one, or with ``legacy=True`` one that also accepts
    the old 1024-bit DH key (security level 1), with the same CA handling either way.

    Blocking (it reads the CA store): call it off the event loop. Takes the context
    :func:`build_early` started with the same arguments, if there is one.
    """
    early = _early.pop(_key(ca_file, insecure, legacy), None)
    if early is not None:
        return early.result()
    return _build(ca_file, insecure, legacy=legacy)


def _build(ca_file: str | os.PathLike[str] | None, insecure: bool, *, legacy: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()  # system store, hostname checks, TLS >= 1.2
    # OpenSSL already reads SSL_CERT_FILE, but silently skips a missing or broken one (the failure then
    # surfaces later as CERTIFICATE_VERIFY_FAILED); loading it again here costs one file read and turns
    # that into a one-line error naming the variable.
    env_bundle = os.environ.get("SSL_CERT_FILE")
    for bundle in (env_bundle, ca_file):
        if bundle is None or bundle == "":
            continue
        path = Path(bundle)
        if not path.is_file():
            source = "SSL_CERT_FILE" if bundle is env_bundle else "--ca-file"
            raise UsageError(f"CA file {str(path)!r} from {source} does not exist: pass a PEM bundle")
        try:
            ctx.load_verify_locations(cafile=str(path))
        except ssl.SSLError as exc:
            raise UsageError(f"CA file {str(path)!r} is not a PEM certificate bundle ({exc})") from exc
    if legacy:
        ctx.set_ciphers(LEGACY_CIPHERS)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, carried by ``ssl.SSLCertVerificationError.verify_code``.
_HOSTNAME_MISMATCH = 62


def tls_error(exc: BaseException, url: str) -> TLSError:
    """Turn a handshake or verification failure into an error that says which flag fixes it."""
    text = str(exc)
    if weak_key(exc):
        advice = (
            "the server offers a weak Diffie-Hellman key and this TLS context refuses it; "
            "use --tls auto or --tls legacy (neuromorpho_fetch.ssl_context(legacy=True) in a script), which "
            "accept it and still verify certificates"
        )
        return WeakKeyError(f"TLS failure talking to {url}: {text.strip()}; {advice}", url=url)
    inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    verify = getattr(inner, "verify_code", None)
    if verify == _HOSTNAME_MISMATCH or "hostname mismatch" in text.lower() or "doesn't match" in text:
        # The CA was trusted: the certificate names another host (issue 15 item 17: this used to
        # advise --ca-file).
        advice = (
            "the certificate is valid but for another host name; check the host in --base-url (use the "
            "name the certificate was issued for)"
        )
    elif "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        advice = (
            "the server's certificate could not be verified; pass --ca-file PEM with the issuing CA "
            "(or set SSL_CERT_FILE), or, only if you trust the network, --insecure"
        )
    else:
        advice = "check --base-url and --ca-file; --insecure skips certificate checks"
    return TLSError(f"TLS failure talking to {url}: {text.strip() or type(exc).__name__}; {advice}", url=url)


def weak_key(exc: BaseException) -> bool:
    """Whether a handshake failed on the server's small DH key (OpenSSL's ``DH_KEY_TOO_SMALL``)."""
    text = str(exc)
    return "DH_KEY_TOO_SMALL" in text or "dh key too small" in text
