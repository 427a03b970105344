"""The chart's pod on a real node: installed with the README's commands, replaced, upgraded and uninstalled as the
docs say, the image pulled by containerd from the registry `make release` pushed to.

The tests run in file order on one installation (each step is what a platform engineer does next).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    chart: Path = documented.ROOT / "charts" / "milvusops"
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


def _readme_install() -> tuple[str, str, str]:
    """The README's install block in its three parts: namespace and Secret, the Helm path, the plain manifests."""
    block = documented.sh_blocks((documented.ROOT / "README.md").read_text(), "## Install")[0]
    lines = block.splitlines(keepends=True)
    helm_at = next(i for i, line in enumerate(lines) if line.startswith("# Helm:"))
    plain_at = next(i for i, line in enumerate(lines) if line.startswith("# or plain manifests"))
    return "".join(lines[:helm_at]), "".join(lines[helm_at:plain_at]), "".join(lines[plain_at:])


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
    first, helm_path, _ = _readme_install()
    replace = {
        # the chart as `make release` pushed it; plain HTTP because the test's registry is on loopback
        "oci://registry.example.com/charts/milvusops": f"{released.chart_ref(registry.address)} --plain-http",
        "registry.example.com/milvusops": f"{registry.address}/milvusops",
        "http://milvus.milvus.svc:19530": milvus_for_pods,
        "token=user:password": f"token={milvus.root_token}",
    }
    started = time.monotonic()
    for command in documented.commands(first) + documented.commands(helm_path):
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


def _new_version(tmp: Path, registry: Registry, version: str) -> Path:
    """The chart of the next release: its version, and a CRD that changed (a printer column more)."""
    chart = tmp / "milvusops"
    shutil.copytree(documented.ROOT / "charts" / "milvusops", chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = meta["appVersion"] = version
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    crd_path = chart / "crds" / "milvuscollections.milvusops.dev.yaml"
    crd = yaml.safe_load(crd_path.read_text())
    column = {"name": "Policy", "type": "string", "jsonPath": ".spec.deletionPolicy", "priority": 1}
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(column)
    crd_path.write_text(yaml.safe_dump(crd))
    # the image of the new version: this checkout's, under the new tag
    registry.crane("copy", f"{registry.address}/milvusops:0.1.0", f"{registry.address}/milvusops:{version}")
    return chart


def _peering_uid(plane: ControlPlane) -> str:
    return str(plane.kubectl("get", "clusterkopfpeering", "default", "-o", "jsonpath={.metadata.uid}").stdout)


class ReadySampler(threading.Thread):
    """The collection's Ready condition every 0.5 s, as a dashboard or `kubectl wait` would see it."""

    def __init__(self, kube: Kube, name: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.name = kube, name
        self.samples: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.samples.append(str(self.kube.condition(APPS, self.name).get("status")))


def test_an_upgrade_as_documented_keeps_ready_and_calls_nothing(
    installation: Installation,
    registry: Registry,
    milvus: MilvusServer,
    tmp_path: Path,
    figures: Figures,
) -> None:
    plane = installation.plane
    chart = installation.chart = _new_version(tmp_path, registry, "0.1.1")
    before, peering = load_states(milvus, installation.collection), _peering_uid(plane)
    guide = (documented.ROOT / "docs" / "install.md").read_text()
    sampler = ReadySampler(installation.kube, installation.name)
    sampler.start()
    started = time.monotonic()
    try:
        for command in documented.commands(documented.sh_blocks(guide, "## Upgrade")[0]):
            documented.run(command, plane, {"charts/milvusops": str(chart), "image.tag=NEW": "image.tag=0.1.1"})
        pod = _wait_pod(plane, "the upgraded operator pod Ready", other_than=installation.pod)
        assert pod["spec"]["containers"][0]["image"].endswith(":0.1.1")
        metrics = wait_for(lambda: _after_a_pass(plane), 60, "a pass by the upgraded pod")
    finally:
        sampler.done.set()
        sampler.join()
    figures.record(
        "node: upgrade 0.1.0 -> 0.1.1 (CRDs, helm upgrade) until the new pod's first pass",
        f"{time.monotonic() - started:.1f} s, Ready sampled {len(sampler.samples)} times: "
        f"{sorted(set(sampler.samples))}",
    )
    installation.pod = pod["metadata"]["name"]
    assert sampler.samples and set(sampler.samples) == {"True"}, sampler.samples
    assert _calls(metrics) == 0, metrics
    assert load_states(milvus, installation.collection) == before
    assert _peering_uid(plane) == peering  # the peering object is kept, not re-created
    columns = plane.kubectl("get", "crd", "milvuscollections.milvusops.dev", "-o", "json").stdout
    assert '"name": "Policy"' in columns  # the changed CRD is in effect


def _active_peer(plane: ControlPlane) -> str:
    """The pod whose Kopf identity (POD_ID: its name) has the highest priority among the live peers."""
    peering = json.loads(plane.kubectl("get", "clusterkopfpeering", "default", "-o", "json").stdout)
    peers = {name: peer["priority"] for name, peer in peering.get("status", {}).items() if isinstance(peer, dict)}
    return max(peers, key=lambda name: peers[name]) if peers else ""


def test_two_replicas_survive_the_active_pods_deletion(
    installation: Installation, milvus: MilvusServer, figures: Figures
) -> None:
    plane, kube = installation.plane, installation.kube
    upgrade = f"helm upgrade milvusops {installation.chart} -n milvusops --reuse-values --set replicaCount=2"
    documented.run(upgrade, plane)

    def both_ready() -> list[dict[str, Any]] | None:
        pods = _pods(plane)
        return pods if len(pods) == 2 and all(map(_ready, pods)) else None

    names = {p["metadata"]["name"] for p in wait_for(both_ready, 150, "2 pods Ready")}

    def active_one() -> str | None:
        active = _active_peer(plane)
        return active if active in names else None

    active = wait_for(active_one, 60, "the active peer among the two pods")
    deleted = time.monotonic()
    plane.kubectl("delete", "pod", "-n", NAMESPACE, active, "--wait=false")
    generation = kube.patch(APPS, installation.name, {"spec": {"state": "Released"}})["metadata"]["generation"]
    kube.wait_in_sync(APPS, installation.name, generation, timeout=120)
    figures.record(
        "node: two replicas, active pod deleted with a spec change made then",
        f"change in effect after {time.monotonic() - deleted:.1f} s (peering lifetime 30 s)",
    )
    assert set(load_states(milvus, installation.collection).values()) == {"NotLoad"}
    assert _active_peer(plane) != active


def test_an_uninstall_as_documented_leaves_milvus_as_it_was(
    installation: Installation, milvus: MilvusServer, figures: Figures
) -> None:
    plane = installation.plane
    before = load_states(milvus, installation.collection)
    started = time.monotonic()
    guide = (documented.ROOT / "docs" / "install.md").read_text()
    steps = []
    for command in documented.commands(documented.sh_blocks(guide, "## Uninstall")[0]):
        step = time.monotonic()
        documented.run(command, plane)
        steps.append(f"{' '.join(command.split()[:3])} {time.monotonic() - step:.1f} s")
    assert load_states(milvus, installation.collection) == before  # deletionPolicy Retain, the default
    crds = plane.kubectl("get", "crd", "-o", "name").stdout.split()
    assert not [c for c in crds if c.endswith(".milvusops.dev")], crds
    for namespace in (APPS, NAMESPACE):
        plane.kubectl("delete", "namespace", namespace, "--wait=false")

    def gone() -> bool:
        return all(plane.kubectl("get", "namespace", ns, check=False).returncode != 0 for ns in (APPS, NAMESPACE))

    wait_for(gone, 90, "both namespaces gone: none stuck on a finalizer")
    figures.record(
        "node: uninstall as documented, both namespaces gone",
        f"{time.monotonic() - started:.1f} s ({', '.join(steps)}, then the namespaces); "
        f"load states of {len(before)} partitions equal before and after",
    )


def test_the_readme_plain_manifests_run_as_written_with_the_kustomize_example(
    pod_plane: ControlPlane,
    registry: Registry,
    milvus: MilvusServer,
    milvus_for_pods: str,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """After the uninstall above: the README's other path, deploy/ through examples/kustomize/."""
    shutil.copytree(documented.ROOT / "deploy", tmp_path / "deploy")
    shutil.copytree(documented.ROOT / "examples" / "kustomize", tmp_path / "examples" / "kustomize")
    overlay = tmp_path / "examples" / "kustomize" / "kustomization.yaml"
    text = overlay.read_text().replace("registry.example.com/milvusops", f"{registry.address}/milvusops")
    overlay.write_text(text.replace("http://milvus.milvus.svc:19530", milvus_for_pods))
    first, _, plain = _readme_install()
    replace = {
        "token=user:password": f"token={milvus.root_token}",
        " deploy/": f" {tmp_path}/deploy/",
        " examples/kustomize/": f" {tmp_path}/examples/kustomize/",
    }
    started = time.monotonic()
    for command in documented.commands(first) + documented.commands(plain):
        documented.run(command, pod_plane, replace)
    pod = _wait_pod(pod_plane, "the operator pod of the plain manifests Ready")
    figures.record("node: plain manifests + kustomize example -> pod Ready", f"{time.monotonic() - started:.1f} s")
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"{registry.address}/milvusops:0.1.0"
    kube, collection = Kube(pod_plane), new_collection(milvus, ["a"])
    pod_plane.kubectl("create", "namespace", "plain")
    created = kube.create("plain", "plain", {"collectionName": collection, "state": "Loaded"})
    kube.wait_in_sync("plain", "plain", created["metadata"]["generation"], timeout=90)
    assert load_states(milvus, collection) == {"_default": "Loaded", "a": "Loaded"}
