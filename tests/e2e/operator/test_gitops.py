"""What Flux (kstatus), Argo CD (our Lua check), kubectl and Prometheus make of the resources."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.health import argocd_health, gitops_verdicts, kstatus_of
from tests.e2e.helpers import Kube, OperatorProcess, new_collection, wait_for
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> OperatorProcess:
    """One operator for this module's tests, each in its own namespace; the ones that count calls start their own."""
    return shared_operator


def _ready_reason(obj: dict[str, Any]) -> str:
    reasons = {c["type"]: c["reason"] for c in (obj.get("status") or {}).get("conditions") or []}
    return str(reasons.get("Ready", ""))


def test_spec_change_is_in_progress_until_the_new_generation_is_observed(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    collection = new_collection(milvus, ["a", "b"])
    operator = start_operator()
    kube.create(namespace, "gen", {"collectionName": collection, "partitions": [{"name": "a", "state": "Loaded"}]})
    kube.wait_reason(namespace, "gen", "InSync", timeout=90)
    assert gitops_verdicts(kube, namespace, "gen") == ("Current", "Healthy")

    operator.stop()  # nobody observes the change below until the operator is back
    kube.patch(namespace, "gen", {"spec": {"partitions": [{"name": "b", "state": "Loaded"}]}})
    assert gitops_verdicts(kube, namespace, "gen") == ("InProgress", "Progressing")

    start_operator()
    wait_for(lambda: kube.get(namespace, "gen")["status"]["observedGeneration"] == 2, 30, "generation 2 observed")
    kube.wait_reason(namespace, "gen", "InSync", timeout=90)
    assert gitops_verdicts(kube, namespace, "gen") == ("Current", "Healthy")


def test_loading_is_in_progress_then_current(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"], rows=5000)
    since = kube.create(namespace, "busy", {"collectionName": collection, "state": "Loaded"})["metadata"][
        "resourceVersion"
    ]

    captured = kube.watch_for(namespace, "busy", since, lambda obj: _ready_reason(obj) == "Loading")
    assert captured["status"]["loaded"] == "0/2"
    assert (kstatus_of(captured), argocd_health(captured)) == ("InProgress", "Progressing")
    kube.wait_reason(namespace, "busy", "InSync", timeout=60)
    assert gitops_verdicts(kube, namespace, "busy") == ("Current", "Healthy")


def test_releasing_is_in_progress_then_current(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "shrink", {"collectionName": collection, "state": "Loaded"})
    kube.wait_reason(namespace, "shrink", "InSync", timeout=90)
    since = kube.patch(namespace, "shrink", {"spec": {"state": "Released"}})["metadata"]["resourceVersion"]

    captured = kube.watch_for(namespace, "shrink", since, lambda obj: _ready_reason(obj) == "Releasing")
    assert (kstatus_of(captured), argocd_health(captured)) == ("InProgress", "Progressing")
    wait_for(lambda: kube.get(namespace, "shrink")["status"]["observedGeneration"] == 2, 30, "generation 2")
    kube.wait_reason(namespace, "shrink", "InSync", timeout=60)
    assert gitops_verdicts(kube, namespace, "shrink") == ("Current", "Healthy")


def test_kubectl_describe_tells_what_happened(
    control_plane: ControlPlane, kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"], index=False)
    kube.create(namespace, "explained", {"collectionName": collection, "state": "Loaded"})
    kube.wait_reason(namespace, "explained", "IndexNotFound")
    wait_for(lambda: kube.events(namespace, "explained"), 10, "event posted")
    described = control_plane.kubectl("describe", "mcol", "-n", namespace, "explained").stdout
    assert "Reason:                IndexNotFound" in described
    events = described[described.index("Events:") :]
    assert "Warning  IndexNotFound" in events and "create a vector index before loading" in events


def test_kubectl_explain_documents_the_fields(control_plane: ControlPlane) -> None:
    replicas = control_plane.kubectl("explain", "milvuscollection.spec.load.replicas").stdout
    assert "FIELD: replicas <integer>" in replicas
    assert "query node" in replicas.lower() or "replica" in replicas.lower()
    fields = control_plane.kubectl("explain", "milvuscollection.spec", "--recursive").stdout
    for field in (
        "collectionName",
        "database",
        "connectionRef",
        "state",
        "partitions",
        "load",
        "managementPolicy",
        "deletionPolicy",
        "resourceGroups",
        "loadFields",
        "skipLoadDynamicField",
        "schedule",
        "durationSeconds",
        "timeZone",
        "outsideWindows",
    ):
        assert field in fields
    start = control_plane.kubectl("explain", "milvuscollection.spec.schedule.windows.start").stdout
    assert "5-field cron" in start and "daylight-saving" in start
    connection = control_plane.kubectl("explain", "milvusconnection.spec.credentialsSecretRef").stdout
    assert "same namespace" in connection.lower()


def test_metrics_move_when_a_load_happens(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator()  # its own: no other test's calls in its metrics
    before = {
        "reconciles": operator.metric("milvusops_reconciles_total"),
        "load_ok": operator.metric(
            "milvusops_milvus_call_duration_seconds_count", method="load_partitions", outcome="ok"
        ),
        "in_sync": operator.metric("milvusops_resources", ready="True", reason="InSync"),
    }
    assert before == {"reconciles": 0, "load_ok": 0, "in_sync": 0}
    collection = new_collection(milvus, ["a", "b"])
    kube.create(namespace, "metered", {"collectionName": collection, "partitions": [{"name": "a", "state": "Loaded"}]})
    kube.wait_reason(namespace, "metered", "InSync", timeout=90)
    wait_for(lambda: operator.metric("milvusops_resources", ready="True", reason="InSync") == 1, 10, "gauge")
    assert operator.metric("milvusops_milvus_call_duration_seconds_count", method="load_partitions", outcome="ok") == 1
    assert operator.metric("milvusops_load_release_calls_total", method="load_partitions") == 1
    assert operator.metric("milvusops_reconciles_total", result="ready") >= 1
    assert operator.metric("milvusops_reconciles_total", result="progressing") >= 1
    assert operator.metric("milvusops_reconcile_duration_seconds_count") >= 2
    assert operator.metric("milvusops_milvus_call_duration_seconds_count", method="get_load_state", outcome="ok") >= 3
    # no label carries a URI or a token
    exposition = operator.metrics()
    assert milvus.uri not in exposition and milvus.root_token not in exposition


GRPC_CORE_LINE = re.compile(r"[EWI]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\] ")


def test_json_logs_one_line_per_action_without_secrets(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator(MILVUSOPS_LOG_FORMAT="json")
    collection = new_collection(milvus, ["a", "b"])
    kube.create(namespace, "logged", {"collectionName": collection, "partitions": [{"name": "b", "state": "Loaded"}]})
    kube.wait_reason(namespace, "logged", "InSync", timeout=90)
    text = [line for line in operator.log().splitlines() if line.strip()]
    # gRPC's C core writes its own errors to stderr in its own format (e.g. "E1207 06:37:18.512 ... epoll_wait")
    native = [line for line in text if not line.startswith("{")]
    assert all(GRPC_CORE_LINE.match(line) for line in native), native
    lines = [json.loads(line) for line in text if line.startswith("{")]
    actions = [line for line in lines if line.get("action") == "Loading"]
    assert len(actions) == 1
    action = actions[0]
    assert action["resource"] == f"{namespace}/logged"
    assert action["collection"] == collection
    assert action["partition"] == "b"
    assert action["outcome"] == "ok"
    assert isinstance(action["duration"], float)
    assert milvus.root_token not in operator.log()


def test_a_resource_not_yet_seen_by_the_operator_is_in_progress(kube: Kube, namespace: str) -> None:
    # no operator runs here: the CRD's status defaults make the object read as not observed yet
    kube.create(namespace, "unseen", {"collectionName": "anything"})
    assert kube.get(namespace, "unseen")["status"] == {"observedGeneration": 0}
    assert gitops_verdicts(kube, namespace, "unseen") == ("InProgress", "Progressing")
    kube.create_connection(namespace, "unseen", {"uri": "http://127.0.0.1:1"})
    assert gitops_verdicts(kube, namespace, "unseen", "milvusconnections") == ("InProgress", "Progressing")
