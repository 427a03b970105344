"""The memory guard keeps each Milvus server's waiting loads apart (issue 29 item 1), on real parts.

Two MilvusConnections: one to the small cluster (one query node in a 200 MiB memory cgroup, as in
test_capacity.py), one to the standalone (the host's memory). An older load far too big for the small
cluster is refused there; a small load on the standalone, through the other connection, must not wait
for it. Before the fix, the older load's bytes were subtracted from the standalone's free memory too.
Then (item 9) the lasting refusal makes no status write and no second Warning over further resyncs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pymilvus import DataType, MilvusClient

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess, flat_index, load_states, new_collection, wait_for
from tests.testenv.memcgroup import available
from tests.testenv.milvus import MilvusServer
from tests.testenv.milvus_cluster import MilvusCluster

# estimated per row (core/memory_estimate): system fields, the int64 id, a dim-8 FLAT vector, and a VARCHAR
# counted at half its max_length; its values are empty, so the estimate is large and the data inserted small
DIM, TEXT_LENGTH = 8, 65_535
BYTES_PER_ROW = 16 + 8 + DIM * 4 + TEXT_LENGTH // 2 + 8
REPLICAS = 100  # the CRD's maximum: the older load asks for more than the whole host has, with few rows

pytestmark = pytest.mark.skipif(not available(), reason="needs a writable cgroup v1 memory controller")


def _host_memory() -> int:
    """What the standalone (no cgroup of its own) reports as its query node's memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _flushed(server: MilvusServer, collection: str) -> str:
    """Flushed, so Milvus reports its rows and the guard weighs a load of more than 0 bytes."""
    client = server.client(timeout=60)
    try:
        client.flush(collection)
    finally:
        client.close()
    return collection


def _wide_collection(server: MilvusCluster, rows: int) -> str:
    """A partition `big` whose estimate is large for the few bytes inserted (seconds, not a minute of inserts)."""
    name = f"c_{uuid.uuid4().hex[:10]}"
    client = server.client(timeout=120)
    try:
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_LENGTH)
        client.create_collection(name, schema=schema)
        client.create_partition(name, "big")
        for start in range(0, rows, 10_000):
            batch = [{"vector": [0.5] * DIM, "text": ""} for _ in range(min(10_000, rows - start))]
            client.insert(name, batch, partition_name="big")
        client.flush(name)
        flat_index(client, name)
    finally:
        client.close()
    return name


def _connect(kube: Kube, namespace: str, name: str, server: MilvusServer | MilvusCluster) -> None:
    kube.create_secret(namespace, f"{name}-token", {"token": server.root_token})
    kube.create_connection(namespace, name, {"uri": server.uri, "credentialsSecretRef": {"name": f"{name}-token"}})


def test_a_load_refused_on_one_server_holds_back_no_load_on_another(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    small_cluster: MilvusCluster,
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    # more rows than the standalone's whole memory could take with 100 replicas: whatever the host is using
    rows = int(_host_memory() * 1.1 / (BYTES_PER_ROW * REPLICAS)) + 1
    too_big = _wide_collection(small_cluster, rows)
    fits = _flushed(milvus, new_collection(milvus, ["a"]))
    _connect(kube, namespace, "small", small_cluster)
    _connect(kube, namespace, "standalone", milvus)
    operator = start_operator()

    spec = {"collectionName": too_big, "partitions": [{"name": "big", "state": "Loaded"}]}
    kube.create(namespace, "older", {**spec, "load": {"replicas": REPLICAS}, "connectionRef": {"name": "small"}})
    refused = kube.wait_reason(namespace, "older", "InsufficientMemory", timeout=90)
    figures.record("guard servers: the older load on the small cluster", refused["message"])
    needed = next(p for p in kube.get(namespace, "older")["status"]["partitions"] if p["name"] == "big")
    assert needed["estimatedMemoryBytes"] > _host_memory(), needed  # it would fill the standalone too

    # older by creationTimestamp (whole seconds), not by a tie broken on the uids
    created = datetime.fromisoformat(kube.get(namespace, "older")["metadata"]["creationTimestamp"])
    wait_for(lambda: datetime.now(UTC) >= created + timedelta(seconds=1), 5, "a later creation second")
    kube.create(
        namespace, "younger", {"collectionName": fits, "state": "Loaded", "connectionRef": {"name": "standalone"}}
    )
    ready = kube.wait_reason(namespace, "younger", "InSync", timeout=90)
    assert ready["status"] == "True"
    weighed = kube.get(namespace, "younger")["status"]["memory"]["estimatedDesiredBytes"]
    assert weighed > 0  # the guard did weigh this load against the standalone's free memory
    assert set(load_states(milvus, fits).values()) == {"Loaded"}
    # the older one still waits on its own server, and nothing was sent there
    assert kube.condition(namespace, "older", "Ready")["reason"] == "InsufficientMemory"
    assert load_states(small_cluster, too_big)["big"] == "NotLoad"
    assert operator.metric("milvusops_load_release_calls_total") == 1  # the standalone's load only
    figures.record(
        "guard servers: rows in the older load's partition (dim 8, VARCHAR(65535) empty, 100 replicas)", f"{rows}"
    )

    # item 9: the refusal lasts while the query node's use wobbles: no status write, no second Warning
    version = kube.get(namespace, "older")["metadata"]["resourceVersion"]
    passes = operator.metric("milvusops_reconciles_total", result="stalled")
    wait_for(lambda: operator.metric("milvusops_reconciles_total", result="stalled") >= passes + 4, 60, "4 passes")
    assert kube.get(namespace, "older")["metadata"]["resourceVersion"] == version, "a status write"
    warnings = [e for e in kube.events(namespace, "older") if e.reason == "InsufficientMemory"]
    assert len(warnings) == 1 and (warnings[0].count or 1) == 1, warnings
    figures.record("guard servers: refused passes after the first, status writes, Warnings", "4+, 0, 1")
