"""Layout cases the client met against the emulator: raw names inside a record's png_url."""

from __future__ import annotations

from pathlib import PurePosixPath

from neuromorpho_fetch.layout import file_url, png_path, relative_path
from neuromorpho_fetch.models import Neuron, Version


def test_png_url_with_raw_special_characters() -> None:
    png = "http://neuromorpho.org/images/imageFiles/Allen Cell Types/a #1?b%.png"
    n = Neuron.from_record(
        {"neuron_id": 1, "neuron_name": "a #1?b%", "archive": "Allen Cell Types", "png_url": png}
    )
    assert png_path(png) == "/images/imageFiles/Allen Cell Types/a #1?b%.png"
    assert file_url("https://h:1", n, Version.PNG) == (
        "https://h:1/images/imageFiles/Allen%20Cell%20Types/a%20%231%3Fb%25.png"
    )
    assert relative_path(n, Version.PNG) == PurePosixPath("allen cell types/images/a #1?b%25.png")


def test_png_path_without_scheme() -> None:
    assert png_path("/images/x.png") == "/images/x.png"
    assert png_path("http://host") == "/"
