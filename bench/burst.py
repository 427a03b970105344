"""Burst: N MilvusCollections created at once until all are Ready, against a direct asyncio
pymilvus script issuing the same loads with the same concurrency limit, in the same run.

    .venv/bin/python -m bench.burst [--resources 100] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from pymilvus import AsyncMilvusClient
from tests.e2e.helpers import GROUP, PLURAL, VERSION, Kube, new_collection
from tests.testenv.milvus import MilvusServer

from bench.environment import environment

NAMESPACE = "burst"


def through_operator(kube: Kube, collections: list[str]) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:  # the API creates themselves, as a GitOps apply sends them
        list(
            pool.map(
                lambda item: kube.create(NAMESPACE, f"b-{item[0]}", {"collectionName": item[1], "state": "Loaded"}),
                enumerate(collections),
            )
        )
    while True:
        listing = cast(dict[str, Any], kube.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL))
        items = listing["items"]
        ready = sum(
            1
            for item in items
            for c in (item.get("status") or {}).get("conditions") or []
            if c["type"] == "Ready" and c["status"] == "True"
        )
        if ready == len(collections):
            return time.perf_counter() - started
        time.sleep(0.25)


async def direct(milvus: MilvusServer, collections: list[str], concurrency: int) -> float:
    client = AsyncMilvusClient(uri=milvus.uri, token=milvus.root_token)
    limit = asyncio.Semaphore(concurrency)

    async def load(name: str) -> None:
        async with limit:
            await client.load_collection(name)  # awaits the end of the load

    started = time.perf_counter()
    await asyncio.gather(*(load(name) for name in collections))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


def direct_started(milvus: MilvusServer, collections: list[str], concurrency: int) -> float:
    """The operator's own strategy without the operator: start every load, then poll until all are Loaded."""
    client = milvus.client()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda name: client.load_collection(name, _async=True), collections))
        pending = list(collections)
        while pending:
            states = list(pool.map(lambda name: client.get_load_state(name)["state"].name, pending))
            pending = [name for name, state in zip(pending, states, strict=True) if state != "Loaded"]
            if pending:
                time.sleep(0.25)
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with environment(NAMESPACE) as env:
        milvus = env.milvus
        started = time.perf_counter()
        ours = [new_collection(milvus, ["p"], rows=100) for _ in range(args.resources)]
        theirs = [new_collection(milvus, ["p"], rows=100) for _ in range(args.resources)]
        floor = [new_collection(milvus, ["p"], rows=100) for _ in range(args.resources)]
        print(f"setup: {3 * args.resources} collections in {time.perf_counter() - started:.0f}s", flush=True)
        env.start_operator(MILVUSOPS_MAX_CONCURRENT_CALLS=str(args.concurrency))
        kube = env.kube
        operator_seconds = through_operator(kube, ours)
        direct_seconds = asyncio.run(direct(milvus, theirs, args.concurrency))
        floor_seconds = direct_started(milvus, floor, args.concurrency)
        ratio, floor_ratio = operator_seconds / direct_seconds, operator_seconds / floor_seconds
        print(
            f"burst: {args.resources} resources, concurrency {args.concurrency}: operator {operator_seconds:.1f}s | "
            f"direct awaiting each load {direct_seconds:.1f}s (ratio {ratio:.2f}) | "
            f"direct starting all loads then polling {floor_seconds:.1f}s (ratio {floor_ratio:.2f})"
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
