"""Observing in full and re-checking only what is loading, counted call by call."""

from __future__ import annotations

from milvusops.milvus import Replicas, StateReport
from milvusops.observe import observe, recheck
from tests.unit.fake_milvus import LOADED, LOADING, NOT_LOAD, FakeMilvus


async def test_a_collection_that_is_not_loaded_costs_three_calls_whatever_its_partitions() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": NOT_LOAD, "b": NOT_LOAD, "c": NOT_LOAD})
    observed = await observe(milvus, "docs")
    assert milvus.calls == [("load_state", "docs", None), ("list_partitions", "docs"), ("describe", "docs")]
    assert observed.collection_id == milvus.id
    assert observed.partitions == dict.fromkeys(["_default", "a", "b", "c"], StateReport(NOT_LOAD))
    assert not observed.loading


async def test_a_loaded_collection_is_asked_partition_by_partition() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": LOADED})
    observed = await observe(milvus, "docs")
    assert sorted(call for call in milvus.calls if call[0] == "load_state" and call[2] is not None) == [
        ("load_state", "docs", "_default"),
        ("load_state", "docs", "hot"),
    ]
    assert ("replicas", "docs") in milvus.calls
    assert observed.partitions["hot"].state == LOADED
    assert observed.replicas == Replicas(1, ("__default_resource_group",))


async def test_a_collection_loading_as_a_whole_is_rechecked_with_one_call() -> None:
    milvus = FakeMilvus({"_default": LOADING, "a": LOADING, "b": LOADING})
    before = await observe(milvus, "docs")
    assert before.collection.state == LOADING
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert milvus.calls == [("load_state", "docs", None)]
    assert after.partitions == before.partitions  # not asked: kept until the full observation
    assert after.loading


async def test_once_the_collection_stops_loading_the_recheck_observes_in_full() -> None:
    milvus = FakeMilvus({"_default": LOADING, "a": LOADING})
    before = await observe(milvus, "docs")
    milvus.partitions = {"_default": LOADED, "a": LOADED}
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert ("list_partitions", "docs") in milvus.calls
    assert {name: report.state for name, report in after.partitions.items()} == {"_default": LOADED, "a": LOADED}
    assert not after.loading


async def test_partitions_loading_in_a_loaded_collection_are_rechecked_alone() -> None:
    milvus = FakeMilvus({"_default": LOADED, "cold": NOT_LOAD, "hot": LOADING, "warm": LOADING})
    before = await observe(milvus, "docs")
    assert before.collection.state == LOADED  # like Milvus 2.3.5: Loaded as soon as some partition is
    milvus.states["hot"] = LOADED
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert sorted(milvus.calls) == [("load_state", "docs", "hot"), ("load_state", "docs", "warm")]
    assert after.partitions["hot"].state == LOADED
    assert after.partitions["warm"].state == LOADING
    assert after.partitions["cold"] == before.partitions["cold"]


async def test_when_the_last_loading_partition_is_done_the_recheck_observes_in_full() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": LOADING})
    before = await observe(milvus, "docs")
    milvus.partitions = {"_default": LOADED, "hot": LOADED, "new": NOT_LOAD}  # and a partition was created
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert ("list_partitions", "docs") in milvus.calls
    assert set(after.partitions) == {"_default", "hot", "new"}
    assert not after.loading
