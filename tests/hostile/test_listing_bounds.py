"""Issue 10 items 3 and 5 through the CLI: the listing is bounded and honest.

* the HTML-404 cap counts HTML 404 answers, not attempts, so a route answering 500, HTML 404 twice,
  then 200 is listed in full (it used to end the run at the third attempt);
* a listing that fails (HTML 404 past the cap, paging that repeats itself or makes no sense) never
  looks like an empty or smaller archive: what it listed is fetched, the report's ``listing_errors``
  names the URL and the problem, and the exit code is 1;
* ``--all`` lists the next archives while the first one's files download (issue 11).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import NeuroMorpho
from neuromorpho_fetch.emulator import HostileConfig
from neuromorpho_fetch.errors import NotFoundPageError, PagingError
from neuromorpho_fetch.mirror import listing
from neuromorpho_fetch.models import Neuron
from neuromorpho_fetch.protocol import Page, paging_problem, parse_page

from .conftest import (
    ARCHIVE,
    Serve,
    base_args,
    data_files,
    expected_files,
    read_report,
    run_checked,
    run_cli,
)

SELECT = "/api/neuron/select"


# -- item 3 -------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_500_then_two_html_404s_then_ok_lists_everything(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(hostile=HostileConfig(status_script=("500", "html404", "html404"), paths=SELECT))
    out = tmp_path / "m"
    code, err, report = run_checked(server, out, capsys, "--retries", "5")
    assert code == 0, err
    assert report["listing_errors"] == [] and report["neurons"] == 28
    assert data_files(out) == expected_files(server, ARCHIVE)


@pytest.mark.timeout(60)
def test_a_listing_that_keeps_failing_is_reported_not_empty(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hostile helper's case: 500, HTML 404, HTML 404 with ``--retries 2`` used to exit 0 having
    listed nothing (the HTML 404 read as "no results"). Now: exit 1, the listing error in the report."""
    server = serve(hostile=HostileConfig(status_script=("500", "html404", "html404"), paths=SELECT))
    out = tmp_path / "m"
    code, err, report = run_checked(server, out, capsys, "--retries", "2")
    assert code == 1
    assert len(report["listing_errors"]) == 1
    problem = report["listing_errors"][0]
    assert problem.startswith(f"{ARCHIVE}: ") and "HTTP 404" in problem and SELECT in problem
    assert "listing Siegert ended early" in err
    assert report["neurons"] == 0 and report["files"] == 0


@pytest.mark.timeout(60)
def test_three_html_404s_spend_the_html_404_budget_only(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(hostile=HostileConfig(status_script=("html404",) * 3, paths=SELECT))
    code, _, report = run_checked(server, tmp_path / "m", capsys, "--retries", "6")
    assert code == 1 and report["listing_errors"]
    assert server.stats()["by_status"].get("404") == 3  # three answers, not the seven attempts allowed


# -- item 5 -------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_looping_pages_stop_at_the_first_page_that_brings_nothing_new(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Page 0's records on every page with ``totalPages: 1e9``: page 1 brings nothing new, the walk
    stops there (two select requests, not 197), and the 28 neurons it listed are downloaded."""
    server = serve(hostile=HostileConfig(looping_pages=1.0))
    out = tmp_path / "m"
    code, err, report = run_checked(server, out, capsys)
    assert code == 1
    [problem] = report["listing_errors"]
    assert "nothing new" in problem and SELECT in problem
    assert report["downloaded"] == 28 and report["failed"] == 0
    assert data_files(out) == expected_files(server, ARCHIVE)
    assert server.stats()["api_requests"] < 10
    assert "ended early" in err


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("nan", "number is -7"),
        ("negative", "is -1"),
        ("huge", "more than totalElements"),
        ("inconsistent", "more than totalElements"),
    ],
)
def test_nonsense_page_numbers_stop_the_walk_and_keep_what_was_listed(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, needle: str
) -> None:
    server = serve(hostile=HostileConfig(nonsense_paging=1.0, nonsense_kind=kind))  # type: ignore[arg-type]
    out = tmp_path / "m"
    code, _, report = run_checked(server, out, capsys)
    assert code == 1
    [problem] = report["listing_errors"]
    assert needle in problem and SELECT in problem, problem
    assert data_files(out) == expected_files(server, ARCHIVE)  # the page's records are real: fetched


@pytest.mark.parametrize(
    ("meta", "asked", "problem"),
    [
        ({"size": 500, "totalElements": 28, "totalPages": 1, "number": 0}, 500, None),
        ({"size": 50, "totalElements": 1234, "totalPages": 25, "number": 0}, 500, None),
        ({"size": 95, "totalPages": 1, "totalElements": 95, "number": 0}, 500, None),  # /fields, reference E
        ({"size": 500, "totalElements": 0, "totalPages": 0, "number": 0}, 500, None),
        ({}, 500, None),
        ({"totalPages": "3", "number": 2.0}, 500, None),
        ({"totalPages": "NaN", "number": -7}, 500, "number is -7"),
        ({"totalPages": "NaN", "number": 0}, 500, "totalPages is 'NaN'"),
        ({"totalPages": 1.5}, 500, "totalPages is 1.5"),
        ({"totalElements": -1, "totalPages": -1}, 500, "totalPages is -1"),
        ({"size": 500, "totalElements": 28, "totalPages": 10**9}, 500, "more than totalElements 28 allows"),
        ({"totalElements": 10**30, "totalPages": 10**28}, 500, "more than totalElements"),
        ({"totalElements": 1000, "totalPages": 3}, 500, "at 500 per page (2)"),
    ],
)
def test_paging_problem_table(meta: dict[str, Any], asked: int, problem: str | None) -> None:
    found = paging_problem(parse_page({"_embedded": {"neuronResources": []}, "page": meta}, "u"), asked)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_page_without_numbers_has_no_problem() -> None:
    assert paging_problem(Page(items=[1, 2]), 500) is None


async def test_the_library_raises_paging_error_after_yielding_the_real_records(serve: Serve) -> None:
    server = serve(hostile=HostileConfig(looping_pages=1.0))
    seen: list[int] = []
    async with NeuroMorpho(server.base_url, rate=1000) as nm:
        with pytest.raises(PagingError, match="nothing new"):
            async with contextlib.aclosing(nm.select(archive=ARCHIVE)) as neurons:
                async for neuron in neurons:
                    seen.append(neuron.id)
    assert len(seen) == len(set(seen)) == 28


async def test_an_html_404_is_not_no_results(serve: Serve) -> None:
    """The API says "no hits" as a JSON 404; an HTML 404 from a front end is an error, for ``select``
    and for ``count`` alike (it used to be read as an empty result)."""
    server = serve(hostile=HostileConfig(status_script=("html404",) * 5, paths=SELECT))
    async with NeuroMorpho(server.base_url, rate=1000, retries=6, sleep=_no_sleep) as nm:
        with pytest.raises(NotFoundPageError):
            await nm.count(archive=ARCHIVE)
        with pytest.raises(NotFoundPageError):
            [n async for n in nm.select(archive=ARCHIVE)]


async def _no_sleep(_: float) -> None:
    return None


# -- issue 11: --all lists ahead ------------------------------------------------------------------


async def test_all_lists_several_archives_at_once(serve: Serve) -> None:
    """Every archive of this catalogue fits on one page, so a walk in series never has two requests in
    flight; the look-ahead fetches the next archives' first pages while one is planned."""
    server = serve(latency_ms=30)
    async with NeuroMorpho(server.base_url, rate=1000, concurrency=8) as nm:
        chosen, queried = await listing.selections(nm, (), True, ())
        assert not queried and len(chosen) > listing.LOOKAHEAD
        planned: list[str] = []
        done: set[str] = set()
        async for item in listing.walk(nm, chosen):
            if isinstance(item, listing.Batch):
                planned.extend(n.archive for n in item.neurons)
            elif item.complete:
                done.update(item.archives)
        assert nm.pacer.max_in_flight >= 2
    # Still in order, each archive once and complete: the look-ahead changes timing, not results.
    order = [a for i, a in enumerate(planned) if i == 0 or planned[i - 1] != a]
    assert order == sorted(set(planned), key=str.lower) and done == set(planned)
    assert len(planned) == 400


async def test_a_limit_stops_the_look_ahead_cleanly(serve: Serve) -> None:
    server = serve(latency_ms=20)
    async with NeuroMorpho(server.base_url, rate=1000, concurrency=8) as nm:
        chosen, _ = await listing.selections(nm, (), True, ())
        planned: list[Neuron] = []
        async for item in listing.walk(nm, chosen, limit=5):
            if isinstance(item, listing.Batch):
                planned.extend(item.neurons)
    assert len(planned) == 5


@pytest.mark.timeout(60)
def test_a_server_that_stops_answering_ends_the_listing_once_not_per_archive(
    serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every select is reset: the first archive spends its retries, the others are reported in one
    entry instead of each spending the same retries (with ``--all``, ~100 archives of minutes each)."""
    server = serve(hostile=HostileConfig(status_script=("reset",) * 20, paths=SELECT))
    out, report_path = tmp_path / "m", tmp_path / "r.json"
    result = run_cli(
        [*base_args(server, out, "--report", str(report_path), "--retries", "1"), "--all"], capsys
    )
    assert result.code == 1 and "Traceback" not in result.err
    report = read_report(report_path)
    assert report["exit_code"] == 1 and report["files"] == 0
    first, rest = report["listing_errors"]
    assert "cannot talk to" in first or "reset" in first.lower()
    assert rest.split(":")[0].endswith("more selections") and "stopped answering" in rest
