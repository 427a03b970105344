"""What a user types and reads with kubectl, checked against the real API server (no operator, no Milvus)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.testenv.demo import EXAMPLES_APPLY_ARGS, LOAD_ONE_PARTITION, LOAD_ONE_PARTITION_ARGS, NAMESPACE
from tests.testenv.kube import ControlPlane

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "02-partitions.yaml"


def _spec(control_plane: ControlPlane, namespace: str) -> dict[str, Any]:
    body = json.loads(control_plane.kubectl("get", "mcol", "-n", namespace, "catalog", "-o", "json").stdout)
    return dict(body["spec"])


def _partitions(control_plane: ControlPlane, namespace: str) -> dict[str, str]:
    return {item["name"]: item["state"] for item in _spec(control_plane, namespace).get("partitions", [])}


def _load_archive(control_plane: ControlPlane, namespace: str, *args: str) -> None:
    """The command the demo prints and docs/api.md shows, in the test's namespace."""
    manifest = LOAD_ONE_PARTITION.replace(f"namespace: {NAMESPACE}", f"namespace: {namespace}")
    assert manifest != LOAD_ONE_PARTITION
    control_plane.kubectl(*(args or LOAD_ONE_PARTITION_ARGS), input=manifest)


def test_documented_apply_changes_one_partition_where_a_merge_patch_drops_the_others(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl(*EXAMPLES_APPLY_ARGS, "-n", namespace, "-f", str(EXAMPLE))  # as the demo applies them
    assert _partitions(control_plane, namespace) == {"recent": "Loaded", "archive": "Released"}

    # why the command carries --force-conflicts: the examples' apply set archive's state
    without_force = [arg for arg in LOAD_ONE_PARTITION_ARGS if arg != "--force-conflicts"]
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _load_archive(control_plane, namespace, *without_force)
    assert "conflict" in refused.value.stderr
    _load_archive(control_plane, namespace)
    assert _partitions(control_plane, namespace) == {"recent": "Loaded", "archive": "Loaded"}
    assert _spec(control_plane, namespace)["state"] == "Released"

    # the trap the demo used to suggest: a merge patch replaces the whole list, so recent is gone
    patch = '{"spec":{"partitions":[{"name":"archive","state":"Released"}]}}'
    control_plane.kubectl("patch", "mcol", "-n", namespace, "catalog", "--type", "merge", "-p", patch)
    assert _partitions(control_plane, namespace) == {"archive": "Released"}


def test_partial_apply_on_a_client_side_applied_object_drops_the_others(
    control_plane: ControlPlane, namespace: str
) -> None:
    # plain `kubectl apply`: the next server-side apply takes over every field it set, and drops what it omits
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    _load_archive(control_plane, namespace)
    assert _partitions(control_plane, namespace) == {"archive": "Loaded"}

    # the way out that docs/api.md gives: apply the full manifest server-side once, then the partial one
    control_plane.kubectl("delete", "mcol", "-n", namespace, "catalog")
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    control_plane.kubectl(*EXAMPLES_APPLY_ARGS, "-n", namespace, "-f", str(EXAMPLE))
    _load_archive(control_plane, namespace)
    assert _partitions(control_plane, namespace) == {"recent": "Loaded", "archive": "Loaded"}


def test_desired_column_counts_partitions_desired_loaded(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    # what the operator writes for catalog: one of _default, recent, archive desired Loaded, none loaded yet
    status: dict[str, Any] = {"status": {"loaded": "0/3", "desiredLoaded": "1/3"}}
    control_plane.kubectl(
        "patch", "mcol", "-n", namespace, "catalog", "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )
    table = control_plane.kubectl("get", "mcol", "-n", namespace, "catalog").stdout.splitlines()
    assert table[0].split() == ["NAME", "COLLECTION", "DESIRED", "LOADED", "READY", "REASON", "AGE"]
    header = table[0]
    desired = table[1][header.index("DESIRED") : header.index("LOADED")].strip()
    assert desired == "1/3"  # not spec.state, which reads "Released"
    loaded = table[1][header.index("LOADED") : header.index("READY")].strip()
    assert loaded == "0/3"


# the names of the Milvus Operator's CRD (zilliztech/milvus-operator at 018d757,
# config/crd/bases/milvus.io_milvuses.yaml: kind Milvus, plural milvuses, singular milvus, short name mi,
# no category); its 350 KB schema left out
MILVUS_OPERATOR_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: milvuses.milvus.io}
spec:
  group: milvus.io
  scope: Namespaced
  names: {plural: milvuses, singular: milvus, kind: Milvus, shortNames: [mi]}
  versions:
    - name: v1beta1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def test_kubectl_get_milvus_stays_the_milvus_operators(control_plane: ControlPlane, namespace: str) -> None:
    """kubectl expands categories before resource names: a category `milvus` of ours would take the command
    that every Milvus Operator user types (`kubectl get milvus my-release`). Ours is `milvusops`."""
    control_plane.kubectl("apply", "-f", "-", input=MILVUS_OPERATOR_CRD)
    try:
        control_plane.kubectl("wait", "--for=condition=Established", "crd/milvuses.milvus.io")
        control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
        release = "apiVersion: milvus.io/v1beta1\nkind: Milvus\nmetadata: {name: my-release}\n"
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=release)

        theirs = control_plane.kubectl("get", "milvus", "-n", namespace, "-o", "name").stdout.split()
        assert theirs == ["milvus.milvus.io/my-release"]
        one = control_plane.kubectl("get", "milvus", "my-release", "-n", namespace, "-o", "name").stdout.split()
        assert one == ["milvus.milvus.io/my-release"]
        ours = control_plane.kubectl("get", "milvusops", "-n", namespace, "-o", "name").stdout.split()
        assert ours == ["milvuscollection.milvusops.dev/catalog"]
    finally:
        control_plane.kubectl("delete", "crd", "milvuses.milvus.io", "--wait=false")
