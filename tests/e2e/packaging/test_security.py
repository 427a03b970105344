"""The chart's security claims on the real API server: its pod passes Pod Security "restricted", and
its RBAC is all the operator needs (the operator runs as the chart's ServiceAccount) and no more."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, config

from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.e2e.packaging.test_chart import CHART, helm
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

SCOPES = ("cluster", "namespaces")
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
PEERING_KINDS = {"ClusterKopfPeering", "KopfPeering"}
Rule = tuple[str, str, str]  # (API group, resource, verb)


def rules(group: str, resources: str, verbs: str) -> set[Rule]:
    return {(group, resource, verb) for resource in resources.split() for verb in verbs.split()}


# what the operator may do in a namespace it serves: the table of docs/security.md, nothing more
SERVED_NAMESPACE = (
    rules("milvusops.dev", "milvuscollections milvusaliases", "list watch patch")
    | rules("milvusops.dev", "milvusconnections", "get list watch patch")
    | rules("milvusops.dev", "milvuscollections/status milvusconnections/status milvusaliases/status", "patch")
    | rules("", "secrets", "get")
    | rules("", "events", "create")
)
CLUSTER_WIDE = {
    "cluster": rules("apiextensions.k8s.io", "customresourcedefinitions", "list watch")
    | rules("kopf.dev", "clusterkopfpeerings", "list watch patch"),
    "namespaces": rules("apiextensions.k8s.io", "customresourcedefinitions", "list watch")
    | rules("", "namespaces", "list watch"),
}
NAMESPACED_PEERING = rules("kopf.dev", "kopfpeerings", "list watch patch")

# (verb, group, resource) the operator never needs, asked in a served namespace
NEVER: list[tuple[str, str, str]] = [
    *[(verb, "", "secrets") for verb in ("list", "watch", "create", "update", "patch", "delete")],
    *[(verb, "milvusops.dev", "milvuscollections") for verb in ("get", "create", "update", "delete")],
    *[(verb, "milvusops.dev", "milvusconnections") for verb in ("create", "update", "delete")],
    *[(verb, "milvusops.dev", "milvusaliases") for verb in ("get", "create", "update", "delete")],
    ("update", "milvusops.dev", "milvuscollections/status"),
    ("get", "milvusops.dev", "milvuscollections/status"),
    ("delete", "", "events"),
    ("patch", "", "events"),
    ("create", "events.k8s.io", "events"),
    ("get", "", "pods"),
    ("create", "", "pods"),
    ("create", "", "pods/exec"),
    ("get", "", "configmaps"),
    ("create", "", "configmaps"),
    ("create", "", "serviceaccounts/token"),
    ("get", "apps", "deployments"),
    ("create", "apps", "deployments"),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("update", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("delete", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("get", "apiextensions.k8s.io", "customresourcedefinitions"),
    ("escalate", "rbac.authorization.k8s.io", "roles"),
    ("bind", "rbac.authorization.k8s.io", "roles"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
    ("bind", "rbac.authorization.k8s.io", "clusterroles"),
    ("create", "rbac.authorization.k8s.io", "rolebindings"),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ("impersonate", "", "users"),
    ("impersonate", "", "serviceaccounts"),
    ("impersonate", "", "groups"),
    ("delete", "", "namespaces"),
    ("create", "", "namespaces"),
    ("create", "kopf.dev", "kopfpeerings"),
    ("delete", "kopf.dev", "kopfpeerings"),
    ("create", "kopf.dev", "clusterkopfpeerings"),
    ("delete", "kopf.dev", "clusterkopfpeerings"),
    ("delete", "*", "*"),
]


def render(release_namespace: str, scope: str, watched: str) -> list[dict[str, Any]]:
    """`helm template` of the chart in one RBAC scope, with its CRDs and hooks (the peering objects)."""
    flags = ["--set", f"rbac.scope={scope}"]
    if scope == "namespaces":
        flags += ["--set", f"watchNamespaces={{{watched}}}"]
    release = f"sec-{uuid.uuid4().hex[:6]}"  # the (Cluster)Roles are cluster-wide: one name per test
    result = helm(None, "template", release, str(CHART), "--namespace", release_namespace, "--include-crds", *flags)
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of_kind(documents: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] in kinds]


def new_namespace(kube: Kube, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name


# ---------------------------------------------------------------- Pod Security "restricted"


def chart_pod(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment's pod template as a Pod manifest."""
    template = of_kind(documents, "Deployment")[0]["spec"]["template"]
    metadata = {"name": f"operator-{uuid.uuid4().hex[:6]}", "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template["spec"])}


def container_context(pod: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], pod["spec"]["containers"][0]["securityContext"])


def escalating(pod: dict[str, Any]) -> None:
    del container_context(pod)["allowPrivilegeEscalation"]


def as_root(pod: dict[str, Any]) -> None:
    pod["spec"]["securityContext"].update(runAsNonRoot=False, runAsUser=0)


def keeping_capabilities(pod: dict[str, Any]) -> None:
    del container_context(pod)["capabilities"]


def unconfined(pod: dict[str, Any]) -> None:
    del pod["spec"]["securityContext"]["seccompProfile"]


# each weakening alone must be refused, with the check that names it
WEAKENED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "privilege escalation": (escalating, "allowPrivilegeEscalation != false"),
    "root": (as_root, "runAsNonRoot != true"),
    "capabilities": (keeping_capabilities, "unrestricted capabilities"),
    "seccomp": (unconfined, "seccompProfile"),
}


def create_pod(kube: Kube, namespace: str, pod: dict[str, Any]) -> client.V1Pod:
    return kube.core.create_namespaced_pod(namespace, cast(Any, pod))  # the client sends a plain dict as is


@pytest.mark.parametrize("scope", SCOPES)
def test_the_chart_pod_passes_pod_security_restricted(kube: Kube, scope: str) -> None:
    namespace = new_namespace(kube, "psa", RESTRICTED)
    documents = render(namespace, scope, namespace)
    pod = chart_pod(documents)
    context = container_context(pod)
    # not part of the restricted profile, so checked here rather than by the admission
    assert context["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532

    created = create_pod(kube, namespace, pod)
    assert created.metadata and created.metadata.uid
    # stored, and Pending for ever: no scheduler or kubelet runs, only admission is under test
    stored = kube.core.read_namespaced_pod(pod["metadata"]["name"], namespace)
    assert stored.status and stored.status.phase == "Pending"

    for what, (weaken, check) in WEAKENED.items():
        weakened = chart_pod(documents)
        weaken(weakened)
        with pytest.raises(client.ApiException) as refused:
            create_pod(kube, namespace, weakened)
        message = json.loads(refused.value.body or "{}").get("message", "")
        assert refused.value.status == 403, what
        assert 'violates PodSecurity "restricted:latest"' in message, what
        assert check in message, (what, message)


# ---------------------------------------------------------------- RBAC, as the chart's ServiceAccount


@dataclass
class Installed:
    """The chart's RBAC applied to the test cluster, and a kubeconfig that is its ServiceAccount."""

    release_namespace: str
    username: str
    kubeconfig: Path
    operator_env: dict[str, str]  # the chart's values for the mode variables of the operator
    peering: dict[str, Any]

    def api(self) -> client.ApiClient:
        return cast(client.ApiClient, config.new_client_from_config(str(self.kubeconfig)))  # type: ignore[no-untyped-call]


def install_rbac(plane: ControlPlane, kube: Kube, scope: str, watched: str, workdir: Path) -> Installed:
    release_namespace = new_namespace(kube, "rel")
    documents = render(release_namespace, scope, watched)
    crds = of_kind(documents, "CustomResourceDefinition")  # Kopf's peering CRDs, shipped by the chart
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(crds))
    plane.kubectl("wait", "--for=condition=Established", "crd", *[d["metadata"]["name"] for d in crds])
    applied = of_kind(documents, *RBAC_KINDS, *PEERING_KINDS)
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(applied))

    account = of_kind(documents, "ServiceAccount")[0]["metadata"]["name"]
    # a bound token of that ServiceAccount is exactly what the kubelet mounts into the chart's pod
    token = plane.kubectl("create", "token", account, "-n", release_namespace, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    kubeconfig = workdir / f"kubeconfig-{account}"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                **admin,
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": admin["clusters"][0]["name"], "user": account}}],
                "current-context": "sa",
            }
        )
    )
    env = of_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    # the variables that choose what is watched and how peering works, as the chart sets them
    modes = ("MILVUSOPS_NAMESPACES", "MILVUSOPS_STANDALONE", "MILVUSOPS_PEERING_")
    chart_env = {e["name"]: e["value"] for e in env if e["name"].startswith(modes) and "value" in e}
    return Installed(
        release_namespace,
        f"system:serviceaccount:{release_namespace}:{account}",
        kubeconfig,
        chart_env,
        of_kind(documents, *PEERING_KINDS)[0],
    )


def granted(api: client.ApiClient, namespace: str) -> set[Rule]:
    """Every (group, resource, verb) the caller may use in a namespace, minus what every user may do."""
    review = client.AuthorizationV1Api(api).create_self_subject_rules_review(
        client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=namespace))
    )
    assert review.status is not None
    found: set[Rule] = set()
    for rule in review.status.resource_rules:
        for group in rule.api_groups or []:
            for resource in rule.resources or []:
                found |= {(group, resource, verb) for verb in rule.verbs}
    # system:basic-user lets everyone ask who they are and what they may do
    return {r for r in found if not r[1].startswith("selfsubject")}


def allowed(api: client.ApiClient, namespace: str, verb: str, group: str, resource: str) -> bool:
    resource, _, subresource = resource.partition("/")
    attributes = client.V1ResourceAttributes(
        namespace=namespace, verb=verb, group=group, resource=resource, subresource=subresource or None
    )
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    )
    return review.status is not None and review.status.allowed


def peering_status(kube: Kube, peering: dict[str, Any]) -> dict[str, Any]:
    name = peering["metadata"]["name"]
    if peering["kind"] == "ClusterKopfPeering":
        body = kube.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
    else:
        namespace = peering["metadata"]["namespace"]
        body = kube.custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", name)
    return cast(dict[str, Any], cast(dict[str, Any], body).get("status") or {})


@pytest.mark.parametrize("scope", SCOPES)
def test_the_operator_works_with_only_the_chart_rbac(
    kube: Kube,
    control_plane: ControlPlane,
    milvus: MilvusServer,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    tmp_path: Path,
    scope: str,
) -> None:
    installed = install_rbac(control_plane, kube, scope, namespace, tmp_path)
    account = installed.api()
    whoami = client.AuthenticationV1Api(account).create_self_subject_review(client.V1SelfSubjectReview())
    # not the admin, or the test would prove nothing
    assert whoami.status and whoami.status.user_info and whoami.status.user_info.username == installed.username
    assert json.loads(installed.operator_env["MILVUSOPS_STANDALONE"]) is False  # the chart's default: peering on
    operator = start_operator(KUBECONFIG=str(installed.kubeconfig), **installed.operator_env)

    collection = new_collection(milvus, ["a", "b"])
    kube.create_secret(namespace, "milvus-token", {"token": milvus.root_token})
    kube.create_connection(namespace, "secured", {"uri": milvus.uri, "credentialsSecretRef": {"name": "milvus-token"}})
    spec = {
        "collectionName": collection,
        "connectionRef": {"name": "secured"},
        "state": "Released",
        "partitions": [{"name": "a", "state": "Loaded"}],
        "deletionPolicy": "Release",
    }
    kube.create(namespace, "guarded", spec)
    kube.wait_reason(namespace, "guarded", "InSync", timeout=120)
    assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "Loaded", "b": "NotLoad"}
    kube.wait_reason(namespace, "secured", "Connected", plural="milvusconnections")
    assert {"Loading", "InSync"} <= {e.reason for e in kube.events(namespace, "guarded")}
    # a MilvusAlias reads its target from the watch and writes its status with the same rules
    alias = {
        "alias": f"a_{collection}",
        "target": {"collectionRef": {"name": "guarded"}},
        "connectionRef": {"name": "secured"},
    }
    kube.create_alias(namespace, "guarded-alias", alias)
    kube.wait_reason(namespace, "guarded-alias", "InSync", plural="milvusaliases")
    # Kopf's keep-alive patches the peering object: the peers see this operator
    assert wait_for(lambda: peering_status(kube, installed.peering), 30, "operator listed in the peering object")

    # deletion patches the finalizer away after releasing (deletionPolicy Release)
    kube.delete(namespace, "guarded")
    wait_for(lambda: not kube.exists(namespace, "guarded"), 60, "guarded deleted")
    assert load_states(milvus, collection)["a"] == "NotLoad"
    log = operator.log().lower()
    # a refused call, or Kopf degrading itself (e.g. no CRD or Namespace watch) for lack of a permission
    assert "forbidden" not in log and "not enough permissions" not in log, log[-5000:]

    expected = SERVED_NAMESPACE | CLUSTER_WIDE[scope] | (NAMESPACED_PEERING if scope == "namespaces" else set())
    assert granted(account, namespace) == expected
    for verb, group, resource in NEVER:
        assert not allowed(account, namespace, verb, group, resource), (verb, group, resource)
    assert allowed(account, namespace, "get", "", "secrets")  # so the refusals above are not a broken identity
    elsewhere = new_namespace(kube, "other")
    if scope == "namespaces":
        # nothing namespaced outside the watched namespaces: not even Secrets by name
        assert granted(account, elsewhere) == CLUSTER_WIDE[scope]
        assert not allowed(account, elsewhere, "get", "", "secrets")
        assert not allowed(account, installed.release_namespace, "get", "", "secrets")
    else:
        # serving every namespace means reading Secrets by name in every namespace (documented)
        assert granted(account, elsewhere) == expected
