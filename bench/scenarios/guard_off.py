"""What Milvus 2.3.5 itself does with a load that does not fit, when the operator's memory guard is off.

`python -m bench.scenarios.guard_off`: a real control plane, a Milvus cluster with one query node in a
200 MiB memory cgroup (the e2e suite's small cluster), the collection the e2e guard test refuses
(partition `big`: 200,000 vectors of dim 256, FLAT, about 200 MiB estimated), and the operator run
with `MILVUSOPS_MEMORY_GUARD=off`. It prints a timeline (load state, the resource's reason, the
cgroup's OOM kills) until Milvus has loaded it, failed, or lost the node, or 90 s have passed.
A measurement, not a test: the outcome is Milvus's, and the guard exists because of it
(docs/design/capacity.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.e2e.helpers import Kube, OperatorProcess, big_collection, load_states
from tests.testenv import gobins
from tests.testenv.kube import ControlPlane
from tests.testenv.memcgroup import available
from tests.testenv.milvus_cluster import MilvusCluster

NODE_MEMORY = 200 * 2**20
BIG_ROWS, DIM = 200_000, 256
NAMESPACE = "guard-off"


def timeline(kube: Kube, cluster: MilvusCluster, collection: str, seconds: float) -> list[str]:
    """One line per second until the load settles (Loaded, node dead or OOM-killed) or `seconds` pass."""
    node = cluster.query_nodes()[0]
    cgroup = cluster.cgroups[node]
    began, lines = time.monotonic(), []
    while time.monotonic() - began < seconds:
        alive = cluster.roles[node].alive()
        state = load_states(cluster, collection).get("big", "?") if alive else "node dead"
        reason = kube.condition(NAMESPACE, "big", "Ready").get("reason")
        lines.append(f"{time.monotonic() - began:.0f}s {state} {reason} oom_kills={cgroup.oom_kills()}")
        print(lines[-1], flush=True)
        if state == "Loaded" or not alive or cgroup.oom_kills() > 0:
            break
        time.sleep(1)  # the sampling period of the timeline, not a wait for something
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=90, help="how long to watch at most")
    args = parser.parse_args()
    if not available():
        raise SystemExit("needs a writable cgroup v1 memory controller")
    workdir = Path(tempfile.mkdtemp(prefix="bench-guard-off-"))
    binaries = gobins.ensure_all()
    plane = ControlPlane(binaries, workdir / "kube")
    cluster = MilvusCluster(binaries, workdir / "milvus", query_nodes=1, query_node_memory=NODE_MEMORY)
    operator: OperatorProcess | None = None
    try:
        plane.start()
        plane.kubectl("apply", "--server-side", "-f", "crds")
        plane.kubectl("wait", "--for=condition=Established", "-f", "crds")
        plane.kubectl("create", "namespace", NAMESPACE)
        cluster.start()
        collection = big_collection(cluster, BIG_ROWS, dim=DIM)
        operator = OperatorProcess(plane, cluster, NAMESPACE, workdir, MILVUSOPS_MEMORY_GUARD="off").start()
        kube = Kube(plane)
        spec = {"collectionName": collection, "partitions": [{"name": "big", "state": "Loaded"}]}
        kube.create(NAMESPACE, "big", spec)
        lines = timeline(kube, cluster, collection, args.seconds)
        cgroup = cluster.cgroups[cluster.query_nodes()[0]]
        calls = operator.metric("milvusops_load_release_calls_total")
        print(f"\noutcome: {lines[-1]}; load calls {calls:.0f}; node peak {cgroup.read('memory.max_usage_in_bytes')} B")
    finally:
        if operator is not None:
            operator.stop()
        cluster.stop()
        plane.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
