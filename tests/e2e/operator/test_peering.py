"""Several replicas with Kopf peering: only the highest priority acts; when it dies or stops, another takes over."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from milvusops.runtime.settings import Settings
from tests.conftest import Figures
from tests.e2e.helpers import PAUSED, RESUMED, Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv import gobins, manifests
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

CHART = Path(__file__).resolve().parents[3] / "charts" / "milvusops"
DEFAULT_LIFETIME = int(Settings.model_fields["peering_lifetime_seconds"].default)
LIFETIME = 10  # the shortest the settings allow: a crashed replica's record blocks the standby this long at most
FLIPPED = {"partitions": [{"name": "a", "state": "Released"}, {"name": "b", "state": "Loaded"}]}


def helm_template(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [str(gobins.build("helm")), "template", "milvusops", str(CHART), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=180)


@pytest.fixture
def peering(control_plane: ControlPlane, namespace: str) -> str:
    """Kopf's peering CRDs and the KopfPeering `default` in the test's namespace, as the chart ships them."""
    values = ["--set", "rbac.scope=namespaces", "--set", f"watchNamespaces={{{namespace}}}"]
    rendered = helm_template("--namespace", namespace, "--show-only", "templates/peering.yaml", *values).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    manifests.apply_kopf_crds(control_plane)
    objects = [doc for doc in docs if doc["kind"] == "KopfPeering"]
    assert len(objects) == 1
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    return namespace


@pytest.fixture
def replicas(peering: str, start_operator: Callable[..., OperatorProcess]) -> tuple[OperatorProcess, OperatorProcess]:
    """(active, standby): the standby starts alone and resumes, then pauses for the higher priority."""
    peered = {"MILVUSOPS_STANDALONE": "false", "MILVUSOPS_PEERING_LIFETIME_SECONDS": str(LIFETIME)}
    standby = start_operator(**peered, MILVUSOPS_PEERING_PRIORITY="100")
    wait_for(lambda: RESUMED in standby.log(), 30, "the lone replica resumes")
    active = start_operator(**peered, MILVUSOPS_PEERING_PRIORITY="200")
    wait_for(lambda: PAUSED in standby.log(), 30, "the lower priority replica pauses")
    assert PAUSED not in active.log()
    return active, standby


def _create_flip(kube: Kube, namespace: str, milvus: MilvusServer) -> str:
    """MilvusCollection `flip`: partition a Loaded, b Released (FLIPPED swaps them)."""
    collection = new_collection(milvus, ["a", "b"])
    kube.create(namespace, "flip", {"collectionName": collection, "partitions": [{"name": "a", "state": "Loaded"}]})
    return collection


def _activity(operator: OperatorProcess) -> dict[str, float]:
    return {
        name: operator.metric(name)
        for name in (
            "milvusops_reconciles_total",
            "milvusops_milvus_call_duration_seconds_count",
            "milvusops_load_release_calls_total",
        )
    }


def _wait_resumed(standby: OperatorProcess, timeout: float) -> None:
    """The standby logs a second resume (the first was when it ran alone)."""
    wait_for(lambda: standby.log().count(RESUMED) == 2, timeout, "the standby resumes")


def test_one_replica_acts_and_the_standby_takes_over_after_a_crash(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    replicas: tuple[OperatorProcess, OperatorProcess],
    figures: Figures,
) -> None:
    active, standby = replicas
    partitioned, whole = _create_flip(kube, namespace, milvus), new_collection(milvus, ["x"])
    kube.create(namespace, "whole", {"collectionName": whole, "state": "Loaded"})
    kube.wait_in_sync(namespace, "flip", 1, 90)
    kube.wait_in_sync(namespace, "whole", 1, 90)
    assert load_states(milvus, partitioned) == {"_default": "NotLoad", "a": "Loaded", "b": "NotLoad"}
    assert load_states(milvus, whole) == {"_default": "Loaded", "x": "Loaded"}
    acted = _activity(active)
    assert acted["milvusops_reconciles_total"] >= 2 and acted["milvusops_load_release_calls_total"] == 2, acted
    assert set(_activity(standby).values()) == {0}, _activity(standby)

    killed = time.monotonic()
    active.kill()
    kube.patch(namespace, "flip", {"spec": FLIPPED})
    # the dead replica's record blocks the standby until it expires: Kopf renews it 5-10 s before that
    _wait_resumed(standby, LIFETIME + 30)
    resumed = time.monotonic() - killed
    kube.wait_in_sync(namespace, "flip", 2, 60)
    converged = time.monotonic() - killed
    assert load_states(milvus, partitioned) == {"_default": "NotLoad", "a": "NotLoad", "b": "Loaded"}
    assert load_states(milvus, whole) == {"_default": "Loaded", "x": "Loaded"}
    assert standby.metric("milvusops_load_release_calls_total") == 2  # release a, load b: nothing else redone
    assert 4 <= resumed <= LIFETIME + 5, resumed
    figure = f"standby resumed {resumed:.1f} s, change applied {converged:.1f} s after SIGKILL (lifetime {LIFETIME} s)"
    figures.record("two replicas, active one SIGKILLed", figure)


def test_graceful_stop_hands_over_at_once(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    replicas: tuple[OperatorProcess, OperatorProcess],
    figures: Figures,
) -> None:
    active, standby = replicas
    collection = _create_flip(kube, namespace, milvus)
    kube.wait_in_sync(namespace, "flip", 1, 90)
    assert active.metric("milvusops_load_release_calls_total") == 1
    assert set(_activity(standby).values()) == {0}, _activity(standby)

    stopping = time.monotonic()
    # SIGTERM and wait for the exit in the background, to time the standby against the signal
    stopper = threading.Thread(target=active.stop)
    stopper.start()
    _wait_resumed(standby, DEFAULT_LIFETIME)
    resumed = time.monotonic() - stopping
    kube.patch(namespace, "flip", {"spec": FLIPPED})
    kube.wait_in_sync(namespace, "flip", 2, 60)
    converged = time.monotonic() - stopping
    stopper.join()
    exited = time.monotonic() - stopping
    assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "NotLoad", "b": "Loaded"}
    assert standby.metric("milvusops_load_release_calls_total") == 2
    # the stopping replica removes its record: no wait for a lifetime, not even the shortest
    assert resumed < LIFETIME, resumed
    figure = (
        f"standby resumed {resumed:.1f} s after SIGTERM, the change made then was applied at {converged:.1f} s"
        f" (the stopped replica exited after {exited:.1f} s)"
    )
    figures.record("two replicas, active one stopped (SIGTERM)", figure)


def test_chart_runs_several_replicas_only_with_peering() -> None:
    docs = [doc for doc in yaml.safe_load_all(helm_template("--set", "replicaCount=3").stdout) if doc]
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")["spec"]
    assert deployment["replicas"] == 3
    # the surge pod stands by while the old ones run; one keeps acting until the rollout stops it
    assert deployment["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    env = {item["name"]: item.get("value") for item in deployment["template"]["spec"]["containers"][0]["env"]}
    assert env["MILVUSOPS_STANDALONE"] == "false"
    assert env["MILVUSOPS_PEERING_LIFETIME_SECONDS"] == str(DEFAULT_LIFETIME)
    assert "MILVUSOPS_PEERING_PRIORITY" not in env  # each replica draws its own

    refused = helm_template("--set", "replicaCount=2", "--set", "peering.enabled=false", check=False)
    assert refused.returncode != 0
    assert "replicaCount > 1 needs peering.enabled=true" in refused.stderr
