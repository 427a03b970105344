"""Shards on the real API server: each serves only the MilvusCollections its label selector matches.

The operators run with the sharding variables the chart renders for `sharding.shards={shard1}`: the main
Deployment (`!key`, serves MilvusConnections, peering name `default`) and the shard1 Deployment (`key=shard1`).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from milvusops import FINALIZER
from milvusops.kube.sharding import SHARD_KEY
from milvusops.runtime.collection_worker import STOPPED_SERVING
from tests.e2e.helpers import (
    GROUP,
    PAUSED,
    PLURAL,
    RESUMED,
    VERSION,
    Kube,
    OperatorProcess,
    load_states,
    new_collection,
    wait_for,
)
from tests.testenv import gobins, manifests
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer
from tests.unit.kube.test_sharding import INVALID, VALID

CHART = Path(__file__).resolve().parents[3] / "charts" / "milvusops"
SHARDING_ENV = ("MILVUSOPS_WATCH_LABEL_SELECTOR", "MILVUSOPS_SERVE_CONNECTIONS", "MILVUSOPS_PEERING_NAME")
LOADS = "milvusops_load_release_calls_total"
CONNECTIONS = "milvusconnections"


@dataclass
class Shards:
    main: OperatorProcess  # unlabelled MilvusCollections and every MilvusConnection
    shard1: OperatorProcess
    standby: OperatorProcess | None = None  # a second replica of shard1, lower priority


def _rendered(namespace: str) -> list[dict[str, Any]]:
    argv = [str(gobins.build("helm")), "template", "r", str(CHART), "--namespace", namespace]
    argv += ["--set", "sharding.shards={shard1}", "--set", "rbac.scope=namespaces"]
    argv += ["--set", f"watchNamespaces={{{namespace}}}"]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=180).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _chart_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Deployment name -> its sharding variables, as the chart sets them."""
    found = {}
    for doc in docs:
        if doc["kind"] == "Deployment":
            env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
            found[doc["metadata"]["name"]] = {e["name"]: e["value"] for e in env if e["name"] in SHARDING_ENV}
    return found


def _install_peering(plane: ControlPlane, docs: list[dict[str, Any]]) -> None:
    manifests.apply_kopf_crds(plane)
    peerings = [doc for doc in docs if doc["kind"] == "KopfPeering"]
    assert sorted(doc["metadata"]["name"] for doc in peerings) == ["default", "r-milvusops-shard1"]
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(peerings))


@pytest.fixture
def peered_shards(
    control_plane: ControlPlane, namespace: str, start_operator: Callable[..., OperatorProcess]
) -> Shards:
    """Both shards with Kopf peering as the chart sets it, plus a standby replica of shard1.

    The main shard has the lowest priority of all: only its own peering name keeps it from pausing.
    """
    docs = _rendered(namespace)
    _install_peering(control_plane, docs)
    env = _chart_env(docs)
    peered = {"MILVUSOPS_STANDALONE": "false"}
    standby = start_operator(**env["r-milvusops-shard1"], **peered, MILVUSOPS_PEERING_PRIORITY="100")
    wait_for(lambda: RESUMED in standby.log(), 30, "the lone shard1 replica resumes")
    shard1 = start_operator(**env["r-milvusops-shard1"], **peered, MILVUSOPS_PEERING_PRIORITY="200")
    wait_for(lambda: PAUSED in standby.log(), 30, "the lower priority shard1 replica pauses")
    main = start_operator(**env["r-milvusops"], **peered, MILVUSOPS_PEERING_PRIORITY="50")
    wait_for(lambda: RESUMED in main.log(), 30, "the main shard resumes")
    return Shards(main, shard1, standby)


@pytest.fixture
def shards(namespace: str, start_operator: Callable[..., OperatorProcess]) -> Shards:
    """Both shards, one replica each, without peering."""
    env = _chart_env(_rendered(namespace))
    return Shards(start_operator(**env["r-milvusops"]), start_operator(**env["r-milvusops-shard1"]))


def _served(operator: OperatorProcess) -> float:
    """How many MilvusCollections this process currently reports on (its daemons' resource series)."""
    return operator.metric("milvusops_resources")


def test_each_shard_serves_its_own_and_a_relabelled_resource_moves(
    kube: Kube, namespace: str, milvus: MilvusServer, peered_shards: Shards
) -> None:
    main, shard1, standby = peered_shards.main, peered_shards.shard1, peered_shards.standby
    assert standby is not None
    labelled, unlabelled = new_collection(milvus, ["a", "b"]), new_collection(milvus, ["x"])
    kube.create(
        namespace,
        "one",
        {"collectionName": labelled, "partitions": [{"name": "a", "state": "Loaded"}]},
        labels={SHARD_KEY: "shard1"},
    )
    kube.create(namespace, "main", {"collectionName": unlabelled, "state": "Loaded"})
    kube.create(namespace, "stray", {"collectionName": unlabelled}, labels={SHARD_KEY: "shard2"})  # no such shard
    kube.wait_in_sync(namespace, "one", 1)
    kube.wait_in_sync(namespace, "main", 1)
    assert load_states(milvus, labelled) == {"_default": "NotLoad", "a": "Loaded", "b": "NotLoad"}
    assert load_states(milvus, unlabelled) == {"_default": "Loaded", "x": "Loaded"}
    # each load was made by its own shard, once; the standby replica of shard1 did nothing
    assert (main.metric(LOADS), shard1.metric(LOADS)) == (1, 1)
    assert (_served(main), _served(shard1)) == (1, 1)
    assert standby.metric("milvusops_reconciles_total") == 0 and _served(standby) == 0
    # a label no shard selects: no finalizer, no status, nobody acts
    stray = kube.get(namespace, "stray")
    assert FINALIZER not in (stray["metadata"].get("finalizers") or [])
    assert "conditions" not in stray["status"]  # only the schema's defaults: never observed

    kube.patch(namespace, "main", {"metadata": {"labels": {SHARD_KEY: "shard1"}}})
    # for the main shard's watch the relabelled object is DELETED: its daemon must end, not linger
    wait_for(lambda: f"{STOPPED_SERVING} resource={namespace}/main" in main.log(), 30, "the main shard lets go")
    wait_for(lambda: _served(shard1) == 2, 30, "shard1 serves the relabelled resource")
    assert _served(main) == 0
    passes_before = main.metric("milvusops_reconciles_total")
    kube.patch(namespace, "main", {"spec": {"state": "Released"}})
    kube.wait_in_sync(namespace, "main", 2)
    assert load_states(milvus, unlabelled) == {"_default": "NotLoad", "x": "NotLoad"}
    assert (main.metric(LOADS), shard1.metric(LOADS)) == (1, 2)  # the release came from shard1
    # shard1 passes over both resources at least twice (resync 5 s): the old shard made none meanwhile
    shard1_passes = shard1.metric("milvusops_reconciles_total")
    wait_for(lambda: shard1.metric("milvusops_reconciles_total") >= shard1_passes + 4, 30, "two shard1 resyncs")
    assert main.metric("milvusops_reconciles_total") == passes_before

    kube.patch(namespace, "main", {"metadata": {"labels": {SHARD_KEY: None}}})  # back to the main shard
    wait_for(lambda: _served(main) == 1 and _served(shard1) == 1, 30, "the main shard serves it again")
    # separate peering names: the main shard, lowest priority of all, never paused for shard1's replicas
    assert PAUSED not in main.log()
    assert standby.metric("milvusops_reconciles_total") == 0


def test_deletion_works_per_shard_and_a_connection_waits_for_every_shard(
    kube: Kube, namespace: str, milvus: MilvusServer, shards: Shards
) -> None:
    kube.create_secret(namespace, "token", {"token": milvus.root_token})
    kube.create_connection(namespace, "conn", {"uri": milvus.uri, "credentialsSecretRef": {"name": "token"}})
    labelled, unlabelled = new_collection(milvus, ["a"]), new_collection(milvus, ["x"])
    spec = {"state": "Loaded", "deletionPolicy": "Release"}
    one = {**spec, "collectionName": labelled, "connectionRef": {"name": "conn"}}
    kube.create(namespace, "one", one, labels={SHARD_KEY: "shard1"})
    kube.create(namespace, "main", {**spec, "collectionName": unlabelled})
    kube.wait_in_sync(namespace, "one", 1)
    kube.wait_in_sync(namespace, "main", 1)
    kube.wait_reason(namespace, "conn", "Connected", plural=CONNECTIONS)  # served by the main shard

    # the main shard owns the connection's finalizer but does not watch `one`: it must ask the API server
    kube.delete(namespace, "conn", plural=CONNECTIONS)
    wait_for(
        lambda: any(e.reason == "InUse" and "still used by: one" in e.message for e in kube.events(namespace, "conn")),
        30,
        "the connection waits for shard1's collection",
    )
    assert kube.exists(namespace, "conn", plural=CONNECTIONS)

    kube.delete(namespace, "one")
    wait_for(lambda: not kube.exists(namespace, "one"), 60, "shard1 releases and removes its finalizer")
    assert load_states(milvus, labelled) == {"_default": "NotLoad", "a": "NotLoad"}
    assert shards.shard1.metric(LOADS) == 2  # its load, then its release on deletion
    wait_for(lambda: not kube.exists(namespace, "conn", plural=CONNECTIONS), 30, "the unused connection goes")

    kube.delete(namespace, "main")
    wait_for(lambda: not kube.exists(namespace, "main"), 60, "the main shard releases and removes its finalizer")
    assert load_states(milvus, unlabelled) == {"_default": "NotLoad", "x": "NotLoad"}
    assert shards.main.metric(LOADS) == 2


def test_the_startup_check_agrees_with_the_api_server(kube: Kube, namespace: str) -> None:
    def accepted(selector: str) -> bool:
        try:
            kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, label_selector=selector)
        except client.ApiException as exc:
            assert exc.status == 400, exc
            return False
        return True

    assert {s: accepted(s) for s in VALID} == dict.fromkeys(VALID, True)
    assert {s: accepted(s) for s in INVALID} == dict.fromkeys(INVALID, False)


def test_a_mistyped_selector_stops_the_operator_at_startup(tmp_path: Path) -> None:
    environment = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none")}
    environment["MILVUSOPS_WATCH_LABEL_SELECTOR"] = f"{SHARD_KEY} in shard1"
    argv = [sys.executable, "-m", "milvusops"]
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    expected = "milvusops: invalid configuration: MILVUSOPS_WATCH_LABEL_SELECTOR: Value error, not a Kubernetes label"
    assert result.stderr.startswith(f"{expected} selector at character 28 of '{SHARD_KEY} in shard1': expected ','")
