"""Item 10: two MilvusConnections to one Milvus are one identity; a deleted winner hands over to the loser."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer

pytestmark = pytest.mark.e2e

CONNECTIONS = "milvusconnections"
LOADS = "milvusops_load_release_calls_total"


def test_two_connections_to_one_server_conflict_and_the_winner_hands_over(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a", "b"])
    kube.create_secret(namespace, "token", {"token": milvus.root_token})
    for name in ("one", "two"):
        kube.create_connection(namespace, name, {"uri": milvus.uri, "credentialsSecretRef": {"name": "token"}})
    older = {"collectionName": collection, "state": "Loaded", "deletionPolicy": "Release"}
    kube.create(namespace, "older", {**older, "connectionRef": {"name": "one"}})
    kube.wait_reason(namespace, "older", "InSync", timeout=90)
    younger = {"collectionName": collection, "state": "Released", "partitions": [{"name": "a", "state": "Loaded"}]}
    kube.create(namespace, "younger", {**younger, "connectionRef": {"name": "two"}})

    ready = kube.wait_reason(namespace, "younger", "Conflict", timeout=60)
    assert f"{namespace}/older already manages collection default.{collection}" in ready["message"], ready
    assert kube.condition(namespace, "younger", "Stalled")["status"] == "True"
    assert set(load_states(milvus, collection).values()) == {"Loaded"}  # the older spec stands, no flip-flop

    calls = operator.metric(LOADS, method="load_partitions") + operator.metric(LOADS, method="load_collection")
    kube.delete(namespace, "older")
    wait_for(lambda: not kube.exists(namespace, "older"), 60, "older gone")
    # released what only the winner wanted; `a`, which the loser declares Loaded, was never released
    assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "Loaded", "b": "NotLoad"}
    kube.wait_reason(namespace, "younger", "InSync", timeout=60)
    assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "Loaded", "b": "NotLoad"}
    after = operator.metric(LOADS, method="load_partitions") + operator.metric(LOADS, method="load_collection")
    assert after == calls, "the loser had to load again what the winner released"
    left = [e.message for e in kube.events(namespace, "older") if e.reason == "Released"]
    assert any("left a of collection" in message for message in left), left
