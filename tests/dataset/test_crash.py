"""``kill -9`` while the dataset layer is being written leaves the old or the new files, and the next
``finalize`` makes everything consistent again."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neuromorpho_fetch.dataset import (
    BIB_FILE,
    CATALOGUE_FILE,
    CHANGES_FILE,
    CITATION_FILE,
    MANIFEST,
    FileFact,
    check_manifests,
    finalize,
)
from neuromorpho_fetch.dataset.manifests import read_manifest
from neuromorpho_fetch.paths import is_temp_name

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system

#: Flip between two upstream states (metadata and one file body) and finalize each, forever.
LOOP = """
import json, sys, hashlib
from pathlib import Path
from neuromorpho_fetch.atomic import atomic_write
from neuromorpho_fetch.dataset import FileFact, finalize

root = Path(sys.argv[1])
variants = json.loads((root.parent / "variants.json").read_text())
i = 0
while True:
    v = variants[i % 2]
    atomic_write(root / "siegert" / "metadata.jsonl", v["metadata"].encode())
    atomic_write(root / v["file"], v["body"].encode("latin-1"))
    fact = FileFact(v["file"], len(v["body"]), hashlib.sha256(v["body"].encode("latin-1")).hexdigest())
    finalize(root, archives=["Siegert"], files=[fact], complete_archives=["Siegert"])
    print(i, flush=True)
    i += 1
"""


HELD = "SELECT neuron_id, record FROM neurons WHERE archive='Siegert' AND gone_upstream=0"


def current_fact(root: Path, rel: str) -> FileFact:
    body = (root / rel).read_bytes()
    return FileFact(rel, len(body), hashlib.sha256(body).hexdigest())


def test_kill_9_during_finalize_leaves_old_or_new_and_the_next_run_repairs(mirror_copy: Path) -> None:
    root = mirror_copy
    meta = (root / "siegert" / "metadata.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in meta.splitlines()]
    edited = [{**r, "species": "rat"} for r in records[1:]]  # every record changed, one gone
    target = sorted((root / "siegert" / "CNG").glob("*.swc"))[0]
    rel = target.relative_to(root).as_posix()
    body = target.read_bytes().decode("latin-1")
    variants = [
        {"metadata": meta, "file": rel, "body": body},
        {"metadata": "".join(json.dumps(r) + "\n" for r in edited), "file": rel, "body": body + "# v2\n"},
    ]
    (root.parent / "variants.json").write_text(json.dumps(variants))
    manifest = root / "siegert" / "CNG" / MANIFEST
    others = {k: v for k, v in read_manifest(manifest).items() if k != target.name}
    allowed = [
        {**others, target.name: hashlib.sha256(v["body"].encode("latin-1")).hexdigest()} for v in variants
    ]
    rng = random.Random(12)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", LOOP, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one full finalize happened
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]

        # Right after the kill: each file is one of the complete versions.
        assert read_manifest(manifest) in allowed
        with sqlite3.connect(root / CATALOGUE_FILE) as conn:  # rolls a hot journal back
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for line in (root / CHANGES_FILE).read_text(encoding="utf-8").splitlines():
            json.loads(line)

        # The next run (given the file as it is on disk) repairs whatever is stale.
        finalize(root, archives=["Siegert"], files=[current_fact(root, rel)], complete_archives=["Siegert"])
        assert_consistent(root)


def assert_consistent(root: Path) -> None:
    on_disk = {json.loads(line)["neuron_id"]: line for line in (root / "siegert" / "metadata.jsonl").open()}
    with sqlite3.connect(root / CATALOGUE_FILE) as conn:
        held = dict(conn.execute(HELD))
        lines = [line for (line,) in conn.execute("SELECT line FROM changes ORDER BY run_id")]
        assert conn.execute("SELECT COUNT(*) FROM dirty_manifests").fetchone() == (0,)
    assert held == {k: v.rstrip("\n") for k, v in on_disk.items()}
    assert (root / CHANGES_FILE).read_text(encoding="utf-8").splitlines() == lines
    assert check_manifests(root).bad == []
    # Temp files of the dataset layer's own outputs (the loop's input writes are the mirror's to sweep).
    ours = (f".{MANIFEST}.", f".{CHANGES_FILE}.", f".{CITATION_FILE}.", f".{BIB_FILE}.")
    leftovers = [p for p in root.rglob(".*") if is_temp_name(p.name) and p.name.startswith(ours)]
    assert leftovers == []
    assert not (root / f"{CATALOGUE_FILE}-journal").exists()
