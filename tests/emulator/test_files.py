"""The file server: every version at the URL the client's layout builds, validators, ranges, 304s."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests

from neuromorpho_fetch import Neuron, Version, file_url
from neuromorpho_fetch.emulator import Catalogue, Emulator
from neuromorpho_fetch.errors import NoSuchFileError

from ._raw import raw_get
from .conftest import Start


def neuron(emu: Emulator, index: int) -> Neuron:
    record = emu.catalogue.record(emu.catalogue.neuron_ids()[index])
    assert record is not None
    return Neuron.from_record(record)


def url(emu: Emulator, index: int = 0, version: Version = Version.CNG) -> str:
    return file_url(emu.base_url, neuron(emu, index), version)


def fetch(target: str, **headers: str) -> requests.Response:
    return requests.get(target, headers=headers or None, timeout=10)


def test_every_version_is_served_with_validators(plain: Emulator) -> None:
    served = 0
    for index in range(8):
        n = neuron(plain, index)
        for version in Version:
            try:
                target = file_url(plain.base_url, n, version)
            except NoSuchFileError:
                continue
            expected = plain.catalogue.file_for(n.id, version.value)
            assert expected is not None, (n.name, version)
            resp = fetch(target)
            assert resp.status_code == 200, target
            assert resp.content == expected.body
            assert int(resp.headers["Content-Length"]) == len(expected.body)
            assert resp.headers["ETag"] == expected.etag
            assert resp.headers["Last-Modified"] == format_datetime(expected.last_modified, usegmt=True)
            assert resp.headers["Content-Type"].startswith(expected.content_type)
            served += 1
    assert served > 8 * 3


def test_png_is_an_image(plain: Emulator) -> None:
    resp = fetch(url(plain, 0, Version.PNG))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.system
def test_hostile_names_round_trip(start: Start, hostile_catalogue: Catalogue) -> None:
    """Spaces, %, #, +, parentheses, non-ASCII, backslashes and slashes (encoded and not)."""
    emu = start(catalogue=hostile_catalogue)
    names = []
    for index in range(len(emu.catalogue)):
        n = neuron(emu, index)
        if n.name.replace("_", "").replace("-", "").isalnum():
            continue  # plain names are covered elsewhere; fetch only the hostile ones
        names.append(n.name)
        resp = fetch(file_url(emu.base_url, n, Version.CNG))
        assert resp.status_code == 200, n.name
        assert resp.content == emu.catalogue.file_for(n.id, "CNG").body  # type: ignore[union-attr]
        if not any(part in (".", "..") for part in n.name.split("/")):  # dot segments get normalised away
            png = fetch(file_url(emu.base_url, n, Version.PNG))
            assert png.status_code == 200, n.name
            assert png.content == emu.catalogue.file_for(n.id, "images").body  # type: ignore[union-attr]
    for needle in (" ", "%", "#", "+", "/", "é"):
        assert any(needle in name for name in names), needle
    slashed = next(name for name in names if "/" in name and not name.startswith("."))
    record_id = emu.catalogue.id_by_name(slashed)
    archive = emu.catalogue.record(record_id)["archive"].lower()  # type: ignore[arg-type,index]
    literal = f"/dableFiles/{quote(archive)}/CNG%20version/{slashed}.CNG.swc"
    assert raw_get(emu.base_url, literal).status == 200


def test_unknown_file_is_an_html_404(plain: Emulator) -> None:
    resp = fetch(plain.base_url + "/dableFiles/nobody/CNG%20version/nothing.CNG.swc")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    bad_folder = url(plain).replace("CNG%20version", "Other%20folder")
    assert fetch(bad_folder).status_code == 404


def test_path_case_switch(start: Start, plain: Emulator) -> None:
    lenient = start(path_case="insensitive")
    parts = url(plain).split("/")  # .../dableFiles/<archive>/<version folder>/<file name>
    for index in (4, 5, 6):  # each part of the path after /dableFiles, in the wrong case
        shouting = list(parts)
        shouting[index] = parts[index].upper()
        assert shouting[index] != parts[index]
        upper = "/".join(shouting)
        assert fetch(upper).status_code == 404, upper
        assert fetch(upper.replace(plain.base_url, lenient.base_url)).status_code == 200, upper
    png = url(plain, 0, Version.PNG).split("/")  # .../images/imageFiles/<Archive>/<name>.png
    assert png[5] != png[5].lower()
    png[5] = png[5].lower()
    lowered = "/".join(png)
    assert fetch(lowered).status_code == 404
    assert fetch(lowered.replace(plain.base_url, lenient.base_url)).status_code == 200


def test_head_sends_headers_only(plain: Emulator) -> None:
    resp = requests.head(url(plain), timeout=10)
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == len(fetch(url(plain)).content)
    assert resp.content == b""


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, None)),
        ("bytes=-50", (-50, None)),
        ("bytes=10-10", (10, 10)),
    ],
)
def test_single_ranges(plain: Emulator, header: str, span: tuple[int, int | None]) -> None:
    full = fetch(url(plain)).content
    resp = fetch(url(plain), Range=header)
    assert resp.status_code == 206
    start, end = span
    if start < 0:
        start, end = len(full) + start, len(full) - 1
    elif end is None:
        end = len(full) - 1
    assert resp.content == full[start : end + 1]
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(full)}"
    assert int(resp.headers["Content-Length"]) == end - start + 1


def test_unsatisfiable_and_ignored_ranges(plain: Emulator) -> None:
    full = fetch(url(plain)).content
    too_far = fetch(url(plain), Range=f"bytes={len(full)}-")
    assert too_far.status_code == 416
    assert too_far.headers["Content-Range"] == f"bytes */{len(full)}"
    for ignored in ("bytes=0-1,5-6", "items=0-5", "bytes=abc"):
        resp = fetch(url(plain), Range=ignored)
        assert resp.status_code == 200 and resp.content == full


def test_if_range(plain: Emulator) -> None:
    head = fetch(url(plain)).headers
    etag, modified = head["ETag"], head["Last-Modified"]
    assert fetch(url(plain), Range="bytes=5-", **{"If-Range": etag}).status_code == 206
    assert fetch(url(plain), Range="bytes=5-", **{"If-Range": modified}).status_code == 206
    stale: dict[str, Any] = {"If-Range": '"not-the-etag"'}
    assert fetch(url(plain), Range="bytes=5-", **stale).status_code == 200
    assert fetch(url(plain), Range="bytes=5-", **{"If-Range": "W/" + etag}).status_code == 200
    older = "Mon, 01 Jan 1990 00:00:00 GMT"
    assert fetch(url(plain), Range="bytes=5-", **{"If-Range": older}).status_code == 200


def test_conditional_get(plain: Emulator) -> None:
    head = fetch(url(plain)).headers
    etag, modified = head["ETag"], head["Last-Modified"]
    not_modified = fetch(url(plain), **{"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["ETag"] == etag
    assert not_modified.content == b""
    assert fetch(url(plain), **{"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert fetch(url(plain), **{"If-None-Match": '"other"'}).status_code == 200
    assert fetch(url(plain), **{"If-Modified-Since": modified}).status_code == 304
    assert fetch(url(plain), **{"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
    assert fetch(url(plain), **both).status_code == 200
