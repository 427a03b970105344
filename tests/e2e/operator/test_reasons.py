"""Every Ready reason of SPEC §3, each produced by its real cause on the real Milvus."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from milvusops.core.capabilities import capabilities
from tests.e2e.health import gitops_verdicts
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusLiteServer, MilvusServer


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> OperatorProcess:
    """One operator for this module's tests, each in its own namespace; the ones that count calls start their own."""
    return shared_operator


def _assert_stalled(kube: Kube, namespace: str, name: str) -> None:
    assert kube.condition(namespace, name, "Stalled")["status"] == "True"
    assert kube.condition(namespace, name, "Reconciling")["status"] == "False"
    assert gitops_verdicts(kube, namespace, name) == ("Failed", "Degraded")


def test_collection_not_found(kube: Kube, namespace: str, operator: OperatorProcess) -> None:
    kube.create(namespace, "ghost", {"collectionName": "no_such_collection", "state": "Loaded"})
    ready = kube.wait_reason(namespace, "ghost", "CollectionNotFound")
    assert ready["status"] == "False"
    assert "no_such_collection" in ready["message"]
    _assert_stalled(kube, namespace, "ghost")
    assert kube.get(namespace, "ghost")["status"]["serverVersion"].startswith("v2.3.5")  # read before observing


def test_partition_not_found_still_manages_the_others(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    partitions = [{"name": "a", "state": "Loaded"}, {"name": "nope", "state": "Loaded"}]
    kube.create(namespace, "partial", {"collectionName": collection, "partitions": partitions})
    ready = kube.wait_reason(namespace, "partial", "PartitionNotFound")
    assert "nope" in ready["message"]
    _assert_stalled(kube, namespace, "partial")
    wait_for(lambda: load_states(milvus, collection)["a"] == "Loaded", 30, "partition a loaded")
    status_partitions = {p["name"]: p for p in kube.get(namespace, "partial")["status"]["partitions"]}
    assert status_partitions["nope"]["state"] == "NotExist"


def test_index_not_found_clears_once_the_index_exists(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"], index=False)
    kube.create(namespace, "unindexed", {"collectionName": collection, "state": "Loaded"})
    ready = kube.wait_reason(namespace, "unindexed", "IndexNotFound")
    assert "index" in ready["message"]
    _assert_stalled(kube, namespace, "unindexed")
    milvus_client = milvus.client()
    try:
        params = MilvusClient.prepare_index_params()
        params.add_index("vector", index_type="FLAT", metric_type="L2")
        milvus_client.create_index(collection, params)
    finally:
        milvus_client.close()
    # no spec change: the resync notices that loading can now succeed
    kube.wait_reason(namespace, "unindexed", "InSync", timeout=60)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}
    assert gitops_verdicts(kube, namespace, "unindexed") == ("Current", "Healthy")


def test_insufficient_resources_for_replicas(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "greedy", {"collectionName": collection, "state": "Loaded", "load": {"replicas": 3}})
    ready = kube.wait_reason(namespace, "greedy", "InsufficientResources")
    assert "nodes not enough" in ready["message"]
    _assert_stalled(kube, namespace, "greedy")


def test_replica_change_on_loaded_partitions_is_invalid(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a", "b"])
    kube.create(namespace, "replicas", {"collectionName": collection, "partitions": [{"name": "a", "state": "Loaded"}]})
    kube.wait_reason(namespace, "replicas", "InSync", timeout=90)
    kube.patch(namespace, "replicas", {"spec": {"load": {"replicas": 2}}})
    ready = kube.wait_reason(namespace, "replicas", "InvalidLoadOptions")
    assert "release them first" in ready["message"]
    _assert_stalled(kube, namespace, "replicas")
    assert load_states(milvus, collection)["a"] == "Loaded"  # nothing was released to "fix" it


def test_conflict_oldest_wins_and_the_next_takes_over(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "first", {"collectionName": collection, "state": "Loaded"})
    kube.wait_reason(namespace, "first", "InSync", timeout=90)
    kube.create(namespace, "second", {"collectionName": collection, "state": "Released"})
    ready = kube.wait_reason(namespace, "second", "Conflict")
    assert f"{namespace}/first" in ready["message"]
    _assert_stalled(kube, namespace, "second")
    assert set(load_states(milvus, collection).values()) == {"Loaded"}  # the loser changed nothing

    # an observer of the same collection takes no part in the conflict
    kube.create(namespace, "onlooker", {"collectionName": collection, "managementPolicy": "Observe"})
    kube.wait_reason(namespace, "onlooker", "Observing")
    kube.delete(namespace, "first")
    kube.wait_reason(namespace, "second", "InSync", timeout=60)
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}


def test_paused_makes_no_calls_until_resumed(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator()  # its own: no other test's calls in its metrics
    collection = new_collection(milvus, ["a"])
    kube.create(
        namespace,
        "sleepy",
        {"collectionName": collection, "state": "Loaded"},
        annotations={"milvusops.dev/paused": "true"},
    )
    ready = kube.wait_reason(namespace, "sleepy", "Paused")
    assert ready["status"] == "False"
    assert kube.condition(namespace, "sleepy", "Stalled")["status"] == "False"
    assert operator.metric("milvusops_milvus_call_duration_seconds_count") == 0
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}
    # Flux reads Ready=False as not done yet; Argo CD has a state for exactly this
    assert gitops_verdicts(kube, namespace, "sleepy") == ("InProgress", "Suspended")

    kube.patch(namespace, "sleepy", {"metadata": {"annotations": {"milvusops.dev/paused": None}}})
    kube.wait_reason(namespace, "sleepy", "InSync", timeout=60)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}


def test_observe_reports_without_acting(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator()  # its own: no other test's calls in its metrics
    collection = new_collection(milvus, ["a", "b"])
    kube.create(namespace, "watcher", {"collectionName": collection, "state": "Loaded", "managementPolicy": "Observe"})
    ready = kube.wait_reason(namespace, "watcher", "Observing")
    assert ready["status"] == "True"
    assert "0/3" in ready["message"]
    milvus_client = milvus.client()
    try:
        milvus_client.load_partitions(collection, ["b"])
    finally:
        milvus_client.close()
    wait_for(lambda: kube.get(namespace, "watcher")["status"].get("loaded") == "1/3", 30, "status follows Milvus")
    assert operator.metric("milvusops_load_release_calls_total") == 0
    assert load_states(milvus, collection)["a"] == "NotLoad"
    assert gitops_verdicts(kube, namespace, "watcher") == ("Current", "Healthy")


def test_partition_level_load_on_milvus_lite_is_unsupported(
    kube: Kube, namespace: str, milvus_lite: MilvusLiteServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus_lite, ["p"])  # Milvus Lite loads an indexed collection at once
    kube.create_connection(namespace, "lite", {"uri": milvus_lite.uri})
    connection = {"name": "lite"}
    kube.create(namespace, "whole", {"collectionName": collection, "state": "Loaded", "connectionRef": connection})
    kube.wait_reason(namespace, "whole", "InSync")  # collection level works on Lite
    kube.delete(namespace, "whole")
    wait_for(lambda: not kube.exists(namespace, "whole"), 30, "first resource gone")
    # _default Released, p Loaded: a partition-level release, which Lite cannot do
    listed = [{"name": "p", "state": "Loaded"}]
    spec = {"collectionName": collection, "state": "Released", "partitions": listed, "connectionRef": connection}
    kube.create(namespace, "split", spec)
    ready = kube.wait_reason(namespace, "split", "Unsupported")
    assert "partition-level" in ready["message"] or "does not implement" in ready["message"]
    _assert_stalled(kube, namespace, "split")


# not strict: it passes on a fresh Milvus, and fails after the rest of the suite has run on it
def test_permission_denied_names_the_privilege_and_clears_once_granted(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    user, password = f"u{secrets.token_hex(4)}", secrets.token_hex(12)
    root = milvus.client()
    try:
        root.create_user(user, password)  # no role: Milvus lets it connect but not load
    finally:
        root.close()
    kube.create_secret(namespace, "weak", {"token": f"{user}:{password}"})
    kube.create_connection(namespace, "weak", {"uri": milvus.uri, "credentialsSecretRef": {"name": "weak"}})
    kube.create(
        namespace, "denied", {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "weak"}}
    )
    ready = kube.wait_reason(namespace, "denied", "PermissionDenied")
    assert "PrivilegeLoad" in ready["message"] and user in ready["message"], ready
    assert "cannot reach" not in ready["message"] and "credentials" not in ready["message"], ready
    _assert_stalled(kube, namespace, "denied")
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}

    root = milvus.client()
    try:
        root.grant_role(user, "admin")
    finally:
        root.close()
    # no spec change: a later pass finds the grant in effect (it can take seconds to spread)
    kube.wait_reason(namespace, "denied", "InSync", timeout=90)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}


def _partition_key_collection(milvus: MilvusServer) -> tuple[str, list[str]]:
    """A real collection whose partitions Milvus makes from a partition key (since 2.2.9)."""
    name = f"k_{secrets.token_hex(5)}"
    milvus_client = milvus.client()
    try:
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("tenant", DataType.INT64, is_partition_key=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
        milvus_client.create_collection(name, schema=schema, num_partitions=2)
        milvus_client.insert(name, [{"tenant": i % 5, "vector": [float(i % 7)] * 8} for i in range(100)])
        params = MilvusClient.prepare_index_params()
        params.add_index("vector", index_type="FLAT", metric_type="L2")
        milvus_client.create_index(name, params)
        return name, list(milvus_client.list_partitions(name))
    finally:
        milvus_client.close()


def test_partition_key_collection_follows_one_state(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection, partitions = _partition_key_collection(milvus)
    assert len(partitions) == 2
    mixed = [{"name": partitions[0], "state": "Loaded"}]
    kube.create(namespace, "keyed", {"collectionName": collection, "partitions": mixed})
    ready = kube.wait_reason(namespace, "keyed", "PartitionKeyCollection")
    assert "'tenant'" in ready["message"] and "only as a whole" in ready["message"]
    _assert_stalled(kube, namespace, "keyed")
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}  # detected before any call
    assert kube.get(namespace, "keyed")["status"]["serverVersion"].startswith("v2.3.5")

    # what the operator spared itself: this server's refusal, with the code the capability table gives 2.3
    milvus_client = milvus.client()
    try:
        try:
            milvus_client.load_partitions(collection, [partitions[0]])
            raise AssertionError("Milvus loaded a partition of a partition-key collection")
        except MilvusException as exc:
            assert "partition key mode" in exc.message
            assert exc.code == capabilities("v2.3.5").partition_key_refusal_code
    finally:
        milvus_client.close()

    # the same state for every partition: loaded as a whole
    kube.patch(namespace, "keyed", {"spec": {"state": "Loaded", "partitions": None}})
    kube.wait_reason(namespace, "keyed", "InSync", timeout=90)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}
