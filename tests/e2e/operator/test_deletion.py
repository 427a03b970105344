"""Deletion policies: Retain leaves Milvus alone, Release releases; Milvus down never wedges deletion."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.health import gitops_verdicts
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer
from tests.testenv.processes import free_port

SHORT_DELETION_TIMEOUT = 6  # seconds: a first release attempt and two retries (1 s connect timeout each) fit in it


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> OperatorProcess:
    """One operator for this module's tests, each in its own namespace; the ones that count calls start their own."""
    return shared_operator


def test_retain_leaves_milvus_loaded(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "kept", {"collectionName": collection, "state": "Loaded"})
    kube.wait_reason(namespace, "kept", "InSync", timeout=90)
    kube.delete(namespace, "kept")
    wait_for(lambda: not kube.exists(namespace, "kept"), 30, "resource gone")
    assert set(load_states(milvus, collection).values()) == {"Loaded"}


def test_release_releases_only_what_this_resource_loaded(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["mine", "theirs"])
    spec = {
        "collectionName": collection,
        "deletionPolicy": "Release",
        "partitions": [{"name": "mine", "state": "Loaded"}],
    }
    kube.create(namespace, "tidy", spec)
    kube.wait_reason(namespace, "tidy", "InSync", timeout=90)
    kube.delete(namespace, "tidy")
    wait_for(lambda: not kube.exists(namespace, "tidy"), 30, "resource gone")
    assert load_states(milvus, collection)["mine"] == "NotLoad"
    assert any(e.reason == "Released" for e in kube.events(namespace, "tidy"))


def test_release_with_milvus_unreachable_gives_up_after_the_timeout(
    kube: Kube, namespace: str, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(MILVUSOPS_DELETION_TIMEOUT_SECONDS=str(SHORT_DELETION_TIMEOUT))  # the wait is the timeout itself
    kube.create_connection(namespace, "gone", {"uri": f"http://127.0.0.1:{free_port()}", "timeoutSeconds": 1})
    spec = {"collectionName": "c", "state": "Loaded", "deletionPolicy": "Release", "connectionRef": {"name": "gone"}}
    kube.create(namespace, "orphan", spec)
    kube.wait_reason(namespace, "orphan", "MilvusUnavailable")
    kube.delete(namespace, "orphan")
    assert gitops_verdicts(kube, namespace, "orphan") == ("Terminating", "Progressing")
    wait_for(lambda: not kube.exists(namespace, "orphan"), 60, "finalizer removed")
    warnings = [e for e in kube.events(namespace, "orphan") if e.reason == "ReleaseSkipped"]
    assert len(warnings) == 1 and "cannot reach Milvus" in warnings[0].message


def test_deleted_before_the_finalizer_leaves_nothing_acting(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    """Deleted between Kopf's first look and its finalizer patch, a resource must take its worker with it.

    Kopf starts a daemon in the same cycle that adds the finalizer; deleted before the patch lands, the
    object goes at once and Kopf never stops that daemon. Left running, it would keep enforcing a spec
    nobody holds any more, against the resource that replaced it.
    """
    operator = start_operator()  # its own: no other test's calls in its metrics
    collections = {f"flash{i}": new_collection(milvus, ["a"]) for i in range(6)}
    for step in range(8):  # deletion delays across Kopf's 0.1 s batch window and its finalizer patch
        for name, collection in collections.items():
            kube.create(namespace, name, {"collectionName": collection, "state": "Loaded"})
        time.sleep(0.05 + step * 0.03)  # the race's timing itself, not a wait for a condition
        for name in collections:
            kube.delete(namespace, name)
        wait_for(lambda: not any(kube.exists(namespace, name) for name in collections), 30, "all gone")
    for name, collection in collections.items():
        kube.create(namespace, name, {"collectionName": collection, "state": "Released"})
    for name in collections:
        kube.wait_reason(namespace, name, "InSync", timeout=90)
    passes = operator.metric("milvusops_reconciles_total")
    # two more resyncs (5 s each): a worker left behind would have loaded its collection again by then
    more = passes + 2 * len(collections)
    wait_for(lambda: operator.metric("milvusops_reconciles_total") >= more, 60, "two more passes each")
    for name, collection in collections.items():
        assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "NotLoad"}, name
        assert kube.condition(namespace, name)["reason"] == "InSync", name
    assert operator.metric("milvusops_resources") == len(collections)
