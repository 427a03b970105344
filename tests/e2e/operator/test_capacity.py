"""The capacity guard against a query node whose memory is really limited (a cgroup v1 memory limit).

A small cluster of its own, with one query node of 200 MiB: the shared cluster's other query nodes
would offer their (host-sized) memory to every load. First the guard refuses a load that does not
fit; then the same load with the guard off shows what Milvus itself does with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Figures
from tests.e2e.conftest import _operators
from tests.e2e.helpers import Kube, OperatorProcess, big_collection, load_states, wait_for
from tests.testenv import gobins
from tests.testenv.kube import ControlPlane
from tests.testenv.memcgroup import available
from tests.testenv.milvus_cluster import MilvusCluster

LIMIT = 200 * 2**20
BIG_ROWS, DIM = 200_000, 256  # about 200 MiB estimated: more than the node has free, less than the host

pytestmark = pytest.mark.skipif(not available(), reason="needs a writable cgroup v1 memory controller")


@pytest.fixture(scope="module")
def small_cluster(binaries: gobins.Binaries, workdir: Path, figures: Figures) -> Iterator[MilvusCluster]:
    cluster = MilvusCluster(binaries, workdir / "milvus-small", query_nodes=1, query_node_memory=LIMIT)
    try:
        cluster.start()
        figures.record("small cluster (one 200 MiB query node) started in", f"{cluster.started_in:.1f} s")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def start_small_operator(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    small_cluster: MilvusCluster,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OperatorProcess]]:
    yield from _operators(request, control_plane, small_cluster, namespace, tmp_path_factory)


def _holds(check: Callable[[], bool], seconds: float, what: str) -> None:
    """`check` stays true, polled twice a second, for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.5)


def _calls(operator: OperatorProcess) -> float:
    return operator.metric("milvusops_load_release_calls_total")


def test_guard_refuses_a_load_that_does_not_fit_and_milvus_without_it(
    kube: Kube,
    namespace: str,
    small_cluster: MilvusCluster,
    start_small_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    collection = big_collection(small_cluster, BIG_ROWS, dim=DIM)
    node = small_cluster.query_nodes()[0]
    cgroup = small_cluster.cgroups[node]
    operator = start_small_operator()

    # what fits goes ahead under the guard: the tiny partition
    kube.create(namespace, "fits", {"collectionName": collection, "partitions": [{"name": "small", "state": "Loaded"}]})
    kube.wait_reason(namespace, "fits", "InSync", timeout=90)
    assert _calls(operator) == 1
    kube.patch(
        namespace,
        "fits",
        {"spec": {"partitions": [{"name": "small", "state": "Loaded"}, {"name": "big", "state": "Loaded"}]}},
    )
    ready = kube.wait_reason(namespace, "fits", "InsufficientMemory", timeout=60)
    assert kube.condition(namespace, "fits", "Stalled")["status"] == "True"
    message = ready["message"]
    figures.record("guard on: InsufficientMemory message", message)
    assert "needs an estimated" in message and "free" in message and "releasing small" in message
    status = kube.get(namespace, "fits")["status"]
    big = next(p for p in status["partitions"] if p["name"] == "big")
    assert big["estimatedMemoryBytes"] > LIMIT * 0.9, big  # the estimate is what the guard weighed
    assert f"({big['estimatedMemoryBytes']} B)" in message
    # a few resyncs (5 s each): still nothing sent, the node untouched
    _holds(lambda: _calls(operator) == 1, 12, "the guard sent no load")
    assert load_states(small_cluster, collection)["big"] == "NotLoad"
    assert cgroup.oom_kills() == 0
    figures.record("guard on: load calls for the refused load", "0")
    operator.stop()

    # the same load with the guard off: what Milvus 2.3.5 itself does with it
    unguarded = start_small_operator(MILVUSOPS_MEMORY_GUARD="off")
    began = time.monotonic()
    wait_for(lambda: _calls(unguarded) >= 1, 30, "the load sent without the guard")
    timeline: list[str] = []

    def settled() -> bool:
        state = (
            load_states(small_cluster, collection).get("big", "?") if small_cluster.roles[node].alive() else "node dead"
        )
        reason = kube.condition(namespace, "fits", "Ready").get("reason")
        timeline.append(f"{time.monotonic() - began:.0f}s {state} {reason} oom_kills={cgroup.oom_kills()}")
        return state == "Loaded" or not small_cluster.roles[node].alive() or cgroup.oom_kills() > 0

    try:
        wait_for(settled, 90, "Milvus to load, fail or lose its node")
        outcome = "settled"
    except AssertionError:
        outcome = "still not loaded after 90 s"
    figures.record("guard off: what Milvus did with the same load", f"{outcome}: {timeline[-1]}")
    figures.record("guard off: timeline", "; ".join(timeline[:: max(1, len(timeline) // 12)]))
    figures.record("guard off: node peak memory (cgroup max_usage)", f"{cgroup.read('memory.max_usage_in_bytes')} B")
    figures.record("guard off: load/release calls", f"{_calls(unguarded):.0f}")
    assert timeline, "Milvus was observed"
