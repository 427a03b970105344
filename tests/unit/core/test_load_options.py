"""Load options by server version: loadFields / skipLoadDynamicField / priority refused before any call on a
server that lacks them, a changed field list mapped from Milvus's refusal, and the refresh annotation."""

from __future__ import annotations

from typing import Any

import pytest

from milvusops.core.capabilities import capabilities
from milvusops.core.failures import Reason
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.core.observed import Observed, Replicas, StateReport
from milvusops.core.plan import LoadPartitions, ReleasePartitions, plan
from milvusops.core.refresh import Refresh, RefreshStep, decide
from milvusops.milvus.errors import classify
from tests.unit.fake_grpc import server_status
from tests.unit.fake_milvus import LOADED, LOADING, NOT_LOAD, FakeMilvus
from tests.unit.reconcile_runs import HOT_SPEC, IN_SYNC, make_spec, ready, run, written


def observed(states: dict[str, LoadState], **extra: Any) -> Observed:
    reports = {name: StateReport(state) for name, state in states.items()}
    whole = LOADED if LOADED in states.values() else LOADING if LOADING in states.values() else NOT_LOAD
    return Observed(StateReport(whole), reports, Replicas(1) if whole == LOADED else None, "4507", **extra)


FIELDS = {"loadFields": ["id", "vector"]}
SKIP = {"skipLoadDynamicField": True}
LOW = {"priority": "Low"}
NOTHING_LOADED = {"_default": NOT_LOAD, "hot": NOT_LOAD}


# --- the planner, by capabilities ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "load", "refused"),
    [
        ("v2.3.5", FIELDS, ["spec.load.loadFields needs Milvus 2.4.10"]),
        ("v2.3.5", SKIP, ["spec.load.skipLoadDynamicField needs Milvus 2.4.10"]),
        ("v2.4.9", {**FIELDS, **SKIP}, ["loadFields needs Milvus 2.4.10", "skipLoadDynamicField needs Milvus 2.4.10"]),
        ("v2.4.10", FIELDS, []),
        ("v2.4.10", SKIP, []),
        ("v2.3.5", LOW, ["spec.load.priority needs Milvus 2.6.0"]),
        ("v2.5.27", {**FIELDS, **LOW}, ["spec.load.priority needs Milvus 2.6.0"]),
        ("v2.6.0", {**FIELDS, **LOW}, []),
        ("v3.0.0", {"priority": "High"}, []),
        ("v9.9.9", {**FIELDS, **LOW}, []),  # newer than known: the newest behaviour
        ("v2.3.5", {"replicas": 1}, []),  # no option set: a plain load on any server
    ],
)
def test_load_options_are_refused_before_any_call_on_servers_without_them(
    version: str, load: dict[str, Any], refused: list[str]
) -> None:
    spec = make_spec("Released", {"hot": "Loaded"}, load=load)
    result = plan(spec, observed(NOTHING_LOADED), capabilities(version))
    if not refused:
        assert result.actions == (LoadPartitions(("hot",)),)
        assert result.unsupported_options is None
        return
    assert result.actions == ()
    assert result.unsupported_options is not None
    assert f"Milvus {version}" in result.unsupported_options
    for words in refused:
        assert words in result.unsupported_options
    if "priority" not in str(load):
        assert "priority" not in result.unsupported_options


def test_releases_still_go_when_the_load_options_are_refused() -> None:
    spec = make_spec("Released", {"hot": "Loaded"}, load=LOW)
    result = plan(spec, observed({"_default": LOADED, "hot": NOT_LOAD}), capabilities("v2.5.27"))
    assert result.actions == (ReleasePartitions(("_default",)),)
    assert result.unsupported_options is not None


def test_options_do_not_matter_when_nothing_should_be_loaded() -> None:
    spec = make_spec("Released", load=LOW)
    result = plan(spec, observed({"_default": LOADED}), capabilities("v2.3.5"))
    assert result.unsupported_options is None
    assert result.actions != ()  # the release of _default


# --- the refresh decision ------------------------------------------------------------------------------

WHOLE = make_spec("Loaded")
ALL = {"_default": LOADED, "hot": LOADED}


@pytest.mark.parametrize(
    ("requested", "last", "spec", "states", "version", "expected"),
    [
        pytest.param("", "", HOT_SPEC, IN_SYNC, "v2.3.5", None, id="no-annotation"),
        pytest.param("t1", "t1", HOT_SPEC, IN_SYNC, "v2.3.5", None, id="already-handled"),
        pytest.param("t2", "t1", HOT_SPEC, IN_SYNC, "v2.3.5", RefreshStep(Refresh(("hot",)), True), id="partitions"),
        pytest.param("t1", "", WHOLE, ALL, "v2.5.27", RefreshStep(Refresh(None), True), id="whole-collection"),
        pytest.param(
            "t1",
            "",
            HOT_SPEC,
            {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD},
            "v2.3.5",
            None,  # a load is planned first: the refresh waits
            id="waits-for-the-load",
        ),
        pytest.param("t1", "", HOT_SPEC, {"_default": NOT_LOAD, "hot": LOADING}, "v2.3.5", None, id="waits-loading"),
        pytest.param(
            "t1",
            "",
            make_spec("Released"),
            {"_default": NOT_LOAD},
            "v2.3.5",
            RefreshStep(handled=True, note="nothing is loaded, so there was nothing to refresh"),
            id="nothing-loaded",
        ),
    ],
)
def test_refresh_decision(
    requested: str,
    last: str,
    spec: CollectionSpec,
    states: dict[str, LoadState],
    version: str,
    expected: RefreshStep | None,
) -> None:
    seen = observed(states)
    planned = plan(spec, seen, capabilities(version))
    step = decide(requested, last, spec, seen, planned, capabilities(version))
    if expected is None and requested and requested != last:
        assert step == RefreshStep()  # asked, not yet handled: recorded later
    else:
        assert step == expected


def test_refresh_on_a_partition_key_collection_is_a_collection_call() -> None:
    seen = observed(ALL, partition_key="tenant")
    spec = make_spec("Loaded")
    step = decide("t1", "", spec, seen, plan(spec, seen, capabilities("v2.5.27")), capabilities("v2.5.27"))
    assert step == RefreshStep(Refresh(None), True)


def test_refresh_is_refused_by_a_server_without_it() -> None:
    seen = observed(IN_SYNC)
    caps = capabilities("v2.2.2")
    step = decide("t1", "", HOT_SPEC, seen, plan(HOT_SPEC, seen, caps), caps)
    assert step is not None and step.action is None and not step.handled
    assert step.unsupported is not None
    assert "Milvus v2.2.2" in step.unsupported and "2.2.3" in step.unsupported


# --- whole passes on the fake --------------------------------------------------------------------------


def refresh_ref(value: str) -> ResourceRef:
    return ResourceRef(namespace="shop", name="products", generation=3, refresh_requested=value)


async def test_unsupported_options_are_stalled_and_make_no_call() -> None:
    milvus = FakeMilvus(NOTHING_LOADED)
    result = await run(milvus, make_spec("Released", {"hot": "Loaded"}, load=LOW))
    assert milvus.mutating_calls == []
    assert ready(result) == (False, Reason.UNSUPPORTED_BY_SERVER, False, True)
    assert "Milvus v2.3.5" in result.verdict.message and "2.6.0" in result.verdict.message


async def test_refresh_annotation_is_handled_once_and_recorded() -> None:
    milvus = FakeMilvus(dict(IN_SYNC))
    first = await run(milvus, ref=refresh_ref("2026-11-29T10:00:00Z"))
    assert milvus.mutating_calls == [("refresh_partitions", "products", ("hot",))]
    assert first.status["lastRefresh"] == "2026-11-29T10:00:00Z"
    assert first.acted and ready(first) == (True, Reason.IN_SYNC, False, False)
    assert first.events[0].reason == "Refreshed"
    assert "DriftCorrected" not in [e.reason for e in first.events]
    # the next pass sees it recorded: no second refresh
    second = await run(milvus, ref=refresh_ref("2026-11-29T10:00:00Z"), previous=written(first.status))
    assert len(milvus.mutating_calls) == 1
    assert second.status["lastRefresh"] == "2026-11-29T10:00:00Z"
    # a new value asks once more
    await run(milvus, ref=refresh_ref("2026-11-29T11:00:00Z"), previous=written(second.status))
    assert len(milvus.mutating_calls) == 2


async def test_a_refused_refresh_is_not_recorded_and_is_tried_again() -> None:
    milvus = FakeMilvus(dict(IN_SYNC))
    milvus.fail("refresh_partitions", Reason.MILVUS_ERROR, "code 101: collection not fully loaded")
    result = await run(milvus, ref=refresh_ref("t1"))
    assert "lastRefresh" not in result.status
    assert result.verdict.reason == Reason.MILVUS_ERROR
    del milvus.failures["refresh_partitions"]
    again = await run(milvus, ref=refresh_ref("t1"), previous=written(result.status))
    assert again.status["lastRefresh"] == "t1"


async def test_refresh_waits_for_the_load_then_goes_once() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": NOT_LOAD})
    first = await run(milvus, ref=refresh_ref("t1"))
    assert [call[0] for call in milvus.mutating_calls] == ["load_partitions"]
    assert "lastRefresh" not in first.status
    milvus.states["hot"] = LOADED
    second = await run(milvus, ref=refresh_ref("t1"), previous=written(first.status))
    assert [call[0] for call in milvus.mutating_calls] == ["load_partitions", "refresh_partitions"]
    assert second.status["lastRefresh"] == "t1"


async def test_refresh_of_nothing_loaded_is_recorded_without_a_call() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    result = await run(milvus, make_spec("Released"), ref=refresh_ref("t1"))
    assert milvus.mutating_calls == []
    assert result.status["lastRefresh"] == "t1"
    assert "nothing to refresh" in result.events[0].message


async def test_refresh_on_a_server_without_it_is_stalled_and_not_recorded() -> None:
    milvus = FakeMilvus(dict(IN_SYNC))
    milvus.version_text = "v2.2.2"
    result = await run(milvus, ref=refresh_ref("t1"))
    assert milvus.mutating_calls == []
    assert ready(result) == (False, Reason.UNSUPPORTED_BY_SERVER, False, True)
    assert "lastRefresh" not in result.status


async def test_paused_or_observing_never_refreshes() -> None:
    milvus = FakeMilvus(dict(IN_SYNC))
    paused = ResourceRef(namespace="shop", name="products", generation=3, paused=True, refresh_requested="t1")
    await run(milvus, ref=paused)
    await run(milvus, make_spec("Released", {"hot": "Loaded"}, managementPolicy="Observe"), ref=refresh_ref("t1"))
    assert milvus.mutating_calls == []


# --- Milvus's refusal of a changed field list ----------------------------------------------------------


def test_a_changed_field_list_on_a_loaded_collection_is_invalid_with_the_release_hint() -> None:
    # the words Milvus's client tests expect, under merr.WrapErrParameterInvalid (1100) and the load wrap
    exc = server_status(
        1100,
        "failed to load partitions: can't change the load field list for loaded collection: "
        "invalid parameter[expected=[100 101]][actual=[100 102]]",
    )
    failure = classify(exc)
    assert failure.reason == Reason.INVALID_LOAD_OPTIONS
    assert "release it first" in failure.message and "loadFields" in failure.message
    assert "replicas" not in failure.message.split(": Milvus keeps")[1]


async def test_last_refresh_is_kept_while_milvus_cannot_be_asked() -> None:
    milvus = FakeMilvus(dict(IN_SYNC))
    first = await run(milvus, ref=refresh_ref("t1"))
    milvus.fail("load_state", Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    down = await run(milvus, ref=refresh_ref("t1"), previous=written(first.status))
    assert down.verdict.reason == Reason.MILVUS_UNAVAILABLE
    assert down.status["lastRefresh"] == "t1"  # else the same annotation would refresh again once Milvus is back
