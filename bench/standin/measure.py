"""Measure, on the real Milvus 2.3.5, the latency of each RPC the operator makes and how long small
loads stay Loading: the data the stand-in's distributions are fitted to (bench/standin/measured.json).

    .venv/bin/python -m bench.standin.measure [--samples 40] [--cluster]

The standalone by default; --cluster: Milvus distributed (coordinators, proxy, data, index and query nodes).
Calls are made one at a time, as pymilvus 3.0.2's MilvusClient makes them for the operator.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2
from tests.testenv import gobins
from tests.testenv.milvus import MilvusServer
from tests.testenv.milvus_cluster import MilvusCluster

from bench.lib.setup import create_collections, drop_collections

DATA = Path(__file__).with_name("measured.json")
POLL = 0.02  # seconds between load-state polls while a load runs: the resolution of a Loading duration


def timed(samples: dict[str, list[float]], rpc: str, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    samples.setdefault(rpc, []).append(time.perf_counter() - started)
    return result


def loading(client: MilvusClient, name: str, partition: str, samples: dict[str, list[float]]) -> float:
    """Seconds from the load call's return until Milvus says Loaded; the progress seen meanwhile is kept."""
    started = time.perf_counter()
    while True:
        state = client.get_load_state(name, partition)
        if state["state"].name == "Loaded":
            return time.perf_counter() - started
        samples.setdefault("progress_while_loading", []).append(float(state.get("progress") or 0))
        time.sleep(POLL)


def measure_one(client: MilvusClient, name: str, samples: dict[str, list[float]]) -> None:
    stub = client._get_connection()._stub
    metrics = milvus_pb2.GetMetricsRequest(request=json.dumps({"metric_type": "system_info"}))
    timed(samples, "GetVersion", lambda: client.get_server_version(timeout=10))
    timed(samples, "ShowPartitions", lambda: client.list_partitions(name, timeout=10))
    described = timed(samples, "DescribeCollection", lambda: client.describe_collection(name, timeout=10))
    timed(samples, "DescribeIndex", lambda: client.list_indexes(name, "vector", timeout=10))
    timed(samples, "GetPartitionStatistics", lambda: client.get_partition_stats(name, "p", timeout=10))
    timed(samples, "GetMetrics", lambda: stub.GetMetrics(metrics, timeout=10))
    timed(samples, "GetLoadState", lambda: stub.GetLoadState(Prepare.get_load_state(name, None), timeout=10))
    timed(samples, "LoadCollection", lambda: client.load_collection(name, timeout=10, _async=True, sync=False))
    samples.setdefault("loading_collection", []).append(loading(client, name, "", samples))
    replicas = Prepare.get_replicas(described["collection_id"])
    timed(samples, "GetReplicas", lambda: stub.GetReplicas(replicas, timeout=10))
    timed(samples, "ReleaseCollection", lambda: client.release_collection(name, timeout=10))
    load = lambda: client.load_partitions(name, ["p"], timeout=10, _async=True, sync=False)  # noqa: E731
    timed(samples, "LoadPartitions", load)
    samples.setdefault("loading_partition", []).append(loading(client, name, "p", samples))
    timed(samples, "ReleasePartitions", lambda: client.release_partitions(name, ["p"], timeout=10))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--cluster", action="store_true", help="Milvus 2.3.5 distributed instead of the standalone")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="milvusops-standin-measure-"))
    milvus: MilvusServer | MilvusCluster = (
        MilvusCluster(gobins.ensure_all(), workdir / "milvus") if args.cluster else MilvusServer(workdir / "milvus")
    )
    try:
        milvus.start()
        names = create_collections(milvus, args.samples, ["p"])
        client = milvus.client(timeout=60)
        samples: dict[str, list[float]] = {}
        for index, name in enumerate(names):
            measure_one(client, name, samples)
            print(f"{index + 1}/{len(names)} measured", flush=True)
        client.close()
        drop_collections(milvus, names)
        version = milvus.client().get_server_version()
    finally:
        milvus.stop()
    deployment = "distributed (tests.testenv.milvus_cluster)" if args.cluster else "standalone"
    document = {
        "milvus": f"{version} {deployment}",
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
        "note": "2 cores shared with a CI run; seconds, one call at a time, 100-row collections with one partition",
        "seconds": {key: [round(v, 5) for v in values] for key, values in samples.items()},
    }
    DATA.write_text(json.dumps(document, indent=1) + "\n")
    print(f"written {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
