"""SHA256SUMS that the real ``sha256sum -c`` accepts, and that find corruption without the state store."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuromorpho_fetch.dataset import MANIFEST, check_manifests, finalize
from neuromorpho_fetch.dataset.manifests import format_line, parse_line, read_manifest

SHA256SUM = shutil.which("sha256sum")
assert SHA256SUM, "coreutils' sha256sum is needed: the manifests are tested against the real command"


def sha256sum_check(folder: Path) -> subprocess.CompletedProcess[str]:
    assert SHA256SUM is not None
    return subprocess.run(
        [SHA256SUM, "-c", "--strict", MANIFEST], cwd=folder, capture_output=True, text=True, timeout=60
    )


def version_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/*/{MANIFEST}"))


def test_sha256sum_passes_in_every_version_folder(mirror_root: Path) -> None:
    folders = version_folders(mirror_root)
    assert {f.relative_to(mirror_root).as_posix() for f in folders} == {
        f"{a}/{v}" for a in ("siegert", "amaral") for v in ("CNG", "source")
    }
    for folder in folders:
        done = sha256sum_check(folder)
        assert done.returncode == 0, done.stdout + done.stderr
        listed = set(read_manifest(folder / MANIFEST))
        assert listed == {p.name for p in folder.iterdir() if p.name != MANIFEST}


def test_sha256sum_fails_after_one_byte_changes_and_check_manifests_names_the_file(mirror_copy: Path) -> None:
    folder = mirror_copy / "siegert" / "CNG"
    victim = sorted(p for p in folder.iterdir() if p.name != MANIFEST)[3]
    body = bytearray(victim.read_bytes())
    body[len(body) // 2] ^= 0x01
    victim.write_bytes(bytes(body))
    done = sha256sum_check(folder)
    assert done.returncode == 1
    assert f"{victim.name}: FAILED" in done.stdout
    gone = sorted(p for p in (mirror_copy / "amaral" / "source").iterdir() if p.name != MANIFEST)[0]
    gone.unlink()

    result = check_manifests(mirror_copy)
    assert result.corrupt == [f"siegert/CNG/{victim.name}"]
    assert result.missing == [f"amaral/source/{gone.name}"]
    assert result.bad == sorted([f"siegert/CNG/{victim.name}", f"amaral/source/{gone.name}"])
    assert result.manifests == 4 and result.ok == result.checked - 2


def test_verify_from_manifests_with_the_state_store_gone(mirror_copy: Path) -> None:
    """The state folder is lost; the manifests alone find the corrupted file, and nothing else."""
    shutil.rmtree(mirror_copy / ".neuromorpho-fetch")
    victim = next((mirror_copy / "amaral" / "CNG").glob("*.CNG.swc"))
    victim.write_bytes(victim.read_bytes() + b"\n# appended\n")
    assert check_manifests(mirror_copy).bad == [f"amaral/CNG/{victim.name}"]


def test_a_file_deleted_by_the_user_leaves_the_manifest_at_the_next_finalize(mirror_copy: Path) -> None:
    folder = mirror_copy / "siegert" / "source"
    victim = next(p for p in folder.iterdir() if p.name != MANIFEST)
    victim.unlink()
    (folder / MANIFEST).unlink()  # the next finalize rewrites a missing manifest
    finalize(mirror_copy)
    assert victim.name not in read_manifest(folder / MANIFEST)
    assert sha256sum_check(folder).returncode == 0


HOSTILE = [
    "plain.swc",
    "back\\slash.swc",
    "new\nline.swc",
    "carriage\rreturn.swc",
    " lead space",
    "*star",
    "ü ñ.swc",
]


def test_escaped_names_pass_the_real_sha256sum(tmp_path: Path) -> None:
    """coreutils' escaping (a leading backslash, \\\\ \\n \\r) for names the mirror never makes itself."""
    lines = []
    for i, name in enumerate(HOSTILE):
        body = f"body {i}".encode()
        (tmp_path / name).write_bytes(body)
        lines.append(format_line(name, hashlib.sha256(body).hexdigest()))
    (tmp_path / MANIFEST).write_text("".join(lines), encoding="utf-8", newline="\n")
    done = sha256sum_check(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_manifest(tmp_path / MANIFEST).keys() == set(HOSTILE)
    (tmp_path / HOSTILE[2]).write_bytes(b"changed")
    assert sha256sum_check(tmp_path).returncode == 1


@pytest.mark.system
def test_what_sha256sum_writes_we_read(tmp_path: Path) -> None:
    for i, name in enumerate(HOSTILE):
        (tmp_path / name).write_bytes(f"body {i}".encode())
    for mode in ("--text", "--binary"):
        assert SHA256SUM is not None
        out = subprocess.run(
            [SHA256SUM, mode, "--", *HOSTILE], cwd=tmp_path, capture_output=True, check=True, timeout=60
        ).stdout.decode("utf-8")
        parsed = dict(filter(None, (parse_line(line) for line in out.splitlines(keepends=True))))
        assert parsed == {n: hashlib.sha256(f"body {i}".encode()).hexdigest() for i, n in enumerate(HOSTILE)}


DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (f"{DIGEST}  a.swc\n", ("a.swc", DIGEST)),
        (f"{DIGEST} *a.swc\n", ("a.swc", DIGEST)),
        (f"\\{DIGEST}  a\\nb\n", ("a\nb", DIGEST)),
        (f"\\{DIGEST}  a\\\\b\n", ("a\\b", DIGEST)),
        (f"{DIGEST.upper()}  a\n", ("a", DIGEST)),
        (f"{DIGEST}   two spaces in the name\n", (" two spaces in the name", DIGEST)),
        (f"{DIGEST} a\n", None),
        ("xyz  a\n", None),
        ("\n", None),
    ],
)
def test_parse_line_table(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse_line(line) == parsed


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s), st.binary(min_size=32, max_size=32))
def test_format_then_parse_round_trips(name: str, raw: bytes) -> None:
    digest = raw.hex()
    line = format_line(name, digest)
    assert line.count("\n") == 1 and line.endswith("\n")
    assert parse_line(line) == (name, digest)


def test_format_line_refuses_a_bad_digest() -> None:
    with pytest.raises(ValueError):
        format_line("a", "ABC")


def test_a_manifest_write_sweeps_its_own_stale_temp_file_and_leaves_other_writers_alone(
    mirror_copy: Path,
) -> None:
    """A killed manifest write leaves ``.SHA256SUMS.<hex>.part``; the next write removes it. Another
    writer's temp file in the folder is neither removed (not ours to sweep) nor listed."""
    folder = mirror_copy / "siegert" / "CNG"
    stale = folder / f".{MANIFEST}.0123abcd.part"
    stale.write_text("half a manifest")
    other = folder / ".x.CNG.swc.89abcdef.part"
    other.write_text("a body being written")
    (mirror_copy / "siegert" / "CNG" / MANIFEST).unlink()  # so the folder's manifest is written again
    finalize(mirror_copy)
    assert not stale.exists()
    assert other.exists()
    assert other.name not in read_manifest(folder / MANIFEST)
    assert sha256sum_check(folder).returncode == 0
