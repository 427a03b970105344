"""Observing in full and re-checking only what is loading, counted call by call."""

from __future__ import annotations

import time

from milvusops.core.failures import Reason
from milvusops.core.observed import QueryNodes, Replicas, StateReport
from milvusops.runtime.observe import confirm, observe, recheck
from tests.unit.fake_milvus import LOADED, LOADING, NOT_LOAD, FakeMilvus


async def test_a_collection_that_is_not_loaded_costs_three_calls_whatever_its_partitions() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": NOT_LOAD, "b": NOT_LOAD, "c": NOT_LOAD})
    observed = await observe(milvus, "docs")
    assert milvus.calls == [("load_state", "docs", None), ("describe", "docs"), ("list_partitions", "docs")]
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


async def test_once_the_collection_stops_loading_the_recheck_confirms_it_without_listing_or_describing() -> None:
    milvus = FakeMilvus({"_default": LOADING, "a": LOADING})
    before = await observe(milvus, "docs")
    milvus.partitions = {"_default": LOADED, "a": LOADED}
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert sorted(call[0] for call in milvus.calls) == ["load_state", "load_state_together", "replicas"]
    assert {name: report.state for name, report in after.partitions.items()} == {"_default": LOADED, "a": LOADED}
    assert after.collection.state == LOADED and after.replicas == Replicas(1, ("__default_resource_group",))
    assert after.confirmed and not after.partial and not after.loading


async def test_a_load_that_ends_other_than_loaded_is_observed_in_full() -> None:
    milvus = FakeMilvus({"_default": LOADING, "a": LOADING})
    before = await observe(milvus, "docs")
    milvus.partitions = {"_default": NOT_LOAD, "a": NOT_LOAD}  # failed, or released by someone else
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert ("list_partitions", "docs") in milvus.calls and not after.confirmed
    assert {name: report.state for name, report in after.partitions.items()} == {"_default": NOT_LOAD, "a": NOT_LOAD}


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


async def test_when_the_last_loading_partition_is_done_the_recheck_confirms_the_picture() -> None:
    milvus = FakeMilvus({"_default": LOADED, "cold": NOT_LOAD, "hot": LOADING})
    before = await observe(milvus, "docs")
    milvus.states["hot"] = LOADED
    milvus.states["new"] = NOT_LOAD  # created meanwhile: seen by the next full observation
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert ("list_partitions", "docs") not in milvus.calls and ("describe", "docs") not in milvus.calls
    assert ("load_state_together", "docs", ("_default", "hot")) in milvus.calls
    assert {name: report.state for name, report in after.partitions.items()} == {
        "_default": LOADED,
        "cold": NOT_LOAD,
        "hot": LOADED,
    }
    assert after.confirmed and not after.partial


async def test_a_partition_loaded_by_someone_else_during_a_load_turns_its_end_into_a_full_observation() -> None:
    milvus = FakeMilvus({"_default": LOADED, "cold": NOT_LOAD, "hot": LOADING})
    before = await observe(milvus, "docs")
    milvus.states.update(hot=LOADED, cold=LOADED)
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert ("list_partitions", "docs") in milvus.calls and not after.confirmed
    assert after.partitions["cold"].state == LOADED


async def test_a_collection_dropped_as_its_load_ends_is_observed_in_full() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": LOADING})
    before = await observe(milvus, "docs")
    milvus.states["hot"] = LOADED
    milvus.fail("load_state_together", Reason.COLLECTION_NOT_FOUND, "collection not found")
    milvus.calls.clear()
    after = await recheck(milvus, "docs", before)
    assert ("list_partitions", "docs") in milvus.calls and not after.confirmed


async def test_confirming_a_loaded_collection_costs_two_calls_whatever_its_partitions() -> None:
    milvus = FakeMilvus({"_default": LOADED, "a": LOADED, "b": LOADED, "c": LOADED})
    before = await observe(milvus, "docs")
    milvus.calls.clear()
    after = await confirm(milvus, "docs", before)
    assert sorted(milvus.calls) == [
        ("load_state_together", "docs", ("_default", "a", "b", "c")),
        ("replicas", "docs"),
    ]
    assert after.confirmed and not after.partial
    assert after.partitions == before.partitions


async def test_confirming_asks_each_released_partition_and_the_loaded_ones_together() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADED, "b": LOADED, "cold": NOT_LOAD})
    before = await observe(milvus, "docs")
    milvus.calls.clear()
    after = await confirm(milvus, "docs", before)
    assert sorted(milvus.calls) == [
        ("load_state", "docs", "_default"),
        ("load_state", "docs", "cold"),
        ("load_state_together", "docs", ("a", "b")),
        ("replicas", "docs"),
    ]
    assert after.confirmed


async def test_confirming_a_collection_with_nothing_loaded_costs_one_call() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": NOT_LOAD, "b": NOT_LOAD})
    before = await observe(milvus, "docs")
    milvus.calls.clear()
    after = await confirm(milvus, "docs", before)
    assert milvus.calls == [("load_state", "docs", None)]
    assert after.confirmed and after.partitions == before.partitions


async def test_a_partition_released_behind_the_operators_back_turns_the_confirmation_into_a_full_observation() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADED, "b": LOADED})
    before = await observe(milvus, "docs")
    milvus.states["b"] = NOT_LOAD
    milvus.calls.clear()
    after = await confirm(milvus, "docs", before)
    assert ("list_partitions", "docs") in milvus.calls  # observed in full, in the same pass
    assert not after.confirmed and after.partitions["b"] == StateReport(NOT_LOAD)


async def test_a_partition_loaded_behind_the_operators_back_turns_the_confirmation_into_a_full_observation() -> None:
    for states in ({"_default": NOT_LOAD, "a": LOADED, "b": NOT_LOAD}, {"_default": NOT_LOAD, "a": NOT_LOAD}):
        milvus = FakeMilvus(states)
        before = await observe(milvus, "docs")
        milvus.states["_default"] = LOADED
        after = await confirm(milvus, "docs", before)
        assert not after.confirmed and after.partitions["_default"] == StateReport(LOADED)


async def test_a_dropped_partition_or_collection_turns_the_confirmation_into_a_full_observation() -> None:
    milvus = FakeMilvus({"_default": LOADED, "a": LOADED})
    before = await observe(milvus, "docs")
    del milvus.states["a"]
    after = await confirm(milvus, "docs", before)
    assert not after.confirmed and set(after.partitions) == {"_default"}
    milvus.partitions = None
    after = await confirm(milvus, "docs", before)
    assert not after.exists


async def test_a_replica_losing_its_node_is_confirmed_with_the_news_and_a_new_replica_count_is_not() -> None:
    milvus = FakeMilvus({"_default": LOADED})
    before = await observe(milvus, "docs")
    milvus.replica_unavailable = "no available nodes in replica"
    after = await confirm(milvus, "docs", before)
    assert after.confirmed and after.replicas == Replicas(None, unavailable="no available nodes in replica")
    milvus.replica_unavailable = ""
    milvus.replica_count = 2
    after = await confirm(milvus, "docs", before)
    assert not after.confirmed and after.replicas is not None and after.replicas.count == 2


async def test_replicas_are_asked_with_the_collection_id_the_observation_described() -> None:
    """By id, Milvus answers GetReplicas without DescribeCollection, which it queues behind every load."""
    milvus = FakeMilvus({"_default": LOADING, "a": LOADING})
    before = await observe(milvus, "docs")
    milvus.partitions = {"_default": LOADED, "a": LOADED}
    ended = await recheck(milvus, "docs", before)
    await confirm(milvus, "docs", ended)
    await observe(milvus, "docs")
    assert milvus.replica_ids == [milvus.id] * 3


async def test_confirming_asks_no_replicas_while_the_servers_query_nodes_stand() -> None:
    """One GetMetrics per server every few seconds replaces one GetReplicas per collection every resync."""
    milvus = FakeMilvus({"_default": LOADED, "a": LOADED})
    milvus.query_node_set = QueryNodes(frozenset({1, 2}), since=time.monotonic() - 61, settle=60)
    before = await observe(milvus, "docs")
    milvus.calls.clear()
    after = await confirm(milvus, "docs", before)
    assert milvus.calls == [("load_state_together", "docs", ("_default", "a"))]
    assert after.confirmed and after.replicas == before.replicas and after.replicas_at == before.replicas_at


async def test_confirming_asks_the_replicas_when_the_query_nodes_changed_lately_or_are_unknown() -> None:
    milvus = FakeMilvus({"_default": LOADED})
    before = await observe(milvus, "docs")
    for nodes in (QueryNodes(frozenset({1}), since=time.monotonic(), settle=60), None):
        milvus.query_node_set = nodes
        milvus.calls.clear()
        after = await confirm(milvus, "docs", before)
        assert ("replicas", "docs") in milvus.calls and after.confirmed
        assert after.replicas_at is not None and before.replicas_at is not None
        assert after.replicas_at > before.replicas_at


async def test_a_replica_without_its_node_is_asked_again_every_confirmation_however_long_the_nodes_stand() -> None:
    milvus = FakeMilvus({"_default": LOADED})
    milvus.replica_unavailable = "no available nodes in replica"
    before = await observe(milvus, "docs")
    milvus.query_node_set = QueryNodes(frozenset({1}), since=time.monotonic() - 3600, settle=60)
    milvus.replica_unavailable = ""
    after = await confirm(milvus, "docs", before)
    assert after.replicas == Replicas(1, ("__default_resource_group",))  # Degraded clears at once
