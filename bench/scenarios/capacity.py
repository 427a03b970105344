"""How far the memory estimate is from what a real query node uses once a collection is loaded.

`python -m bench.scenarios.capacity`: a Milvus 2.3.5 cluster with one query node (in a memory cgroup of 8 GiB,
so its memory is read both as RSS and as the cgroup's charge); for each case a fresh query node, a
collection of that index type and size, the operator's own estimate (adapter read + pure model), then
a load, and the node's growth. Figures go to docs/design/capacity.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy
from pymilvus import DataType, MilvusClient
from tests.testenv import gobins
from tests.testenv.milvus_cluster import SESSION_TTL, MilvusCluster
from tests.testenv.processes import wait_until

from milvusops.core.endpoint import Endpoint
from milvusops.core.memory_estimate import bytes_per_partition, human
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort

NODE_MEMORY = 8 * 2**30
CASES = [  # index type, rows, dim, build params
    ("FLAT", 100_000, 128, {}),
    ("FLAT", 300_000, 128, {}),
    ("IVF_FLAT", 100_000, 128, {"nlist": 128}),
    ("IVF_FLAT", 300_000, 128, {"nlist": 256}),
    ("HNSW", 100_000, 128, {"M": 16, "efConstruction": 64}),
    ("HNSW", 100_000, 768, {"M": 16, "efConstruction": 64}),
    ("IVF_SQ8", 200_000, 128, {"nlist": 128}),
]


@dataclass(frozen=True)
class Measured:
    case: str
    rows: int
    dim: int
    estimate: int
    rss_delta: int
    cgroup_delta: int
    mem_size: int  # Milvus's own size of the loaded segments (get_query_segment_info)

    def error(self, actual: int) -> float:
        return (self.estimate - actual) / actual * 100 if actual else float("nan")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _charged(cluster: MilvusCluster, node: str) -> int:
    """The cgroup's charge minus page cache: the anonymous memory the node holds (what Milvus reports as used)."""
    cgroup = cluster.cgroups[node]
    stat = dict(line.split() for line in (cgroup.path / "memory.stat").read_text().splitlines())
    return int(stat["total_rss"])


def _settled(read: object, seconds: float = 3) -> int:
    """A reading once it stopped moving by more than 1% over `seconds` (the load's buffers freed)."""
    assert callable(read)
    last, deadline = int(read()), time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = int(read())
        if abs(now - last) <= 0.01 * max(last, 1):
            return now
        last = now
    return last


def _collection(client: MilvusClient, index_type: str, rows: int, dim: int, params: dict[str, int]) -> str:
    name = f"cap_{index_type.lower()}_{uuid.uuid4().hex[:6]}"
    schema = MilvusClient.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection(name, schema=schema)
    generator = numpy.random.default_rng(11)
    batch = max(1, 20_000 * 128 // dim)
    for start in range(0, rows, batch):
        vectors = generator.random((min(batch, rows - start), dim), dtype=numpy.float32)
        client.insert(name, [{"vector": vector} for vector in vectors])
    client.flush(name)
    index = MilvusClient.prepare_index_params()
    index.add_index("vector", index_type=index_type, metric_type="L2", params=params)
    client.create_index(name, index)
    wait_until(lambda: _indexed(client, name, rows), 600, f"{name} indexed", interval=1)
    return name


def _indexed(client: MilvusClient, name: str, rows: int) -> bool:
    info = client.describe_index(name, client.list_indexes(name)[0])
    return bool(info and info.get("indexed_rows", 0) >= rows and info.get("state") == "Finished")


async def _estimate(cluster: MilvusCluster, collection: str) -> int:
    endpoint = Endpoint(cluster.uri, cluster.root_token, timeout=60)
    executor = ThreadPoolExecutor(2)
    port = MilvusClientPort(endpoint, "default", executor, Slots(2))
    try:
        shape = await port.shape(collection, await port.list_partitions(collection))
        return sum(bytes_per_partition(shape).values())
    finally:
        port.close()
        executor.shutdown()


def _fresh_node(cluster: MilvusCluster, client: MilvusClient, old: str | None) -> str:
    """A new query node, and the old one gone from Milvus: each case starts from an empty node."""
    node = cluster.add_query_node(memory_limit=NODE_MEMORY)
    if old is not None:
        cluster.kill_role(old)
        group = "__default_resource_group"
        wait_until(
            lambda: client.describe_resource_group(group).num_available_node == 1,
            SESSION_TTL * 6,
            "the old query node dropped",
            interval=1,
        )
    return node


def measure(cluster: MilvusCluster, cases: list[tuple[str, int, int, dict[str, int]]]) -> list[Measured]:
    client = cluster.client(timeout=600)
    node: str | None = cluster.query_nodes()[0]
    results = []
    try:
        for index_type, rows, dim, params in cases:
            collection = _collection(client, index_type, rows, dim, params)
            node = _fresh_node(cluster, client, node)
            pid = cluster.pid(node)
            estimate = asyncio.run(_estimate(cluster, collection))
            read_rss, read_charged = partial(_rss, pid), partial(_charged, cluster, node)
            rss, charged = _settled(read_rss), _settled(read_charged)
            client.load_collection(collection, timeout=600)
            rss_after, charged_after = _settled(read_rss), _settled(read_charged)
            segments = client._get_connection().get_query_segment_info(collection)
            mem_size = sum(int(segment.mem_size) for segment in segments)
            result = Measured(index_type, rows, dim, estimate, rss_after - rss, charged_after - charged, mem_size)
            results.append(result)
            print(_row(result), flush=True)
            client.release_collection(collection)
            client.drop_collection(collection)
    finally:
        client.close()
    return results


def _row(m: Measured) -> str:
    return (
        f"| {m.case} | {m.rows:,} | {m.dim} | {human(m.estimate)} | {human(m.rss_delta)} | {human(m.cgroup_delta)} "
        f"| {human(m.mem_size)} | {m.error(m.rss_delta):+.1f}% | {m.error(m.cgroup_delta):+.1f}% |"
    )


HEADER = (
    "| index | rows | dim | estimate | RSS growth | cgroup growth | Milvus mem_size | error vs RSS "
    "| error vs cgroup |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the first case of each index type only")
    args = parser.parse_args()
    cases = CASES
    if args.quick:
        seen: set[str] = set()
        cases = [c for c in CASES if not (c[0] in seen or seen.add(c[0]))]  # type: ignore[func-returns-value]
    workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    cluster = MilvusCluster(gobins.ensure_all(), workdir, query_nodes=1, query_node_memory=NODE_MEMORY)
    try:
        cluster.start()
        print(HEADER, flush=True)
        results = measure(cluster, cases)
    finally:
        cluster.stop()
    worst = max(abs(r.error(r.rss_delta)) for r in results)
    print(f"\nworst error against RSS growth: {worst:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
