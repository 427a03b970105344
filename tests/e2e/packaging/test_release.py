"""`make release`'s code pushes to a local OCI registry; the chart is installed from there with `helm install oci://`.

Here the API server stores the release (its CRDs, the Deployment naming the pushed image) and the registry serves
the archive's digest; tests/e2e/node/ pulls that image onto a real node and runs it.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import yaml
from packaging.utils import canonicalize_name

from tests.e2e.packaging.test_chart import PEERING_CRDS, helm
from tests.testenv import lock, release
from tests.testenv.kube import ControlPlane
from tests.testenv.registry import Registry


def test_the_registry_serves_the_archives_image(released: release.Release, registry: Registry) -> None:
    reference = released.image_ref(registry.address)
    assert registry.crane("digest", reference).strip() == released.digest
    manifest = json.loads(registry.crane("manifest", reference))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["layers"], manifest


def test_the_packaged_chart_carries_its_crds_as_files(released: release.Release) -> None:
    files = release.chart_files(released.chart)
    crds = {p.name for p in (release.ROOT / "crds").glob("*.yaml")} | {f"{name}.yaml" for name in PEERING_CRDS}
    assert {f"milvusops/crds/{name}" for name in crds} <= set(files), files


def test_the_sbom_lists_every_locked_package(released: release.Release) -> None:
    bom = json.loads(released.sbom.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    listed = {(canonicalize_name(c["name"]), c["version"]) for c in bom["components"]}
    assert len(bom["components"]) == len(listed) == released.components
    locked = set()
    for line in lock.LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.split(" ", 1)[0].partition("==")
            locked.add((canonicalize_name(name), version))
    assert locked, "requirements.lock is empty"
    assert locked <= listed, sorted(locked - listed)
    # what the image holds beyond the lock: the operator itself, nothing else
    assert {name for name, _ in listed - locked} == {"milvusops"}


def _deployment(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    items = yaml.safe_load(plane.kubectl("get", "deployment", "-n", namespace, "-o", "yaml").stdout)["items"]
    assert len(items) == 1, items
    deployment: dict[str, Any] = items[0]
    return deployment


def test_helm_install_from_the_registry(
    released: release.Release, registry: Registry, control_plane: ControlPlane, namespace: str
) -> None:
    name = f"rel-{uuid.uuid4().hex[:6]}"
    chart = released.chart_ref(registry.address)
    # the pulled chart carries every CRD (test_chart.py installs them into a cluster without them; deleting
    # the session's CRDs here again took over 120 s once under load)
    shown = helm(control_plane, "show", "crds", chart, "--version", released.chart_version, "--plain-http").stdout
    # helm prints the files one after the other, without a document separator where a file has none
    names = set(re.findall(r"^  name: (\S+)$", shown, flags=re.MULTILINE))
    assert names == {path.name.removesuffix(".yaml") for path in (release.ROOT / "crds").glob("*.yaml")}, names
    values = ["--set", f"image.repository={registry.address}/milvusops"]
    values += ["--set", "defaultConnection.uri=http://milvus.example:19530"]
    install = helm(
        control_plane, "install", name, chart, "--version", released.chart_version, "--plain-http",
        "--namespace", namespace, *values,
    )  # fmt: skip
    assert "STATUS: deployed" in install.stdout
    listed = json.loads(helm(control_plane, "list", "--namespace", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"], r["chart"]) for r in listed] == [
        (name, "deployed", f"milvusops-{released.chart_version}")
    ]
    container = _deployment(control_plane, namespace)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == released.image_ref(registry.address)
