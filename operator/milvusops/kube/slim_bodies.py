"""What the process keeps of each watched body: Kopf holds the latest one per object for its daemon."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SHARED_UP_TO = 64  # characters: names, states, reasons, timestamps; longer strings are rarely repeated


def slim_body(raw_body: Mapping[str, Any]) -> None:
    """Drop what nothing here reads and share repeated strings, in place (Kopf's live body is this dict)."""
    metadata = raw_body.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)  # most of an object's JSON, read by nobody here
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)  # a client-side apply's second copy of the whole object
    _share(raw_body, values=interning_frees(tuple(sys.version_info[:3])))


def interning_frees(version: tuple[int, ...]) -> bool:
    """Whether an interned string is freed once unused (the documented behaviour)."""
    # CPython 3.12.0-3.12.5 made interned strings immortal: python/cpython#113993, fixed in 3.12.6
    return not ((3, 12) <= version < (3, 12, 6))


def _share(value: Any, values: bool) -> Any:
    """The same keys and short values in every body as one string each: JSON parsing makes new ones per event.

    `values` False: keys only (a small vocabulary), since a value such as a resourceVersion is new with
    every event and, where interned strings are immortal, would stay for the life of the process.
    """
    if isinstance(value, dict):
        items = [
            (sys.intern(key) if isinstance(key, str) else key, _share(item, values)) for key, item in value.items()
        ]
        value.clear()
        value.update(items)
    elif isinstance(value, list):
        value[:] = [_share(item, values) for item in value]
    elif values and isinstance(value, str) and len(value) <= SHARED_UP_TO:
        return sys.intern(value)
    return value
