"""Benchmarks through a MilvusConnection (a Secret and a connection to the same Milvus) instead of the
operator's default connection, and a flapping connection status beside a steady window.

Multi-tenant installs reach Milvus this way: the pass resolves the connection and its Secret, and the
connection's own status writes reach the operator as events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.e2e.helpers import GROUP, VERSION, Kube, wait_for
from tests.testenv.milvus import Server

CONNECTIONS = "milvusconnections"
NAME = "bench"


def create_connection(kube: Kube, namespace: str, milvus: Server, name: str = NAME) -> str:
    """A Secret holding the root token and a MilvusConnection to `milvus`, Connected; its name for connectionRef."""
    kube.create_secret(namespace, f"{name}-token", {"token": milvus.root_token})
    spec = {"uri": milvus.uri, "credentialsSecretRef": {"name": f"{name}-token", "key": "token"}}
    kube.create_connection(namespace, name, spec)
    kube.wait_reason(namespace, name, "Connected", plural=CONNECTIONS)
    return name


def ready_conditions(kube: Kube, namespace: str, name: str, ready: bool) -> list[dict[str, Any]]:
    """The connection's conditions with Ready set as a connection check would set it."""
    conditions = [dict(c) for c in (kube.get(namespace, name, CONNECTIONS).get("status") or {}).get("conditions") or []]
    for condition in conditions:
        if condition.get("type") == "Ready":
            condition["status"] = "True" if ready else "False"
            condition["reason"] = "Connected" if ready else "MilvusUnavailable"
            condition["message"] = "" if ready else "bench: a flap of the connection's status"
    return conditions


def flap(kube: Kube, namespace: str, name: str, down_seconds: float = 5.0) -> None:
    """Ready=False, then Ready=True again: what a Milvus that is briefly away does to the connection's status."""
    for ready in (False, True):
        status = {"conditions": ready_conditions(kube, namespace, name, ready)}
        kube.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, CONNECTIONS, name, {"status": status}
        )
        if not ready:
            time.sleep(down_seconds)  # the outage itself, not a wait for a result
    wait_for(lambda: kube.condition(namespace, name, plural=CONNECTIONS).get("status") == "True", 60, "Ready again")


@contextmanager
def flapping(kube: Kube, namespace: str, name: str, every: float) -> Iterator[list[float]]:
    """Flaps the connection's status every `every` seconds while the block runs; yields the flaps' start times."""
    stop = threading.Event()
    flaps: list[float] = []

    def run() -> None:
        while not stop.wait(every):
            flaps.append(time.perf_counter())
            flap(kube, namespace, name)

    thread = threading.Thread(target=run, name="flapper", daemon=True)
    thread.start()
    try:
        yield flaps
    finally:
        stop.set()
        thread.join(timeout=120)
