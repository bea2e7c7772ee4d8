"""Every extra the documents tell a user to install exists: pip only warns about an unknown extra and
installs without it, so a misspelt or missing one fails silently (README's ``.[fast]`` named an extra
pyproject.toml did not define until 2026-12-04)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_EXTRAS = re.compile(r"(?:\.|neuromorpho-fetch)\[([a-z]+(?:,\s*[a-z]+)*)\]")


def test_every_extra_named_in_the_documents_and_messages_is_defined() -> None:
    defined = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    places = [ROOT / "README.md", ROOT / ".ci" / "run", *sorted((ROOT / "docs").glob("*.md"))]
    places += [ROOT / "benchmarks" / "README.md", *sorted((ROOT / "src").rglob("*.py"))]
    named: dict[str, set[str]] = {}
    for path in places:
        for match in _EXTRAS.finditer(path.read_text(encoding="utf-8")):
            for extra in match.group(1).split(","):
                named.setdefault(extra.strip(), set()).add(str(path.relative_to(ROOT)))
    assert {"fast", "test", "emulator"} <= set(named)  # the scan finds what it is for
    unknown = {extra: sorted(where) for extra, where in named.items() if extra not in defined}
    assert not unknown, f"extras named but not defined in pyproject.toml: {unknown}"
