"""MilvusConnection: credentials from a Secret in the same namespace, status, and the failures around it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.health import gitops_verdicts
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer
from tests.testenv.processes import free_port


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> OperatorProcess:
    """One operator for this module's tests, each in its own namespace; the ones that count calls start their own."""
    return shared_operator


CONNECTIONS = "milvusconnections"


def test_connection_with_credentials_from_a_secret(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create_secret(namespace, "milvus-token", {"token": milvus.root_token})
    kube.create_connection(namespace, "secured", {"uri": milvus.uri, "credentialsSecretRef": {"name": "milvus-token"}})
    kube.create(
        namespace, "guarded", {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "secured"}}
    )
    kube.wait_reason(namespace, "guarded", "InSync", timeout=90)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}
    connection = kube.wait_reason(namespace, "secured", "Connected", plural=CONNECTIONS)
    assert connection["status"] == "True"
    assert kube.get(namespace, "secured", CONNECTIONS)["status"]["serverVersion"].startswith("v2.3.5")
    assert gitops_verdicts(kube, namespace, "secured", CONNECTIONS) == ("Current", "Healthy")
    assert gitops_verdicts(kube, namespace, "guarded") == ("Current", "Healthy")


def test_wrong_credentials_are_unauthenticated(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    kube.create_secret(namespace, "bad-token", {"token": "root:wrong-password"})
    kube.create_connection(namespace, "wrong", {"uri": milvus.uri, "credentialsSecretRef": {"name": "bad-token"}})
    kube.create(namespace, "locked-out", {"collectionName": "anything", "connectionRef": {"name": "wrong"}})
    # Milvus 2.3.5 fails the connect with UNAUTHENTICATED: told apart from an outage, it needs a fixed Secret
    ready = kube.wait_reason(namespace, "locked-out", "Unauthenticated")
    assert "auth check failure" in ready["message"] and "user root" in ready["message"], ready
    assert "cannot reach" not in ready["message"]
    assert "wrong-password" not in ready["message"]
    assert kube.condition(namespace, "locked-out", "Reconciling")["status"] == "False"
    assert kube.condition(namespace, "locked-out", "Stalled")["status"] == "True"
    assert gitops_verdicts(kube, namespace, "locked-out") == ("Failed", "Degraded")
    kube.wait_reason(namespace, "wrong", "Unauthenticated", plural=CONNECTIONS)
    assert gitops_verdicts(kube, namespace, "wrong", CONNECTIONS) == ("Failed", "Degraded")
    assert "wrong-password" not in operator.log()


def test_unreachable_milvus_recovers_when_the_connection_is_fixed(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create_secret(namespace, "token", {"token": milvus.root_token})
    spec = {"uri": f"http://127.0.0.1:{free_port()}", "timeoutSeconds": 2, "credentialsSecretRef": {"name": "token"}}
    kube.create_connection(namespace, "elsewhere", spec)
    kube.create(
        namespace, "stranded", {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "elsewhere"}}
    )
    kube.wait_reason(namespace, "stranded", "MilvusUnavailable")
    kube.patch(namespace, "elsewhere", {"spec": {"uri": milvus.uri}}, plural=CONNECTIONS)
    kube.wait_reason(namespace, "stranded", "InSync", timeout=60)


def test_a_connection_created_late_wakes_its_collections(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    start_operator(MILVUSOPS_RESYNC_SECONDS="300")  # so only the wake-up can explain a quick recovery
    collection = new_collection(milvus, ["a"])
    kube.create(
        namespace, "early", {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "late"}}
    )
    kube.wait_reason(namespace, "early", "ConnectionNotFound")
    kube.create_secret(namespace, "token", {"token": milvus.root_token})
    kube.create_connection(namespace, "late", {"uri": milvus.uri, "credentialsSecretRef": {"name": "token"}})
    kube.wait_reason(namespace, "early", "InSync", timeout=30)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}


def test_missing_secret_and_missing_connection(kube: Kube, namespace: str, operator: OperatorProcess) -> None:
    kube.create_connection(
        namespace, "no-secret", {"uri": "http://127.0.0.1:1", "credentialsSecretRef": {"name": "absent"}}
    )
    kube.create(namespace, "needs-secret", {"collectionName": "x", "connectionRef": {"name": "no-secret"}})
    kube.create(namespace, "needs-connection", {"collectionName": "y", "connectionRef": {"name": "absent"}})
    secret = kube.wait_reason(namespace, "needs-secret", "SecretNotFound")
    assert f"{namespace}/absent" in secret["message"]
    connection = kube.wait_reason(namespace, "needs-connection", "ConnectionNotFound")
    assert f"{namespace}/absent" in connection["message"]
    for name in ("needs-secret", "needs-connection"):
        assert kube.condition(namespace, name, "Stalled")["status"] == "True"
        assert gitops_verdicts(kube, namespace, name) == ("Failed", "Degraded")


def test_a_lasting_failure_is_reported_once(
    kube: Kube, namespace: str, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator()  # its own: no other test's calls in its metrics
    kube.create(namespace, "repeat", {"collectionName": "never_there"})
    kube.wait_reason(namespace, "repeat", "CollectionNotFound")
    # three resync intervals (5 s each in tests) of the same failure
    wait_for(lambda: operator.metric("milvusops_reconciles_total", result="stalled") >= 4, 40, "several resyncs")
    warnings = [e for e in kube.events(namespace, "repeat") if e.reason == "CollectionNotFound"]
    assert len(warnings) == 1
    assert (warnings[0].count or 1) == 1
