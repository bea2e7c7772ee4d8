"""docs/architecture.md promises one line per module: a module it does not name is one a reader cannot find.

Each module under ``src/neuromorpho_fetch`` must be named in the page, by its path or (for the emulator
and dataset tables) by its file name in a row, so a new module lands with its line.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "neuromorpho_fetch"
PAGE = ROOT / "docs" / "architecture.md"


def _named(relative: str, lines: list[str]) -> bool:
    """Named by its path anywhere, or by its file name in a table row that starts with its folder."""
    if any(f"`{relative}`" in line for line in lines):
        return True
    folder, _, name = relative.rpartition("/")
    return bool(folder) and any(
        line.startswith(f"| `{folder}/") and f"`{name}`" in line.split("|")[1] for line in lines
    )


def test_every_module_has_a_line() -> None:
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    modules = (m.relative_to(PACKAGE).as_posix() for m in sorted(PACKAGE.rglob("*.py")))
    assert [m for m in modules if not _named(m, lines)] == []
