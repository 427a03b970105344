"""Issue 29 item 11: on CPython 3.12.0-3.12.5 an interned string is never freed, so values are not interned there."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from milvusops.kube import slim_bodies

EVENT = {
    "metadata": {"name": "products", "resourceVersion": "1234567", "uid": "5f0c6a1e-0000-4000-8000-000000000001"},
    "spec": {"state": "Loaded"},
}


def interned_by_slim_body(monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int]) -> set[str]:
    seen: set[str] = set()

    def intern(text: str) -> str:
        seen.add(text)
        return sys.intern(text)

    monkeypatch.setattr(slim_bodies, "sys", SimpleNamespace(version_info=(*version, "final", 0), intern=intern))
    event: dict[str, Any] = json.loads(json.dumps(EVENT))  # a fresh parse, as each watch event is
    slim_bodies.slim_body(event)
    return seen


@pytest.mark.parametrize("version", [(3, 12, 0), (3, 12, 5)])
def test_values_unique_to_one_event_are_not_interned_where_interned_strings_are_immortal(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int]
) -> None:
    seen = interned_by_slim_body(monkeypatch, version)
    assert "1234567" not in seen and EVENT["metadata"]["uid"] not in seen  # each would stay for the process's life
    assert {"metadata", "resourceVersion", "state"} <= seen  # keys: a small vocabulary, shared all the same


@pytest.mark.parametrize("version", [(3, 11, 9), (3, 12, 6), (3, 13, 0)])
def test_short_values_are_shared_where_interned_strings_are_freed(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int]
) -> None:
    assert {"1234567", "Loaded", "products"} <= interned_by_slim_body(monkeypatch, version)
