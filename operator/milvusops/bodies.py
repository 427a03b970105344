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
    _share(raw_body)


def _share(value: Any) -> Any:
    """The same keys and short values in every body as one string each: JSON parsing makes new ones per event."""
    if isinstance(value, dict):
        items = [(sys.intern(key) if isinstance(key, str) else key, _share(item)) for key, item in value.items()]
        value.clear()
        value.update(items)
    elif isinstance(value, list):
        value[:] = [_share(item) for item in value]
    elif isinstance(value, str) and len(value) <= SHARED_UP_TO:
        return sys.intern(value)
    return value
