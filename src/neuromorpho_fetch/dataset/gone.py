"""Deleting the files of neurons gone upstream, only when the user asks (``--delete-gone``).

By default a neuron that a complete listing of its archive no longer has is *kept* (its files stay on
disk, its row is flagged ``gone_upstream``): a mirror that silently loses data because the server did
is worse than one holding a few neurons too many. :func:`delete_gone_files` is the explicit opposite.
The neuron rows stay in the catalogue (``gone_upstream = 1``, the history in ``CHANGES.jsonl`` too); only
their files and ``files`` rows go.

Order, for ``kill -9``: the rows are removed and their folders marked stale in one transaction, then the
files are unlinked, then the manifests rewritten. Killed after the commit, the next run rewrites the
marked manifests (a file left on disk is then merely unlisted); never does a manifest list a file the
catalogue no longer claims.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..paths import CATALOGUE_FILE
from .catalogue import connect, transaction
from .manifests import rewrite_manifests

log = logging.getLogger("neuromorpho_fetch.dataset")

_GONE_FILES = """
SELECT f.path FROM files f JOIN neurons n ON n.neuron_id = f.neuron_id
WHERE n.gone_upstream = 1 ORDER BY f.path
"""


def delete_gone_files(root: Path | str) -> list[str]:
    """Delete every file of the neurons the catalogue flags as gone upstream; returns their paths.

    Blocking. Does nothing when the catalogue does not exist yet (there is nothing flagged).
    """
    root = Path(root)
    if not (root / CATALOGUE_FILE).is_file():
        return []
    conn, created = connect(root / CATALOGUE_FILE)
    try:
        if created:
            return []
        paths = [path for (path,) in conn.execute(_GONE_FILES)]
        if not paths:
            return []
        folders = sorted({path.rsplit("/", 1)[0] for path in paths})
        with transaction(conn):
            conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths))
            conn.executemany("INSERT OR IGNORE INTO dirty_manifests VALUES (?)", ((f,) for f in folders))
        for path in paths:
            try:
                (root / path).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("--delete-gone: cannot delete %s: %s", path, exc.strerror or exc)
        rewrite_manifests(conn, root, folders)
        return paths
    finally:
        conn.close()
