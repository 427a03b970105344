"""The server's query nodes: read once for every caller within a few seconds, and since when the set stands."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import LoadState
from milvusops.core.observed import Observed, QueryNodes, Replicas, StateReport, replicas_stand
from milvusops.milvus.query_nodes import MAX_AGE_SECONDS, QueryNodesSeen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Metrics:
    """GetMetrics as the port reads it: the query node ids, or a failure."""

    def __init__(self) -> None:
        self.ids = frozenset({1, 2})
        self.reads = 0
        self.failure: Failure | None = None

    async def read(self) -> frozenset[int]:
        self.reads += 1
        await asyncio.sleep(0)  # callers arriving meanwhile share this read
        if self.failure is not None:
            raise FailureError(self.failure)
        return self.ids


async def test_callers_at_once_and_within_the_max_age_share_one_read() -> None:
    clock, metrics = Clock(), Metrics()
    seen = QueryNodesSeen(60.0, clock)
    answers = await asyncio.gather(*(seen.current(metrics.read) for _ in range(50)))
    clock.now += MAX_AGE_SECONDS - 0.1
    answers.append(await seen.current(metrics.read))
    assert metrics.reads == 1 and set(answers) == {QueryNodes(frozenset({1, 2}), since=1000.0, settle=60.0)}


async def test_the_set_keeps_its_since_while_it_stands_and_moves_it_when_it_changes() -> None:
    clock, metrics = Clock(), Metrics()
    seen = QueryNodesSeen(60.0, clock)
    await seen.current(metrics.read)
    clock.now += 30
    assert await seen.current(metrics.read) == QueryNodes(frozenset({1, 2}), since=1000.0, settle=60.0)
    metrics.ids = frozenset({2})  # node 1 lost
    clock.now += 30
    assert await seen.current(metrics.read) == QueryNodes(frozenset({2}), since=1060.0, settle=60.0)
    assert metrics.reads == 3


async def test_a_failed_read_is_unknown_and_not_asked_again_by_every_caller() -> None:
    clock, metrics = Clock(), Metrics()
    metrics.failure = Failure(Reason.PERMISSION_DENIED, "GetMetrics: permission deny")
    seen = QueryNodesSeen(60.0, clock)
    assert await seen.current(metrics.read) is None
    assert await seen.current(metrics.read) is None and metrics.reads == 1
    metrics.failure = None
    clock.now += MAX_AGE_SECONDS
    assert await seen.current(metrics.read) == QueryNodes(
        frozenset({1, 2}), since=clock.now, settle=60.0
    )  # since: the first seen


def test_replicas_stand_only_when_all_are_served_and_read_well_after_the_nodes_last_changed() -> None:
    nodes = QueryNodes(frozenset({1}), since=100.0, settle=60.0)
    served = Observed(StateReport(LoadState.LOADED), replicas=Replicas(1), replicas_at=160.0)
    assert replicas_stand(served, nodes)
    assert not replicas_stand(served, replace(nodes, settle=61.0))  # read before GetReplicas had surely caught up
    assert not replicas_stand(served, None)  # the nodes unknown
    assert not replicas_stand(Observed(StateReport(LoadState.LOADED), replicas=Replicas(1)), nodes)
    lost = Replicas(None, unavailable="no available nodes in replica")
    assert not replicas_stand(Observed(StateReport(LoadState.LOADED), replicas=lost, replicas_at=900.0), nodes)
    listed_lost = Replicas(2, lost=("7",))
    assert not replicas_stand(Observed(StateReport(LoadState.LOADED), replicas=listed_lost, replicas_at=900.0), nodes)
