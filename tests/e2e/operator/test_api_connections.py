"""A burst of new resources against the real API server: Kopf's connections stay within MILVUSOPS_API_CONNECTIONS."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from milvusops.kube.session import watch_streams
from tests.e2e.helpers import Kube, OperatorProcess, new_collection, wait_for
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

pytestmark = pytest.mark.e2e

BURST = 40
# the operator's own requests (status, Secrets) go through the kubernetes client, one per default-executor thread
CLIENT_THREADS = min(32, (os.cpu_count() or 1) + 4)


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port`, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        count += state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes  # 01: ESTABLISHED
    return count


@contextmanager
def peak_of(sample: Callable[[], int]) -> Iterator[list[int]]:
    """Samples every 20 ms in a thread until the block ends; the result holds the highest value seen."""
    peak, done = [0], threading.Event()

    def run() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], sample())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def _burst(kube: Kube, namespace: str, collections: list[str]) -> list[str]:
    names = [f"burst-{i}" for i in range(len(collections))]
    with ThreadPoolExecutor(8) as pool:  # at once, as `kubectl apply -f dir/` or a GitOps sync would
        specs = [{"collectionName": collection, "state": "Released"} for collection in collections]
        list(pool.map(lambda name, spec: kube.create(namespace, name, spec), names, specs))
    return names


def test_burst_stays_within_the_api_connection_limit(
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    control_plane: ControlPlane,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    requests = 2
    operator = start_operator(MILVUSOPS_API_CONNECTIONS=str(requests))
    assert operator.process is not None
    pid = operator.process.pgid  # the process leads its own group
    collections = [new_collection(milvus, [], index=False) for _ in range(BURST)]
    streams = watch_streams([namespace], peering=False)
    assert streams is not None
    with peak_of(lambda: connections_to(pid, control_plane.port)) as peak:
        names = _burst(kube, namespace, collections)
        # two request connections are enough: every resource is still observed, and its finalizer added
        wait_for(
            lambda: all(kube.condition(namespace, name).get("status") == "True" for name in names),
            120,
            "Ready",
            interval=1,
        )
    assert all(kube.get(namespace, name)["metadata"].get("finalizers") for name in names)
    assert 0 < peak[0] <= requests + streams + CLIENT_THREADS, f"peak {peak[0]} connections to the API server"
