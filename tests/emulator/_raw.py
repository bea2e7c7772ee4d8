"""A deliberately dumb HTTP/1.1 client, to see exactly what the emulator puts on the wire.

requests and aiohttp hide the details a fault test asserts on (a reset before the status line versus
after it, a body shorter than its Content-Length), so these tests read the socket themselves.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Raw:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # "reset", "timeout" or None for a clean end of stream

    @property
    def declared_length(self) -> int | None:
        value = self.headers.get("content-length")
        return None if value is None else int(value)


def raw_get(base_url: str, path: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0) -> Raw:
    """GET ``path`` (already percent-encoded) over a new connection with ``Connection: close``."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    data = b""
    out = Raw()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            out.error = "reset"
        except TimeoutError:
            out.error = "timeout"
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return out
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    out.status = int(status_line.split()[1])
    for line in header_lines:
        name, _, value = line.partition(":")
        out.headers[name.strip().lower()] = value.strip()
    out.body = body
    return out
