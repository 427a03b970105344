"""Item 11: deleting a namespace is routine; what the API server then refuses is not an ERROR in the log."""

from __future__ import annotations

import pytest

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess, new_collection, wait_for
from tests.testenv.milvus import MilvusServer

pytestmark = pytest.mark.e2e


def _errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line]


def test_a_deleted_namespace_logs_no_error(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess, figures: Figures
) -> None:
    kube.create_secret(namespace, "creds", {"token": milvus.root_token})
    kube.create_connection(namespace, "main", {"uri": milvus.uri, "credentialsSecretRef": {"name": "creds"}})
    names = {"released": "Release", "retained": "Retain"}
    for name, policy in names.items():
        spec = {"collectionName": new_collection(milvus, ["a"]), "state": "Loaded", "connectionRef": {"name": "main"}}
        kube.create(namespace, name, {**spec, "deletionPolicy": policy})
    for name in names:
        kube.wait_reason(namespace, name, "InSync", timeout=90)
    before = len(operator.log())

    kube.core.delete_namespace(namespace)
    wait_for(lambda: not kube.namespace_exists(namespace), 120, f"namespace {namespace} gone", interval=0.5)
    # Kopf's last retries of events into the namespace end within its backoffs (1+1+2+3+5+8+13+21 s at most)
    wait_for(lambda: "Failed to post an event" in operator.log()[before:], 60, "the refused events reported")
    after = operator.log()[before:]
    figures.record("namespace deletion: ERROR lines in the operator log", str(len(_errors(after))))
    assert _errors(after) == [], "\n".join(_errors(after))
