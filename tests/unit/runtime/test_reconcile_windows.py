"""spec.schedule in the pass: the spec at the pass's moment, status.schedule, window events, InvalidSchedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from milvusops.core.failures import Reason
from milvusops.core.schedule import WindowState
from milvusops.runtime.reconcile import Result, reconcile
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts
from tests.unit.reconcile_runs import make_ref, make_spec, ready, written

OPENS = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)  # the window: 16:00 to 16:01 UTC every day
WINDOW = {"windows": [{"start": "0 16 * * *", "durationSeconds": 60, "timeZone": "UTC"}]}
RELEASED = {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD}


async def run(milvus: FakeMilvus, now: datetime, previous: dict[str, Any] | None = None, **spec: Any) -> Result:
    chosen = make_spec("Released", {"hot": "Loaded"}, schedule=spec.get("schedule", WINDOW))
    return await reconcile(chosen, make_ref(), previous or {}, FakePorts(milvus), now)


def drift_count() -> float:
    return REGISTRY.get_sample_value("milvusops_drift_corrections_total") or 0.0


async def test_inside_the_window_the_spec_holds_and_the_opening_is_an_event() -> None:
    milvus = FakeMilvus(RELEASED)
    result = await run(milvus, OPENS)
    assert [call[:3] for call in milvus.mutating_calls] == [("load_partitions", "products", ("hot",))]
    assert result.status["schedule"] == {"activeWindow": 0, "nextTransition": "2026-11-25T16:01:00Z"}
    assert result.schedule == WindowState(0, OPENS + timedelta(minutes=1))
    assert (result.events[0].reason, result.events[0].message) == (
        "WindowOpened",
        "load window 0 opened: the partitions the spec declares Loaded are loaded",
    )
    assert [e.reason for e in result.events][1:] == ["Loading"]


async def test_outside_every_window_loaded_partitions_are_released_and_it_is_not_drift() -> None:
    milvus = FakeMilvus(RELEASED)
    opened = await run(milvus, OPENS)
    milvus.states["hot"] = LOADED  # the load finished
    in_window = await run(milvus, OPENS + timedelta(seconds=30), previous=written(opened.status))
    assert ready(in_window) == (True, Reason.IN_SYNC, False, False)
    assert in_window.verdict.message == "1/3 partitions loaded, as desired (load window 0 open)"
    assert [e.reason for e in in_window.events] == ["InSync"]  # the window was open already: no second event
    before = drift_count()
    closed = await run(milvus, OPENS + timedelta(seconds=61), previous=written(in_window.status))
    assert milvus.mutating_calls[-1] == ("release_collection", "products")
    assert [e.reason for e in closed.events] == ["WindowClosed", "Releasing"]  # the schedule's call, not drift
    assert drift_count() == before
    assert closed.status["schedule"] == {"nextTransition": "2026-11-26T16:00:00Z"}
    assert [p["desired"] for p in closed.status["partitions"]] == ["Released", "Released", "Released"]


async def test_drift_outside_the_window_is_still_drift() -> None:
    milvus = FakeMilvus(RELEASED)
    outside = await run(milvus, OPENS - timedelta(hours=1))
    assert milvus.mutating_calls == []
    assert [e.reason for e in outside.events] == ["WindowClosed", "InSync"]
    milvus.states["hot"] = LOADED  # someone loads it by hand outside the window
    again = await run(milvus, OPENS - timedelta(minutes=30), previous=written(outside.status))
    assert [e.reason for e in again.events] == ["DriftCorrected"]


async def test_an_unknown_time_zone_is_invalid_schedule_without_a_milvus_call() -> None:
    milvus = FakeMilvus(RELEASED)
    bad = {"windows": [{"start": "0 16 * * *", "durationSeconds": 60, "timeZone": "Europe/Berln"}]}
    result = await run(milvus, OPENS, schedule=bad)
    assert milvus.calls == []
    assert ready(result) == (False, Reason.INVALID_SCHEDULE, False, True)
    assert result.verdict.message.startswith("spec.schedule.windows[0].timeZone: unknown time zone 'Europe/Berln'")
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "InvalidSchedule")]
    assert "schedule" not in result.status


async def test_without_a_schedule_status_has_no_schedule() -> None:
    milvus = FakeMilvus(RELEASED)
    result = await reconcile(make_spec("Released", {"hot": "Loaded"}), make_ref(), {}, FakePorts(milvus), OPENS)
    assert "schedule" not in result.status and result.schedule is None
    assert [call[:3] for call in milvus.mutating_calls] == [("load_partitions", "products", ("hot",))]
