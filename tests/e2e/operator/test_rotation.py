"""A Secret rotated while a connection's collections are deleted (issue 29, items 5 and 6).

Each rotation gives the connection a new token, so the operator replaces its client while releases are
queued on the old one. Before the fix, the old client's executor was shut down under those callers
("cannot schedule new futures after shutdown"), reported as an unclassified MilvusError, and a deletion
gave up on it at once: the finalizer removed with ReleaseSkipped and the collection left loaded.
"""

from __future__ import annotations

import threading
import time
import uuid

import grpc
from pymilvus import MilvusClient, MilvusException

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer

RESOURCES = 12
ROTATION_SECONDS = 0.3  # how often the Secret's token changes: several times within the releases


def second_identity(milvus: MilvusServer) -> str:
    """A token of a new user with the admin role, once Milvus honours the grant (seconds, see security.md)."""
    user, password = f"rotor_{uuid.uuid4().hex[:8]}", "Rotor-pass-1"
    root = milvus.client()
    try:
        root.create_user(user, password)
        root.grant_role(user, "admin")
    finally:
        root.close()
    token = f"{user}:{password}"
    probe = new_collection(milvus, ["a"])

    def granted() -> bool:
        as_user = MilvusClient(uri=milvus.uri, token=token, timeout=5)
        try:
            as_user.load_collection(probe, timeout=30)
            return True
        except (MilvusException, grpc.RpcError):  # PermissionDenied (raw, from pymilvus 3.0.2) until the grant applies
            return False
        finally:
            as_user.close()

    wait_for(granted, 120, "the admin role granted to the second user", interval=1)
    return token


def test_deletions_during_secret_rotations_release_every_collection(
    kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess, figures: Figures
) -> None:
    tokens = (milvus.root_token, second_identity(milvus))
    collections = [new_collection(milvus, ["a"]) for _ in range(RESOURCES)]
    kube.create_secret(namespace, "rotating", {"token": tokens[0]})
    kube.create_connection(namespace, "rotating", {"uri": milvus.uri, "credentialsSecretRef": {"name": "rotating"}})
    names = [f"r{i}" for i in range(RESOURCES)]
    for name, collection in zip(names, collections, strict=True):
        spec = {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "rotating"}}
        kube.create(namespace, name, {**spec, "deletionPolicy": "Release"})
    for name in names:
        kube.wait_reason(namespace, name, "InSync", timeout=120)
    assert all(set(load_states(milvus, c).values()) == {"Loaded"} for c in collections)

    stop, rotations, pending_at_rotation = threading.Event(), [0], []

    def rotate() -> None:
        while not stop.wait(ROTATION_SECONDS):
            rotations[0] += 1
            token = tokens[rotations[0] % 2]
            kube.core.patch_namespaced_secret("rotating", namespace, {"stringData": {"token": token}})
            pending_at_rotation.append(sum(kube.exists(namespace, name) for name in names))

    rotator = threading.Thread(target=rotate, daemon=True)
    rotator.start()
    try:
        wait_for(lambda: rotations[0] >= 2, 10, "two rotations before the deletions")
        started = time.monotonic()
        for name in names:
            kube.delete(namespace, name)
        wait_for(lambda: not any(kube.exists(namespace, name) for name in names), 120, "every resource deleted")
    finally:
        stop.set()
        rotator.join(timeout=10)
    # the rotations did overlap the deletions: some came while resources were still waiting for their release
    overlapping = sum(1 for pending in pending_at_rotation if pending)
    assert overlapping >= 2, pending_at_rotation
    figures.record(
        f"Secret rotated during {RESOURCES} deletions",
        f"all gone {time.monotonic() - started:.1f} s after the deletes; {overlapping} rotations with some pending",
    )

    skipped = [e.message for name in names for e in kube.events(namespace, name) if e.reason == "ReleaseSkipped"]
    assert skipped == []
    states = {c: load_states(milvus, c) for c in collections}
    assert all(set(s.values()) == {"NotLoad"} for s in states.values()), states
    assert "cannot schedule new futures" not in operator.log()
