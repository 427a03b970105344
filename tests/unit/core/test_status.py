"""The pure status builder: verdict, kstatus conditions, partitions picture, patch-only-on-change (SPEC §3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milvusops.core.capabilities import capabilities
from milvusops.core.failures import STALLED_REASONS, Failure, Reason
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.core.observed import Observed, Replicas, StateReport
from milvusops.core.plan import plan
from milvusops.core.status import Outcome, Verdict, build_status, conditions, needs_patch, stamp, verdict

NOT_LOAD, LOADING, LOADED = LoadState.NOT_LOAD, LoadState.LOADING, LoadState.LOADED
NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
NOW_STAMP = "2026-11-25T16:00:00Z"
EARLIER_STAMP = "2026-11-20T08:30:00Z"
REF = ResourceRef(namespace="shop", name="products", generation=4)


def make_spec(state: str = "Released", partitions: dict[str, str] | None = None) -> CollectionSpec:
    listed = [{"name": name, "state": want} for name, want in (partitions or {}).items()]
    return CollectionSpec.from_body({"metadata": {"name": "products"}, "spec": {"state": state, "partitions": listed}})


def make_observed(partitions: dict[str, StateReport], collection: StateReport | None = None) -> Observed:
    return Observed(collection or StateReport(LOADED, 100), partitions)


def planned(spec: CollectionSpec, observed: Observed, **kwargs: Any) -> Outcome:
    return Outcome(observed, plan(spec, observed, capabilities("v2.3.5")), **kwargs)


def by_type(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def summary(status: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """The kstatus conditions (Degraded, about replicas, has tests of its own)."""
    return {kind: (c["status"], c["reason"]) for kind, c in by_type(status).items() if kind != "Degraded"}


HOT_SPEC = make_spec("Released", {"hot": "Loaded"})


# --- verdict and conditions -------------------------------------------------------------------


def test_in_sync_is_ready() -> None:
    observed = make_observed({"_default": StateReport(NOT_LOAD), "hot": StateReport(LOADED)})
    status = build_status(HOT_SPEC, REF, planned(HOT_SPEC, observed), {}, NOW)
    assert summary(status) == {
        "Ready": ("True", "InSync"),
        "Reconciling": ("False", "InSync"),
        "Stalled": ("False", "InSync"),
    }
    assert by_type(status)["Ready"]["message"] == "1/2 partitions loaded, as desired"


@pytest.mark.parametrize(
    ("spec", "partitions", "reason", "mismatched"),
    [
        pytest.param(
            HOT_SPEC,
            {"_default": StateReport(NOT_LOAD), "hot": StateReport(NOT_LOAD)},
            Reason.LOADING,
            "hot",
            id="load-to-start",
        ),
        pytest.param(
            HOT_SPEC,
            {"_default": StateReport(NOT_LOAD), "hot": StateReport(LOADING, 40)},
            Reason.LOADING,
            "hot",
            id="loading-in-progress",
        ),
        pytest.param(
            make_spec("Released"),
            {"_default": StateReport(LOADED), "hot": StateReport(NOT_LOAD)},
            Reason.RELEASING,
            "_default",
            id="releasing",
        ),
        pytest.param(
            HOT_SPEC,
            {"_default": StateReport(LOADED), "hot": StateReport(NOT_LOAD)},
            Reason.RELEASING,
            "_default, hot",
            id="release-and-load",
        ),
    ],
)
def test_in_progress_is_reconciling(
    spec: CollectionSpec, partitions: dict[str, StateReport], reason: Reason, mismatched: str
) -> None:
    result = verdict(spec, planned(spec, make_observed(partitions)))
    assert result == Verdict(False, reason, f"{reason.value.lower()}: {mismatched}", True, False)
    status = build_status(spec, REF, planned(spec, make_observed(partitions)), {}, NOW)
    assert summary(status) == {
        "Ready": ("False", reason.value),
        "Reconciling": ("True", reason.value),
        "Stalled": ("False", reason.value),
    }
    assert by_type(status)["Reconciling"]["message"] == result.message


@pytest.mark.parametrize("reason", list(Reason))
def test_failure_is_stalled_exactly_for_stalled_reasons(reason: Reason) -> None:
    observed = make_observed({"_default": StateReport(NOT_LOAD)})
    failure = Failure(reason, f"something about {reason.value}")
    result = verdict(HOT_SPEC, planned(HOT_SPEC, observed, failure=failure))
    stalled = reason in STALLED_REASONS
    assert result == Verdict(False, reason, failure.message, not stalled, stalled)
    status = build_status(HOT_SPEC, REF, Outcome(failure=failure), {}, NOW)
    cond = by_type(status)
    assert cond["Ready"]["status"] == "False"
    assert cond["Ready"]["reason"] == reason.value
    assert cond["Ready"]["message"] == failure.message
    assert cond["Stalled"]["status"] == ("True" if stalled else "False")
    assert cond["Reconciling"]["status"] == ("False" if stalled else "True")
    assert cond["Stalled" if stalled else "Reconciling"]["message"] == failure.message
    assert cond["Reconciling" if stalled else "Stalled"]["message"] == ""


def test_stalled_reasons_are_those_of_the_spec() -> None:
    assert {r.value for r in STALLED_REASONS} == {
        "CollectionNotFound",
        "PartitionNotFound",
        "IndexNotFound",
        "InsufficientResources",
        "InsufficientMemory",
        "PartitionKeyCollection",  # only whole-collection state is possible: spec must change
        "LoadFailed",  # Milvus keeps refusing until memory or nodes change; retried once per resync
        "DatabaseNotFound",
        "InvalidLoadOptions",
        "InvalidSchedule",  # a time zone or cron start the API server cannot check: the spec must change
        "Unsupported",
        "UnsupportedByServer",
        "Unauthenticated",
        "PermissionDenied",
        "SecretNotFound",
        "SecretInvalid",
        "ConnectionNotFound",
        "Forbidden",
        "Conflict",
        "TargetNotFound",  # MilvusAlias: a collectionRef to a missing MilvusCollection, like ConnectionNotFound
    }
    assert Reason.MILVUS_UNAVAILABLE not in STALLED_REASONS
    assert Reason.RATE_LIMITED not in STALLED_REASONS
    assert Reason.TARGET_NOT_READY not in STALLED_REASONS


def test_paused_wins_over_everything() -> None:
    failure = Failure(Reason.INDEX_NOT_FOUND, "no index")
    result = verdict(HOT_SPEC, Outcome(paused=True, failure=failure))
    assert (result.ready, result.reason, result.reconciling, result.stalled) == (False, Reason.PAUSED, False, False)
    status = build_status(HOT_SPEC, REF, Outcome(paused=True), {}, NOW)
    assert summary(status) == {
        "Ready": ("False", "Paused"),
        "Reconciling": ("False", "Paused"),
        "Stalled": ("False", "Paused"),
    }


def test_observing_is_ready_even_when_not_as_desired() -> None:
    observed = make_observed({"_default": StateReport(LOADED), "hot": StateReport(NOT_LOAD)})
    result = verdict(HOT_SPEC, planned(HOT_SPEC, observed, observing=True))
    assert (result.ready, result.reason, result.reconciling, result.stalled) == (True, Reason.OBSERVING, False, False)
    assert "1/2" in result.message
    status = build_status(HOT_SPEC, REF, planned(HOT_SPEC, observed, observing=True), {}, NOW)
    assert summary(status) == {
        "Ready": ("True", "Observing"),
        "Reconciling": ("False", "InSync"),
        "Stalled": ("False", "InSync"),
    }


def test_observed_generation_on_status_and_every_condition() -> None:
    ref = ResourceRef(namespace="shop", name="products", generation=17)
    observed = make_observed({"_default": StateReport(NOT_LOAD), "hot": StateReport(LOADED)})
    status = build_status(HOT_SPEC, ref, planned(HOT_SPEC, observed), {}, NOW)
    assert status["observedGeneration"] == 17
    assert [c["observedGeneration"] for c in status["conditions"]] == [17, 17, 17, 17]
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Reconciling", "Stalled", "Degraded"]


def old_conditions(ready: str, reconciling: str, stalled: str) -> list[Mapping[str, Any]]:
    return [
        {
            "type": kind,
            "status": value,
            "lastTransitionTime": EARLIER_STAMP,
            "reason": "X",
            "message": "",
            "observedGeneration": 1,
        }
        for kind, value in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled))
    ]


def test_last_transition_time_kept_when_status_unchanged_and_moved_when_changed() -> None:
    ready = Verdict(True, Reason.IN_SYNC, "ok", False, False)
    out = {c["type"]: c for c in conditions(ready, 2, old_conditions("False", "True", "False"), NOW)}
    assert out["Ready"]["lastTransitionTime"] == NOW_STAMP  # False -> True
    assert out["Reconciling"]["lastTransitionTime"] == NOW_STAMP  # True -> False
    assert out["Stalled"]["lastTransitionTime"] == EARLIER_STAMP  # False -> False, only reason changed
    assert out["Stalled"]["reason"] == "InSync"


def test_last_transition_time_set_when_condition_is_new() -> None:
    ready = Verdict(True, Reason.IN_SYNC, "ok", False, False)
    previous = [c for c in old_conditions("True", "False", "False") if c["type"] != "Stalled"]
    out = {c["type"]: c for c in conditions(ready, 2, previous, NOW)}
    assert out["Ready"]["lastTransitionTime"] == EARLIER_STAMP
    assert out["Stalled"]["lastTransitionTime"] == NOW_STAMP


def test_conditions_survive_a_build_status_round_trip() -> None:
    observed = make_observed({"_default": StateReport(NOT_LOAD), "hot": StateReport(LOADED)})
    first = build_status(HOT_SPEC, REF, planned(HOT_SPEC, observed), {}, NOW)
    later = NOW + timedelta(hours=1)
    again = build_status(HOT_SPEC, REF, planned(HOT_SPEC, observed), first, later)
    assert again == first
    stalled = build_status(HOT_SPEC, REF, Outcome(failure=Failure(Reason.INDEX_NOT_FOUND, "x")), first, later)
    times = {c["type"]: c["lastTransitionTime"] for c in stalled["conditions"]}
    assert times == {
        "Ready": "2026-11-25T17:00:00Z",
        "Reconciling": NOW_STAMP,
        "Stalled": "2026-11-25T17:00:00Z",
        "Degraded": NOW_STAMP,  # not observed this pass: kept as it was
    }


# --- replicas and Degraded ----------------------------------------------------------------------

TWO = Replicas(2, ("__default_resource_group",))
LOST = Replicas(None, unavailable="no available nodes in replica: replica not available[replica=4471]")


def replicated(replicas: Replicas | None) -> Observed:
    return Observed(StateReport(LOADED), {"_default": StateReport(LOADED)}, replicas)


def test_replicas_reported_as_milvus_describes_them() -> None:
    spec = make_spec("Loaded")
    status = build_status(spec, REF, planned(spec, replicated(TWO)), {}, NOW)
    assert status["replicas"] == {"count": 2, "resourceGroups": ["__default_resource_group"]}
    assert (by_type(status)["Degraded"]["status"], by_type(status)["Degraded"]["reason"]) == (
        "False",
        "ReplicasAvailable",
    )
    released = build_status(spec, REF, planned(spec, make_observed({"_default": StateReport(NOT_LOAD)})), status, NOW)
    assert "replicas" not in released  # nothing loaded, no replicas
    assert by_type(released)["Degraded"]["message"] == "nothing loaded"


def test_a_replica_without_a_query_node_is_degraded_while_ready_follows_the_load_state() -> None:
    spec = make_spec("Loaded")
    healthy = build_status(spec, REF, planned(spec, replicated(TWO)), {}, NOW)
    later = NOW + timedelta(minutes=1)
    lost = build_status(spec, REF, planned(spec, replicated(LOST)), healthy, later)
    assert summary(lost)["Ready"] == ("True", "InSync")
    degraded = by_type(lost)["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "ReplicaUnavailable")
    assert "replica not available[replica=4471]" in degraded["message"]
    assert degraded["lastTransitionTime"] == "2026-11-25T16:01:00Z"
    assert lost["replicas"] == healthy["replicas"]  # Milvus cannot count them now: the last known count stays
    assert by_type(lost)["Ready"]["lastTransitionTime"] == by_type(healthy)["Ready"]["lastTransitionTime"]
    back = build_status(spec, REF, planned(spec, replicated(TWO)), lost, later + timedelta(minutes=1))
    assert by_type(back)["Degraded"]["status"] == "False"


def test_degraded_is_kept_when_milvus_could_not_be_asked() -> None:
    spec = make_spec("Loaded")
    lost = build_status(spec, REF, planned(spec, replicated(LOST)), {}, NOW)
    unreachable = Outcome(failure=Failure(Reason.MILVUS_UNAVAILABLE, "down"))
    after = build_status(spec, REF, unreachable, lost, NOW + timedelta(minutes=1))
    assert by_type(after)["Degraded"] == by_type(lost)["Degraded"]


# --- partitions picture -------------------------------------------------------------------------


def test_partitions_sorted_with_desired_state_and_progress() -> None:
    spec = make_spec("Released", {"zeta": "Loaded", "hot": "Loaded", "ghost": "Loaded"})
    observed = make_observed(
        {
            "zeta": StateReport(LOADING, 40),
            "hot": StateReport(LOADED),  # Milvus gives no progress for Loaded
            "_default": StateReport(NOT_LOAD),
            "cold": StateReport(LOADED, 100),
        },
        StateReport(LOADED),
    )
    failure = Failure(Reason.PARTITION_NOT_FOUND, "ghost missing")
    status = build_status(spec, REF, planned(spec, observed, failure=failure), {}, NOW)
    assert status["partitions"] == [
        {"name": "_default", "desired": "Released", "state": "NotLoad"},
        {"name": "cold", "desired": "Released", "state": "Loaded", "progress": 100},
        {"name": "ghost", "desired": "Loaded", "state": "NotExist"},
        {"name": "hot", "desired": "Loaded", "state": "Loaded", "progress": 100},
        {"name": "zeta", "desired": "Loaded", "state": "Loading", "progress": 40},
    ]
    assert status["collection"] == {"name": "products", "database": "default", "state": "Loaded", "progress": 100}
    # counts come from the partitions that exist in Milvus, not from the collection-level state
    assert (status["loadedPartitions"], status["totalPartitions"], status["loaded"]) == (2, 4, "2/4")


def test_collection_loading_progress_reported_as_milvus_says() -> None:
    observed = make_observed(
        {"_default": StateReport(NOT_LOAD), "hot": StateReport(LOADING, 25)}, StateReport(LOADING, 25)
    )
    status = build_status(HOT_SPEC, REF, planned(HOT_SPEC, observed), {}, NOW)
    assert status["collection"] == {"name": "products", "database": "default", "state": "Loading", "progress": 25}
    assert status["loaded"] == "0/2"


PREVIOUS = {
    "observedGeneration": 3,
    "collection": {"name": "products", "database": "default", "state": "Loaded", "progress": 100},
    "partitions": [{"name": "_default", "desired": "Released", "state": "NotLoad"}],
    "loadedPartitions": 1,
    "totalPartitions": 2,
    "loaded": "1/2",
    "lastSyncTime": EARLIER_STAMP,
    "conditions": old_conditions("True", "False", "False"),
}


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(Outcome(failure=Failure(Reason.MILVUS_UNAVAILABLE, "down")), id="unavailable"),
        pytest.param(Outcome(failure=Failure(Reason.SECRET_NOT_FOUND, "no secret")), id="secret-not-found"),
        pytest.param(Outcome(paused=True), id="paused"),
    ],
)
def test_nothing_observed_keeps_previous_picture(outcome: Outcome) -> None:
    status = build_status(HOT_SPEC, REF, outcome, PREVIOUS, NOW)
    for key in ("partitions", "loadedPartitions", "totalPartitions", "loaded"):
        assert status[key] == PREVIOUS[key], key
    assert status["collection"] == PREVIOUS["collection"]
    assert status["observedGeneration"] == 4
    assert by_type(status)["Ready"]["status"] == "False"
    assert by_type(status)["Ready"]["lastTransitionTime"] == NOW_STAMP
    assert "lastSyncTime" not in status


def test_nothing_observed_and_nothing_before() -> None:
    status = build_status(HOT_SPEC, REF, Outcome(failure=Failure(Reason.MILVUS_UNAVAILABLE, "down")), {}, NOW)
    assert set(status) == {"observedGeneration", "collection", "conditions"}
    assert status["collection"] == {"name": "products", "database": "default"}


def test_collection_not_found_reports_not_exist() -> None:
    spec = make_spec("Loaded", {"a": "Loaded"})
    observed = Observed(StateReport(LoadState.NOT_EXIST))
    outcome = Outcome(observed, failure=Failure(Reason.COLLECTION_NOT_FOUND, "no collection"))
    status = build_status(spec, REF, outcome, PREVIOUS, NOW)
    assert status["collection"]["state"] == "NotExist"
    assert (status["partitions"], status["loaded"]) == ([], "0/0")
    assert summary(status)["Stalled"] == ("True", "CollectionNotFound")


# --- patch only on change -------------------------------------------------------------------------


def in_sync_status() -> dict[str, Any]:
    observed = make_observed({"_default": StateReport(NOT_LOAD), "hot": StateReport(LOADED)})
    return build_status(HOT_SPEC, REF, planned(HOT_SPEC, observed), {}, NOW)


def stamped(new: dict[str, Any], at: datetime = NOW) -> dict[str, Any]:
    return stamp(new, {}, at, observed_in_full=True, interval=30)


def test_stamp_adds_last_sync_time_without_mutating() -> None:
    new = in_sync_status()
    result = stamped(new, NOW + timedelta(seconds=5, microseconds=123))
    assert result["lastSyncTime"] == "2026-11-25T16:00:05Z"
    assert "lastSyncTime" not in new
    assert {k: v for k, v in result.items() if k != "lastSyncTime"} == new


@pytest.mark.parametrize(
    ("age", "full", "moves"),
    [(0.5, True, False), (29, True, False), (30, True, True), (600, True, True), (600, False, False)],
)
def test_last_sync_time_moves_at_most_once_per_resync_and_only_for_a_full_observation(
    age: float, full: bool, moves: bool
) -> None:
    previous = stamped(in_sync_status())
    result = stamp(in_sync_status(), previous, NOW + timedelta(seconds=age), observed_in_full=full, interval=30)
    assert (result["lastSyncTime"] != previous["lastSyncTime"]) is moves


def test_no_observation_and_no_earlier_sync_leaves_last_sync_time_out() -> None:
    assert "lastSyncTime" not in stamp(in_sync_status(), {}, NOW, observed_in_full=False, interval=30)


@pytest.mark.parametrize(("age", "expected"), [(0, False), (10, False), (29.5, False), (30, True), (3600, True)])
def test_unchanged_status_patched_once_per_heartbeat(age: float, expected: bool) -> None:
    new = in_sync_status()
    previous = stamped(new)
    assert needs_patch(previous, new, NOW + timedelta(seconds=age), 30) is expected


def test_no_last_sync_time_yet_needs_patch() -> None:
    new = in_sync_status()
    assert needs_patch(new, new, NOW, 30) is True


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.update(observedGeneration=5), id="generation"),
        pytest.param(lambda s: s.update(loaded="2/2"), id="loaded"),
        pytest.param(lambda s: s["partitions"][1].update(state="Loading"), id="partition-state"),
        pytest.param(lambda s: s["conditions"][0].update(message="other"), id="condition-message"),
        pytest.param(lambda s: s.pop("totalPartitions"), id="key-removed"),
        pytest.param(lambda s: s.update(extra=1), id="key-added"),
    ],
)
@pytest.mark.parametrize("heartbeat", [0, 30])
def test_any_other_change_needs_patch(change: Any, heartbeat: float) -> None:
    previous = stamped(in_sync_status())
    new = in_sync_status()
    change(new)
    assert needs_patch(previous, new, NOW, heartbeat) is True


@pytest.mark.parametrize("age", [0, 1, 30, 86400])
def test_heartbeat_zero_never_patches_an_unchanged_status(age: float) -> None:
    # settings.status_heartbeat_seconds: "0 = only on change"
    new = in_sync_status()
    previous = stamped(new)
    assert needs_patch(previous, new, NOW + timedelta(seconds=age), 0) is False
