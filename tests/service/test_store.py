"""BuildStore: which uploaded contexts a prune deletes (age since last use, never those in use)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from imagebuild_nb.service.store import BuildStore

OLD, IN_USE, FRESH = ("sha256:" + c * 64 for c in "abc")


def test_prune_deletes_contexts_unused_for_the_retention_except_those_in_use(tmp_path: Path) -> None:
    store = BuildStore(tmp_path / "state")
    try:
        for digest in (OLD, IN_USE, FRESH):
            store.context_path(digest).write_bytes(b"tar")
        for digest in (OLD, IN_USE):
            past = time.time() - 7200
            os.utime(store.context_path(digest), (past, past))
        assert store.prune_contexts(unused_for=3600, keep=[IN_USE]) == [OLD]
        assert not store.context_path(OLD).exists()
        assert store.context_path(IN_USE).exists() and store.context_path(FRESH).exists()
        # A use restarts the clock.
        assert store.use_context(IN_USE) and not store.use_context(OLD)
        assert store.prune_contexts(unused_for=3600) == []
    finally:
        store.close()
