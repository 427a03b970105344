"""The Helm chart and the plain manifests, checked with the real helm and the real API server."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.testenv import gobins, manifests
from tests.testenv.kube import ControlPlane

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "milvusops"
MODES = {
    "cluster": [],
    "namespaces": ["--set", "rbac.scope=namespaces", "--set", "watchNamespaces={team-a,team-b}"],
    "monitoring": ["--set", "metrics.serviceMonitor.enabled=true"],
    "shards": ["--set", "sharding.shards={shard1,shard2}", "--set", "replicaCount=2"],
}


PEERING_CRDS = ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev")


def helm(plane: ControlPlane | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    kubeconfig = [f"--kubeconfig={plane.kubeconfig}"] if plane is not None else []
    argv = [str(gobins.build("helm")), *kubeconfig, *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=180)
    if check and result.returncode != 0:  # helm's own words in the failure, not only its exit code
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def test_helm_lint_is_clean() -> None:
    for mode, flags in MODES.items():
        result = helm(None, "lint", "--strict", str(CHART), *flags)
        assert "0 chart(s) failed" in result.stdout, (mode, result.stdout)
        assert "[WARNING]" not in result.stdout, (mode, result.stdout)


def test_values_schema_rejects_a_typo() -> None:
    result = helm(None, "template", "x", str(CHART), "--set", "resyncSecond=5", check=False)
    assert result.returncode != 0
    assert "resyncSecond" in result.stderr


def test_values_schema_rejects_a_shard_name_that_is_no_label_value() -> None:
    result = helm(None, "template", "x", str(CHART), "--set", "sharding.shards={Shard_1}", check=False)
    assert result.returncode != 0
    assert "/sharding/shards/0" in result.stderr


def test_each_shard_gets_a_deployment_a_selector_and_a_peering_object_of_its_own() -> None:
    flags = ["--set", "sharding.shards={shard1,shard2}", "--set", "rbac.scope=namespaces"]
    rendered = helm(None, "template", "r", str(CHART), *flags, "--set", "watchNamespaces={team-a}").stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    env = {
        name: {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        for name, d in deployments.items()
    }
    sharding = {
        name: (
            variables.get("MILVUSOPS_WATCH_LABEL_SELECTOR"),
            variables.get("MILVUSOPS_SERVE_CONNECTIONS", "true"),
            variables["MILVUSOPS_PEERING_NAME"],
        )
        for name, variables in env.items()
    }
    assert sharding == {
        "r-milvusops": ("!sharding.milvusops.dev/key", "true", "default"),
        "r-milvusops-shard1": ("sharding.milvusops.dev/key=shard1", "false", "r-milvusops-shard1"),
        "r-milvusops-shard2": ("sharding.milvusops.dev/key=shard2", "false", "r-milvusops-shard2"),
    }
    # each Deployment selects its own pods only (kubectl logs deploy/..., rollout status, PDBs rely on it)
    for name, deployment in deployments.items():
        selected = [other for other, d in deployments.items() if _selects(deployment, _pod_labels(d))]
        assert selected == [name], (name, deployment["spec"]["selector"])
    for shard in ("shard1", "shard2"):
        spec = deployments[f"r-milvusops-{shard}"]["spec"]
        assert spec["selector"]["matchLabels"]["milvusops.dev/shard"] == shard
        assert spec["template"]["metadata"]["labels"]["milvusops.dev/shard"] == shard
    peerings = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "KopfPeering")
    assert peerings == ["default", "r-milvusops-shard1", "r-milvusops-shard2"]


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def _selects(deployment: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, and the In / NotIn / Exists / DoesNotExist expressions) against pod labels."""
    selector = deployment["spec"]["selector"]
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    tests = {
        "In": lambda key, values: labels.get(key) in values,
        "NotIn": lambda key, values: labels.get(key) not in values,
        "Exists": lambda key, values: key in labels,
        "DoesNotExist": lambda key, values: key not in labels,
    }
    return all(tests[e["operator"]](e["key"], e.get("values") or []) for e in selector.get("matchExpressions") or [])


def _rendered(*flags: str, release: str = "r") -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(helm(None, "template", release, str(CHART), *flags).stdout) if d]


def test_without_shards_one_deployment_serves_everything() -> None:
    deployments = [d for d in _rendered() if d["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deployments] == ["r-milvusops"]
    names = {e["name"] for e in deployments[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not names & {"MILVUSOPS_WATCH_LABEL_SELECTOR", "MILVUSOPS_SERVE_CONNECTIONS"}
    # the selector is the same with shards: adding shards later is an upgrade (a selector is immutable)
    sharded = [d for d in _rendered("--set", "sharding.shards={shard1}") if d["kind"] == "Deployment"]
    assert sharded[0]["spec"]["selector"] == deployments[0]["spec"]["selector"]


def test_a_long_release_name_keeps_shards_apart() -> None:
    release = "payments-search-production-eu-west-1-blue-green-01"  # 50 characters
    shards = ["tenants-alpha-2026", "tenants-alpha-2027", "tenants-alpha-2028", "tenants-beta"]
    docs = _rendered("--set", f"sharding.shards={{{','.join(shards)}}}", release=release)
    deployments = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    peerings = [d["metadata"]["name"] for d in docs if d["kind"] in ("KopfPeering", "ClusterKopfPeering")]
    assert len(set(deployments)) == len(set(peerings)) == 5, (deployments, peerings)
    assert all(len(name) <= 63 for name in deployments + peerings), deployments + peerings


def test_value_combinations_get_the_charts_own_message() -> None:
    """The chart's messages, not the schema's "'allOf' failed", and nothing rendered silently."""
    cases = {
        ("rbac.scope=namespaces",): "rbac.scope=namespaces needs at least one namespace in watchNamespaces",
        ("watchNamespaces={team-a}",): "watchNamespaces is only used with rbac.scope=namespaces",
        ("metrics.enabled=false", "metrics.serviceMonitor.enabled=true"): "serviceMonitor.enabled needs metrics",
    }
    for values, message in cases.items():
        flags = [arg for value in values for arg in ("--set", value)]
        result = helm(None, "template", "r", str(CHART), *flags, check=False)
        assert result.returncode != 0 and message in result.stderr, (values, result.stderr)


def _operator_container(plane: ControlPlane, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Deployment spec, its container) as the API server stored them."""
    spec = yaml.safe_load(plane.kubectl("get", "deployment", "-n", namespace, "-o", "yaml").stdout)["items"][0]["spec"]
    return spec, spec["template"]["spec"]["containers"][0]


def test_helm_install_and_upgrade(control_plane: ControlPlane, namespace: str) -> None:
    # a fresh cluster, whatever ran before: Kopf's peering CRDs come from the chart's crds/, installed before
    # the peering hook needs them (as templates, the hook failed: "no matches for kind ClusterKopfPeering")
    control_plane.kubectl("delete", "crd", *PEERING_CRDS, "--ignore-not-found", "--wait")
    release = ["--namespace", namespace, f"op-{uuid.uuid4().hex[:6]}", str(CHART)]
    values = ["--set", "defaultConnection.uri=http://milvus.example:19530"]
    install = helm(control_plane, "install", *release, *values)
    assert "STATUS: deployed" in install.stdout
    spec, container = _operator_container(control_plane, namespace)
    pod = spec["template"]["spec"]
    assert spec["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {e["name"]: e.get("value") for e in container["env"]}[
        "MILVUSOPS_DEFAULT_URI"
    ] == "http://milvus.example:19530"

    peering = _peering_uid(control_plane)

    upgrade = helm(control_plane, "upgrade", *release, *values, "--set", "resyncSeconds=60")
    assert "STATUS: deployed" in upgrade.stdout and "REVISION: 2" in upgrade.stdout
    _, container = _operator_container(control_plane, namespace)
    assert {e["name"]: e.get("value") for e in container["env"]}["MILVUSOPS_RESYNC_SECONDS"] == "60"
    # the running operator's peering object is kept: deleted and made again, it would pause every replica
    assert _peering_uid(control_plane) == peering

    # a second release (another team's, or one left behind) installs beside it and shares the object
    other = control_plane.kubectl("create", "namespace", f"{namespace}-b").stdout.split("/")[-1].split()[0]
    second = helm(control_plane, "install", "--namespace", other, f"op-{uuid.uuid4().hex[:6]}", str(CHART), *values)
    assert "STATUS: deployed" in second.stdout
    helm(control_plane, "uninstall", "--namespace", namespace, release[2])
    assert _peering_uid(control_plane) == peering  # still there for the other release


def _peering_uid(plane: ControlPlane) -> str:
    return plane.kubectl("get", "clusterkopfpeering", "default", "-o", "jsonpath={.metadata.uid}").stdout


def test_rendered_chart_is_accepted_by_the_api_server(control_plane: ControlPlane, namespace: str) -> None:
    for mode, flags in MODES.items():
        if mode == "namespaces":
            flags = ["--set", "rbac.scope=namespaces", "--set", f"watchNamespaces={{{namespace}}}"]
        rendered = helm(
            None, "template", f"r-{mode}", str(CHART), "--namespace", namespace, "--include-crds", *flags
        ).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        # the ServiceMonitor kind only exists where the Prometheus operator is installed
        kept = [d for d in docs if d["kind"] != "ServiceMonitor"]
        assert mode != "monitoring" or len(kept) == len(docs) - 1
        # Kopf's peering CRDs come with the chart: a dry run of their objects needs them for real
        crds = [d for d in kept if d["kind"] == "CustomResourceDefinition"]
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(crds))
        control_plane.kubectl("wait", "--for=condition=Established", "crd", *[d["metadata"]["name"] for d in crds])
        result = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(kept), check=False
        )
        assert result.returncode == 0, (mode, result.stderr)


def test_plain_manifests_are_up_to_date_and_accepted(control_plane: ControlPlane, namespace: str) -> None:
    """Install as README says (CRDs, then the operator); uninstall the operator: CRDs and resources stay."""
    assert manifests.read() == manifests.render(), "run `make manifests`"
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifests.CRDS_YAML))
    control_plane.kubectl("wait", "--for=condition=Established", "-f", str(manifests.CRDS_YAML))
    created = control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifests.OPERATOR_YAML))
    assert "deployment.apps/milvusops serverside-applied" in created.stdout
    kept = "apiVersion: milvusops.dev/v1alpha1\nkind: MilvusCollection\nmetadata: {name: kept}\nspec: {state: Loaded}\n"
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=kept)

    control_plane.kubectl("delete", "-f", str(manifests.OPERATOR_YAML), "--wait=false")
    assert control_plane.kubectl("get", "-n", namespace, "mcol", "kept", "-o", "name").stdout.strip()
    crds = control_plane.kubectl("get", "-f", str(manifests.CRDS_YAML), "-o", "name").stdout.split()
    assert len(crds) == 3  # MilvusCollection, MilvusConnection, MilvusAlias
    control_plane.kubectl("delete", "-n", namespace, "mcol", "kept")  # no operator: nothing holds it
