"""The capacity guard against a query node whose memory is really limited (a cgroup v1 memory limit).

The small cluster (tests/conftest.py, shared with test_guard_servers.py) has one query node of 200 MiB:
the other cluster's query nodes would offer their (host-sized) memory to every load. The guard refuses
a load that does not fit. What Milvus itself does with the same load, guard off, is a measurement, not
a test: `python -m bench.scenarios.guard_off` (docs/design/capacity.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.conftest import SMALL_NODE_MEMORY, Figures
from tests.e2e.helpers import Kube, OperatorProcess, big_collection, load_states
from tests.testenv.memcgroup import available
from tests.testenv.milvus_cluster import MilvusCluster

LIMIT = SMALL_NODE_MEMORY
BIG_ROWS, DIM = 200_000, 256  # about 200 MiB estimated: more than the node has free, less than the host

pytestmark = pytest.mark.skipif(not available(), reason="needs a writable cgroup v1 memory controller")


def _holds(check: Callable[[], bool], seconds: float, what: str) -> None:
    """`check` stays true, polled twice a second, for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.5)


def _calls(operator: OperatorProcess) -> float:
    return operator.metric("milvusops_load_release_calls_total")


def test_guard_refuses_a_load_that_does_not_fit(
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
