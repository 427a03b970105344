"""Bounded text for status messages and events: a list of names or Milvus's own words never outgrows the CRD."""

from __future__ import annotations

from collections.abc import Iterable

MESSAGE_LIMIT = 32768  # the CRD's maxLength of a condition message: a longer one fails the whole status patch
LISTED_CHARS = 400  # names shown in one list: readable in `kubectl describe`, and an event stays under Kopf's 1,024


def listing(names: Iterable[str], budget: int = LISTED_CHARS) -> str:
    """Sorted names, as many as fit in `budget` characters (at least one), then "and N more"."""
    ordered = sorted(names)
    shown: list[str] = []
    used = 0
    for name in ordered:
        used += len(name) + (2 if shown else 0)
        if shown and used > budget:
            break
        shown.append(name)
    rest = len(ordered) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def clipped(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Free text (Milvus's own words) cut to `limit` characters, saying that it was."""
    if len(text) <= limit:
        return text
    mark = " [...]"
    return text[: max(limit - len(mark), 0)] + mark
