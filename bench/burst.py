"""Burst: N MilvusCollections created at once until all are Ready, against direct pymilvus scripts
issuing the same loads with the same concurrency limit, in the same run.

    .venv/bin/python -m bench.burst [--resources 100] [--partitions 1] [--concurrency 8]

--partitions 1: each collection has one partition (plus `_default`) and its resource says
`state: Loaded`, so the operator and the scripts make one load_collection each. --partitions 5:
each resource lists its 5 partitions Loaded in spec.partitions (`_default` stays Released), so
everyone makes one load_partitions of those 5. --resources counts collections.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pymilvus import AsyncMilvusClient
from tests.testenv.milvus import Server

from bench.environment import Environment, environment
from bench.quiet import milvus_idle
from bench.report import Result, Row
from bench.resources import create_all, delete_all, desired, wait_ready
from bench.setup import create_collections, drop_collections, partition_names

LOAD_TIMEOUT = 600.0  # seconds one load may take in the direct scripts before they give up


@dataclass(frozen=True)
class Shape:
    collections: int
    partitions: int

    @property
    def listed(self) -> list[str] | None:
        """The partitions named in each spec; None: the whole collection (`state: Loaded`)."""
        return None if self.partitions == 1 else partition_names(self.partitions)

    def __str__(self) -> str:
        if self.partitions == 1:
            return f"{self.collections} collections (state Loaded)"
        return f"{self.collections} collections x {self.partitions} partitions (spec.partitions Loaded)"

    def timeout(self) -> float:
        """Generous but bounded: 100 loads took 6 s through the operator on 2 cores."""
        return 120 + 0.5 * self.collections * self.partitions


def through_operator(env: Environment, shape: Shape, collections: list[str]) -> tuple[float, list[str]]:
    specs = {f"b{shape.partitions}-{index}": desired(name, shape.listed) for index, name in enumerate(collections)}
    started = time.perf_counter()
    create_all(env.kube, env.namespace, specs)
    wait_ready(env.kube, env.namespace, specs, shape.timeout())
    return time.perf_counter() - started, list(specs)


async def direct(milvus: Server, shape: Shape, collections: list[str], concurrency: int) -> float:
    """How a plain asyncio script loads: AsyncMilvusClient, `concurrency` loads at a time, each awaited to its end."""
    client = AsyncMilvusClient(uri=milvus.uri, token=milvus.root_token)
    limit = asyncio.Semaphore(concurrency)
    listed = shape.listed

    async def load(name: str) -> None:
        async with limit:
            if listed is None:
                await client.load_collection(name, timeout=LOAD_TIMEOUT)
            else:
                await client.load_partitions(name, listed, timeout=LOAD_TIMEOUT)

    started = time.perf_counter()
    await asyncio.gather(*(load(name) for name in collections))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


def direct_started(milvus: Server, shape: Shape, collections: list[str], concurrency: int) -> float:
    """The operator's own strategy without the operator: start every load, then poll until all are Loaded."""
    client = milvus.client(timeout=60)
    listed = shape.listed
    # whole collections: the collection's state; listed partitions: each one's (the collection says
    # Loaded as soon as some partition is)
    pending = [(name, "") for name in collections] if listed is None else [(n, p) for n in collections for p in listed]
    started = time.perf_counter()
    deadline = time.monotonic() + shape.timeout()
    with ThreadPoolExecutor(concurrency) as pool:
        if listed is None:
            list(pool.map(lambda name: client.load_collection(name, _async=True, sync=False), collections))
        else:
            list(pool.map(lambda name: client.load_partitions(name, listed, _async=True, sync=False), collections))
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"direct loads: {len(pending)} partitions not Loaded, e.g. {pending[:5]}")
            states = list(pool.map(lambda item: client.get_load_state(*item)["state"].name, pending))
            pending = [item for item, state in zip(pending, states, strict=True) if state != "Loaded"]
            if pending:
                time.sleep(0.25)
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def run(env: Environment, shape: Shape, concurrency: int, keep: bool = False) -> tuple[Result, list[str]]:
    """Needs a running operator limited to `concurrency` calls; `keep` leaves the resources (and their
    collections, loaded) for later benchmarks and returns their names."""
    milvus, parts = env.milvus, partition_names(shape.partitions)
    # each side creates its collections just before it runs and drops them after: Milvus 2.3.5 slows
    # down with every collection it holds (1,000 loads: 82 s with 1,000 held, unfinished after 620 s with 3,000);
    # and each starts once Milvus is idle again, not while it still cleans up after the one before
    with env.setup.measure(f"{shape} for the asyncio baseline"):
        theirs = create_collections(milvus, shape.collections, parts)
        milvus_idle()
    direct_seconds = asyncio.run(direct(milvus, shape, theirs, concurrency))
    print(f"burst {shape}: direct asyncio {direct_seconds:.1f}s", flush=True)
    with env.setup.measure(f"{shape} for the started-then-polled baseline"):
        drop_collections(milvus, theirs)
        floor = create_collections(milvus, shape.collections, parts)
        milvus_idle()
    floor_seconds = direct_started(milvus, shape, floor, concurrency)
    print(f"burst {shape}: direct started then polled {floor_seconds:.1f}s", flush=True)
    with env.setup.measure(f"{shape} for the operator"):
        drop_collections(milvus, floor)
        ours = create_collections(milvus, shape.collections, parts)
        milvus_idle()
    operator_seconds, names = through_operator(env, shape, ours)
    print(f"burst {shape}: operator {operator_seconds:.1f}s", flush=True)
    if not keep:
        with env.setup.measure(f"cleanup after burst of {shape}"):
            delete_all(env.kube, env.namespace, shape.timeout())
            drop_collections(milvus, ours)
    ratio, floor_ratio = operator_seconds / direct_seconds, operator_seconds / floor_seconds
    summary = (
        f"burst: {shape}, concurrency {concurrency}: operator {operator_seconds:.1f}s | "
        f"direct asyncio awaiting each load {direct_seconds:.1f}s (ratio {ratio:.2f}) | "
        f"direct starting all loads then polling {floor_seconds:.1f}s (ratio {floor_ratio:.2f})"
    )
    what, measured = f"burst, {shape}: create → all Ready", f"{operator_seconds:.1f} s"
    rows = (
        Row(what, measured, f"{direct_seconds:.1f} s asyncio, each load awaited", f"{ratio:.2f}"),
        Row(what, measured, f"{floor_seconds:.1f} s all loads started, then polled", f"{floor_ratio:.2f}"),
    )
    return Result(summary, rows), names if keep else []


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100, help="collections (one MilvusCollection each)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions per collection, all Loaded")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with environment("burst") as env:
        env.start_operator(MILVUSOPS_MAX_CONCURRENT_CALLS=str(args.concurrency))
        result, _ = run(env, Shape(args.resources, args.partitions), args.concurrency)
        print(result.summary)
        return 0


if __name__ == "__main__":
    sys.exit(main())
