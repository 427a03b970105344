"""Read the real state of one collection from Milvus: in full, or only what is still loading."""

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
        reports = (self.collection, *self.partitions.values())
        return any(report.state == LoadState.LOADING for report in reports)


async def observe(port: MilvusPort, collection: str) -> Observed:
    """One get_load_state for the collection, then one per partition, concurrently."""
    whole = await port.load_state(collection)
    if whole.state == LoadState.NOT_EXIST:
        return Observed(whole)
    names = await port.list_partitions(collection)
    if whole.state == LoadState.NOT_LOAD:
        # Milvus answers NotLoad for a collection only when nothing of it is loaded or loading
        return Observed(whole, {name: StateReport(LoadState.NOT_LOAD) for name in names})
    reports = await asyncio.gather(*(port.load_state(collection, name) for name in names))
    partitions = dict(zip(names, reports, strict=True))
    replicas = None
    if any(report.state == LoadState.LOADED for report in reports):
        replicas = await port.replica_count(collection)
    return Observed(whole, partitions, replicas)


async def recheck(port: MilvusPort, collection: str, before: Observed) -> Observed:
    """While loading, ask only about what was Loading; observe in full once it is not.

    The collection when it was Loading (one call, however many partitions load with it), otherwise
    the partitions that were. What was not asked keeps its last report until the full observation.
    """
    if before.collection.state == LoadState.LOADING:
        whole = await port.load_state(collection)
        if whole.state == LoadState.LOADING:
            return Observed(whole, before.partitions, before.replicas)
        return await observe(port, collection)
    loading = [name for name, report in before.partitions.items() if report.state == LoadState.LOADING]
    reports = await asyncio.gather(*(port.load_state(collection, name) for name in loading))
    if not any(report.state == LoadState.LOADING for report in reports):
        return await observe(port, collection)
    partitions = {**before.partitions, **dict(zip(loading, reports, strict=True))}
    return Observed(before.collection, partitions, before.replicas)
