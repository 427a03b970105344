"""Item 3: a MilvusConnection's status writes and Ready flaps cost its 200 in-sync collections nothing; a recovery
wakes the few whose last pass failed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from pymilvus import DataType, MilvusClient

from tests.conftest import Figures
from tests.e2e.helpers import GROUP, PLURAL, VERSION, Kube, OperatorProcess, wait_for
from tests.testenv.milvus import MilvusServer

pytestmark = pytest.mark.e2e

CONNECTIONS = "milvusconnections"
RESOURCES = 200
FAILING = 5  # resources whose collection does not exist: Stalled, looked at again only once per (long) resync
PASSES, READS = "milvusops_reconciles_total", "milvusops_kube_reads_total"
# longer than the jitter window of 200 wake-ups (2 s): a wake-up that was going to come has come
QUIET_SECONDS = 5.0


@pytest.fixture
def empty_collections(milvus: MilvusServer) -> Iterator[list[str]]:
    """Cheap Milvus collections (no index, no rows): each resource has its own, so none conflict."""
    names = [f"f_{uuid.uuid4().hex[:10]}" for _ in range(RESOURCES)]
    client = milvus.client(timeout=60)
    try:
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
        for name in names:
            client.create_collection(name, schema=schema)
        # kept, not dropped: each drop leaves Milvus 2.3.5 a GC step that slows every later grant (security.md)
        yield names
    finally:
        client.close()


def _ready_count(kube: Kube, namespace: str) -> int:
    listed = cast(dict[str, Any], kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
    items = listed["items"]
    ready = [c for i in items for c in (i.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
    return sum(c["status"] == "True" for c in ready)


def _settled(operator: OperatorProcess) -> float:
    """The pass count once it held still for a few seconds."""
    last = [-1.0, time.monotonic()]

    def still() -> float | None:
        now, passes = time.monotonic(), operator.metric(PASSES)
        if passes != last[0]:
            last[0], last[1] = passes, now
            return None
        return passes if now - last[1] >= QUIET_SECONDS else None

    return wait_for(still, 120, "passes to settle", interval=0.5)


def _patch_status(kube: Kube, namespace: str, status: dict[str, Any]) -> None:
    kube.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, CONNECTIONS, "shared", {"status": status}
    )


def _with_ready(kube: Kube, namespace: str, ready: str) -> list[dict[str, Any]]:
    conditions = kube.get(namespace, "shared", CONNECTIONS)["status"]["conditions"]
    for condition in conditions:
        if condition["type"] == "Ready":
            condition["status"] = ready
            condition["reason"] = "Connected" if ready == "True" else "MilvusUnavailable"
    return [dict(c) for c in conditions]


def test_status_writes_on_a_connection_wake_none_of_its_collections(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    empty_collections: list[str],
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    # no timer pass in the test's minutes: every pass counted after the first ones is a wake-up
    operator = start_operator(MILVUSOPS_RESYNC_SECONDS="600", MILVUSOPS_FULL_OBSERVATION_SECONDS="600")
    kube.create_secret(namespace, "token", {"token": milvus.root_token})
    kube.create_connection(namespace, "shared", {"uri": milvus.uri, "credentialsSecretRef": {"name": "token"}})
    kube.wait_reason(namespace, "shared", "Connected", plural=CONNECTIONS)
    with ThreadPoolExecutor(8) as pool:
        specs = [
            {"collectionName": c, "state": "Released", "connectionRef": {"name": "shared"}} for c in empty_collections
        ]
        list(pool.map(lambda i, spec: kube.create(namespace, f"r{i}", spec), range(RESOURCES), specs))
    for index in range(FAILING):
        spec = {"collectionName": f"missing_{index}", "state": "Loaded", "connectionRef": {"name": "shared"}}
        kube.create(namespace, f"missing-{index}", spec)
    wait_for(lambda: _ready_count(kube, namespace) == RESOURCES, 600, f"{RESOURCES} Ready", interval=2)
    for index in range(FAILING):
        kube.wait_reason(namespace, f"missing-{index}", "CollectionNotFound")
    passes, reads = _settled(operator), operator.metric(READS)

    # status-only writes, as the operator's own check and heartbeat make them: same generation, same Ready
    for attempt in range(3):
        _patch_status(kube, namespace, {"lastError": f"status-only write {attempt}"})
    deadline = time.monotonic() + QUIET_SECONDS
    while time.monotonic() < deadline:
        assert operator.metric(PASSES) == passes, "a status-only write on the connection woke its collections"
        time.sleep(0.5)
    assert operator.metric(READS) == reads, "a status-only write made the operator re-read the connection"
    figures.record("connection flap: passes per status-only write (200 collections)", "0")

    # Ready lost: an in-sync collection has nothing to redo, and each one's own next pass would find out
    _patch_status(kube, namespace, {"conditions": _with_ready(kube, namespace, "False")})
    deadline = time.monotonic() + QUIET_SECONDS
    while time.monotonic() < deadline:
        assert operator.metric(PASSES) == passes, "a lost Ready woke collections"
        time.sleep(0.5)
    # Ready again: only the collections whose last pass failed look again, at once, each once
    _patch_status(kube, namespace, {"conditions": _with_ready(kube, namespace, "True")})
    wait_for(lambda: operator.metric(PASSES) - passes >= FAILING, 60, "the failing collections woken")
    flap_passes, flap_reads = _settled(operator) - passes, operator.metric(READS) - reads
    assert FAILING <= flap_passes <= 2 * FAILING, flap_passes  # twice if the operator's own check also flipped it
    assert _ready_count(kube, namespace) == RESOURCES
    flapped = f"{RESOURCES} in sync, {FAILING} failing"
    figures.record(f"connection flap: passes per NotReady->Ready flap ({flapped})", f"{flap_passes:.0f}")
    figures.record(f"connection flap: MilvusConnection+Secret GETs per flap ({flapped})", f"{flap_reads:.0f}")
