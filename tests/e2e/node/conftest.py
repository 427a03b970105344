"""A real node (kubelet, containerd, runc, CNI, kube-proxy, kube-scheduler) and its own control plane.

Started once per test session, and only when a test in this folder asks for it (the whole folder runs on
one worker: see tests/testenv/worker_scheduling.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Figures
from tests.testenv import gobins, node
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer


@pytest.fixture(scope="session")
def pod_plane(binaries: gobins.Binaries, workdir: Path) -> Iterator[ControlPlane]:
    """A control plane on this machine's own address: a pod cannot reach 127.0.0.1 of the host."""
    plane = ControlPlane(binaries, workdir / "pod-plane", address=node.host_address(), pods=True)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def cluster_node(pod_plane: ControlPlane, figures: Figures) -> Iterator[node.Node]:
    with node.running(pod_plane) as started:
        figures.record("node: build (cached after the first run)", f"{started.seconds['build']:.1f} s")
        figures.record(
            "node: containerd, kubelet, kube-proxy, scheduler -> node Ready", f"{started.seconds['start']:.1f} s"
        )
        yield started


@pytest.fixture(scope="session")
def milvus_for_pods(milvus: MilvusServer) -> str:
    """The session's Milvus standalone as a pod reaches it: on the machine's address (its proxy listens on all)."""
    return f"http://{node.host_address()}:{milvus.port}"
