"""examples/ applied as a user would, with kubectl, against the real API server and Milvus."""

from __future__ import annotations

from tests.e2e.helpers import Kube, OperatorProcess, load_states
from tests.testenv.demo import create_example_collections, example_manifests
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer


def test_examples_reach_the_right_milvus_state(
    control_plane: ControlPlane, kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess
) -> None:
    milvus_client = milvus.client()
    try:
        create_example_collections(milvus_client, rows=100)
    finally:
        milvus_client.close()
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=example_manifests(milvus.uri))
    names = ["products", "catalog", "documents", "articles-observer", "reports"]
    control_plane.kubectl(
        "wait", "--for=condition=Ready", "--timeout=120s", "-n", namespace, *[f"mcol/{n}" for n in names]
    )

    assert set(load_states(milvus, "products").values()) == {"Loaded"}
    assert load_states(milvus, "catalog") == {"_default": "NotLoad", "recent": "Loaded", "archive": "NotLoad"}
    assert set(load_states(milvus, "documents").values()) == {"Loaded"}
    assert set(load_states(milvus, "articles").values()) == {"NotLoad"}  # observed, never loaded
    assert kube.condition(namespace, "articles-observer")["reason"] == "Observing"
    # the window example: loaded inside a window, released outside, whenever the test runs
    window = kube.get(namespace, "reports")["status"]["schedule"]
    expected = "Loaded" if "activeWindow" in window else "NotLoad"
    assert set(load_states(milvus, "reports").values()) == {expected}
    alias = kube.wait_reason(namespace, "products-live", "InSync", plural="milvusaliases")
    assert alias["message"] == "alias products_live points at products_v2"
    table = control_plane.kubectl("get", "mcol", "-n", namespace).stdout
    assert table.split("\n")[0].split() == ["NAME", "COLLECTION", "DESIRED", "LOADED", "READY", "REASON", "AGE"]
    rows = {line.split()[0]: line.split()[1:6] for line in table.strip().split("\n")[1:]}
    # DESIRED counts partitions desired Loaded: catalog wants one of three, whatever spec.state says
    assert rows["catalog"] == ["catalog", "1/3", "1/3", "True", "InSync"]
    assert rows["products"] == ["products", "3/3", "3/3", "True", "InSync"]
