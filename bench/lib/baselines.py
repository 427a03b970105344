"""Baselines measured beside the operator in the same run: direct pymilvus scripts making its loads (all
started, then polled) and its observation calls; `Shape`, what a burst loads.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.testenv.milvus import Server

from bench.lib.setup import partition_names


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
        """Generous but bounded: 1,000 loads took 383-567 s through the operator on 2 cores (the floor's 200 s)."""
        return 120 + 1.5 * self.collections * self.partitions


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


def direct_observation(milvus: Server, collections: list[str], concurrency: int) -> float:
    """The calls the operator's observe makes (collection state, partitions, each one's state, replicas)."""
    client = milvus.client(timeout=60)

    def observe(name: str) -> None:
        client.get_load_state(name)
        states = [client.get_load_state(name, partition)["state"].name for partition in client.list_partitions(name)]
        if "Loaded" in states:  # as the operator does: Milvus has no replicas to describe for a released one
            client.describe_replica(name)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(observe, collections))
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed
