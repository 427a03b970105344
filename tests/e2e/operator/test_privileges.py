"""Milvus privileges granted while the operator already talks to Milvus as that user (item 12 of issue 29)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv.milvus import MilvusServer

RESYNC = 10.0  # seconds, as on the real parts where a grant took 110 s to be honoured
MARGIN = 5.0  # seconds: a pass's own calls and the status write, on a shared 2-core machine


def _new_user(milvus: MilvusServer) -> tuple[str, str]:
    user, password = f"u{secrets.token_hex(4)}", secrets.token_hex(12)
    root = milvus.client()
    try:
        root.create_user(user, password)  # no role: Milvus lets it connect but not load
    finally:
        root.close()
    return user, password


def _grant_admin(milvus: MilvusServer, user: str) -> None:
    root = milvus.client()
    try:
        root.grant_role(user, "admin")
    finally:
        root.close()


# not strict: it passes on a fresh Milvus, and fails after the rest of the suite has run on it
def test_a_privilege_granted_after_permission_denied_is_honoured_at_the_next_retry(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    start_operator(MILVUSOPS_RESYNC_SECONDS=str(RESYNC))
    collection = new_collection(milvus, ["a"])
    user, password = _new_user(milvus)
    kube.create_secret(namespace, "tenant", {"token": f"{user}:{password}"})
    kube.create_connection(namespace, "tenant", {"uri": milvus.uri, "credentialsSecretRef": {"name": "tenant"}})
    spec = {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "tenant"}}
    kube.create(namespace, "denied", spec)
    ready = kube.wait_reason(namespace, "denied", "PermissionDenied")
    assert "PrivilegeLoad" in ready["message"] and user in ready["message"], ready

    _grant_admin(milvus, user)
    granted = time.monotonic()
    # the first load that Milvus accepts: the collection leaves NotLoad (asked as root, every 0.25 s)
    wait_for(lambda: _load_sent(milvus, collection), RESYNC + MARGIN, "a load accepted after the grant")
    seconds = time.monotonic() - granted
    figures.record("item 12: grant to first accepted load (resync 10 s)", f"{seconds:.1f} s")
    kube.wait_reason(namespace, "denied", "InSync", timeout=30)
    assert set(load_states(milvus, collection).values()) == {"Loaded"}


def _load_sent(milvus: MilvusServer, collection: str) -> bool:
    return set(load_states(milvus, collection).values()) != {"NotLoad"}


# the sequence seen on real parts; in the full suite it failed in one run of two, so not strict either
def test_a_privilege_granted_just_before_the_connection_is_created_is_honoured_within_one_retry(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    start_operator: Callable[..., OperatorProcess],
    figures: Figures,
) -> None:
    """The sequence seen on real parts: user, grant, then Secret, MilvusConnection and MilvusCollection."""
    start_operator(MILVUSOPS_RESYNC_SECONDS=str(RESYNC))
    collection = new_collection(milvus, ["a"])
    user, password = _new_user(milvus)
    _grant_admin(milvus, user)
    created = time.monotonic()
    kube.create_secret(namespace, "tenant", {"token": f"{user}:{password}"})
    kube.create_connection(namespace, "tenant", {"uri": milvus.uri, "credentialsSecretRef": {"name": "tenant"}})
    spec = {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "tenant"}}
    kube.create(namespace, "granted", spec)
    wait_for(lambda: _load_sent(milvus, collection), RESYNC + MARGIN, "a load accepted")
    seconds = time.monotonic() - created
    figures.record(
        "item 12: grant, then connection: first accepted load after creation (resync 10 s)", f"{seconds:.1f} s"
    )
    kube.wait_reason(namespace, "granted", "InSync", timeout=30)
