"""The test environment is made of real parts: a real API server (schema, CEL, watch) and a real Milvus."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from tests.e2e.helpers import Kube, new_collection, wait_for
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer
from tests.testenv.processes import Process, group_members

ROOT = Path(__file__).resolve().parents[3]


def test_kubectl_reports_pinned_kubernetes_version(control_plane: ControlPlane) -> None:
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.36.3"
    assert version["clientVersion"]["gitVersion"] == "v1.36.3"


def _manifest(namespace: str, spec: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: milvusops.dev/v1alpha1
        kind: MilvusCollection
        metadata: {{name: products, namespace: {namespace}}}
        spec:
        """) + textwrap.indent(textwrap.dedent(spec), "  ")


def test_schema_rejects_invalid_object_naming_the_field(control_plane: ControlPlane, namespace: str) -> None:
    bad = control_plane.kubectl("apply", "-f", "-", input=_manifest(namespace, "load: {replicas: 0}"), check=False)
    assert bad.returncode != 0
    assert "spec.load.replicas" in bad.stderr
    assert "should be greater than or equal to 1" in bad.stderr


def test_cel_rule_rejects_changing_an_immutable_field(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "-f", "-", input=_manifest(namespace, "collectionName: products"))
    changed = _manifest(namespace, "collectionName: other")
    result = control_plane.kubectl("apply", "-f", "-", input=changed, check=False)
    assert result.returncode != 0
    assert "spec.collectionName" in result.stderr
    assert "collectionName is immutable" in result.stderr


def test_watch_sees_an_update(kube: Kube, namespace: str) -> None:
    configmap = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"v": "1"})
    created = kube.core.create_namespaced_config_map(namespace, configmap)
    assert created.metadata is not None
    resource_version = created.metadata.resource_version
    seen: list[dict[str, Any]] = []

    def follow() -> None:
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        for event in stream.stream(  # type: ignore[no-untyped-call]
            kube.core.list_namespaced_config_map,
            namespace,
            resource_version=resource_version,
            timeout_seconds=30,
        ):
            seen.append({"type": event["type"], "data": event["object"].data})
            if event["type"] == "MODIFIED":
                stream.stop()  # type: ignore[no-untyped-call]

    follower = threading.Thread(target=follow)
    follower.start()
    kube.core.patch_namespaced_config_map("watched", namespace, {"data": {"v": "2"}})
    follower.join(timeout=40)
    assert {"type": "MODIFIED", "data": {"v": "2"}} in seen


def test_controller_manager_collects_garbage_and_deletes_namespaces(kube: Kube, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"))
    )
    assert owner.metadata is not None and owner.metadata.uid is not None
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="a", uid=owner.metadata.uid)
    owned = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="b", owner_references=[ref]))
    kube.core.create_namespaced_config_map(namespace, owned)
    kube.core.delete_namespaced_config_map("a", namespace)

    def collected() -> bool:
        return not [
            c for c in kube.core.list_namespaced_config_map(namespace).items if c.metadata and c.metadata.name == "b"
        ]

    wait_for(collected, 60, "owned ConfigMap collected")
    kube.core.delete_namespace(namespace)
    wait_for(lambda: not kube.namespace_exists(namespace), 60, "namespace gone")


def test_milvus_partition_load_and_release_change_load_state(milvus: MilvusServer) -> None:
    collection = new_collection(milvus, ["first", "second"])
    milvus_client = milvus.client()
    try:
        assert milvus_client.get_load_state(collection)["state"].name == "NotLoad"
        milvus_client.load_partitions(collection, ["first"])
        assert milvus_client.get_load_state(collection, "first")["state"].name == "Loaded"
        assert milvus_client.get_load_state(collection, "second")["state"].name == "NotLoad"
        # as observed on 2.3.5: the collection reads Loaded as soon as some partition is
        assert milvus_client.get_load_state(collection)["state"].name == "Loaded"
        milvus_client.release_partitions(collection, ["first"])
        assert milvus_client.get_load_state(collection, "first")["state"].name == "NotLoad"
        assert milvus_client.get_load_state(collection)["state"].name == "NotLoad"
        assert milvus_client.get_server_version().startswith("v2.3.5")
    finally:
        milvus_client.close()


def test_process_group_stop_kills_children_that_ignore_sigterm(tmp_path: Path) -> None:
    # a child that ignores SIGTERM, like milvus's server under its wrapper
    script = "trap '' TERM; (trap '' TERM; sleep 300) & sleep 300"
    process = Process("stubborn", ["bash", "-c", script], tmp_path / "log")
    wait_for(lambda: len(group_members(process.pgid)) >= 2, 10, "child started")
    process.stop(grace=1)
    assert group_members(process.pgid) == []


SERVER_FIXTURE = """
import pytest
from tests.testenv.processes import Process


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    # a wrapper whose own child would outlive it, like milvus-server and its milvus
    process = Process("server", ["sh", "-c", "sleep 600 & wait"], tmp_path_factory.mktemp("s") / "log")
    print(f"GROUP {process.pgid}", flush=True)
    yield process
    process.stop(grace=2)


def test_waits(server):
    import time

    time.sleep(120)
"""


def test_a_terminated_test_run_still_stops_the_servers_it_started(tmp_path: Path) -> None:
    (tmp_path / "test_server.py").write_text(SERVER_FIXTURE)
    argv = [sys.executable, "-m", "pytest", "-s", "-p", "tests.testenv.stop_on_sigterm", "-p", "no:cacheprovider"]
    argv += ["--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_server.py")]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert run.stdout is not None
    group = 0
    for line in run.stdout:  # pytest prints the file's name first, on the same line
        if "GROUP " in line:
            group = int(line.split("GROUP ")[1].split()[0])
            break
    assert group and group_members(group), "the server runs, with its child"
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=60)
    wait_for(lambda: not group_members(group), 20, "the server's processes gone", interval=0.2)
