"""Collections for the benchmarks, made in parallel; the time it takes is reported, never counted.

.venv/bin/python -m bench.lib.setup --probe   # time collection setup at a few thread-pool widths
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.e2e.helpers import new_collection
from tests.testenv.milvus import MilvusServer, Server

from bench.lib.environment import Environment
from bench.lib.resources import create_all, desired, wait_ready

# Milvus 2.3.5 on 2 cores: 0.54 s per collection serially, 0.08 s at 8 threads, 0.05 s at 16, no gain at 32;
# most of it is pymilvus's create_index waiting for the index in 0.5 s polls, which threads overlap
SETUP_WIDTH = 16
ROWS = 100


def partition_names(count: int) -> list[str]:
    return ["p"] if count == 1 else [f"p{index}" for index in range(count)]


def create_collections(milvus: Server, count: int, partitions: list[str], width: int = SETUP_WIDTH) -> list[str]:
    """`count` indexed collections with `partitions` (plus `_default`), ROWS rows in each partition."""
    with ThreadPoolExecutor(width) as pool:
        return list(pool.map(lambda _: new_collection(milvus, partitions, rows=ROWS), range(count)))


def drop_collections(milvus: Server, names: list[str], width: int = SETUP_WIDTH) -> None:
    """Drop collections a benchmark is done with, so later ones run on a Milvus of the same size."""
    client = milvus.client(timeout=60)
    try:
        with ThreadPoolExecutor(width) as pool:
            list(pool.map(client.drop_collection, names))
    finally:
        client.close()


def resources_in_sync(env: Environment, count: int, prefix: str = "s", connection: str | None = None) -> list[str]:
    """`count` one-partition collections, each Loaded through its MilvusCollection (a running operator needed);
    `connection`: the MilvusConnection they name (default: the operator's default connection)."""
    with env.setup.measure(f"{count} collections, Loaded through the operator"):
        collections = create_collections(env.milvus, count, ["p"])
        specs = {f"{prefix}-{index}": desired(name, None, connection) for index, name in enumerate(collections)}
        create_all(env.kube, env.namespace, specs)
        wait_ready(env.kube, env.namespace, specs, timeout=120 + 0.5 * count)
    return list(specs)


def probe(milvus: MilvusServer, count: int) -> None:
    for width in (1, 4, 8, 16, 32):
        started = time.perf_counter()
        names = create_collections(milvus, count, ["p"], width)
        elapsed = time.perf_counter() - started
        print(f"width {width:2}: {count} collections in {elapsed:.1f}s ({elapsed / count:.3f}s each)", flush=True)
        drop_collections(milvus, names)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", action="store_true", help="time collection setup at a few widths")
    parser.add_argument("--collections", type=int, default=32)
    args = parser.parse_args()
    if not args.probe:
        parser.error("nothing to do: pass --probe")
    milvus = MilvusServer(Path(tempfile.mkdtemp(prefix="milvusops-setup-")) / "milvus")
    try:
        milvus.start()
        probe(milvus, args.collections)
    finally:
        milvus.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
