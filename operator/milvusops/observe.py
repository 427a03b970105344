"""Read the real state of one collection from Milvus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .milvus import MilvusPort, StateReport
from .model import LoadState


@dataclass(frozen=True)
class Observed:
    """What Milvus reports now; `partitions` holds every partition that exists in Milvus."""

    collection: StateReport
    partitions: dict[str, StateReport] = field(default_factory=dict)
    replicas: int | None = None  # how many replicas the loaded partitions have; None when nothing is loaded

    @property
    def exists(self) -> bool:
        return self.collection.state != LoadState.NOT_EXIST

    @property
    def loading(self) -> bool:
        return any(p.state == LoadState.LOADING for p in self.partitions.values())


async def observe(port: MilvusPort, collection: str) -> Observed:
    """One get_load_state for the collection, then one per partition, concurrently."""
    whole = await port.load_state(collection)
    if whole.state == LoadState.NOT_EXIST:
        return Observed(whole)
    names = await port.list_partitions(collection)
    reports = await asyncio.gather(*(port.load_state(collection, name) for name in names))
    partitions = dict(zip(names, reports, strict=True))
    replicas = None
    if any(report.state == LoadState.LOADED for report in reports):
        replicas = await port.replica_count(collection)
    return Observed(whole, partitions, replicas)
