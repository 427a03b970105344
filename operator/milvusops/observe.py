"""Read the real state of one collection from Milvus: in full, or only what is still loading."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .failures import FailureError, Reason
from .milvus import MilvusPort, Replicas, StateReport
from .model import LoadState


@dataclass(frozen=True)
class Observed:
    """What Milvus reports now; `partitions` holds every partition that exists in Milvus."""

    collection: StateReport
    partitions: dict[str, StateReport] = field(default_factory=dict)
    replicas: Replicas | None = None  # describe_replica's answer; None when nothing is loaded (or no such call)
    collection_id: str | None = None  # Milvus's id of this incarnation of the collection
    partial: bool = False  # a re-check: only what was Loading was asked, so nothing may be planned from it

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
    names, collection_id = await asyncio.gather(port.list_partitions(collection), port.collection_id(collection))
    if whole.state == LoadState.NOT_LOAD:
        # Milvus answers NotLoad for a collection only when nothing of it is loaded or loading
        return Observed(whole, {name: StateReport(LoadState.NOT_LOAD) for name in names}, None, collection_id)
    partitions = await _partition_states(port, collection, names)
    replicas = None
    if any(report.state == LoadState.LOADED for report in partitions.values()):
        replicas = await port.replicas(collection)
    return Observed(whole, partitions, replicas, collection_id)


async def recheck(port: MilvusPort, collection: str, before: Observed) -> Observed:
    """While loading, ask only about what was Loading; observe in full once nothing is.

    The collection when it was Loading (one call, however many partitions load with it), otherwise
    the partitions that were. What was not asked keeps its last report, so the result is `partial`.
    """
    if before.collection.state == LoadState.LOADING:
        whole = await port.load_state(collection)
        if whole.state == LoadState.LOADING:
            return Observed(whole, before.partitions, before.replicas, before.collection_id, partial=True)
        return await observe(port, collection)
    loading = [name for name, report in before.partitions.items() if report.state == LoadState.LOADING]
    reports = await _partition_states(port, collection, loading)
    if len(reports) < len(loading) or not any(report.state == LoadState.LOADING for report in reports.values()):
        return await observe(port, collection)  # done loading, or a partition was dropped meanwhile
    partitions = {**before.partitions, **reports}
    return Observed(before.collection, partitions, before.replicas, before.collection_id, partial=True)


async def _partition_states(port: MilvusPort, collection: str, names: list[str]) -> dict[str, StateReport]:
    """get_load_state of each partition; one dropped since it was listed is left out, as it no longer exists."""
    reports = await asyncio.gather(*(_partition_state(port, collection, name) for name in names))
    return {name: report for name, report in zip(names, reports, strict=True) if report is not None}


async def _partition_state(port: MilvusPort, collection: str, name: str) -> StateReport | None:
    try:
        return await port.load_state(collection, name)
    except FailureError as exc:
        if exc.failure.reason == Reason.PARTITION_NOT_FOUND:
            return None
        raise
