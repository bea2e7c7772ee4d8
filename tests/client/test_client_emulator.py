"""The client against the emulator: every call over each TLS mode, paging variants, errors, politeness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import pytest

from neuromorpho_fetch import (
    NeuroMorpho,
    NotFoundError,
    Query,
    TLSError,
    UnknownArchiveError,
    UnknownFieldError,
    Version,
)
from neuromorpho_fetch.emulator import Catalogue, Emulator

from .conftest import Start, client


def body_of(emu: Emulator, neuron_id: int, version: Version = Version.CNG) -> bytes:
    found = emu.catalogue.file_for(neuron_id, version.value)
    assert found is not None
    return found.body


@pytest.mark.parametrize("tls", ["legacy-dh", "modern", "none"])
@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
async def test_every_call(start: Start, tls: str, tmp_path: Path) -> None:
    emu = start(tls=tls)
    assert emu.base_url.startswith("http://" if tls == "none" else "https://")
    cat = emu.catalogue
    first = cat.neuron_ids()[0]
    async with client(emu) as nm:
        assert (await nm.health())["status"] == "UP"
        neuron = await nm.neuron(first)
        served = cat.record(first)
        assert served is not None
        assert neuron.id == first and neuron.record == {
            **served,
            "_links": neuron.record["_links"],
        }
        assert (await nm.neuron_by_name(neuron.name)).id == first
        fields = await nm.fields()
        assert "neuron_name" in fields and "Physical_Integrity" in fields
        species = await nm.field_values("species")
        assert species and len(species) == len(set(species))
        counts = await nm.counts("species")
        assert set(counts) <= set(species) and sum(counts.values()) == len(cat)
        archives = await nm.archives()
        assert sum(archives.values()) == len(cat)
        real = neuron.archive
        assert await nm.resolve_archive(real.upper()) == real
        morph = await nm.morphometry(first)
        assert morph["neuron_id"] == first
        assert (await nm.morphometry(neuron.name))["neuron_id"] == first
        assert await nm.count() == len(cat)
        in_archive = [n async for n in nm.select(archive=real)]
        assert len(in_archive) == archives[real] == await nm.count(archive=real)
        assert all(n.archive == real for n in in_archive)
        result = await nm.download(neuron, "CNG", tmp_path)
        assert result.path == tmp_path.joinpath(*Path(result.path).relative_to(tmp_path).parts)
        assert result.path.read_bytes() == body_of(emu, first)
        assert result.size == len(body_of(emu, first)) and result.etag and result.last_modified
        assert not list(tmp_path.rglob("*.part"))


async def test_select_walks_every_page_once(plain: Emulator) -> None:
    async with client(plain) as nm:
        ids = [n.id async for n in nm.select()]
    assert ids == sorted(plain.catalogue.neuron_ids())


@pytest.mark.parametrize("oversize", ["clamp", "400"])
async def test_select_follows_a_server_that_serves_smaller_pages(start: Start, oversize: str) -> None:
    emu = start(oversize=oversize, max_page_size=100)
    async with client(emu) as nm:
        ids = [n.id async for n in nm.select(Query(q="*:*"))]
    assert ids == sorted(emu.catalogue.neuron_ids())
    stats = emu.stats()
    expected_pages = -(-len(emu.catalogue) // (100 if oversize == "clamp" else 50))
    extra = 0 if oversize == "clamp" else 1  # the refused first request at size 500
    assert stats["api_requests"] == expected_pages + extra


@pytest.mark.parametrize("no_hits", ["404", "empty"])
async def test_no_hits_yield_nothing(start: Start, no_hits: str) -> None:
    emu = start(no_hits=no_hits)
    async with client(emu) as nm:
        assert [n async for n in nm.select(neuron_name="no_such_neuron_*")] == []
        assert await nm.count(neuron_name="no_such_neuron_*") == 0


@pytest.mark.parametrize("past_last", ["empty", "404", "400"])
async def test_past_last_page_variants(start: Start, past_last: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose page object we cannot trust: the walk ends at whatever past-the-end looks like."""
    emu = start(past_last=past_last, max_page_size=100)
    original = NeuroMorpho._page

    async def without_page_info(self: NeuroMorpho, *args: object) -> object:
        page = await original(self, *args)  # type: ignore[arg-type]
        return type(page)(items=page.items)  # drop totalPages: only an empty/404/400 page ends the walk

    monkeypatch.setattr(NeuroMorpho, "_page", without_page_info)
    async with client(emu) as nm:
        ids = [n.id async for n in nm.select(Query(q="*:*"))]
    assert ids == sorted(emu.catalogue.neuron_ids())
    assert emu.stats()["api_requests"] == 6 + 1  # six pages of 100, one past the end (raw q: no fields check)


async def test_prefetch_is_cancelled_when_the_consumer_stops(start: Start) -> None:
    emu = start(latency_ms=50, max_page_size=100)
    async with client(emu) as nm:
        before = asyncio.all_tasks()
        async with contextlib.aclosing(nm.select()) as neurons:
            async for _ in neurons:
                break
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == before
    assert emu.stats()["api_requests"] <= 2


async def test_unknown_fields_are_named(plain: Emulator) -> None:
    plain.reset()
    async with client(plain) as nm:
        with pytest.raises(UnknownFieldError) as info:
            await nm.count(spcies="rat")
        assert info.value.field == "spcies" and "species" in info.value.valid
        with pytest.raises(UnknownFieldError):
            [n async for n in nm.select(q="bogus_field:1")]
        with pytest.raises(UnknownFieldError):
            await nm.field_values("bogus")
        # The JSON key spelling of the odd field is accepted and sent as the server lists it.
        assert await nm.count(physical_Integrity="*") >= 0


async def test_counts_ask_for_the_fields_and_the_partition_together(start: Start) -> None:
    """A run's first step (the archive counts) is one round trip, not two: the fields list and the
    partition are in flight at once. A case variant is asked for again under the server's spelling, and
    a typo is an UnknownFieldError with the guess cancelled."""
    emu = start(latency_ms=60)
    async with client(emu) as nm:
        archives = await nm.archives()
        stats = emu.stats()
        assert sum(archives.values()) == len(emu.catalogue)
        assert stats["api_requests"] == 2 and stats["max_in_flight"] == 2
    emu.reset()
    async with client(emu) as nm:
        assert await nm.counts("Species") == await nm.counts("species")
        # fields, the guess and the server's spelling; then the partition again (only the fields list
        # is cached)
        assert emu.stats()["api_requests"] == 1 + 2 + 1
    emu.reset()
    async with client(emu) as nm:
        with pytest.raises(UnknownFieldError):
            await nm.counts("spceis")
        await asyncio.sleep(0)
        assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_permanent_errors_are_not_retried(plain: Emulator) -> None:
    async with client(plain) as nm:
        await nm.fields()
        plain.reset()
        with pytest.raises(NotFoundError):
            await nm.neuron(999_999_999)
        with pytest.raises(NotFoundError):
            await nm.neuron_by_name("no such neuron")
    stats = plain.stats()
    assert stats["api_requests"] == 2 and stats["by_status"] == {"404": 2}


async def test_unknown_archive_lists_close_names(plain: Emulator) -> None:
    async with client(plain) as nm:
        with pytest.raises(UnknownArchiveError) as info:
            await nm.resolve_archive("wearne-hof")
    assert "Wearne_Hof" in info.value.suggestions


async def test_conditional_fetch_returns_none_when_unchanged(plain: Emulator, tmp_path: Path) -> None:
    async with client(plain) as nm:
        neuron = await nm.neuron(plain.catalogue.neuron_ids()[3])
        first = await nm.download(neuron, Version.CNG, tmp_path)
        again = await nm.fetch_file(first.url, first.path, etag=first.etag)
        assert again is None
        again = await nm.fetch_file(first.url, first.path, last_modified=first.last_modified)
        assert again is None
    assert first.path.read_bytes() == body_of(plain, neuron.id)


async def test_every_version_downloads(plain: Emulator, tmp_path: Path) -> None:
    async with client(plain) as nm:
        neuron = await nm.neuron(plain.catalogue.neuron_ids()[5])
        for version in Version:
            result = await nm.download(neuron, version, tmp_path)
            assert result.path.read_bytes() == body_of(plain, neuron.id, version)
            assert result.path.relative_to(tmp_path).parts[1] == version.value


async def test_hostile_names_stay_under_dest(
    start: Start, hostile_catalogue: Catalogue, tmp_path: Path
) -> None:
    emu = start(cat=hostile_catalogue, hostile_names=True)
    dest = tmp_path / "out"
    from neuromorpho_fetch.emulator.vocabulary import HOSTILE_NAMES

    async with client(emu) as nm:
        neurons = [await nm.neuron_by_name(name) for name in HOSTILE_NAMES]
        results = await asyncio.gather(*(nm.download(n, Version.CNG, dest) for n in neurons))
    paths = {r.path.resolve() for r in results}
    assert len(paths) == len(HOSTILE_NAMES)  # one-to-one
    for neuron, result in zip(neurons, results, strict=True):
        assert result.path.resolve().is_relative_to(dest.resolve())
        assert result.path.read_bytes() == body_of(emu, neuron.id)
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == paths


@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
async def test_concurrency_limit_holds(start: Start, tmp_path: Path) -> None:
    emu = start(latency_ms=40, file_kb=8)
    async with client(emu, concurrency=3) as nm:
        neurons = [n async for n in nm.select(Query(q="*:*"))][:24]
        emu.reset()
        await asyncio.gather(*(nm.download(n, Version.CNG, tmp_path) for n in neurons))
        assert nm.pacer.max_in_flight == 3
    assert emu.stats()["max_in_flight"] <= 3 and emu.stats()["file_requests"] == 24


@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
async def test_rate_limit_holds(plain: Emulator) -> None:
    rate = 20.0
    async with client(plain, rate=rate, concurrency=8) as nm:
        await nm.health()  # the bucket's first slot is free
        plain.reset()
        await asyncio.gather(*(nm.neuron(i) for i in plain.catalogue.neuron_ids()[:30]))
        assert nm.pacer.started == 31 and nm.pacer.rate == rate
    # Seen from the server: no one-second window ever held more than the rate allows (+1 for the
    # window's two ends, +1 for arrival jitter on loopback). A slow machine can only lower this.
    stats = plain.stats()
    assert stats["api_requests"] == 30
    assert stats["max_per_second"] <= rate + 2


@pytest.mark.timing
@pytest.mark.system  # real time over real sockets (TLS, trickles, stalls, rates)
async def test_rate_limit_takes_the_time_it_should(plain: Emulator) -> None:
    rate = 20.0
    async with client(plain, rate=rate, concurrency=8) as nm:
        await nm.health()
        plain.reset()
        started = time.monotonic()
        await asyncio.gather(*(nm.neuron(i) for i in plain.catalogue.neuron_ids()[:30]))
        elapsed = time.monotonic() - started
    assert elapsed >= 30 / rate - 0.02
    assert int(rate) <= plain.stats()["max_per_second"]


@pytest.mark.system
async def test_plain_http_and_insecure_warning(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    emu = start(tls="modern")
    caplog.set_level(logging.WARNING, logger="neuromorpho_fetch")
    async with NeuroMorpho(emu.base_url, insecure=True) as nm:
        assert (await nm.health())["status"] == "UP"
    assert any("verification is OFF" in r.getMessage() for r in caplog.records)


@pytest.mark.system
async def test_untrusted_certificate_is_a_tls_error_not_retried(start: Start) -> None:
    emu = start(tls="modern")
    async with NeuroMorpho(emu.base_url, retries=3) as nm:
        with pytest.raises(TLSError) as info:
            await nm.health()
    assert "--ca-file" in str(info.value)
    assert emu.stats()["api_requests"] == 0


@pytest.mark.system
async def test_http_to_https_redirect_is_followed(start: Start, tmp_path: Path) -> None:
    emu = start(tls="modern", redirect_http=True)
    assert emu.http_url is not None and emu.http_url.startswith("http://")
    async with NeuroMorpho(emu.http_url, ca_file=emu.ca_file, rate=1000) as nm:
        neuron = await nm.neuron(emu.catalogue.neuron_ids()[0])
        result = await nm.download(neuron, Version.CNG, tmp_path)
    assert result.path.read_bytes() == body_of(emu, neuron.id)


async def test_bad_raw_query_is_a_bad_request(plain: Emulator) -> None:
    from neuromorpho_fetch import BadRequestError

    async with client(plain) as nm:
        with pytest.raises(BadRequestError):
            [n async for n in nm.select(q='species:"unbalanced')]


async def test_quoted_values_match_exactly(plain: Emulator) -> None:
    """Multi-word and punctuated values: an unquoted one would match only its last word on the server."""
    async with client(plain) as nm:
        for field in ("brain_region", "cell_type", "stain"):
            counts = await nm.counts(field)
            tricky = [v for v in counts if " " in v or "(" in v][:3]
            assert tricky, field
            for value in tricky:
                assert await nm.count(**{field: value}) == counts[value], (field, value)
            both = tricky[:2]
            criteria: dict[str, str | list[str]] = {field: both}
            # a field name only known at run time: mypy cannot tell it is not the keyword ``q``
            hits = {n.id async for n in nm.select(**criteria)}  # type: ignore[arg-type]
            each = [{n.id async for n in nm.select(**{field: v})} for v in both]
            assert hits == set().union(*each)  # a list is OR-ed


async def test_fields_are_anded(plain: Emulator) -> None:
    async with client(plain) as nm:
        rats = {n.id async for n in nm.select(species="rat")}
        archive = (await nm.neuron(next(iter(sorted(rats))))).archive
        in_archive = {n.id async for n in nm.select(archive=archive)}
        both = [n.id async for n in nm.select(species="rat", archive=archive)]
    assert set(both) == rats & in_archive and len(both) == len(set(both))


async def test_next_page_is_prefetched_one_ahead(start: Start) -> None:
    emu = start(max_page_size=100)
    async with client(emu) as nm, contextlib.aclosing(nm.select(Query(q="*:*"))) as neurons:
        await anext(neurons)
        for _ in range(500):  # the consumer is busy with page 0 ...
            if emu.stats()["api_requests"] >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # room for a wrong third request to show up
        assert emu.stats()["api_requests"] == 2  # ... while page 1 is fetched, and only page 1
        rest = [n async for n in neurons]
    assert len(rest) == len(emu.catalogue) - 1


async def test_field_values_are_the_servers_one_page_in_its_order(plain: Emulator) -> None:
    """``/fields/{field}`` answers with every value on one page, in the server's order (not sorted),
    stray spaces kept: one request after the fields check, and the values exactly as sent."""
    async with client(plain) as nm:
        await nm.fields()
        plain.reset()
        values = await nm.field_values("species")
        requests = plain.stats()["api_requests"]
        raw = await nm.get_json("neuron", "fields", "species")
    assert requests == 1
    assert values == list(dict.fromkeys(str(v) for v in raw["fields"]))
    assert raw["page"]["totalPages"] == 1
