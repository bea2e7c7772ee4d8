"""The emulator's TLS: a throwaway CA per run, and the legacy server setup that broke stock clients.

``legacy-dh`` reproduces neuromorpho.org until 2024 (reference A9.4, A10): TLS 1.2 at most, the server's
own cipher order with DHE-RSA suites over a 1024-bit group first and ECDHE-RSA after them. A stock
client offers both kinds, the server picks DHE, and the client refuses the small key
(``DH_KEY_TOO_SMALL``). The two known workarounds both succeed, for different reasons:
``DEFAULT:@SECLEVEL=1`` accepts the 1024-bit key (DHE is negotiated), ``:HIGH:!DH:!aNULL`` offers no
DHE so the server falls back to ECDHE. A DHE-only server would defeat the second, hence ECDHE stays.

The certificate is RSA because DHE-RSA suites need an RSA key. trustme is imported lazily so plain
HTTP works without the ``emulator`` extra.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import TLSMode

#: RFC 2409 "Second Oakley Group" (1024-bit MODP, generator 2). Well known, so nothing is generated
#: at run time, and exactly the size that OpenSSL's security level 2 refuses.
OAKLEY_GROUP2_PEM = """-----BEGIN DH PARAMETERS-----
MIGHAoGBAP//////////yQ/aoiFowjTExmKLgNwc0SkCTgiKZ8x0Agu+pjsTmyJR
Sgh5jjQE3e+VGbPNOkMbMCsKbfJfFDdP4TVtbVHCReSFtXZiXn7G9ExC6aY37WsL
/1y29Aa37e44a/taiZ+lrp8kEXxLH+ZJKGZR7OZTgf//////////AgEC
-----END DH PARAMETERS-----
"""

#: DHE-RSA first (the server prefers them), ECDHE-RSA after; security level 0 so OpenSSL will use the
#: 1024-bit group at all.
LEGACY_CIPHERS = ":".join(
    (
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-SHA256",
        "DHE-RSA-AES128-SHA256",
        "DHE-RSA-AES256-SHA",
        "DHE-RSA-AES128-SHA",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-SHA384",
        "ECDHE-RSA-AES128-SHA256",
        "@SECLEVEL=0",
    )
)

_MISSING_TRUSTME = (
    "the emulator's TLS modes need trustme: pip install 'neuromorpho-fetch[emulator]' (or use --tls none)"
)


@dataclass(slots=True)
class TLSMaterial:
    """A server context plus the CA file clients must trust; ``close()`` deletes the files."""

    context: ssl.SSLContext
    ca_file: str
    _tmpdir: str

    def close(self) -> None:
        shutil.rmtree(self._tmpdir, ignore_errors=True)


def _trustme() -> Any:
    try:
        import trustme
    except ImportError as exc:
        raise RuntimeError(_MISSING_TRUSTME) from exc
    return trustme


def make_tls(mode: TLSMode, hosts: tuple[str, ...]) -> TLSMaterial | None:
    """Build the server side of ``mode``; ``None`` for plain HTTP. Blocking (key generation)."""
    if mode == "none":
        return None
    trustme = _trustme()
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    # neuromorpho.org too: code that pins the real host (the seed package mounts its TLS adapter on
    # https://neuromorpho.org) runs against the emulator when only name resolution points it here.
    names = tuple(dict.fromkeys((*hosts, "127.0.0.1", "localhost", "::1", "neuromorpho.org")))
    cert = ca.issue_cert(*names, key_type=trustme.KeyType.RSA)
    tmpdir = tempfile.mkdtemp(prefix="neuromorpho-emulator-")
    try:
        ca_file = Path(tmpdir, "ca.pem")
        ca.cert_pem.write_to_path(str(ca_file))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        if mode == "legacy-dh":
            _make_legacy(ctx, Path(tmpdir))
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return TLSMaterial(context=ctx, ca_file=str(ca_file), _tmpdir=tmpdir)


def _make_legacy(ctx: ssl.SSLContext, tmpdir: Path) -> None:
    """TLS 1.2 only (1.3 has no finite-field DHE suites to pick), server order, weak DH first."""
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_ciphers(LEGACY_CIPHERS)
    dh_file = tmpdir / "dh1024.pem"
    dh_file.write_text(OAKLEY_GROUP2_PEM, encoding="ascii")
    ctx.load_dh_params(str(dh_file))
