"""Per-user cache folder outside the checkout, so fresh clones (CI) reuse slow builds."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "milvusops" / "testenv"
    root.mkdir(parents=True, exist_ok=True)
    return root


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Held by one process of the machine at a time (test workers preparing the same cached thing)."""
    with open(cache_root() / f"{name}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
