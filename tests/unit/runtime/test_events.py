"""The events of one pass: derived from what it saw and did, without side effects (the worker counts them)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from milvusops.core.failures import Failure, Reason
from milvusops.core.model import LoadState
from milvusops.core.observed import Observed, StateReport
from milvusops.core.plan import LoadPartitions, Plan, ReleasePartitions
from milvusops.core.status import Outcome, Verdict
from milvusops.runtime.apply import Applied
from milvusops.runtime.events import DRIFT_CORRECTED, Event, events
from tests.unit.reconcile_runs import make_ref

IN_SYNC = {
    "observedGeneration": 3,
    "conditions": [{"type": "Ready", "status": "True", "reason": "InSync"}],
    "collection": {"id": "7"},
}
SEEN = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADED)}, collection_id="7")
LOADING = Verdict(False, Reason.LOADING, "loading", True, False)
READY = Verdict(True, Reason.IN_SYNC, "1/1 partitions loaded, as desired", False, False)
LOAD_A = Applied((LoadPartitions(("a",)),), ("load of partitions a started (replicas=1)",))


def drift_count() -> float:
    return REGISTRY.get_sample_value("milvusops_drift_corrections_total") or 0.0


def test_calls_on_an_unchanged_in_sync_resource_are_drift_and_deriving_them_counts_nothing() -> None:
    before = drift_count()
    found = events(make_ref(generation=3), IN_SYNC, Outcome(SEEN, Plan({}, (), ())), LOADING, LOAD_A)
    assert found == (Event("Normal", DRIFT_CORRECTED, LOAD_A.lines[0], ("a",)),)
    assert drift_count() == before


def test_calls_after_a_spec_change_are_loading_or_releasing() -> None:
    outcome = Outcome(SEEN, Plan({}, (), ()))
    assert [e.reason for e in events(make_ref(generation=4), IN_SYNC, outcome, LOADING, LOAD_A)] == ["Loading"]
    release = Applied((ReleasePartitions(("a",)), LoadPartitions(("b",))), ("released a", "load of b started"))
    assert [e.reason for e in events(make_ref(generation=4), IN_SYNC, outcome, LOADING, release)] == ["Releasing"]


def test_a_handled_refresh_comes_first_and_a_failure_is_a_warning() -> None:
    failure = Failure(Reason.MILVUS_UNAVAILABLE, "down")
    done = Applied(refreshed="refresh of collection products started")
    verdict = Verdict(False, failure.reason, failure.message, True, False)
    found = events(make_ref(), {}, Outcome(SEEN, failure=failure), verdict, done)
    assert found == (Event("Normal", "Refreshed", done.refreshed), Event("Warning", "MilvusUnavailable", "down"))


def test_becoming_ready_is_an_event_once() -> None:
    outcome = Outcome(SEEN, Plan({}, (), ()))
    assert [e.reason for e in events(make_ref(), {}, outcome, READY, Applied())] == ["InSync"]
    assert events(make_ref(), IN_SYNC, outcome, READY, Applied()) == ()


def test_a_release_of_what_serves_is_marked_destructive_in_its_event() -> None:
    outcome = Outcome(SEEN, Plan({}, (), ()))  # a is Loaded
    release = Applied((ReleasePartitions(("a",)),), ("released partitions a",))
    [event] = events(make_ref(generation=4), IN_SYNC, outcome, LOADING, release)
    assert (event.reason, event.message) == (
        "Releasing",
        "released partitions a; destructive: releases loaded partition(s) a",
    )
    [loading] = events(make_ref(generation=4), IN_SYNC, outcome, LOADING, LOAD_A)
    assert "destructive" not in loading.message
