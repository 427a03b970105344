"""Issue 29 item 8: a pass whose first call went through and whose second failed reports both."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from milvusops.core.failures import Reason
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.core.observed import Observed, StateReport
from milvusops.core.plan import Action, LoadCollection, LoadPartitions, ReleaseCollection, ReleasePartitions
from milvusops.core.status import stamp
from milvusops.runtime.apply import after
from milvusops.runtime.reconcile import Result, reconcile
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts

NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
REF = ResourceRef(namespace="shop", name="products", generation=3)
SPEC = CollectionSpec.from_body(
    {
        "metadata": {"name": "products"},
        "spec": {"state": "Released", "partitions": [{"name": "hot", "state": "Loaded"}]},
    }
)
NO_NODES = "code 65535: nodes not enough"


async def run(milvus: FakeMilvus, previous: dict[str, Any]) -> Result:
    return await reconcile(SPEC, REF, previous, FakePorts(milvus), NOW)


def drift_count() -> float:
    return REGISTRY.get_sample_value("milvusops_drift_corrections_total") or 0.0


async def in_sync_then_drifted() -> tuple[FakeMilvus, dict[str, Any]]:
    """In sync, then someone released `hot` and loaded `cold` by hand: the fix is a release and a load."""
    milvus = FakeMilvus({"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADED})
    first = await run(milvus, {})
    previous = stamp(first.status, {}, NOW, observed_in_full=True, interval=30.0)
    milvus.partitions = {"_default": NOT_LOAD, "cold": LOADED, "hot": NOT_LOAD}
    milvus.fail("load_partitions", Reason.INSUFFICIENT_RESOURCES, NO_NODES)  # the second of the two calls
    return milvus, previous


async def test_a_release_that_went_through_before_a_load_failed_is_in_status_and_events() -> None:
    milvus, previous = await in_sync_then_drifted()
    before = drift_count()
    result = await run(milvus, previous)
    assert [call[0] for call in milvus.mutating_calls] == ["release_partitions", "load_partitions"]
    assert milvus.states["cold"] == NOT_LOAD  # Milvus did release it
    states = {p["name"]: p["state"] for p in result.status["partitions"]}
    assert states["cold"] == "NotLoad"  # not the picture from before the calls
    assert result.status["loadedPartitions"] == 0
    assert result.verdict.reason == Reason.INSUFFICIENT_RESOURCES
    assert [(e.type, e.reason) for e in result.events] == [
        ("Normal", "DriftCorrected"),
        ("Warning", "InsufficientResources"),
    ]
    assert "released partitions cold" in result.events[0].message
    assert result.events[0].partitions == ("cold",)  # what the calls that went through touched
    assert drift_count() == before  # deriving events counts nothing: the worker counts what it sends
    assert result.acted  # the observation predates a call that changed Milvus


async def test_a_first_call_that_fails_leaves_the_picture_as_observed() -> None:
    milvus, previous = await in_sync_then_drifted()
    milvus.fail("release_partitions", Reason.INSUFFICIENT_RESOURCES, NO_NODES)
    result = await run(milvus, previous)
    assert [call[0] for call in milvus.mutating_calls] == ["release_partitions"]  # nothing after a refusal
    states = {p["name"]: p["state"] for p in result.status["partitions"]}
    assert states["cold"] == "Loaded"
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "InsufficientResources")]
    assert not result.acted


@pytest.mark.parametrize(
    ("before", "actions", "collection", "partitions"),
    [
        ({"a": LOADED, "b": LOADED}, (ReleasePartitions(("a",)),), "Loaded", {"a": "NotLoad", "b": "Loaded"}),
        ({"a": LOADED}, (ReleasePartitions(("a",)),), "NotLoad", {"a": "NotLoad"}),
        ({"a": LOADED, "b": NOT_LOAD}, (ReleaseCollection(),), "NotLoad", {"a": "NotLoad", "b": "NotLoad"}),
        ({"a": NOT_LOAD, "b": LOADED}, (LoadPartitions(("a",)),), "Loaded", {"a": "Loading", "b": "Loaded"}),
        ({"a": NOT_LOAD}, (LoadCollection(),), "Loading", {"a": "Loading"}),
        ({"a": LOADED}, (), "Loaded", {"a": "Loaded"}),  # nothing went through: as observed
    ],
)
def test_the_picture_calls_leave(
    before: dict[str, LoadState], actions: tuple[Action, ...], collection: str, partitions: dict[str, str]
) -> None:
    whole = StateReport(LOADED if LOADED in before.values() else NOT_LOAD)
    observed = Observed(whole, {name: StateReport(state) for name, state in before.items()})
    left = after(observed, actions)
    assert left.collection.state == collection
    assert {name: report.state.value for name, report in left.partitions.items()} == partitions
