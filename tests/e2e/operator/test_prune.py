"""Deletion in any order: a GitOps prune, a whole namespace, a Secret gone before its collections."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import yaml

from tests.conftest import Figures
from tests.e2e.helpers import GROUP, VERSION, Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.demo import create_example_collections, example_manifests
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

EXAMPLES = ["products", "catalog", "documents", "articles-observer"]
# seconds: the restarted operator's first release attempt (ReleasePending) and its retries at 1, 3 s come first
SHORT_DELETION_TIMEOUT = 6


def _example_documents(milvus: MilvusServer) -> list[str]:
    """examples/*.yaml, one YAML document each, in file order."""
    return [yaml.safe_dump(doc) for doc in yaml.safe_load_all(example_manifests(milvus.uri)) if doc]


def _left_in(kube: Kube, namespace: str, collections: list[str] = EXAMPLES) -> list[str]:
    left = [f"mcol/{name}" for name in collections if kube.exists(namespace, name)]
    listed = kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "milvusconnections")
    left += [f"mconn/{c['metadata']['name']}" for c in cast(dict[str, Any], listed)["items"]]
    secrets = kube.core.list_namespaced_secret(namespace).items
    return left + [f"secret/{s.metadata.name}" for s in secrets if s.metadata is not None]


@pytest.mark.parametrize("order", ["file order", "reversed"])
def test_kubectl_delete_of_the_examples_ends_as_each_deletion_policy_says(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    operator: OperatorProcess,
    figures: Figures,
    order: str,
) -> None:
    """What `kubectl delete -f examples/` and Argo CD / Flux prunes do: every object deleted at once, in some order.

    In file order the Secret and the MilvusConnection go before `documents` (deletionPolicy Release) needs them.
    """
    milvus_client = milvus.client()
    try:
        create_example_collections(milvus_client, rows=100)
    finally:
        milvus_client.close()
    documents = _example_documents(milvus)
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input="---\n".join(documents))
    control_plane.kubectl(
        "wait", "--for=condition=Ready", "--timeout=120s", "-n", namespace, *[f"mcol/{n}" for n in EXAMPLES]
    )
    control_plane.kubectl("wait", "--for=condition=Ready", "--timeout=60s", "-n", namespace, "mconn/main")
    if order == "reversed":
        documents.reverse()

    started = time.monotonic()
    # kubectl deletes every object first, then waits until all are gone
    control_plane.kubectl("delete", "-n", namespace, "--timeout=90s", "-f", "-", input="---\n".join(documents))
    figures.record(f"kubectl delete -f examples/ ({order}): all objects gone in", f"{time.monotonic() - started:.1f} s")

    assert _left_in(kube, namespace) == []
    assert set(load_states(milvus, "products").values()) == {"Loaded"}  # Retain
    assert load_states(milvus, "catalog") == {"_default": "NotLoad", "recent": "Loaded", "archive": "NotLoad"}
    assert set(load_states(milvus, "documents").values()) == {"NotLoad"}  # Release
    assert set(load_states(milvus, "articles").values()) == {"NotLoad"}  # Observe: never touched
    reasons = [e.reason for e in kube.events(namespace, "documents")]
    assert "Released" in reasons and "ReleaseSkipped" not in reasons


def test_a_deleted_namespace_goes_and_milvus_ends_as_each_deletion_policy_says(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    operator: OperatorProcess,
    figures: Figures,
) -> None:
    """The namespace controller deletes the Secret, the connection and the collections at once."""
    collections = {name: new_collection(milvus, ["a"]) for name in ("released", "retained", "default-released")}
    kube.create_secret(namespace, "creds", {"token": milvus.root_token})
    kube.create_connection(namespace, "main", {"uri": milvus.uri, "credentialsSecretRef": {"name": "creds"}})
    via_main = {"connectionRef": {"name": "main"}, "state": "Loaded"}
    kube.create(
        namespace, "released", {**via_main, "collectionName": collections["released"], "deletionPolicy": "Release"}
    )
    kube.create(
        namespace, "retained", {**via_main, "collectionName": collections["retained"], "deletionPolicy": "Retain"}
    )
    spec = {"collectionName": collections["default-released"], "state": "Loaded", "deletionPolicy": "Release"}
    kube.create(namespace, "default-released", spec)
    for name in collections:
        kube.wait_reason(namespace, name, "InSync", timeout=90)

    started = time.monotonic()
    kube.core.delete_namespace(namespace)

    wait_for(lambda: not _left_in(kube, namespace, list(collections)), 120, "every object of the namespace gone")
    objects_gone = time.monotonic() - started
    wait_for(lambda: not kube.namespace_exists(namespace), 120, f"namespace {namespace} gone")
    what = "namespace with 3 collections, a connection and its Secret deleted"
    figures.record(f"{what}: its objects gone in", f"{objects_gone:.1f} s")
    figures.record(f"{what}: the namespace gone in", f"{time.monotonic() - started:.1f} s")
    assert set(load_states(milvus, collections["released"]).values()) == {"NotLoad"}
    assert set(load_states(milvus, collections["retained"]).values()) == {"Loaded"}
    assert set(load_states(milvus, collections["default-released"]).values()) == {"NotLoad"}
    assert "ReleaseSkipped" not in operator.log()


def _released_through_connection(kube: Kube, namespace: str, milvus: MilvusServer, collection: str) -> dict[str, Any]:
    """Secret `creds`, MilvusConnection `main` using it, and the spec of a Loaded collection released on deletion."""
    kube.create_secret(namespace, "creds", {"token": milvus.root_token})
    kube.create_connection(namespace, "main", {"uri": milvus.uri, "credentialsSecretRef": {"name": "creds"}})
    return {
        "collectionName": collection,
        "connectionRef": {"name": "main"},
        "state": "Loaded",
        "deletionPolicy": "Release",
    }


def test_a_connection_in_use_is_held_until_its_last_collection_is_gone(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    spec = _released_through_connection(kube, namespace, milvus, collection)
    kube.create(namespace, "user", spec)
    kube.wait_reason(namespace, "user", "InSync", timeout=90)

    kube.delete(namespace, "main", "milvusconnections")
    in_use = wait_for(
        lambda: [e for e in kube.events(namespace, "main") if e.reason == "InUse"], 30, "InUse event on the connection"
    )
    assert in_use[0].message.endswith("still used by: user")
    assert kube.get(namespace, "main", "milvusconnections")["metadata"]["deletionTimestamp"]
    kube.core.delete_namespaced_secret("creds", namespace)

    kube.delete(namespace, "user")
    wait_for(lambda: not kube.exists(namespace, "user"), 30, "collection gone")
    wait_for(lambda: not kube.exists(namespace, "main", "milvusconnections"), 30, "connection gone")
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}  # released with the credentials last read


def _restart_with_the_secret_gone(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    start_operator: Callable[..., OperatorProcess],
    collection: str,
    **env: str,
) -> float:
    """A collection deleted while its Secret is gone and the operator, restarted, has nothing cached; restart time."""
    spec = _released_through_connection(kube, namespace, milvus, collection)
    operator = start_operator()
    kube.create(namespace, "orphan", spec)
    kube.wait_reason(namespace, "orphan", "InSync", timeout=90)
    operator.stop()
    kube.core.delete_namespaced_secret("creds", namespace)
    kube.delete(namespace, "orphan")
    operator = start_operator(**env)
    restarted = time.monotonic()
    wait_for(
        lambda: [e for e in kube.events(namespace, "orphan") if e.reason == "ReleasePending"], 30, "ReleasePending"
    )
    return restarted


def test_a_secret_missing_at_deletion_is_waited_for(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    collection = new_collection(milvus, ["a"])
    _restart_with_the_secret_gone(kube, namespace, milvus, start_operator, collection)
    pending = [e for e in kube.events(namespace, "orphan") if e.reason == "ReleasePending"]
    assert len(pending) == 1 and pending[0].type == "Warning"
    assert f"Secret {namespace}/creds not found" in pending[0].message
    kube.create_secret(namespace, "creds", {"token": milvus.root_token})  # restored within the deletion timeout
    wait_for(lambda: not kube.exists(namespace, "orphan"), 60, "released and gone")
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}
    assert "ReleaseSkipped" not in [e.reason for e in kube.events(namespace, "orphan")]


def test_a_secret_missing_past_the_deletion_timeout_never_wedges(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess], figures: Figures
) -> None:
    collection = new_collection(milvus, ["a"])
    timeout = {"MILVUSOPS_DELETION_TIMEOUT_SECONDS": str(SHORT_DELETION_TIMEOUT)}
    restarted = _restart_with_the_secret_gone(kube, namespace, milvus, start_operator, collection, **timeout)
    wait_for(lambda: not kube.exists(namespace, "orphan"), 60, "finalizer removed")
    figure = f"{time.monotonic() - restarted:.1f} s (deletion timeout {SHORT_DELETION_TIMEOUT} s)"
    figures.record("Secret missing at deletion, nothing cached: finalizer removed after the restart in", figure)
    events = kube.events(namespace, "orphan")
    assert [e.reason for e in events if e.type == "Warning"].count("ReleasePending") == 1
    skipped = [e for e in events if e.reason == "ReleaseSkipped"]
    assert len(skipped) == 1 and f"Secret {namespace}/creds not found" in skipped[0].message
    assert set(load_states(milvus, collection).values()) == {"Loaded"}
