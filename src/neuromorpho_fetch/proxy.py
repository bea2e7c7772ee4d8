"""Which proxy a request goes through, decided as curl, pip and requests decide it.

Institutional networks reach the outside only through a forward proxy, announced in the environment.
aiohttp reads only ``HTTP(S)_PROXY`` and only with ``trust_env``, so the rule is written once here
(issue 15 item 15), and the transport and ``--doctor`` both ask it:

* ``ClientConfig.proxy`` (``--proxy``) wins: a URL for every request, or ``none`` for no proxy;
* otherwise ``NO_PROXY``/``no_proxy`` is checked first: comma- or space-separated entries, ``*`` for
  every host, a host name matching itself and its subdomains (``example.org`` and ``.example.org`` both
  cover ``a.example.org``), an IP address or CIDR block, each optionally with ``:port``;
* then the scheme's variable: ``https_proxy``/``HTTPS_PROXY`` for https, ``http_proxy``/``HTTP_PROXY``
  for http (lower case first, as curl reads it), then ``all_proxy``/``ALL_PROXY``.

aiohttp speaks to http:// proxies (CONNECT for https targets) and https:// ones; a socks proxy is refused
at once with one line naming it and the variable it came from (exit 2: a setting to change, never a
run of retried connection errors), rather than ignored. Credentials in a proxy URL are used but never printed
(:func:`display`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from .errors import UsageError

#: Proxy schemes aiohttp can use.
SUPPORTED_SCHEMES = ("http", "https")


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name.lower()) or env.get(name.upper())
    return value.strip() if value and value.strip() else None


def bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY``'s entries cover ``host`` (and ``port``, where an entry names one)."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, want_port = entry, None
        if entry.count(":") == 1 and not entry.startswith("["):  # host:port, not an IPv6 address
            name, _, tail = entry.partition(":")
            want_port = int(tail) if tail.isdigit() else None
        name = name.strip("[]").rstrip(".")
        if want_port is not None and port is not None and want_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def proxy_for(url: str, setting: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL for a request to ``url``, or ``None`` to connect directly (module docstring).

    Raises :class:`~neuromorpho_fetch.errors.UsageError` (exit 2) for a proxy of a kind aiohttp cannot
    use (socks), naming it: a setting to change, not a network failure to retry (issue 15 item 15).
    """
    env = os.environ if env is None else env
    source = "--proxy"
    if setting is not None:
        chosen: str | None = None if setting.strip().lower() == "none" else setting.strip()
    else:
        parts = urlsplit(url)
        if bypassed(parts.hostname or "", parts.port, _env(env, "no_proxy") or ""):
            return None
        chosen = None
        for name in (f"{parts.scheme}_proxy", "all_proxy"):
            chosen = _env(env, name)
            if chosen is not None:
                source = name.upper()
                break
    if chosen is None:
        return None
    if "://" not in chosen:
        chosen = f"http://{chosen}"  # curl's reading of "proxy.example.org:3128"
    scheme = urlsplit(chosen).scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise UsageError(
            f"proxy {display(chosen)} (from {source}) is a {scheme} proxy, which this client cannot use; "
            "use an HTTP proxy (http://host:port) or --proxy none",
            url=url,
        )
    return chosen


def display(proxy: str) -> str:
    """The proxy URL without credentials, for messages."""
    parts = urlsplit(proxy)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
