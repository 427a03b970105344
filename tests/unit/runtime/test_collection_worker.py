"""The per-collection loop, pass after pass, against the in-memory Milvus: what it calls and when.

The daemon's sleep is replaced by a recorder, so each pass's delay is seen and no time passes.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from milvusops.core.failures import Failure, Reason
from milvusops.core.observed import StateReport
from milvusops.core.status import Verdict
from milvusops.milvus.call_slots import Priority
from milvusops.runtime.collection_worker import Census, carried
from milvusops.runtime.reconcile import Result
from tests.unit.fake_loop import Loop
from tests.unit.fake_milvus import LOADED, LOADING, NOT_LOAD, FakeMilvus


async def test_a_load_started_while_another_partition_loads_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADING, "b": NOT_LOAD})
    loop = Loop(
        milvus, {"partitions": [{"name": "a", "state": "Loaded"}, {"name": "b", "state": "Loaded"}]}, monkeypatch
    )
    await loop.run(6)  # `a` keeps loading all along
    assert loop.mutating() == ["load_partitions"]
    assert milvus.states == {"_default": NOT_LOAD, "a": LOADING, "b": LOADING}


async def test_a_release_made_while_another_partition_loads_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADING, "b": LOADED})
    loop = Loop(
        milvus, {"partitions": [{"name": "a", "state": "Loaded"}, {"name": "b", "state": "Released"}]}, monkeypatch
    )
    await loop.run(6)
    assert loop.mutating() == ["release_partitions"]


async def test_unreachable_milvus_backs_off_without_a_saw_tooth(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    milvus.fail("load_state", Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)
    await loop.run(12)
    resync = loop.worker.settings.resync_seconds
    assert all(delay <= resync for delay in loop.delays)
    assert loop.delays[:3] == sorted(loop.delays[:3])  # grows at first
    # once at the cap it stays near it (jitter spreads 1,000 resources), never drops back to a few seconds
    assert all(delay >= resync / 2 for delay in loop.delays[6:]), loop.delays
    assert len(set(loop.delays[6:])) > 1, "jitter: not the same delay every time"


async def test_an_unclassified_error_backs_off_instead_of_rechecking_every_two_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    milvus.fail("load_state", Reason.MILVUS_ERROR, "code 8: rate limit exceeded")
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)
    await loop.run(8)
    assert max(loop.delays) >= loop.worker.settings.resync_seconds / 2, loop.delays
    assert len(milvus.calls) <= 8


async def test_a_partition_dropped_during_the_observation_is_just_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": LOADED, "hot": LOADED})
    real_list = milvus.list_partitions

    async def list_with_a_dropped_one(collection: str, count: int | None = None) -> list[str]:
        return [*await real_list(collection, count), "dropped"]  # listed, then dropped before its get_load_state

    milvus.list_partitions = list_with_a_dropped_one  # type: ignore[method-assign]
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)
    await loop.run(1)
    ready = {c["type"]: c for c in loop.body["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "InSync"), ready
    assert [name for _, name, _ in loop.events if name == "PartitionNotFound"] == []


async def test_status_written_by_someone_else_is_corrected(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": LOADED})
    loop = Loop(milvus, {"partitions": [{"name": "hot", "state": "Loaded"}]}, monkeypatch)
    await loop.run(1)
    assert loop.body["status"]["loaded"] == "1/2"
    # paused by peering; meanwhile another replica (older code, say) wrote other values
    loop.body["status"]["loaded"] = "0/2"
    loop.body["status"]["loadedPartitions"] = 0
    loop.body["metadata"]["resourceVersion"] = "99"
    await loop.run(2)  # the daemon resumes
    assert (loop.body["status"]["loaded"], loop.body["status"]["loadedPartitions"]) == ("1/2", 1)


def _resources(ready: str, reason: str) -> float:
    return REGISTRY.get_sample_value("milvusops_resources", {"ready": ready, "reason": reason}) or 0.0


async def test_a_stopped_daemon_leaves_no_resource_series(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _resources("True", "InSync")
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": LOADED})
    loop = Loop(milvus, {"partitions": [{"name": "hot", "state": "Loaded"}]}, monkeypatch, uid="series")
    counted: list[float] = []
    await loop.run(1, between=lambda _: counted.append(_resources("True", "InSync")))
    assert counted == [before + 1]  # counted while its daemon runs
    assert _resources("True", "InSync") == before  # and forgotten when it stops (peering pause, shutdown)


class Clock:
    """datetime.now for the worker modules, moved by hand."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)

    def now(self, tz: Any = None) -> datetime:
        return self.moment


def loading_big(monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, FakeMilvus, Loop]:
    """Partition `big` loading, each re-check with a percentage 10 points higher; time is the returned clock."""
    clock = Clock()
    for module in ("milvusops.runtime.worker", "milvusops.runtime.collection_worker"):
        monkeypatch.setattr(f"{module}.datetime", clock)
    milvus = FakeMilvus({"_default": NOT_LOAD, "big": LOADING})
    progress = iter(range(10, 100, 10))
    real_state = milvus.load_state

    async def advancing(collection: str, partition: str | None = None) -> StateReport:
        report = await real_state(collection, partition)
        return StateReport(report.state, next(progress)) if report.state == LOADING else report

    milvus.load_state = advancing  # type: ignore[method-assign]
    return clock, milvus, Loop(milvus, {"partitions": [{"name": "big", "state": "Loaded"}]}, monkeypatch)


async def test_last_sync_time_does_not_move_with_progress_rechecks(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, _, loop = loading_big(monkeypatch)
    times: list[str] = []

    def tick(_: int) -> None:
        times.append(loop.body["status"]["lastSyncTime"])
        clock.moment += timedelta(seconds=2)

    await loop.run(6, between=tick)
    assert len(loop.kube.patches) == 6  # progress moved every pass, so status was written every pass
    assert times == [times[0]] * 6  # but within one resync interval (30 s) lastSyncTime stays


async def test_progress_alone_is_written_at_most_once_per_recheck_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst's re-checks move percentages every half second: status carries them every loading_recheck (2 s)."""
    clock, milvus, loop = loading_big(monkeypatch)

    def tick(_: int) -> None:
        clock.moment += timedelta(seconds=0.5)

    await loop.run(8, between=tick)  # 8 passes over 3.5 s, each with a new percentage
    assert len(loop.kube.patches) == 2  # the first status, then the percentage of the pass 2 s later
    milvus.partitions = {"_default": NOT_LOAD, "big": LOADED}
    await loop.run(1)
    assert len(loop.kube.patches) == 3  # the end of the load goes at once
    assert loop.body["status"]["partitions"][-1]["state"] == "Loaded"


async def test_a_short_load_is_two_status_writes_loading_then_in_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 200-burst wrote 3.1 statuses per resource: NotLoad with a Loading condition, then Loading 0 %, then InSync."""
    clock = Clock()
    for module in ("milvusops.runtime.worker", "milvusops.runtime.collection_worker"):
        monkeypatch.setattr(f"{module}.datetime", clock)
    milvus = FakeMilvus({"_default": NOT_LOAD, "p": NOT_LOAD})
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)

    def tick(_: int) -> None:
        clock.moment += timedelta(seconds=0.5)

    await loop.run(2, between=tick)  # the pass that loads, then a re-check half a second later: still Loading
    assert loop.mutating() == ["load_collection"]
    assert [p["state"] for p in loop.body["status"]["partitions"]] == ["Loading", "Loading"]
    assert len(loop.kube.patches) == 1  # the load's own pass already said Loading
    milvus.partitions = {"_default": LOADED, "p": LOADED}
    await loop.run(1)
    assert len(loop.kube.patches) == 2
    assert [c["reason"] for c in loop.body["status"]["conditions"] if c["type"] == "Ready"] == ["InSync"]


async def test_a_recreated_collection_gets_its_new_id_and_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "hot": LOADED})
    loop = Loop(milvus, {"partitions": [{"name": "hot", "state": "Loaded"}]}, monkeypatch)

    def recreate(passes: int) -> bool:
        milvus.id, milvus.partitions = "5001", {"_default": NOT_LOAD, "hot": NOT_LOAD}
        return True  # as if woken

    await loop.run(2, between=recreate)
    assert loop.body["status"]["collection"]["id"] == "5001"
    assert [reason for _, reason, _ in loop.events].count("CollectionRecreated") == 1
    assert "DriftCorrected" not in [reason for _, reason, _ in loop.events]
    assert loop.mutating() == ["load_partitions"]


async def test_passes_over_an_in_sync_collection_only_confirm_it_and_write_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    milvus = FakeMilvus({"_default": LOADED, "a": LOADED, "b": LOADED})
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)
    loop.worker.timing = replace(loop.worker.timing, calls_per_second=0.0)  # a busy connection: 300 s apart
    counts: list[int] = []

    def between(done: int) -> None:
        counts.append(len(milvus.calls))

    await loop.run(5, between)
    per_pass = [after - before for before, after in zip([0, *counts], counts, strict=False)]
    # the first pass in full: collection, list, describe, 3 partitions, replicas, and sizes for the estimate
    assert per_pass[0] == 3 + 3 + 1 + 1
    assert per_pass[1:] == [2, 2, 2, 2]  # then the loaded partitions together, and describe_replica
    assert len(loop.kube.patches) == 1 and loop.mutating() == []


async def test_passes_wait_behind_other_resources_only_once_this_one_is_in_sync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": NOT_LOAD})
    loop = Loop(milvus, {"partitions": [{"name": "a", "state": "Loaded"}]}, monkeypatch)
    seen: list[set[Priority]] = []

    def between(done: int) -> None:
        milvus.states["a"] = LOADED  # the load sent by the first pass is done before the second
        seen.append({priority for method, priority in milvus.priorities if method != "load_partitions"})
        milvus.priorities.clear()

    await loop.run(4, between)
    assert seen == [{Priority.CHANGE}, {Priority.FOLLOW}, {Priority.BACKGROUND}, {Priority.BACKGROUND}]


async def test_drift_is_seen_and_corrected_by_the_confirming_pass_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": LOADED, "b": NOT_LOAD})
    loop = Loop(
        milvus, {"partitions": [{"name": "a", "state": "Loaded"}, {"name": "b", "state": "Released"}]}, monkeypatch
    )

    def between(done: int) -> None:
        if done == 2:
            milvus.states["a"] = NOT_LOAD  # behind the operator's back, before the third pass (a confirmation)

    before = REGISTRY.get_sample_value("milvusops_drift_corrections_total") or 0.0
    await loop.run(3, between)
    assert loop.mutating() == ["load_partitions"]
    assert any(reason == "DriftCorrected" for _, reason, _ in loop.events)
    # counted where the event is sent, once
    assert REGISTRY.get_sample_value("milvusops_drift_corrections_total") == before + 1


async def test_at_debug_each_pass_says_what_it_was_and_when_the_next_one_comes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    milvus = FakeMilvus({"_default": LOADED, "a": NOT_LOAD})
    loop = Loop(milvus, {"state": "Released", "partitions": [{"name": "a", "state": "Loaded"}]}, monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="milvusops"):
        await loop.run(3, lambda done: done == 2)  # woken by a change after the second pass
    lines = [(r.getMessage(), getattr(r, "resource", None)) for r in caplog.records if r.levelno == logging.DEBUG]
    assert lines[0] == (f"full pass acted; next: a full pass in {loop.delays[0]:.2f}s", "ns/m")
    assert lines[1] == (f"full pass done; next: a recheck pass in {loop.delays[1]:.2f}s", "ns/m")
    assert lines[2] == ("woken early by a change of the resource: the next pass is a full one", "ns/m")
    assert lines[3][0].startswith("full pass ")


def test_a_sleeping_loop_carries_only_what_the_next_pass_needs() -> None:
    failure = Failure(Reason.MILVUS_ERROR, "down")
    verdict = Verdict(False, Reason.MILVUS_ERROR, "down", False, False)
    result = Result({"conditions": [{"type": "Ready"}]}, verdict, (), None, True, failure)
    assert carried(result) == (
        None,
        True,
        failure,
        False,
        None,
        None,
    )  # the status and events are not kept between passes
    in_sync = Result({}, Verdict(True, Reason.IN_SYNC, "in sync", False, False), (), None, False, None)
    assert carried(in_sync) == (None, False, None, True, None, None)  # settled: the next pass only confirms


async def test_a_load_watched_to_its_end_lists_and_describes_the_collection_only_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Milvus runs describe and list_partitions one at a time with loads (the proxy's DDL queue). A load
    watched to its end asked them three times: before the load, right after it and at its end; a burst
    of 1,000 took 567 s through the operator where the loads alone took 200 s."""
    milvus = FakeMilvus({"_default": NOT_LOAD, "a": NOT_LOAD})
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)
    loop.worker.timing = replace(loop.worker.timing, calls_per_second=0.0)  # a busy connection: 300 s apart

    def between(done: int) -> None:
        if done == 2:  # the load is seen Loading once, then ends
            milvus.states.update(dict.fromkeys(milvus.states, LOADED))

    await loop.run(4, between)
    methods = [call[0] for call in milvus.calls]
    assert loop.mutating() == ["load_collection"]
    assert (methods.count("list_partitions"), methods.count("describe")) == (1, 1)
    ready = next(c for c in loop.body["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "InSync")
    assert [p["state"] for p in loop.body["status"]["partitions"]] == ["Loaded", "Loaded"]


async def test_a_sleeping_loop_holds_no_result_of_its_last_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Result holds the pass's status and events (about 2.3 KB a resource at 1,000): between passes
    only what `carried` keeps may stay alive."""
    milvus = FakeMilvus({"_default": LOADED, "a": LOADED})
    loop = Loop(milvus, {"state": "Loaded"}, monkeypatch)
    alive: list[int] = []

    def between(done: int) -> None:
        gc.collect()
        alive.append(sum(isinstance(thing, Result) for thing in gc.get_objects()))

    await loop.run(3, between)
    assert alive == [0, 0, 0]


def test_the_census_counts_each_resource_once_under_its_connection() -> None:
    census = Census()
    assert [census.place("a", "ns/x"), census.place("b", "ns/x"), census.place("a", "ns/x")] == [1, 2, 2]
    assert census.place("a", "") == 1  # moved to the default connection
    census.leave("b")
    census.leave("b")  # twice: no harm
    assert census.place("c", "ns/x") == 1


async def test_a_stopped_loop_leaves_the_census(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = Loop(FakeMilvus({"_default": LOADED}), {"state": "Loaded"}, monkeypatch, uid="census")
    await loop.run(1)
    assert loop.worker.census.place("other", "") == 1  # "census" was counted during its passes, then left
    loop.worker.census.leave("other")
