"""Replicas, resource groups and query-node loss on a real Milvus cluster (two query nodes, a third on demand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient, connections, utility

from tests.conftest import Figures
from tests.e2e.health import gitops_verdicts
from tests.e2e.helpers import Kube, OperatorProcess, big_collection, load_states, new_collection, wait_for
from tests.testenv.milvus_cluster import SESSION_TTL, MilvusCluster

DEFAULT_GROUP = "__default_resource_group"
BIG_ROWS = 250_000  # loads for seconds: room to kill a query node while it does


@pytest.fixture
def cluster_operator(request: pytest.FixtureRequest, module_cluster_operator: OperatorProcess) -> OperatorProcess:
    """One operator for the module: each test removes what it made and counts calls from its own start."""
    request.node.operators = [module_cluster_operator]  # its log in a failed test's report
    return module_cluster_operator


@pytest.fixture
def client(milvus_cluster: MilvusCluster) -> Iterator[MilvusClient]:
    milvus_client = milvus_cluster.client(timeout=30)
    yield milvus_client
    milvus_client.close()


def _replica_nodes(client: MilvusClient, collection: str) -> list[tuple[str, tuple[int, ...]]]:
    """(resource group, query node ids) of each replica, as describe_replica reports them."""
    return [(replica.resource_group, tuple(replica.group_nodes)) for replica in client.describe_replica(collection)]


def _available_nodes(client: MilvusClient, group: str = DEFAULT_GROUP) -> int:
    return int(client.describe_resource_group(group).num_available_node)


def _transfer_node(cluster: MilvusCluster, source: str, target: str) -> None:
    """Move one query node between resource groups (MilvusClient of pymilvus 3.0.2 has no transfer_node)."""
    alias = f"transfer-{uuid.uuid4().hex[:8]}"
    connections.connect(alias, uri=cluster.uri, token=cluster.root_token)
    try:
        utility.transfer_node(source, target, 1, using=alias)
    finally:
        connections.disconnect(alias)


def _create(kube: Kube, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """Released again when deleted, so a test leaves the shared cluster's query nodes as it found them."""
    kube.create(namespace, name, {**spec, "deletionPolicy": "Release"})


def _remove(kube: Kube, namespace: str, *names: str) -> None:
    for name in names:
        kube.delete(namespace, name)
    wait_for(lambda: not any(kube.exists(namespace, name) for name in names), 60, f"{names} deleted (released)")


def _calls(operator: OperatorProcess) -> float:
    return operator.metric("milvusops_load_release_calls_total")


def test_two_replicas_load_on_different_query_nodes(
    kube: Kube, namespace: str, milvus_cluster: MilvusCluster, client: MilvusClient, cluster_operator: OperatorProcess
) -> None:
    collection = new_collection(milvus_cluster, ["a", "b"])
    _create(kube, namespace, "twice", {"collectionName": collection, "state": "Loaded", "load": {"replicas": 2}})
    kube.wait_reason(namespace, "twice", "InSync", timeout=60)
    replicas = _replica_nodes(client, collection)
    assert len(replicas) == 2
    nodes = [node for _, group in replicas for node in group]
    assert len(nodes) == len(set(nodes)) == 2, f"each replica on its own query node: {replicas}"
    status = kube.get(namespace, "twice")["status"]
    assert status["replicas"] == {"count": 2, "resourceGroups": [DEFAULT_GROUP]}
    assert kube.condition(namespace, "twice", "Degraded")["status"] == "False"
    _remove(kube, namespace, "twice")


def test_three_replicas_on_two_nodes_wait_for_a_third_node(
    kube: Kube,
    namespace: str,
    milvus_cluster: MilvusCluster,
    client: MilvusClient,
    cluster_operator: OperatorProcess,
    figures: Figures,
) -> None:
    assert _available_nodes(client) == 2
    collection = new_collection(milvus_cluster, ["a"])
    _create(kube, namespace, "thrice", {"collectionName": collection, "state": "Loaded", "load": {"replicas": 3}})
    ready = kube.wait_reason(namespace, "thrice", "InsufficientResources", timeout=60)
    assert "nodes not enough" in ready["message"]  # Milvus's own words
    assert kube.condition(namespace, "thrice", "Stalled")["status"] == "True"
    third = milvus_cluster.add_query_node()
    try:
        began = time.monotonic()
        # nobody touches the resource: the resync retries the load once Milvus has the node
        kube.wait_reason(namespace, "thrice", "InSync", timeout=90)
        figures.record("replicas: 3 InSync after the third query node came up", f"{time.monotonic() - began:.1f} s")
        assert len(_replica_nodes(client, collection)) == 3
    finally:
        _remove(kube, namespace, "thrice")
        milvus_cluster.kill_role(third)
        # the next tests expect two nodes: wait until Milvus has dropped the killed one
        wait_for(lambda: _available_nodes(client) == 2, SESSION_TTL * 4, "the third node gone from Milvus")


def test_resource_group_holds_the_replica(
    kube: Kube, namespace: str, milvus_cluster: MilvusCluster, client: MilvusClient, cluster_operator: OperatorProcess
) -> None:
    group = f"rg_{namespace.replace('-', '_')}"
    client.create_resource_group(group)
    _transfer_node(milvus_cluster, DEFAULT_GROUP, group)
    try:
        wait_for(lambda: _available_nodes(client, group) == 1, 30, "one node in the group")
        collection = new_collection(milvus_cluster, ["a"])
        spec = {"collectionName": collection, "state": "Loaded", "load": {"resourceGroups": [group]}}
        _create(kube, namespace, "grouped", spec)
        kube.wait_reason(namespace, "grouped", "InSync", timeout=60)
        [(replica_group, nodes)] = _replica_nodes(client, collection)
        assert replica_group == group and len(nodes) == 1
        assert kube.get(namespace, "grouped")["status"]["replicas"] == {"count": 1, "resourceGroups": [group]}

        unknown = {"collectionName": collection, "state": "Loaded", "load": {"resourceGroups": ["no_such_group"]}}
        other = new_collection(milvus_cluster, ["a"])
        kube.create(namespace, "lost", {**unknown, "collectionName": other})
        ready = kube.wait_reason(namespace, "lost", "InvalidLoadOptions", timeout=60)
        assert "no_such_group" in ready["message"]
        _remove(kube, namespace, "lost")  # the module's operator would retry it in every later test
    finally:
        _remove(kube, namespace, "grouped")
        _transfer_node(milvus_cluster, group, DEFAULT_GROUP)
        wait_for(lambda: _available_nodes(client) == 2, 30, "the node back in the default group")
        client.drop_resource_group(group)


def test_adopting_step_by_step_as_docs_adopt_md_says(
    kube: Kube,
    namespace: str,
    milvus_cluster: MilvusCluster,
    client: MilvusClient,
    cluster_operator: OperatorProcess,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """Observe, plan, Manage on a live collection (2 replicas, partitions in mixed states) under a search loop:
    no call until Manage, then exactly what the spec names; replicas still 2; not one search fails.

    Up to v0.1 `load.replicas` defaulted to 1: the load of `wanted` was refused (InvalidLoadOptions: Milvus
    keeps one replica number per collection) and the message said to release the serving partition first."""
    collection = new_collection(milvus_cluster, ["serving", "wanted", "cold"])
    client.load_partitions(collection, ["serving"], replica_number=2)
    wait_for(lambda: load_states(milvus_cluster, collection)["serving"] == "Loaded", 60, "serving loaded by hand")
    searches = _SearchLoop(milvus_cluster, collection, "serving")
    with searches:
        calls = _calls(cluster_operator)
        spec = {"collectionName": collection, "partitions": [{"name": "wanted", "state": "Loaded"}]}
        _create(kube, namespace, "adopted", {**spec, "managementPolicy": "Observe"})
        kube.wait_reason(namespace, "adopted", "Observing", timeout=60)
        assert _calls(cluster_operator) == calls, "Observe sends nothing"

        manifest = tmp_path / "adopted.yaml"
        body = {"apiVersion": "milvusops.dev/v1alpha1", "kind": "MilvusCollection"}
        manifest.write_text(json.dumps({**body, "metadata": {"name": "adopted", "namespace": namespace}, "spec": spec}))
        argv = ["plan", str(manifest), "-o", "json", "--milvus-uri", milvus_cluster.uri, "--token"]
        preview = subprocess.run(
            [sys.executable, "-m", "milvusops", *argv, milvus_cluster.root_token, "--fail-on-destructive"],
            capture_output=True,
            text=True,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("MILVUSOPS_")},
            timeout=120,
        )
        assert preview.returncode == 2, preview.stdout + preview.stderr  # changes, none destructive
        [planned] = json.loads(preview.stdout)["resources"]
        assert (planned["calls"], planned["destructive"]) == (["load_partitions(wanted)"], [])

        kube.patch(namespace, "adopted", {"spec": {"managementPolicy": "Manage"}})
        kube.wait_reason(namespace, "adopted", "InSync", timeout=90)
        assert _calls(cluster_operator) == calls + 1, "exactly the one load the plan showed"
    states = load_states(milvus_cluster, collection)
    assert states == {"_default": "NotLoad", "serving": "Loaded", "wanted": "Loaded", "cold": "NotLoad"}
    assert len(_replica_nodes(client, collection)) == 2
    assert searches.done > 0 and searches.failed == [], searches.failed[:3]
    figures.record("adoption under a search loop: searches, failed", f"{searches.done}, {len(searches.failed)}")
    _remove(kube, namespace, "adopted")


class _SearchLoop:
    """Searches one partition as fast as it answers, in a thread, until the block ends; counts and keeps failures."""

    def __init__(self, cluster: MilvusCluster, collection: str, partition: str) -> None:
        self.client = cluster.client(timeout=10)
        self.collection, self.partition = collection, partition
        self.done, self.failed = 0, list[str]()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="searches", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.client.search(self.collection, data=[[0.0] * 8], limit=1, partition_names=[self.partition])
                self.done += 1
            except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
                self.failed.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> _SearchLoop:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.client.close()


def test_replica_change_on_loaded_partitions_is_refused_with_how_to_apply_it(
    kube: Kube, namespace: str, milvus_cluster: MilvusCluster, client: MilvusClient, cluster_operator: OperatorProcess
) -> None:
    collection = new_collection(milvus_cluster, ["a", "b"])
    spec = {"collectionName": collection, "partitions": [{"name": "a", "state": "Loaded"}]}
    _create(kube, namespace, "grow", spec)
    kube.wait_reason(namespace, "grow", "InSync", timeout=60)
    calls = _calls(cluster_operator)
    kube.patch(namespace, "grow", {"spec": {"load": {"replicas": 2}}})
    ready = kube.wait_reason(namespace, "grow", "InvalidLoadOptions", timeout=60)
    assert "release them first" in ready["message"]
    assert len(_replica_nodes(client, collection)) == 1
    assert _calls(cluster_operator) == calls, "a refused change sends nothing to Milvus"
    kube.patch(namespace, "grow", {"spec": {"load": {"replicas": 1}}})
    _remove(kube, namespace, "grow")


def _timeline(
    kube: Kube,
    namespace: str,
    name: str,
    client: MilvusClient,
    collection: str,
    until: Callable[[], bool],
    seconds: float,
) -> list[dict[str, Any]]:
    """What Milvus and the resource's status said, once a second, until `until()` holds or time is up."""
    samples: list[dict[str, Any]] = []
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        sample: dict[str, Any] = {"t": round(time.monotonic() - began, 1)}
        try:
            sample["milvus"] = client.get_load_state(collection, timeout=5)["state"].name
        except Exception as exc:  # noqa: BLE001 - what Milvus answers is the record, errors included
            sample["milvus"] = f"error: {exc}"
        try:
            sample["replicas"] = len(client.describe_replica(collection, timeout=5))
        except Exception as exc:  # noqa: BLE001
            sample["replicas"] = f"error: {getattr(exc, 'code', '')}"
        status = kube.get(namespace, name).get("status", {})
        conditions = {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}
        sample["ready"], sample["degraded"] = conditions.get("Ready"), conditions.get("Degraded")
        samples.append(sample)
        if until():
            break
        time.sleep(1)
    return samples


def test_query_node_killed_under_a_loaded_two_replica_collection(
    kube: Kube,
    namespace: str,
    milvus_cluster: MilvusCluster,
    client: MilvusClient,
    cluster_operator: OperatorProcess,
    figures: Figures,
) -> None:
    collection = new_collection(milvus_cluster, ["a"])
    _create(kube, namespace, "survivor", {"collectionName": collection, "state": "Loaded", "load": {"replicas": 2}})
    kube.wait_reason(namespace, "survivor", "InSync", timeout=60)
    began = time.monotonic()
    _confirming_without_replicas(cluster_operator, timeout=45)  # the loss must show all the same
    figures.record("node killed: waited for passes without replicas", f"{time.monotonic() - began:.1f} s")
    calls = _calls(cluster_operator)
    victim = milvus_cluster.query_nodes()[0]
    milvus_cluster.kill_role(victim)
    try:
        _lose_a_node(kube, namespace, client, collection, cluster_operator, calls, figures)
    except BaseException:
        milvus_cluster.add_query_node()  # the next test needs two query nodes, whatever happened here
        raise

    began = time.monotonic()
    milvus_cluster.add_query_node()

    wait_for(lambda: not _degraded(kube, namespace), 90, "Degraded cleared after a new query node joined")
    figures.record("node replaced: Degraded cleared after", f"{time.monotonic() - began:.1f} s")
    assert kube.get(namespace, "survivor")["status"]["replicas"]["count"] == 2
    assert _calls(cluster_operator) == calls
    assert load_states(milvus_cluster, collection) == {"_default": "Loaded", "a": "Loaded"}
    assert gitops_verdicts(kube, namespace, "survivor") == ("Current", "Healthy")
    _remove(kube, namespace, "survivor")


def _confirming_without_replicas(operator: OperatorProcess, timeout: float) -> None:
    """Until a steady pass asks get_load_state but not the replicas, and the next second asks no replicas either
    (the query nodes stood for the settle time): from then on only a change of them makes passes ask again."""
    metric = partial(operator.metric, "milvusops_milvus_call_duration_seconds_count")
    samples = [(metric(method="get_load_state"), metric(method="get_replicas"))]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)  # one sample a second: a full observation's replicas follow its states within milliseconds
        samples.append((metric(method="get_load_state"), metric(method="get_replicas")))
        if len(samples) < 3:
            continue
        (states, replicas), (asked, then), (_, now) = samples[-3:]
        if asked > states and then == replicas and now == then:
            return
    raise AssertionError(f"every steady pass still asked the replicas after {timeout} s: {samples}")


def _degraded(kube: Kube, namespace: str) -> bool:
    return kube.condition(namespace, "survivor", "Degraded").get("status") == "True"


LOST_NODE_WORDS = ("replica not available", "node not found", "failed to get shard leader")


def _lose_a_node(
    kube: Kube,
    namespace: str,
    client: MilvusClient,
    collection: str,
    cluster_operator: OperatorProcess,
    calls: float,
    figures: Figures,
) -> None:
    """After the kill: Degraded with Milvus's words, Ready never flapping, nothing sent to Milvus."""
    degraded = partial(_degraded, kube, namespace)
    lost = _timeline(kube, namespace, "survivor", client, collection, degraded, SESSION_TTL * 6)
    figures.record("node killed: Milvus and status over time", repr(lost))
    assert _degraded(kube, namespace), f"status never said Degraded: {lost}"
    condition = kube.condition(namespace, "survivor", "Degraded")
    assert condition["reason"] == "ReplicaUnavailable"
    # Milvus's own words, which vary while it notices the loss: 901 "node not found", "failed to get shard
    # leader for shard ...", then 401 "replica not available" (each seen first in a run of this test)
    assert any(words in condition["message"] for words in LOST_NODE_WORDS), condition
    assert gitops_verdicts(kube, namespace, "survivor") == ("Current", "Degraded")
    assert all(sample["ready"] == ("True", "InSync") for sample in lost), f"Ready flapped: {lost}"
    # a few resyncs while degraded: still no flapping and nothing sent to Milvus
    held = _timeline(kube, namespace, "survivor", client, collection, lambda: False, 12)
    assert all(sample["ready"] == ("True", "InSync") for sample in held), f"Ready flapped: {held}"
    assert _calls(cluster_operator) == calls, "no load or release while a replica is down"


def test_query_node_killed_during_a_two_replica_load(
    kube: Kube,
    namespace: str,
    milvus_cluster: MilvusCluster,
    client: MilvusClient,
    cluster_operator: OperatorProcess,
    figures: Figures,
) -> None:
    collection = big_collection(milvus_cluster, BIG_ROWS)
    calls = _calls(cluster_operator)
    _create(kube, namespace, "interrupted", {"collectionName": collection, "state": "Loaded", "load": {"replicas": 2}})
    wait_for(lambda: _calls(cluster_operator) >= calls + 1, 30, "the load sent")
    victim = milvus_cluster.query_nodes()[0]
    milvus_cluster.kill_role(victim)
    killed_at = time.monotonic()

    def in_sync() -> bool:
        return kube.condition(namespace, "interrupted", "Ready").get("reason") == "InSync"

    lost = _timeline(kube, namespace, "interrupted", client, collection, in_sync, SESSION_TTL * 3)
    figures.record("node killed during a load: Milvus and status over time", repr(lost))
    during = _calls(cluster_operator) - calls
    milvus_cluster.add_query_node()
    kube.wait_reason(namespace, "interrupted", "InSync", timeout=120)
    figures.record("node killed during a load: InSync after", f"{time.monotonic() - killed_at:.1f} s")
    figures.record(
        "node killed during a load: load calls",
        f"{_calls(cluster_operator) - calls:.0f} ({during:.0f} before the new node)",
    )
    # a failed load is retried with backoff, never in a storm
    assert _calls(cluster_operator) - calls <= 4
    wait_for(lambda: kube.condition(namespace, "interrupted", "Degraded").get("status") == "False", 60, "not Degraded")
    assert len(_replica_nodes(client, collection)) == 2
    _remove(kube, namespace, "interrupted")
