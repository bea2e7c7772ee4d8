"""``python -m neuromorpho_fetch.emulator --compare FILE``: where a recording and the emulator disagree.

``neuromorpho-fetch --doctor --record FILE`` keeps, for each request it made, the method, the path (with
its query), the status, the headers and the key shape of a JSON answer
(:func:`neuromorpho_fetch.doctor.key_shape`). This replays each request against an emulator started
with the given switches and prints every difference, one line each:

* a status that differs (``GET /api/health: status 503 recorded, 200 here``);
* a ``Content-Type`` media type that differs (``text/html`` against ``application/json``);
* in a JSON answer: a key recorded and not served, served and not recorded, a JSON type that differs,
  and, where both have the same keys, an order that differs (reference F records key orders).

Headers that always differ between two servers (``Date``, ``Server``, lengths) are not compared. A
``CONNECT`` (a proxy's tunnel) is not replayed: it is about the path, not the server. Exit 0 when
nothing differs, 1 otherwise, so a maintainer's CI can run it on a recording a user attached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from ..doctor import key_shape
from ._config import EmulatorConfig
from .runner import run_emulator


def shape_differences(recorded: Any, served: Any, where: str = "$") -> Iterator[str]:
    """Every difference between two key shapes, each naming its place (``$._embedded.neuronResources[0]``)."""
    if isinstance(recorded, dict) and isinstance(served, dict):
        for key in recorded:
            if key not in served:
                yield f"{where}.{key}: recorded, not served"
        for key in served:
            if key not in recorded:
                yield f"{where}.{key}: served, not recorded"
        common = [k for k in recorded if k in served]
        if common != [k for k in served if k in recorded]:
            yield f"{where}: key order {common} recorded, {[k for k in served if k in recorded]} served"
        for key in common:
            yield from shape_differences(recorded[key], served[key], f"{where}.{key}")
    elif isinstance(recorded, list) and isinstance(served, list):
        if recorded and served:
            yield from shape_differences(recorded[0], served[0], f"{where}[0]")
        elif recorded or served:
            yield f"{where}: {'recorded' if recorded else 'served'} with items, the other empty"
    elif _kind(recorded) != _kind(served):
        yield f"{where}: {_kind(recorded)} recorded, {_kind(served)} served"


def _kind(shape: Any) -> str:
    if isinstance(shape, dict):
        return "object"
    if isinstance(shape, list):
        return "array"
    return str(shape)


def _media(headers: Mapping[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return value.split(";", 1)[0].strip().lower()


def load_recording(path: Path) -> list[dict[str, Any]]:
    """The exchanges of a ``--doctor --record`` file; ``ValueError`` naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the recording {str(path)!r}: {exc}") from None
    exchanges = data.get("exchanges") if isinstance(data, dict) else None
    if not isinstance(exchanges, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("status"), int)
        for e in exchanges
    ):
        raise ValueError(f"{str(path)!r} is not a recording of neuromorpho-fetch --doctor --record")
    return exchanges


async def _served(session: aiohttp.ClientSession, base: str, exchange: Mapping[str, Any]) -> dict[str, Any]:
    method = str(exchange.get("method", "GET"))
    async with session.request(method, base + exchange["path"], allow_redirects=False) as resp:
        body = await resp.read()
        headers = dict(resp.headers)
        shape = None
        if "shape" in exchange and resp.status == 200:
            try:
                shape = key_shape(json.loads(body))
            except ValueError:
                shape = "not JSON"
        return {"status": resp.status, "headers": headers, "shape": shape}


def differences(exchange: Mapping[str, Any], served: Mapping[str, Any]) -> Iterator[str]:
    """What differs between one recorded exchange and the emulator's answer to the same request."""
    if exchange["status"] != served["status"]:
        yield f"status {exchange['status']} recorded, {served['status']} here"
    recorded_media, served_media = _media(exchange.get("headers") or {}), _media(served["headers"])
    if recorded_media != served_media:
        yield f"Content-Type {recorded_media or 'none'} recorded, {served_media or 'none'} here"
    if "shape" in exchange:
        if served["shape"] is None:
            yield "a JSON answer recorded, none here"
        else:
            yield from shape_differences(exchange["shape"], served["shape"])


async def compare(path: Path, config: EmulatorConfig) -> int:
    """Print every difference; 0 when there is none, 1 otherwise (2 for a file that is no recording)."""
    try:
        exchanges = load_recording(path)
    except ValueError as exc:
        print(f"neuromorpho_fetch.emulator: error: {exc}")
        return 2
    found = 0
    local = replace(config, host="127.0.0.1", port=0, tls="none", redirect_http=False)
    async with run_emulator(local) as emu, aiohttp.ClientSession() as session:
        for exchange in exchanges:
            method = str(exchange.get("method", "GET"))
            if method == "CONNECT":
                continue
            served = await _served(session, emu.base_url, exchange)
            for line in differences(exchange, served):
                found += 1
                print(f"{method} {exchange['path']}: {line}")
    print(f"{found} difference{'s' if found != 1 else ''} in {len(exchanges)} recorded requests")
    return 1 if found else 0
