"""`milvusops plan --at`: what spec.schedule would do at a given moment, against Milvus as it is now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from milvusops.preview import planview
from milvusops.preview.cli import _Planner
from milvusops.preview.readonly import ReadOnlyPorts
from milvusops.preview.rows import Report, ResourcePreview
from milvusops.runtime.settings import Settings
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts

BODY: dict[str, Any] = {
    "apiVersion": "milvusops.dev/v1alpha1",
    "kind": "MilvusCollection",
    "metadata": {"name": "products", "namespace": "shop"},
    "spec": {
        "state": "Released",
        "partitions": [{"name": "hot", "state": "Loaded"}],
        "schedule": {"windows": [{"start": "0 8 * * *", "durationSeconds": 3600, "timeZone": "UTC"}]},
    },
}


async def plan_at(milvus: FakeMilvus, at: datetime, body: dict[str, Any] = BODY) -> ResourcePreview:
    planner = _Planner(
        Settings(_cli_parse_args=[]),  # type: ignore[call-arg]
        "",
        ReadOnlyPorts(FakePorts(milvus)),
        at,
    )
    [item] = await planner.previews([("m.yaml", body)], validate=True)
    assert milvus.mutating_calls == []  # a preview never acts
    return item


async def test_outside_every_window_the_plan_releases_what_the_window_loaded() -> None:
    item = await plan_at(FakeMilvus({"_default": NOT_LOAD, "hot": LOADED}), datetime(2026, 12, 8, 7, tzinfo=UTC))
    assert item.calls == ("release_collection",)
    assert item.schedule == "at 2026-12-08T07:00:00Z: outside every load window; next change 2026-12-08T08:00:00Z"
    assert [(p.name, p.desired, p.change) for p in item.partitions] == [
        ("_default", "Released", ""),
        ("hot", "Released", "release"),
    ]
    assert item.destructive == ("releases the whole collection",)
    text = planview.table(Report([item]))
    assert "  schedule: at 2026-12-08T07:00:00Z: outside every load window" in text


async def test_inside_a_window_the_spec_holds() -> None:
    item = await plan_at(FakeMilvus({"_default": NOT_LOAD, "hot": NOT_LOAD}), datetime(2026, 12, 8, 8, 30, tzinfo=UTC))
    assert item.calls == ("load_partitions(hot)",)
    assert item.schedule == "at 2026-12-08T08:30:00Z: load window 0 open; next change 2026-12-08T09:00:00Z"
    assert "Schedule: at 2026-12-08T08:30:00Z: load window 0 open" in planview.markdown(Report([item]))


async def test_an_unknown_zone_is_the_reason_and_nothing_is_read() -> None:
    window = {"start": "0 8 * * *", "durationSeconds": 3600, "timeZone": "Mars/Olympus"}
    body = {**BODY, "spec": {**BODY["spec"], "schedule": {"windows": [window]}}}
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": NOT_LOAD})
    item = await plan_at(milvus, datetime(2026, 12, 8, 8, 30, tzinfo=UTC), body)
    assert (item.reason, item.status, item.calls) == ("InvalidSchedule", "error", ())
    assert milvus.calls == []


async def test_without_a_schedule_there_is_no_schedule_line() -> None:
    body = {**BODY, "spec": {k: v for k, v in BODY["spec"].items() if k != "schedule"}}
    item = await plan_at(FakeMilvus({"_default": NOT_LOAD, "hot": LOADED}), datetime(2026, 12, 8, 7, tzinfo=UTC), body)
    assert item.schedule is None and item.calls == ()
    assert "schedule:" not in planview.table(Report([item]))
