"""Loading percentages alone are written at most once per re-check interval: a burst's loads move them often."""

from __future__ import annotations

from typing import Any

from milvusops.core.status import progress_waits


def status(progress: int, state: str = "Loading", reason: str = "Loading") -> dict[str, Any]:
    return {
        "collection": {"state": state, "progress": progress},
        "partitions": [{"name": "p", "desired": "Loaded", "state": state, "progress": progress}],
        "conditions": [{"type": "Ready", "status": "False", "reason": reason}],
        "lastSyncTime": "2026-12-07T23:00:00Z",
    }


def test_a_percentage_that_moved_soon_after_a_write_waits() -> None:
    assert progress_waits(status(0), status(40), since_write=0.6, interval=2.0)


def test_a_percentage_that_moved_after_the_interval_is_written() -> None:
    assert not progress_waits(status(0), status(40), since_write=2.0, interval=2.0)


def test_a_state_or_condition_that_changed_is_written_at_once() -> None:
    assert not progress_waits(status(40), status(100, "Loaded", "InSync"), since_write=0.1, interval=2.0)
    assert not progress_waits(status(40), status(40, reason="Stalled"), since_write=0.1, interval=2.0)


def test_a_first_status_is_never_held_back() -> None:
    assert not progress_waits({}, status(0), since_write=0.1, interval=2.0)
