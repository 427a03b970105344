"""observe -> plan -> apply -> status against an in-memory Milvus (the MilvusPort protocol)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import CollectionSpec, Desired, LoadState
from milvusops.core.pass_state import FIRST_PASS, Pass, PassKind
from milvusops.milvus.call_slots import Priority
from milvusops.runtime.deletion import release_held
from milvusops.runtime.events import Event
from milvusops.runtime.reconcile import FromStatus, reconcile
from tests.unit.fake_milvus import LOADED, LOADING, NOT_LOAD, FakeMilvus, FakePorts
from tests.unit.reconcile_runs import HOT_SPEC, IN_SYNC, NOW, make_ref, make_spec, ready, run, written


def drift_count() -> float:
    return REGISTRY.get_sample_value("milvusops_drift_corrections_total") or 0.0


# --- reconcile ----------------------------------------------------------------------------------------


async def test_in_sync_makes_no_load_or_release_calls() -> None:
    milvus = FakeMilvus(IN_SYNC)
    result = await run(milvus)  # e.g. a restarted operator: no previous status in memory
    assert milvus.mutating_calls == []
    # reads only: the states, and the sizes behind the memory estimate (shape)
    assert {call[0] for call in milvus.calls} == {"load_state", "list_partitions", "describe", "replicas", "shape"}
    assert ready(result) == (True, Reason.IN_SYNC, False, False)
    assert not result.acted and result.failure is None
    assert result.events == (Event("Normal", "InSync", "1/3 partitions loaded, as desired"),)
    assert "lastSyncTime" not in result.status


async def test_in_sync_again_posts_no_event() -> None:
    milvus = FakeMilvus(IN_SYNC)
    first = await run(milvus)
    second = await run(milvus, previous=written(first.status))
    assert second.events == ()
    assert second.status == first.status
    assert milvus.mutating_calls == []


async def test_out_of_sync_applies_the_plan() -> None:
    milvus = FakeMilvus({"_default": LOADED, "cold": NOT_LOAD, "hot": NOT_LOAD})
    result = await run(milvus)
    assert milvus.mutating_calls == [
        ("release_partitions", "products", ("_default",)),
        ("load_partitions", "products", ("hot",), 1),
    ]
    assert milvus.partitions == {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADING}
    assert ready(result) == (False, Reason.RELEASING, True, False)
    assert [(e.type, e.reason) for e in result.events] == [("Normal", "Releasing")]
    assert "released partitions _default" in result.events[0].message
    assert "load of partitions hot started (replicas=1)" in result.events[0].message
    assert result.acted


async def test_loading_is_rechecked_quickly_without_new_calls() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADING})
    result = await run(milvus)
    assert milvus.mutating_calls == []
    assert ready(result) == (False, Reason.LOADING, True, False)
    assert not result.acted and result.observed is not None and result.observed.loading
    [hot] = [p for p in result.status["partitions"] if p["name"] == "hot"]
    assert {"name": "hot", "desired": "Loaded", "state": "Loading", "progress": 50}.items() <= hot.items()


async def test_a_first_pass_loads_in_arrival_order_with_other_first_passes_and_later_passes_wait() -> None:
    """A burst reads everything before its loads: Milvus 2.3.5 answers reads slower with every load it holds."""
    milvus = FakeMilvus({"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD})
    await run(milvus)  # the first pass: urgent
    assert {priority for _, priority in milvus.priorities} == {Priority.CHANGE}
    assert ("load_partitions", Priority.CHANGE) in milvus.priorities
    milvus.priorities.clear()
    await run(milvus, this=Pass(PassKind.FULL))  # the pass after the load: the resource is not in sync yet
    assert {priority for _, priority in milvus.priorities} == {Priority.FOLLOW}


async def test_confirming_a_resource_in_sync_waits_behind_passes_over_resources_that_are_not() -> None:
    milvus = FakeMilvus(dict(IN_SYNC))
    first = await run(milvus)
    milvus.priorities.clear()
    await run(milvus, previous=written(first.status), this=Pass(PassKind.CONFIRM, first.observed, settled=True))
    assert {priority for _, priority in milvus.priorities} == {Priority.BACKGROUND}
    milvus.priorities.clear()
    await run(milvus, previous=written(first.status), this=Pass(PassKind.FULL, settled=True))  # its periodic full one
    assert {priority for _, priority in milvus.priorities} == {Priority.BACKGROUND}
    assert Priority.ACT < Priority.CHANGE < Priority.FOLLOW < Priority.BACKGROUND


async def test_a_timer_pass_while_loading_asks_only_about_what_is_loading() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD})
    started = await run(milvus)  # starts the load: what it observed is from before the load
    assert started.started is not None and started.started.partitions["hot"].state == LOADING  # what it expects
    milvus.calls.clear()
    loading = await run(milvus, previous=written(started.status), this=Pass(PassKind.RECHECK, started.started))
    assert sorted(milvus.calls) == [("load_state", "products", "hot")]  # only what the load started
    assert loading.observed is not None and loading.observed.partitions["hot"].state == LOADING
    milvus.calls.clear()
    still = await run(milvus, previous=written(loading.status), this=Pass(PassKind.RECHECK, loading.observed))
    assert milvus.calls == [("load_state", "products", "hot")]  # still Loading: nothing else is asked
    assert ready(still) == (False, Reason.LOADING, True, False)
    milvus.states["hot"] = LOADED
    milvus.calls.clear()
    done = await run(milvus, previous=written(still.status), this=Pass(PassKind.RECHECK, still.observed))
    assert ("list_partitions", "products") not in milvus.calls  # done loading: confirmed, not listed again
    assert ready(done) == (True, Reason.IN_SYNC, False, False)
    assert done.observed is not None and done.observed.confirmed and not done.observed.partial


async def test_a_pass_after_a_change_observes_in_full_even_while_loading() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD})
    first = await run(milvus)
    milvus.calls.clear()
    await run(milvus, previous=written(first.status), this=FIRST_PASS)
    assert ("list_partitions", "products") in milvus.calls


async def test_every_partition_loaded_uses_load_collection() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADED})
    milvus.replica_count = 2
    spec = make_spec("Loaded", load={"replicas": 2})
    await run(milvus, spec)
    assert milvus.mutating_calls == [("load_collection", "products", 2)]


async def test_replica_change_of_loaded_partitions_is_refused_before_calling_milvus() -> None:
    milvus = FakeMilvus({"_default": LOADED, "cold": NOT_LOAD, "hot": LOADED})
    spec = make_spec("Released", {"hot": "Loaded", "cold": "Loaded"}, load={"replicas": 2})
    result = await run(milvus, spec)
    # the release is still done; the load (which Milvus would reject) is not attempted
    assert milvus.mutating_calls == [("release_partitions", "products", ("_default",))]
    assert ready(result) == (False, Reason.INVALID_LOAD_OPTIONS, False, True)
    assert "release them first" in result.verdict.message
    assert "1 replica" in result.verdict.message and "2" in result.verdict.message


async def test_replica_change_with_nothing_loaded_is_just_a_load() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD})
    result = await run(milvus, make_spec("Released", {"hot": "Loaded"}, load={"replicas": 2}))
    assert milvus.mutating_calls == [("load_partitions", "products", ("hot",), 2)]
    assert ready(result) == (False, Reason.LOADING, True, False)


async def test_drift_is_corrected_with_an_event() -> None:
    milvus = FakeMilvus(IN_SYNC)
    in_sync = await run(milvus)
    previous = written(in_sync.status)
    milvus.partitions = {"_default": LOADED, "cold": NOT_LOAD, "hot": NOT_LOAD}  # someone used Attu
    before = drift_count()
    result = await run(milvus, previous=previous)
    assert [(e.type, e.reason) for e in result.events] == [("Normal", "DriftCorrected")]
    assert "released partitions _default" in result.events[0].message
    assert drift_count() == before  # deriving events counts nothing: the worker counts what it sends
    assert milvus.partitions == {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADING}


async def test_spec_change_is_not_drift() -> None:
    milvus = FakeMilvus(IN_SYNC)
    previous = written((await run(milvus, ref=make_ref(generation=3))).status)
    before = drift_count()
    result = await run(milvus, make_spec("Loaded"), previous=previous, ref=make_ref(generation=4))
    assert [(e.type, e.reason) for e in result.events] == [("Normal", "Loading")]
    assert drift_count() == before
    assert milvus.mutating_calls == [("load_collection", "products", 1)]  # as Milvus has it: spec names none


async def test_index_not_found_is_a_warning_and_stalled() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": NOT_LOAD})
    milvus.fail("load_partitions", Reason.INDEX_NOT_FOUND, "index not found: create a vector index before loading")
    result = await run(milvus)
    assert milvus.mutating_calls == [("load_partitions", "products", ("hot",), None)]
    assert ready(result) == (False, Reason.INDEX_NOT_FOUND, False, True)
    assert result.events == (
        Event("Warning", "IndexNotFound", "index not found: create a vector index before loading"),
    )
    stalled = {c["type"]: c for c in result.status["conditions"]}["Stalled"]
    assert (stalled["status"], stalled["reason"]) == ("True", "IndexNotFound")
    # the picture observed before the failure is still reported
    assert result.status["loaded"] == "0/2"


async def test_unavailable_is_a_failure_without_calls() -> None:
    milvus = FakeMilvus(IN_SYNC)
    milvus.fail("load_state", Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    result = await run(milvus)
    assert result.failure is not None and result.failure.reason == Reason.MILVUS_UNAVAILABLE
    assert ready(result) == (False, Reason.MILVUS_UNAVAILABLE, True, False)
    assert result.events == (Event("Warning", "MilvusUnavailable", "cannot reach Milvus"),)
    assert milvus.mutating_calls == []


async def test_unavailable_keeps_the_last_known_picture() -> None:
    milvus = FakeMilvus(IN_SYNC)
    previous = written((await run(milvus)).status)
    milvus.fail("load_state", Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    result = await run(milvus, previous=previous)
    for key in ("partitions", "loadedPartitions", "totalPartitions", "loaded", "collection"):
        assert result.status[key] == previous[key], key


async def test_paused_makes_no_calls_at_all() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": NOT_LOAD})
    ports = FakePorts(milvus)
    result = await reconcile(HOT_SPEC, make_ref(paused=True), {}, ports, NOW)
    assert ports.requests == []
    assert milvus.calls == []
    assert ready(result) == (False, Reason.PAUSED, False, False)
    assert not result.acted and result.failure is None


async def test_observe_policy_makes_no_load_or_release_calls() -> None:
    milvus = FakeMilvus({"_default": LOADED, "cold": NOT_LOAD, "hot": NOT_LOAD})
    spec = make_spec("Released", {"hot": "Loaded"}, managementPolicy="Observe")
    result = await run(milvus, spec)
    assert milvus.mutating_calls == []
    assert milvus.calls  # it did observe
    assert ready(result) == (True, Reason.OBSERVING, False, False)
    assert result.status["loaded"] == "1/3"


async def test_conflict_makes_no_calls() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": NOT_LOAD})
    ports = FakePorts(milvus)
    result = await reconcile(HOT_SPEC, make_ref(), {}, ports, NOW, conflict_with="team-a/products")
    assert ports.requests == []
    assert milvus.calls == []
    assert ready(result)[:2] == (False, Reason.CONFLICT)
    assert result.verdict.stalled
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "Conflict")]
    assert "team-a/products" in result.events[0].message


async def test_collection_not_found_is_stalled() -> None:
    milvus = FakeMilvus(None)
    result = await run(milvus)
    assert milvus.mutating_calls == []
    assert ready(result) == (False, Reason.COLLECTION_NOT_FOUND, False, True)
    assert result.status["collection"]["state"] == "NotExist"


async def test_missing_partition_is_stalled_but_the_rest_is_applied() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": NOT_LOAD})
    spec = make_spec("Released", {"hot": "Loaded", "ghost": "Loaded"})
    result = await run(milvus, spec)
    assert milvus.mutating_calls == [
        ("release_partitions", "products", ("_default",)),
        ("load_partitions", "products", ("hot",), 1),
    ]
    assert ready(result) == (False, Reason.PARTITION_NOT_FOUND, False, True)
    assert "ghost" in result.verdict.message
    assert {"name": "ghost", "desired": "Loaded", "state": "NotExist"} in result.status["partitions"]


@pytest.mark.parametrize("reason", [Reason.CONNECTION_NOT_FOUND, Reason.SECRET_NOT_FOUND, Reason.SECRET_INVALID])
async def test_connection_problems_make_no_milvus_calls(reason: Reason) -> None:
    milvus = FakeMilvus(IN_SYNC)
    ports = FakePorts(milvus, Failure(reason, "missing"))
    result = await reconcile(make_spec(connectionRef={"name": "main"}), make_ref(), {}, ports, NOW)
    assert ports.requests == [("shop", "main", "default")]
    assert milvus.calls == []
    assert ready(result) == (False, reason, False, True)


# --- finalize -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "states", "calls"),
    [
        pytest.param(
            HOT_SPEC,
            {"_default": LOADED, "cold": NOT_LOAD, "hot": LOADED},
            [("release_partitions", "products", ("hot",))],
            id="only-ours-among-others",
        ),
        pytest.param(
            HOT_SPEC,
            {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADED},
            [("release_collection", "products")],
            id="ours-is-everything-held",
        ),
        pytest.param(
            HOT_SPEC,
            {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADING},
            [("release_collection", "products")],
            id="loading-counts-as-held",
        ),
        pytest.param(
            make_spec("Loaded"),
            {"_default": LOADED, "a": LOADED, "b": NOT_LOAD},
            [("release_collection", "products")],
            id="all-loaded",
        ),
        pytest.param(
            make_spec("Loaded", {"b": "Released"}),
            {"_default": LOADED, "a": LOADING, "b": LOADED},
            [("release_partitions", "products", ("_default", "a"))],
            id="several-ours-sorted",
        ),
        pytest.param(HOT_SPEC, {"_default": LOADED, "hot": NOT_LOAD}, [], id="nothing-of-ours-held"),
        pytest.param(make_spec("Released"), {"_default": LOADED}, [], id="nothing-wanted"),
    ],
)
async def test_finalize_releases_only_what_the_spec_wanted_loaded(
    spec: CollectionSpec, states: dict[str, LoadState], calls: list[tuple[Any, ...]]
) -> None:
    milvus = FakeMilvus(states)
    done = await release_held(spec, make_ref(), FakePorts(milvus))
    assert milvus.mutating_calls == calls
    assert len(done) == len(calls)
    # what the spec wanted released (loaded by someone else) is left as it was
    others = {name: state for name, state in states.items() if spec.desired_for(name) == Desired.RELEASED}
    assert milvus.partitions is not None
    assert {name: milvus.partitions[name] for name in others} == others


async def test_finalize_collection_gone() -> None:
    milvus = FakeMilvus(None)
    assert await release_held(HOT_SPEC, make_ref(), FakePorts(milvus)) == []
    assert milvus.mutating_calls == []


async def test_finalize_unavailable_raises_for_the_caller_to_retry() -> None:
    milvus = FakeMilvus(IN_SYNC)
    milvus.fail("release_collection", Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    with pytest.raises(FailureError) as caught:
        await release_held(HOT_SPEC, make_ref(), FakePorts(milvus))
    assert caught.value.failure.reason == Reason.MILVUS_UNAVAILABLE


async def test_a_recreated_collection_is_an_event_of_its_own_not_drift() -> None:
    milvus = FakeMilvus(IN_SYNC)
    previous = written((await run(milvus)).status)
    assert previous["collection"]["id"] == "4507"
    milvus.id, milvus.partitions = "4999", {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD}  # dropped, created
    before = drift_count()
    result = await run(milvus, previous=previous)
    assert [(e.type, e.reason) for e in result.events] == [("Normal", "CollectionRecreated"), ("Normal", "Loading")]
    assert "4507 is now 4999" in result.events[0].message
    assert drift_count() == before
    assert milvus.mutating_calls == [("load_partitions", "products", ("hot",), None)]
    assert result.status["collection"]["id"] == "4999"


async def test_a_recheck_reports_progress_but_never_acts() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADING, "b": NOT_LOAD})
    spec = make_spec("Released", {"a": "Loaded", "b": "Loaded"})
    first = await run(milvus, spec)
    milvus.calls.clear()
    milvus.states["b"] = NOT_LOAD  # as if the load of b had not been seen yet
    again = await run(milvus, spec, this=Pass(PassKind.RECHECK, first.observed))
    assert again.observed is not None and again.observed.partial
    assert milvus.mutating_calls == [] and not again.acted
    assert ready(again) == (False, Reason.LOADING, True, False)


async def test_a_partition_dropped_before_its_load_is_observed_again_once() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": NOT_LOAD, "gone": NOT_LOAD})
    real_load = milvus.load_partitions

    async def dropped_meanwhile(collection: str, partitions: list[str], options: Any, refresh: bool = False) -> None:
        if "gone" in milvus.states:
            del milvus.states["gone"]
            raise FailureError(Failure(Reason.PARTITION_NOT_FOUND, "partition not found[partition=gone]"))
        await real_load(collection, partitions, options, refresh)

    milvus.load_partitions = dropped_meanwhile  # type: ignore[method-assign]
    result = await run(milvus, make_spec("Released", {"hot": "Loaded", "gone": "Loaded"}))
    assert milvus.states == {"_default": NOT_LOAD, "hot": LOADING}
    # spec names it, so it is reported missing; never stalled on a partition nobody asked for
    assert ready(result)[:2] == (False, Reason.PARTITION_NOT_FOUND)


# --- what a pass takes from the status the previous one wrote ------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        pytest.param({}, FromStatus(), id="no-status-yet"),
        pytest.param(
            {"conditions": [{"type": "Ready", "reason": "LoadFailed"}], "lastRefresh": "t1"},
            FromStatus(retry_failed_load=True, last_refresh="t1"),
            id="a-reported-failed-load-is-tried-again",
        ),
        pytest.param(
            {"partitions": [{"name": "a", "estimatedMemoryBytes": 10}, {"name": "b"}]},
            FromStatus(estimated={"a": 10}),
            id="estimates-kept-where-status-has-them",
        ),
    ],
)
def test_from_status(previous: dict[str, Any], expected: FromStatus) -> None:
    assert FromStatus.of(previous) == expected
