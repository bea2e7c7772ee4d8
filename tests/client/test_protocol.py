"""The client's decisions, without sockets: status mapping and paging (protocol), exception mapping
(transport), fields, archives, and how the client resolves its config."""

from __future__ import annotations

import email.utils
import ssl
from dataclasses import replace

import aiohttp
import pytest

from neuromorpho_fetch import __version__
from neuromorpho_fetch.client import USER_AGENT, NeuroMorpho
from neuromorpho_fetch.config import ClientConfig, RetryPolicy, Timeouts
from neuromorpho_fetch.errors import (
    BadRequestError,
    ConnectError,
    HTTPStatusError,
    IntegrityError,
    NotFoundError,
    NotFoundPageError,
    RequestTimeout,
    ServerBusyError,
    TLSError,
    UnknownArchiveError,
    UsageError,
)
from neuromorpho_fetch.protocol import (
    Dedupe,
    Page,
    has_next_page,
    match_archive,
    match_field,
    parse_page,
    status_error,
)
from neuromorpho_fetch.transport import translate_error

URL = "https://emu/api/neuron/id/9"
SPRING_404 = b'{"status":404,"error":"Not Found","message":"Requested neuron not found","path":"/api/x"}'


def test_status_mapping() -> None:
    err = status_error(404, URL, {"Content-Type": "application/json"}, SPRING_404)
    assert type(err) is NotFoundError and "Requested neuron not found" in str(err) and not err.transient
    page = status_error(404, URL, {"Content-Type": "text/html"}, b"<!doctype html><html>")
    assert type(page) is NotFoundPageError and page.transient
    assert type(status_error(400, URL, {}, b"{}")) is BadRequestError
    assert type(status_error(405, URL, {}, b"")) is BadRequestError
    assert type(status_error(501, URL, {}, b"")) is HTTPStatusError
    for status in (429, 500, 502, 503, 504):
        busy = status_error(status, URL, {"Retry-After": "3"}, b"")
        assert isinstance(busy, ServerBusyError) and busy.retry_after == 3.0 and busy.transient
    when = email.utils.formatdate(1_000_010, usegmt=True)
    dated = status_error(503, URL, {"Retry-After": when}, b"", now=1_000_000)
    assert dated.retry_after == pytest.approx(10.0)
    assert status_error(503, URL, {}, b"").retry_after is None


def test_exception_mapping() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None)
    cert = aiohttp.ClientConnectorCertificateError(
        key, ssl.SSLCertVerificationError(1, "certificate verify failed")
    )
    assert isinstance(translate_error(cert, URL), TLSError)
    raw_ssl = ssl.SSLError(1, "[SSL: DH_KEY_TOO_SMALL] dh key too small")
    err = translate_error(raw_ssl, URL)
    assert isinstance(err, TLSError) and "ssl_context" in str(err)
    assert isinstance(translate_error(aiohttp.SocketTimeoutError("read"), URL), RequestTimeout)
    assert isinstance(translate_error(TimeoutError(), URL), RequestTimeout)
    assert isinstance(translate_error(aiohttp.ClientPayloadError("cut"), URL), IntegrityError)
    assert isinstance(translate_error(aiohttp.ServerDisconnectedError(), URL), ConnectError)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    assert isinstance(translate_error(refused, URL), ConnectError)
    assert isinstance(translate_error(ConnectionResetError(), URL), ConnectError)


def test_parse_page_shapes() -> None:
    hal = {
        "_embedded": {"neuronResources": [{"neuron_id": 1}]},
        "page": {"size": 100, "totalElements": 250, "totalPages": 3, "number": 0},
    }
    page = parse_page(hal, URL)
    assert page == Page(items=[{"neuron_id": 1}], number=0, size=100, total_pages=3, total_elements=250)
    assert parse_page({"page": {"totalPages": 3, "number": 3}}, URL).items == []
    assert parse_page({"fields": ["a", "b"], "page": {"totalPages": 1}}, URL).items == ["a", "b"]
    # The real /fields/{field}: every value on one page, in the server's order, stray spaces kept.
    real = {
        "field_name": "species",
        "fields": ["rat", "mouse ", "human"],
        "page": {"size": 3, "totalElements": 3, "totalPages": 1, "number": 0},
    }
    one = parse_page(real, URL)
    assert one.items == ["rat", "mouse ", "human"] and not has_next_page(0, one)
    with pytest.raises(IntegrityError):
        parse_page(["not", "an", "object"], URL)


def test_has_next_page_reads_the_server() -> None:
    assert has_next_page(0, Page(items=[1], number=0, total_pages=3))
    assert not has_next_page(2, Page(items=[1], number=2, total_pages=3))
    assert not has_next_page(0, Page(items=[], total_pages=3))
    assert has_next_page(4, Page(items=[1]))  # no page object: go on until an empty page


def test_match_field_handles_the_physical_integrity_oddity() -> None:
    fields = ["neuron_id", "archive", "Physical_Integrity"]
    assert match_field("archive", fields) == "archive"
    assert match_field("physical_Integrity", fields) == "Physical_Integrity"
    assert match_field("bogus", fields) is None


def test_match_archive() -> None:
    archives = ["Siegert", "Wearne_Hof", "Allen Cell Types"]
    assert match_archive("siegert", archives) == "Siegert"
    assert match_archive("allen cell types", archives) == "Allen Cell Types"
    with pytest.raises(UnknownArchiveError) as info:
        match_archive("wearne-hoff", archives)
    assert info.value.suggestions == ["Wearne_Hof"]
    with pytest.raises(UnknownArchiveError) as info:
        match_archive("zzzzzz", archives)
    assert info.value.suggestions == []


def test_dedupe_sorted_needs_only_the_last_id() -> None:
    d = Dedupe()
    assert d.keep([1, 2, 3]) == [True, True, True]
    assert d.keep([3, 3, 4, 5]) == [False, False, True, True]  # the page boundary shifted
    assert d.keep([2, 5, 6]) == [False, False, True]
    assert d.seen is None


def test_dedupe_falls_back_to_a_set_when_unsorted() -> None:
    d = Dedupe()
    assert d.keep([1, 2, 3]) == [True, True, True]
    assert d.keep([9, 2, 7]) == [True, False, True]
    assert d.keep([1, 7, 8]) == [False, False, True]
    assert d.seen is not None


def test_client_config_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROMORPHO_BASE_URL", "http://127.0.0.1:9/")
    nm = NeuroMorpho()
    assert nm.config.base_url == "http://127.0.0.1:9"
    assert nm.config.retry.attempts == 7  # 6 retries after the first attempt
    assert (
        nm.user_agent == USER_AGENT
        and __version__ in USER_AGENT
        and USER_AGENT.startswith("neuromorpho-fetch/")
    )
    nm = NeuroMorpho("https://x.org/api/", retries=0, attempt_timeout=5, concurrency=2, rate=1.5)
    assert nm.config.base_url == "https://x.org" and nm.config.retry.attempts == 1
    assert nm.config.timeouts == Timeouts(connect=5, headers=5, idle=5, attempt=5)
    base = ClientConfig(base_url="https://a.org", concurrency=8, retry=RetryPolicy(attempts=2))
    nm = NeuroMorpho(config=base, rate=2.0)
    assert (nm.config.concurrency, nm.config.rate, nm.config.retry.attempts) == (8, 2.0, 2)
    # A keyword given is applied even when it equals the default value.
    nm = NeuroMorpho(config=replace(base, rate=1.0), concurrency=4, rate=5.0, retries=6)
    assert (nm.config.concurrency, nm.config.rate, nm.config.retry.attempts) == (4, 5.0, 7)
    with pytest.raises(UsageError):
        NeuroMorpho(concurrency=0)
    with pytest.raises(UsageError):
        NeuroMorpho(retries=-1)


async def test_requests_need_async_with() -> None:
    nm = NeuroMorpho("http://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="async with"):
        await nm.health()


def test_malformed_records_are_rejected_with_a_reason() -> None:
    from neuromorpho_fetch.models import Neuron, RejectedRecord
    from neuromorpho_fetch.protocol import parse_neurons as _neurons

    good = {"neuron_id": 2, "neuron_name": "b", "archive": "A"}
    found = _neurons([{"neuron_id": "x"}, good, "not a dict"])
    assert [n.id for n in found if isinstance(n, Neuron)] == [2]
    bad = [n for n in found if isinstance(n, RejectedRecord)]
    assert [b.reason.split(" ")[0] for b in bad] == ["neuron_id", "not"]
