"""Load options on the real Milvus 2.3.5: what this server lacks is refused before any call, and the refresh
annotation (which 2.3.5 has) is handled exactly once."""

from __future__ import annotations

from collections.abc import Callable

from milvusops import REFRESH_ANNOTATION
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer

CALLS = "milvusops_load_release_calls_total"


def test_load_options_the_server_lacks_are_refused_before_any_call(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "prio", {"collectionName": collection, "state": "Loaded", "load": {"priority": "Low"}})
    ready = kube.wait_reason(namespace, "prio", "UnsupportedByServer")
    assert "Milvus v2.3.5" in ready["message"] and "spec.load.priority needs Milvus 2.6.0" in ready["message"]
    assert kube.condition(namespace, "prio", "Stalled")["status"] == "True"
    assert operator.metric(CALLS) == 0
    assert set(load_states(milvus, collection).values()) == {"NotLoad"}

    kube.patch(namespace, "prio", {"spec": {"load": {"priority": None, "loadFields": ["id", "vector"]}}})
    generation = kube.get(namespace, "prio")["metadata"]["generation"]

    def refused_for_fields() -> dict[str, object] | None:
        ready = kube.condition(namespace, "prio")
        fields = "spec.load.loadFields needs Milvus 2.4.10" in str(ready.get("message"))
        return ready if fields and ready.get("observedGeneration") == generation else None

    ready = wait_for(refused_for_fields, 60, "loadFields refused")
    assert ready["reason"] == "UnsupportedByServer" and "priority" not in str(ready["message"])
    assert operator.metric(CALLS) == 0

    # without the options this server lacks, the same collection loads
    kube.patch(namespace, "prio", {"spec": {"load": {"loadFields": None}}})
    kube.wait_reason(namespace, "prio", "InSync", timeout=90)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}


def test_refresh_annotation_is_handled_once(
    kube: Kube, namespace: str, milvus: MilvusServer, start_operator: Callable[..., OperatorProcess]
) -> None:
    operator = start_operator(MILVUSOPS_RESYNC_SECONDS="3")  # passes after the refresh come quickly
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "fresh", {"collectionName": collection, "state": "Loaded"})
    kube.wait_reason(namespace, "fresh", "InSync", timeout=90)
    before = operator.metric(CALLS, method="load_collection")
    assert before == 1

    asked = "2026-11-29T10:00:00Z"
    kube.patch(namespace, "fresh", {"metadata": {"annotations": {REFRESH_ANNOTATION: asked}}})
    wait_for(lambda: kube.get(namespace, "fresh")["status"].get("lastRefresh") == asked, 60, "refresh recorded")
    assert operator.metric(CALLS, method="load_collection") == before + 1  # Milvus 2.3.5 accepted refresh=True
    wait_for(
        lambda: any(e.reason == "Refreshed" for e in kube.events(namespace, "fresh")), 30, "Refreshed event posted"
    )
    assert kube.condition(namespace, "fresh")["reason"] == "InSync"

    # the full passes that follow see the value recorded: no second refresh
    passes = operator.metric("milvusops_reconciles_total")
    wait_for(lambda: operator.metric("milvusops_reconciles_total") >= passes + 2, 30, "two more passes")
    assert operator.metric(CALLS) == before + 1
    assert set(load_states(milvus, collection).values()) == {"Loaded"}
