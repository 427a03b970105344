"""Issue 29 item 4 on real parts: a status naming ~1,000 long partitions is still written (no 422)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.helpers import Kube, OperatorProcess, new_collection
from tests.testenv.milvus import MilvusServer

CRD = Path(__file__).parents[3] / "crds" / "milvuscollections.milvusops.dev.yaml"


def message_limit() -> int:
    crd = yaml.safe_load(CRD.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return int(status["properties"]["conditions"]["items"]["properties"]["message"]["maxLength"])


def test_a_thousand_missing_tenant_partitions_are_reported(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, [])  # the partitions stay missing: Milvus never creates them
    names = [f"tenant_{index:04d}_".ljust(200, "x") for index in range(1000)]
    partitions = [{"name": name, "state": "Loaded"} for name in names]
    kube.create(namespace, "tenants", {"collectionName": collection, "partitions": partitions})
    ready = kube.wait_reason(namespace, "tenants", "PartitionNotFound", timeout=90)
    assert len(ready["message"]) <= message_limit()
    assert names[0] in ready["message"] and "more" in ready["message"]
    status = kube.get(namespace, "tenants")["status"]
    states = {p["name"]: p["state"] for p in status["partitions"]}
    assert all(states[name] == "NotExist" for name in names)
    assert kube.condition(namespace, "tenants", "Stalled")["status"] == "True"
