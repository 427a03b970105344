"""Parsing bodies at the edge, the JSON merge patch, and the oldest-wins conflict rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from milvusops.core.conflicts import claims_collection, conflict_key, conflict_winner
from milvusops.core.model import (
    CollectionSpec,
    ConnectionSpec,
    DeletionPolicy,
    Desired,
    LoadOptions,
    LoadPriority,
    ManagementPolicy,
    PartitionSpec,
    ResourceRef,
    SecretKeyRef,
)
from milvusops.core.status import merge_patch

# --- CollectionSpec -------------------------------------------------------------------------------


def test_collection_spec_defaults() -> None:
    spec = CollectionSpec.from_body({"metadata": {"name": "products"}})
    assert spec == CollectionSpec(
        collection_name="products",
        database="default",
        connection_name=None,
        state=None,
        partitions=(),
        load=LoadOptions(replicas=None, resource_groups=(), load_fields=(), skip_load_dynamic_field=False),
        management_policy=ManagementPolicy.MANAGE,
        deletion_policy=DeletionPolicy.RETAIN,
    )


def test_collection_spec_full() -> None:
    body = {
        "metadata": {"name": "products-k8s"},
        "spec": {
            "collectionName": "products",
            "database": "shop",
            "connectionRef": {"name": "main"},
            "state": "Loaded",
            "partitions": [{"name": "cold", "state": "Released"}],
            "load": {
                "replicas": 2,
                "resourceGroups": ["rg1"],
                "loadFields": ["id", "vector"],
                "skipLoadDynamicField": True,
                "priority": "Low",
            },
            "managementPolicy": "Observe",
            "deletionPolicy": "Release",
            "unknownField": "ignored",
        },
    }
    spec = CollectionSpec.from_body(body)
    assert spec.collection_name == "products"
    assert spec.database == "shop"
    assert spec.connection_name == "main"
    assert spec.state == Desired.LOADED
    assert spec.partitions == (PartitionSpec(name="cold", state=Desired.RELEASED),)
    assert spec.load == LoadOptions(
        replicas=2,
        resource_groups=("rg1",),
        load_fields=("id", "vector"),
        skip_load_dynamic_field=True,
        priority=LoadPriority.LOW,
    )
    assert spec.management_policy == ManagementPolicy.OBSERVE
    assert spec.deletion_policy == DeletionPolicy.RELEASE
    assert spec.named_partitions == ("cold",)


@pytest.mark.parametrize("ref", [None, {}])
def test_collection_spec_empty_connection_ref_is_default_connection(ref: Any) -> None:
    spec = CollectionSpec.from_body({"metadata": {"name": "p"}, "spec": {"connectionRef": ref}})
    assert spec.connection_name is None


def test_from_body_does_not_mutate_the_body() -> None:
    body: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"connectionRef": {"name": "main"}}}
    CollectionSpec.from_body(body)
    assert body == {"metadata": {"name": "p"}, "spec": {"connectionRef": {"name": "main"}}}


@pytest.mark.parametrize(
    ("state", "partition", "expected"),
    [
        ("Released", "hot", Desired.LOADED),
        ("Released", "cold", Desired.RELEASED),
        ("Released", "_default", Desired.RELEASED),
        ("Loaded", "hot", Desired.LOADED),
        ("Loaded", "cold", Desired.RELEASED),
        ("Loaded", "_default", Desired.LOADED),
    ],
)
def test_desired_for(state: str, partition: str, expected: Desired) -> None:
    body = {
        "metadata": {"name": "p"},
        "spec": {
            "state": state,
            "partitions": [{"name": "hot", "state": "Loaded"}, {"name": "cold", "state": "Released"}],
        },
    }
    assert CollectionSpec.from_body(body).desired_for(partition) == expected


# --- ResourceRef ------------------------------------------------------------------------------------


def resource_body(annotations: Mapping[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": "products", "annotations": annotations, **meta}}


def test_resource_ref_fields() -> None:
    body = resource_body(None, uid="u-1", generation=7, creationTimestamp="2026-11-25T16:00:00Z")
    assert ResourceRef.from_body(body) == ResourceRef(
        namespace="shop", name="products", uid="u-1", generation=7, created="2026-11-25T16:00:00Z", paused=False
    )


def test_resource_ref_defaults() -> None:
    ref = ResourceRef.from_body(resource_body())
    assert (ref.uid, ref.generation, ref.created, ref.paused) == ("", 0, "", False)


@pytest.mark.parametrize(
    ("value", "paused"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("yes", False), ("1", False), ("", False)],
)
def test_paused_annotation(value: str, paused: bool) -> None:
    assert ResourceRef.from_body(resource_body({"milvusops.dev/paused": value})).paused is paused


def test_other_annotations_do_not_pause() -> None:
    annotations = {"kopf.dev/paused": "true", "paused": "true", "milvus.io/paused": "true"}
    assert ResourceRef.from_body(resource_body(annotations)).paused is False


# --- ConnectionSpec -----------------------------------------------------------------------------------


def test_connection_spec_default_keys() -> None:
    spec = ConnectionSpec.from_body(
        {
            "spec": {
                "uri": "https://milvus:19530",
                "credentialsSecretRef": {"name": "creds"},
                "tls": {"caSecretRef": {"name": "ca"}, "serverName": "milvus.local"},
            }
        }
    )
    assert spec.credentials_secret_ref == SecretKeyRef(name="creds", key="token")
    assert spec.tls is not None
    assert spec.tls.ca_secret_ref == SecretKeyRef(name="ca", key="ca.crt")
    assert spec.tls.server_name == "milvus.local"
    assert spec.timeout_seconds == 10.0


def test_connection_spec_explicit_keys_win() -> None:
    spec = ConnectionSpec.from_body(
        {
            "spec": {
                "uri": "https://milvus:19530",
                "credentialsSecretRef": {"name": "creds", "key": "apiKey"},
                "tls": {"caSecretRef": {"name": "ca", "key": "root.pem"}},
                "timeoutSeconds": 3,
            }
        }
    )
    assert spec.credentials_secret_ref == SecretKeyRef(name="creds", key="apiKey")
    assert spec.tls is not None and spec.tls.ca_secret_ref == SecretKeyRef(name="ca", key="root.pem")
    assert spec.timeout_seconds == 3.0


def test_connection_spec_minimal() -> None:
    spec = ConnectionSpec.from_body({"spec": {"uri": "http://milvus:19530", "tls": {"serverName": "m"}}})
    assert spec.credentials_secret_ref is None
    assert spec.tls is not None and spec.tls.ca_secret_ref is None


# --- merge_patch ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "new", "patch"),
    [
        pytest.param({"a": 1}, {"a": 1}, {}, id="unchanged"),
        pytest.param({"a": 1, "b": 2}, {"a": 1, "b": 3}, {"b": 3}, id="changed-scalar-only"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, {"b": None}, id="removed-key-null"),
        pytest.param({}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="added"),
        pytest.param(
            {"c": {"state": "Loaded", "progress": 100, "name": "x"}},
            {"c": {"state": "Loading", "name": "x"}},
            {"c": {"state": "Loading", "progress": None}},
            id="nested",
        ),
        pytest.param({"c": {"x": {"y": 1, "z": 2}}}, {"c": {"x": {"y": 1, "z": 3}}}, {"c": {"x": {"z": 3}}}, id="deep"),
        pytest.param({"c": {"x": 1}, "d": 1}, {"c": {"x": 1}, "d": 2}, {"d": 2}, id="unchanged-nested-omitted"),
        pytest.param(
            {"l": [{"name": "a", "state": "NotLoad"}, {"name": "b", "state": "NotLoad"}]},
            {"l": [{"name": "a", "state": "Loaded"}, {"name": "b", "state": "NotLoad"}]},
            {"l": [{"name": "a", "state": "Loaded"}, {"name": "b", "state": "NotLoad"}]},
            id="list-replaced-whole",
        ),
        pytest.param({"l": [1, 2]}, {"l": [1, 2]}, {}, id="same-list-omitted"),
        pytest.param({"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="scalar-to-dict"),
        pytest.param({"a": {"b": 1}}, {"a": 1}, {"a": 1}, id="dict-to-scalar"),
    ],
)
def test_merge_patch(previous: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]) -> None:
    assert merge_patch(previous, new) == patch


def apply_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, to check the patch really turns previous into new."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            old = out.get(key)
            out[key] = apply_merge_patch(old if isinstance(old, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def test_merge_patch_round_trip() -> None:
    previous = {
        "observedGeneration": 3,
        "collection": {"name": "p", "state": "Loading", "progress": 25},
        "partitions": [{"name": "a", "state": "Loading", "progress": 25}],
        "conditions": [{"type": "Ready", "status": "False"}],
        "lastSyncTime": "t0",
    }
    new = {
        "observedGeneration": 4,
        "collection": {"name": "p", "state": "Loaded", "progress": 100},
        "partitions": [{"name": "a", "state": "Loaded", "progress": 100}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "lastSyncTime": "t1",
    }
    assert apply_merge_patch(previous, merge_patch(previous, new)) == new


# --- conflict_winner ------------------------------------------------------------------------------------


def collection_body(namespace: str, name: str, created: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "creationTimestamp": created},
        "spec": {"collectionName": "products", **spec},
    }


def index_of(*bodies: Mapping[str, Any]) -> dict[Any, list[tuple[str, str, str]]]:
    """What the collection_owners Kopf index holds: key -> every (created, namespace, name)."""
    owners: dict[Any, list[tuple[str, str, str]]] = {}
    for body in bodies:
        meta = body["metadata"]
        owners.setdefault(conflict_key(body), []).append((meta["creationTimestamp"], meta["namespace"], meta["name"]))
    return owners


OLD = collection_body("team-a", "products", "2026-01-01T00:00:00Z")
NEW = collection_body("team-b", "products", "2026-06-01T00:00:00Z")


def test_lone_resource_wins() -> None:
    assert conflict_winner(OLD, index_of(OLD)) is None
    assert conflict_winner(OLD, {}) is None  # index not yet filled with itself


def test_oldest_wins() -> None:
    owners = index_of(OLD, NEW)
    assert conflict_winner(OLD, owners) is None
    assert conflict_winner(NEW, owners) == "team-a/products"


def test_tie_broken_by_namespace_then_name() -> None:
    same = "2026-01-01T00:00:00Z"
    a_x = collection_body("a", "x", same)
    a_y = collection_body("a", "y", same)
    b_a = collection_body("b", "a", same)
    owners = index_of(b_a, a_y, a_x)
    assert conflict_winner(a_x, owners) is None
    assert conflict_winner(a_y, owners) == "a/x"
    assert conflict_winner(b_a, owners) == "a/x"


def test_different_collection_database_or_connection_do_not_conflict() -> None:
    other_collection = collection_body("team-b", "products", "2026-06-01T00:00:00Z", collectionName="orders")
    other_database = collection_body("team-b", "products", "2026-06-01T00:00:00Z", database="shop")
    other_connection = collection_body("team-b", "products", "2026-06-01T00:00:00Z", connectionRef={"name": "main"})
    for body in (other_collection, other_database, other_connection):
        assert conflict_winner(body, index_of(OLD, body)) is None


def test_default_connection_is_shared_across_namespaces() -> None:
    assert conflict_key(OLD) == conflict_key(NEW)
    named_a = collection_body("team-a", "p", "t", connectionRef={"name": "main"})
    named_b = collection_body("team-b", "p", "t", connectionRef={"name": "main"})
    assert conflict_key(named_a) != conflict_key(named_b)  # same name, different MilvusConnections


def test_observers_neither_win_nor_lose() -> None:
    observer = collection_body("team-c", "watch", "2025-01-01T00:00:00Z", managementPolicy="Observe")
    assert not claims_collection(observer)
    assert claims_collection(NEW)
    # an older observer is not in the index, so it cannot make a manager lose
    owners = index_of(NEW)
    assert conflict_winner(NEW, owners) is None
    assert conflict_winner(observer, index_of(OLD, NEW)) is None


@pytest.mark.parametrize(("value", "requested"), [("2026-11-29T10:00:00Z", "2026-11-29T10:00:00Z"), (" x ", "x")])
def test_refresh_annotation(value: str, requested: str) -> None:
    body = resource_body({"milvusops.dev/refresh-requested-at": value})
    assert ResourceRef.from_body(body).refresh_requested == requested
    assert ResourceRef.from_body(resource_body({})).refresh_requested == ""
