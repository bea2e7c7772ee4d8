"""The engine through the in-memory transport: the whole pipeline, no socket, no thread, no subprocess.

Each test runs the real run (listing, planning, workers, recorder, state store, sinks, dataset step)
against the emulator's application served in memory (:mod:`neuromorpho_fetch.testing`). Where a test
needs the server to misbehave in a way the emulator has no switch for, an aiohttp middleware in the
test rewrites the emulator's answer: the server is still the emulator, only its words are changed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from neuromorpho_fetch import NeuroMorpho
from neuromorpho_fetch.config import ClientConfig
from neuromorpho_fetch.emulator import Catalogue, EmulatorConfig
from neuromorpho_fetch.mirror.options import MirrorOptions
from neuromorpho_fetch.mirror.recorder import Recorder
from neuromorpho_fetch.mirror.run import run_mirror
from neuromorpho_fetch.mirror.work import Kind, Outcome
from neuromorpho_fetch.state import AsyncStateStore
from neuromorpho_fetch.testing import MemoryEmulator, memory_emulator

ARCHIVE = "Siegert"
FAST: dict[str, Any] = {
    "rate": 10_000,
    "concurrency": 8,
    "retries": 2,
    "retry_wait": 0.001,
    "retry_after_max": 0.01,
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Edit = Callable[[web.Request, dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue(400, 7, file_kb=4)


@pytest.fixture
async def emu(catalogue: Catalogue) -> AsyncIterator[MemoryEmulator]:
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4)
    async with memory_emulator(config, catalogue=catalogue) as server:
        yield server


class Rewriter:
    """An aiohttp middleware on the emulator's app: ``edit(request, page)`` may change each JSON select
    page it answers (installed before the app first serves: an app's middlewares freeze then)."""

    def __init__(self, app: web.Application) -> None:
        self.edit: Edit | None = None
        self.paths: list[str] = []  # every request's path, in order
        app.middlewares.append(self.middleware)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.paths.append(request.path)
        response = await handler(request)
        selecting = request.path.rstrip("/").endswith("/neuron/select")
        if self.edit is None or not selecting or not isinstance(response, web.Response):
            return response
        assert isinstance(response.body, bytes)
        page = self.edit(request, json.loads(response.body))
        return web.json_response(page, status=response.status)


@pytest.fixture
def rewrite(emu: MemoryEmulator) -> Rewriter:
    return Rewriter(emu.app)


async def run(emu: MemoryEmulator, out: Path, **options: Any) -> Any:
    options.setdefault("archives", (ARCHIVE,))
    opts = MirrorOptions(out=out, config=ClientConfig().with_settings(**FAST), cool_down=0, **options)
    async with NeuroMorpho(transport=emu.transport(**FAST)) as nm:
        return await run_mirror(opts, client=nm)


def data_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in out.rglob("*.swc")
        if ".neuromorpho-fetch" not in p.parts
    }


class CountingRecorder(Recorder):
    """A recorder double: it keeps every outcome it was given, then lets the real recorder count."""

    def __init__(self, state: AsyncStateStore | None) -> None:
        super().__init__(state)
        self.outcomes: list[Outcome] = []

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        super().record(outcome)


async def test_the_report_is_what_the_recorder_was_told(emu: MemoryEmulator, tmp_path: Path) -> None:
    """Only the recorder writes the numbers: the report equals what its double saw, outcome by outcome,
    and the files on disk are exactly the downloaded outcomes'."""
    out = tmp_path / "m"
    made: list[CountingRecorder] = []

    def double(state: AsyncStateStore | None, progress: Any) -> CountingRecorder:
        made.append(CountingRecorder(state))
        return made[-1]

    async with NeuroMorpho(transport=emu.transport(**FAST)) as nm:
        opts = MirrorOptions(out=out, archives=(ARCHIVE,), config=nm.config, cool_down=0)
        report, error = await run_mirror(opts, client=nm, recorder=double)
    [recorder] = made
    assert error is None and report.exit_code == 0
    kinds = [o.kind for o in recorder.outcomes]
    on_disk = data_files(out)
    assert report.downloaded == kinds.count(Kind.DOWNLOADED) == len(on_disk) == 28
    assert report.skipped == kinds.count(Kind.SKIPPED) == 0
    assert report.bytes == sum(o.size for o in recorder.outcomes) == sum(map(len, on_disk.values()))
    assert {o.plan.path for o in recorder.outcomes} == set(on_disk)


async def test_a_second_run_skips_everything_with_no_file_request(
    emu: MemoryEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "m"
    first, _ = await run(emu, out)
    before = emu.stats()["file_requests"]
    second, _ = await run(emu, out)
    assert first.downloaded == second.skipped == 28 and second.downloaded == 0
    assert emu.stats()["file_requests"] == before


async def test_a_short_listing_is_an_error_and_keeps_the_old_metadata(
    emu: MemoryEmulator, rewrite: Rewriter, tmp_path: Path
) -> None:
    """Issue 15 item 1: 3 distinct records while the count says 28 is not the archive; nothing is marked
    gone, metadata.jsonl keeps every row, --delete-gone deletes nothing, exit 1."""
    out = tmp_path / "m"
    full, _ = await run(emu, out)
    assert full.exit_code == 0
    metadata = (out / "siegert" / "metadata.jsonl").read_bytes()
    files = data_files(out)

    def short(request: web.Request, page: dict[str, Any]) -> dict[str, Any]:
        if "size=1" in request.query_string:  # the re-count agrees with the first announcement
            return page
        records = page.get("_embedded", {}).get("neuronResources", [])
        if records:
            page["_embedded"]["neuronResources"] = records[:3] if request.query.get("page") == "0" else []
        return page

    rewrite.edit = short
    report, _ = await run(emu, out, delete_gone=True)
    assert report.exit_code == 1 and len(report.listing_errors) == 1
    assert "listed 3 of the 28 neurons the server announced" in report.listing_errors[0]
    assert (out / "siegert" / "metadata.jsonl").read_bytes() == metadata
    assert data_files(out) == files
    assert report.dataset is not None and report.dataset.get("deleted_gone") == []


async def test_records_deleted_during_the_listing_are_complete_when_the_recount_agrees(
    emu: MemoryEmulator, rewrite: Rewriter, tmp_path: Path
) -> None:
    """A page that lost records while we listed is complete when a re-count gives what was listed."""
    out = tmp_path / "m"

    def deleted(request: web.Request, page: dict[str, Any]) -> dict[str, Any]:
        records = page.get("_embedded", {}).get("neuronResources", [])
        if "size=1" in request.query_string:
            page["page"]["totalElements"] = 25  # the re-count: three were deleted meanwhile
        elif records:
            page["_embedded"]["neuronResources"] = records[:25]
        return page

    rewrite.edit = deleted
    report, _ = await run(emu, out)
    assert report.listing_errors == () and report.exit_code == 0
    [listing] = report.listings
    assert (listing.announced, listing.listed, listing.recount, listing.complete) == (28, 25, 25, True)


async def test_bad_records_are_rejected_and_the_rest_is_mirrored(
    emu: MemoryEmulator, rewrite: Rewriter, tmp_path: Path
) -> None:
    """Issue 15 item 5: each bad record is one rejected record with its reason; the good ones land."""
    out = tmp_path / "m"
    bad = [
        {"neuron_id": float("inf"), "neuron_name": "inf", "archive": ARCHIVE},
        {"neuron_id": 10**30, "neuron_name": "huge", "archive": ARCHIVE},
        {"neuron_id": 990001, "neuron_name": None, "archive": ARCHIVE},
        {"neuron_id": 990002, "neuron_name": "", "archive": ARCHIVE},
        {"neuron_id": 990003, "neuron_name": 7, "archive": ARCHIVE},
        {"neuron_id": 990004, "neuron_name": "n", "archive": None},
        {"neuron_id": 990005, "neuron_name": "surrogate \ud800", "archive": ARCHIVE},
        {"neuron_id": 990006, "neuron_name": "big", "archive": ARCHIVE, "note": "x" * (5 << 20)},
    ]

    def inject(request: web.Request, page: dict[str, Any]) -> dict[str, Any]:
        records = page.get("_embedded", {}).get("neuronResources", [])
        if records and request.query.get("page") == "0" and "size=1" not in request.query_string:
            records.extend(bad)
            page["page"]["totalElements"] += len(bad)
        return page

    rewrite.edit = inject
    report, _ = await run(emu, out)
    assert report.rejected == len(bad) and report.downloaded == 28
    reasons = " | ".join(r.reason for r in report.rejected_records)
    for needle in (
        "neuron_id",
        "neuron_name is None",
        "neuron_name is ''",
        "not text",
        "archive",
        "surrogate",
    ):
        assert needle in reasons, needle
    assert "bytes as JSON" in reasons
    assert report.exit_code == 1  # what was asked for is not all there
    lines = (out / "siegert" / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 28  # the dataset never sees a bad record
    assert report.dataset is not None and "error" not in report.dataset


async def test_the_second_pass_is_the_first_pass_failures(tmp_path: Path, catalogue: Catalogue) -> None:
    """Files that fail once (a 503 the first time each is asked) land in the second pass: each is asked
    twice, the others once, and the report says all downloaded."""
    config = EmulatorConfig(
        neurons=400,
        seed=7,
        tls="none",
        file_kb=4,
        fault_rate=0.3,
        faults=("503",),
        fault_scope="files",
        fault_max_per_url=1,
    )
    async with memory_emulator(config, catalogue=catalogue) as emu:
        opts = {**FAST, "retries": 0}
        options = MirrorOptions(
            out=tmp_path / "m", archives=(ARCHIVE,), config=ClientConfig().with_settings(**opts), cool_down=0
        )
        async with NeuroMorpho(transport=emu.transport(**opts)) as nm:
            report, _ = await run_mirror(options, client=nm)
        by_path = emu.stats()["file_requests_by_path"]
    assert report.downloaded == 28 and report.failed == 0 and report.exit_code == 0
    assert sorted(set(by_path.values())) in ([1, 2], [2], [1])
    assert sum(by_path.values()) > 28  # some were asked twice: the second pass ran


async def test_limit_is_an_input_of_the_listing(emu: MemoryEmulator, tmp_path: Path) -> None:
    report, _ = await run(emu, tmp_path / "m", limit=5)
    assert report.neurons == 5 and report.downloaded == 5 and report.exit_code == 0


@pytest.mark.parametrize("batch", ["ok", "400"])
async def test_morphometry_comes_50_neurons_a_request(
    tmp_path: Path, catalogue: Catalogue, batch: str
) -> None:
    """Issue 18 item 4: at most ceil(N/50) plus a few morphometry requests for N neurons; when the batch
    route answers 400, every record still comes, one request per neuron, said once."""
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4, batch_select=batch)  # type: ignore[arg-type]
    async with memory_emulator(config, catalogue=catalogue) as emu:
        seen = Rewriter(emu.app)
        report, _ = await run(emu, tmp_path / "m", archives=("Amaral",), morphometry=True)
    neurons = report.neurons
    asked = [p for p in seen.paths if p.startswith("/api/morphometry")]
    lines = (tmp_path / "m" / "amaral" / "morphometry.jsonl").read_text(encoding="utf-8").splitlines()
    have = {i for i in catalogue.neuron_ids() if (catalogue.record(i) or {}).get("archive") == "Amaral"}
    with_morph = {i for i in have if catalogue.has_morphometry(i)}
    assert {json.loads(line)["neuron_id"] for line in lines} == with_morph
    assert report.metadata_missing == len(have - with_morph) and report.exit_code == 0
    if batch == "ok":
        assert len(asked) <= -(-neurons // 50) + 2
    else:
        # each batch tried once at most (and once more at the small page size), then one per neuron
        assert len(asked) <= neurons + 2 * -(-neurons // 50)
        assert len([p for p in asked if p.endswith("/select")]) <= 2 * -(-neurons // 50)


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_the_server_never_sees_more_requests_than_concurrency(
    tmp_path: Path, catalogue: Catalogue, concurrency: int
) -> None:
    """A pass has twice as many workers as request slots (the second keeps a slot busy while a body is
    on its way to disk): the server still sees at most ``--concurrency`` requests at once, and the
    slots are used."""
    config = EmulatorConfig(neurons=400, seed=7, tls="none", file_kb=4, latency_ms=5)
    settings = {**FAST, "concurrency": concurrency}
    async with memory_emulator(config, catalogue=catalogue) as server:
        opts = MirrorOptions(
            out=tmp_path / "m",
            archives=(ARCHIVE,),
            config=ClientConfig().with_settings(**settings),
            cool_down=0,
        )
        async with NeuroMorpho(transport=server.transport(**settings)) as nm:
            report, error = await run_mirror(opts, client=nm)
        stats = server.stats()
    assert error is None and report.downloaded == 28
    assert stats["max_in_flight"] == concurrency


async def test_an_error_body_nested_too_deep_is_an_error_like_any_other(
    emu: MemoryEmulator, tmp_path: Path
) -> None:
    """A 503 whose body is 1,500 ``[`` (json.loads raises RecursionError on it, which the error-body
    reader's ``except ValueError`` let through and crashed the run) is a busy server: retried, and the
    run completes."""
    refused: set[str] = set()

    @web.middleware
    async def deep_503(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/dableFiles/") and request.path not in refused:
            refused.add(request.path)
            return web.Response(status=503, body=b"[" * 1500, content_type="application/json")
        return await handler(request)

    emu.app.middlewares.append(deep_503)
    report, error = await run(emu, tmp_path / "m")
    assert error is None and report.exit_code == 0
    assert report.downloaded == 28 == len(refused)
    assert report.retries >= 28
