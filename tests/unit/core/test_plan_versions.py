"""Behaviour by server version: the planner with each version's capabilities, and whole passes on the fake."""

from __future__ import annotations

from typing import Any

import pytest

from milvusops.core.capabilities import capabilities
from milvusops.core.failures import Failure, Reason
from milvusops.core.model import CollectionSpec, LoadState
from milvusops.core.observed import Observed, Replicas, StateReport
from milvusops.core.pass_state import PassState, Timing, next_pass
from milvusops.core.plan import Action, LoadCollection, Plan, ReleaseCollection, plan
from milvusops.runtime.deletion import release_held
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts
from tests.unit.reconcile_runs import make_ref, make_spec, ready, run

OLD = ("v2.3.5", "v2.4.12")  # load_collection refuses another replica number on a loaded collection
NEW = ("v2.4.13", "v2.5.27", "v2.6.18", "v3.0.0", "v9.9.9", "master-dev")  # in place (and newer/unknown alike)


def observed(states: dict[str, LoadState], replicas: int | None = None, **extra: Any) -> Observed:
    reports = {name: StateReport(state) for name, state in states.items()}
    whole = LOADED if LOADED in states.values() else NOT_LOAD
    count = None if replicas is None else Replicas(replicas)
    return Observed(StateReport(whole), reports, count, "4507", **extra)


ALL_LOADED = {"_default": LOADED, "hot": LOADED}
WHOLE = make_spec("Loaded", load={"replicas": 2})


@pytest.mark.parametrize("version", OLD + NEW)
def test_replica_change_of_a_collection_loaded_as_a_whole(version: str) -> None:
    result = plan(WHOLE, observed(ALL_LOADED, replicas=1), capabilities(version))
    if version in OLD:
        assert result == Plan(result.desired, (), (), replica_mismatch=(1, 2))
    else:
        assert result == Plan(result.desired, (), (LoadCollection(),), replica_change=(1, 2))


@pytest.mark.parametrize("version", OLD + NEW)
@pytest.mark.parametrize(
    ("spec", "states"),
    [
        pytest.param(
            make_spec("Released", {"hot": "Loaded"}, load={"replicas": 2}),
            {"_default": NOT_LOAD, "hot": LOADED},
            id="partition-level",
        ),
        pytest.param(WHOLE, {"_default": NOT_LOAD, "hot": LOADED}, id="whole-wanted-but-partly-loaded"),
    ],
)
def test_replica_change_of_partition_level_loads_is_refused_on_every_version(
    version: str, spec: CollectionSpec, states: dict[str, LoadState]
) -> None:
    result = plan(spec, observed(states, replicas=1), capabilities(version))
    assert result.actions == ()
    assert result.replica_mismatch == (1, 2)
    assert result.replica_change is None


KEYED = {"_default_0": NOT_LOAD, "_default_1": NOT_LOAD}
KEYED_LOADED = dict.fromkeys(KEYED, LOADED)


@pytest.mark.parametrize("version", OLD + NEW)
@pytest.mark.parametrize(
    ("spec", "states", "actions", "refused"),
    [
        pytest.param(make_spec("Loaded"), KEYED, (LoadCollection(),), False, id="all-loaded"),
        pytest.param(
            make_spec("Released", {"_default_0": "Loaded", "_default_1": "Loaded"}),
            KEYED,
            (LoadCollection(),),
            False,
            id="every-partition-listed-loaded",
        ),
        pytest.param(make_spec("Released"), KEYED_LOADED, (ReleaseCollection(),), False, id="all-released"),
        pytest.param(make_spec("Released", {"_default_0": "Loaded"}), KEYED, (), True, id="mixed/refused"),
        pytest.param(
            make_spec("Loaded", {"_default_1": "Released"}), KEYED_LOADED, (), True, id="mixed-loaded/refused"
        ),
        pytest.param(make_spec("Loaded"), KEYED_LOADED, (), False, id="in-sync"),
    ],
)
def test_partition_key_collections_follow_one_state(
    version: str, spec: CollectionSpec, states: dict[str, LoadState], actions: tuple[Action, ...], refused: bool
) -> None:
    result = plan(spec, observed(states, replicas=1, partition_key="tenant"), capabilities(version))
    assert result.actions == actions
    assert result.partition_key == ("tenant" if refused else None)


CAUSE = Failure(Reason.LOAD_FAILED, "the last load of this collection failed in Milvus: segment load failed[segment=7]")


@pytest.mark.parametrize(("retry", "actions"), [(False, ()), (True, (LoadCollection(),))])
def test_a_failed_load_is_reported_before_it_is_tried_again(retry: bool, actions: tuple[Action, ...]) -> None:
    seen = observed(KEYED, failed_load=CAUSE)
    result = plan(make_spec("Loaded"), seen, capabilities("v2.5.27"), retry_failed_load=retry)
    assert result.actions == actions
    assert result.load_held_back is not retry


# --- whole passes against the fake Milvus ----------------------------------------------------------


async def test_server_version_is_on_status_and_kept_when_milvus_is_down() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    milvus.version_text = "v2.5.27"
    result = await run(milvus, make_spec("Released"))
    assert result.status["serverVersion"] == "v2.5.27"
    milvus.fail("load_state", Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    later = await run(milvus, make_spec("Released"), previous=result.status)
    assert later.status["serverVersion"] == "v2.5.27"


async def test_replica_change_in_place_reports_changing_replicas_until_the_count_moves() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": LOADED})
    milvus.version_text = "v2.5.27"
    stale = 1
    milvus.replica_count = stale

    first = await run(milvus, WHOLE)
    assert milvus.mutating_calls == [("load_collection", "products", 2)]
    assert ready(first) == (False, Reason.CHANGING_REPLICAS, True, False)
    assert "from 1 to 2" in first.verdict.message
    assert milvus.states == {"_default": LOADED, "hot": LOADED}  # nothing was released for it

    done = await run(milvus, WHOLE, previous=first.status)
    assert ready(done) == (True, Reason.IN_SYNC, False, False)
    assert len(milvus.mutating_calls) == 1


async def test_replica_change_on_an_old_server_keeps_the_release_first_hint() -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": LOADED})
    result = await run(milvus, WHOLE)  # the fake answers v2.3.5
    assert milvus.mutating_calls == []
    assert result.verdict.reason == Reason.INVALID_LOAD_OPTIONS
    assert "release them first" in result.verdict.message


async def test_partition_key_collection_with_per_partition_spec_makes_no_call() -> None:
    milvus = FakeMilvus(dict(KEYED))
    milvus.partition_key = "tenant"
    result = await run(milvus, make_spec("Released", {"_default_0": "Loaded"}))
    assert milvus.mutating_calls == []
    assert ready(result) == (False, Reason.PARTITION_KEY_COLLECTION, False, True)
    assert "'tenant'" in result.verdict.message and "only as a whole" in result.verdict.message


async def test_partition_key_collection_loads_as_a_whole_when_every_partition_is_wanted() -> None:
    milvus = FakeMilvus(dict(KEYED))
    milvus.partition_key = "tenant"
    await run(milvus, make_spec("Released", {"_default_0": "Loaded", "_default_1": "Loaded"}))
    assert milvus.mutating_calls == [("load_collection", "products", None)]


async def test_partition_key_collection_with_partitions_the_spec_leaves_alone_is_not_loaded_whole() -> None:
    """No spec.state and one partition named: loading it would load the others too, which the spec leaves alone."""
    milvus = FakeMilvus(dict(KEYED))
    milvus.partition_key = "tenant"
    spec = CollectionSpec.from_body(
        {"metadata": {"name": "products"}, "spec": {"partitions": [{"name": "_default_0", "state": "Loaded"}]}}
    )
    result = await run(milvus, spec)
    assert milvus.mutating_calls == []
    assert result.verdict.reason == Reason.PARTITION_KEY_COLLECTION


async def test_failed_load_is_reported_then_retried_once_at_the_next_pass() -> None:
    milvus = FakeMilvus(dict(KEYED))
    milvus.failed_load = CAUSE

    first = await run(milvus, make_spec("Loaded"))
    assert milvus.mutating_calls == []  # not loaded again at once: the cause is reported first
    assert ready(first) == (False, Reason.LOAD_FAILED, False, True)
    assert "segment load failed[segment=7]" in first.verdict.message
    assert "tried again at the next resync" in first.verdict.message
    assert first.status["collection"]["state"] == "NotLoad"

    second = await run(milvus, make_spec("Loaded"), previous=first.status)
    assert milvus.mutating_calls == [("load_collection", "products", None)]
    assert second.verdict.reason == Reason.LOAD_FAILED
    assert "started again" in second.verdict.message

    third = await run(milvus, make_spec("Loaded"), previous=second.status)
    assert third.verdict.reason == Reason.LOADING  # the load cleared Milvus's cached failure
    assert len(milvus.mutating_calls) == 1


def test_a_failed_load_is_looked_at_again_only_once_per_resync() -> None:
    timing = Timing(resync_seconds=30.0, loading_recheck_seconds=2.0)
    for acted in (False, True):  # reported only, or reported and loaded again: no tight loop either way
        step = next_pass(PassState(), observed=None, acted=acted, failure=CAUSE, timing=timing, draw=0.0)
        assert step.delay == timing.resync_seconds


async def test_deleting_a_partition_key_collection_never_releases_single_partitions() -> None:
    # loaded as a whole by someone else while the spec asked per-partition states (PartitionKeyCollection):
    # this resource kept nothing loaded, and release_partitions would be refused until the deletion timeout
    milvus = FakeMilvus(dict(KEYED_LOADED))
    milvus.partition_key = "tenant"
    assert await release_held(make_spec("Released", {"_default_0": "Loaded"}), make_ref(), FakePorts(milvus)) == []
    assert milvus.mutating_calls == []
    # a spec that kept the whole collection loaded releases it as a whole
    assert await release_held(make_spec("Loaded"), make_ref(), FakePorts(milvus)) == ["released collection products"]
