"""The chart's pod on a real node: installed with the README's commands, replaced, upgraded and uninstalled as the
docs say, the image pulled by containerd from the registry `make release` pushed to.

The tests run in file order on one installation (each step is what a platform engineer does next).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import Figures
from tests.e2e.helpers import Kube, load_states, new_collection, wait_for
from tests.e2e.node import documented
from tests.testenv import release
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer
from tests.testenv.node import Node
from tests.testenv.registry import Registry

NAMESPACE = "milvusops"  # the README's
APPS = "apps"
RESTRICTED = "pod-security.kubernetes.io/enforce"


@dataclass
class Installation:
    plane: ControlPlane
    kube: Kube
    collection: str = ""
    name: str = "catalog"
    pod: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def _pods(plane: ControlPlane) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=milvusops", "-o", "json")
    return list(json.loads(out.stdout)["items"])


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return pod["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def _one_ready_pod(plane: ControlPlane, other_than: str = "") -> dict[str, Any] | None:
    pods = _pods(plane)
    ready = [p for p in pods if _ready(p) and p["metadata"]["name"] != other_than]
    return ready[0] if len(ready) == 1 and len(pods) == 1 else None


def _wait_pod(plane: ControlPlane, what: str, other_than: str = "") -> dict[str, Any]:
    """A single Ready operator pod; on a timeout the failure carries the pods and the namespace's events."""
    try:
        return wait_for(lambda: _one_ready_pod(plane, other_than), 150, what)
    except AssertionError as exc:
        pods = plane.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
        events = plane.kubectl(
            "get", "events", "-n", NAMESPACE, "-o", "custom-columns=R:.reason,M:.message", check=False
        )
        raise AssertionError(f"{exc}\n{pods}\n{events.stdout}") from None


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _metrics(plane: ControlPlane) -> str:
    """The operator's metrics as a scraper in the cluster gets them: through the Service's cluster IP."""
    service = json.loads(plane.kubectl("get", "service", "-n", NAMESPACE, "milvusops-metrics", "-o", "json").stdout)
    address, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
    with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _after_a_pass(plane: ControlPlane) -> str | None:
    metrics = _metrics(plane)
    return metrics if _passes(metrics) >= 1 else None


def _calls(metrics: str) -> float:
    lines = re.findall(r"^milvusops_load_release_calls_total\{.*\} (\S+)$", metrics, flags=re.MULTILINE)
    return sum(float(v) for v in lines)


def _passes(metrics: str) -> float:
    lines = re.findall(r"^milvusops_reconciles_total\{.*\} (\S+)$", metrics, flags=re.MULTILINE)
    return sum(float(v) for v in lines)


@pytest.fixture(scope="module")
def installation(pod_plane: ControlPlane, cluster_node: Node) -> Installation:
    return Installation(pod_plane, Kube(pod_plane))


def test_the_readme_install_runs_as_written_and_the_pod_gets_ready(
    installation: Installation,
    cluster_node: Node,
    released: release.Release,
    registry: Registry,
    milvus: MilvusServer,
    milvus_for_pods: str,
    figures: Figures,
) -> None:
    plane = installation.plane
    cluster_node.trust_registry(registry.address)
    readme = (documented.ROOT / "README.md").read_text()
    helm_path = documented.sh_blocks(readme, "## Install")[0].split("# or plain manifests")[0]
    replace = {
        "registry.example.com/milvusops": f"{registry.address}/milvusops",
        "http://milvus.milvus.svc:19530": milvus_for_pods,
        "token=user:password": f"token={milvus.root_token}",
    }
    started = time.monotonic()
    for command in documented.commands(helm_path):
        documented.run(command, plane, replace)
    installed = time.monotonic()
    pod = _wait_pod(plane, "the operator pod Ready")
    figures.record("node: helm install -> operator pod Ready", f"{time.monotonic() - installed:.1f} s")
    ready_at = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
    created = pod["metadata"]["creationTimestamp"]
    figures.record(
        "node: pod created -> Ready (API timestamps, 1 s steps)", f"{_timestamp(ready_at) - _timestamp(created):.0f} s"
    )
    installation.pod = pod["metadata"]["name"]
    installation.seconds["install"] = installed - started

    namespace = json.loads(plane.kubectl("get", "namespace", NAMESPACE, "-o", "json").stdout)
    assert namespace["metadata"]["labels"].get(RESTRICTED) == "restricted"
    # the image containerd runs is the one `make release` pushed, pulled from the registry
    status = pod["status"]["containerStatuses"][0]
    assert status["imageID"].endswith(released.digest), (status["imageID"], released.digest)
    assert status["image"] == released.image_ref(registry.address)
    # in-cluster: the service account's projected token, no kubeconfig
    spec = pod["spec"]
    env = {e["name"] for e in spec["containers"][0].get("env", [])}
    assert "KUBECONFIG" not in env
    assert spec["serviceAccountName"] == "milvusops"
    assert any("serviceAccountToken" in str(v.get("projected", {})) for v in spec["volumes"]), spec["volumes"]


def test_the_pod_manages_a_collection_in_milvus(installation: Installation, milvus: MilvusServer) -> None:
    plane, kube = installation.plane, installation.kube
    installation.collection = new_collection(milvus, ["a", "b"])
    plane.kubectl("create", "namespace", APPS)
    created = kube.create(APPS, installation.name, {"collectionName": installation.collection, "state": "Loaded"})
    try:
        kube.wait_in_sync(APPS, installation.name, created["metadata"]["generation"], timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {kube.get(APPS, installation.name).get('status')}") from None
    assert set(load_states(milvus, installation.collection).values()) == {"Loaded"}


def test_metrics_are_scraped_through_the_service(installation: Installation) -> None:
    metrics = _metrics(installation.plane)
    assert _calls(metrics) >= 1, metrics  # the load above, counted by the pod the Service reaches
    assert _passes(metrics) >= 1


def test_a_deleted_pod_is_replaced_and_the_new_one_calls_nothing(
    installation: Installation, milvus: MilvusServer, figures: Figures
) -> None:
    plane = installation.plane
    before = load_states(milvus, installation.collection)
    deleted = time.monotonic()
    plane.kubectl("delete", "pod", "-n", NAMESPACE, installation.pod, "--wait=false")
    pod = _wait_pod(plane, "a new operator pod Ready", other_than=installation.pod)
    figures.record("node: kubectl delete pod -> the ReplicaSet's new pod Ready", f"{time.monotonic() - deleted:.1f} s")
    installation.pod = pod["metadata"]["name"]
    # the new pod has looked at the collection (a pass), and made no load or release call for it
    metrics = wait_for(lambda: _after_a_pass(plane), 60, "a pass by the new pod")
    assert _calls(metrics) == 0, metrics
    assert load_states(milvus, installation.collection) == before
