"""Read the real state of one collection from Milvus: in full, or only what is still loading."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from .failures import Failure, FailureError, Reason
from .milvus import CollectionInfo, MilvusPort, Replicas, StateReport
from .model import LoadState


@dataclass(frozen=True)
class Observed:
    """What Milvus reports now; `partitions` holds every partition that exists in Milvus."""

    collection: StateReport
    partitions: dict[str, StateReport] = field(default_factory=dict)
    replicas: Replicas | None = None  # describe_replica's answer; None when nothing is loaded (or no such call)
    collection_id: str | None = None  # Milvus's id of this incarnation of the collection
    partial: bool = False  # a re-check: only what was Loading was asked, so nothing may be planned from it
    partition_key: str | None = None  # the partition-key field: only whole-collection load and release then
    failed_load: Failure | None = None  # get_load_state answered with the cause of a failed load (reads as NotLoad)
    confirmed: bool = False  # a steady pass found an earlier full picture unchanged (`confirm`)

    @property
    def exists(self) -> bool:
        return self.collection.state != LoadState.NOT_EXIST

    @property
    def loading(self) -> bool:
        reports = (self.collection, *self.partitions.values())
        return any(report.state == LoadState.LOADING for report in reports)


async def observe(port: MilvusPort, collection: str) -> Observed:
    """One get_load_state for the collection, then one per partition, concurrently."""
    whole, failed_load = await _collection_state(port, collection)
    if whole.state == LoadState.NOT_EXIST:
        return Observed(whole)
    names, info = await asyncio.gather(port.list_partitions(collection), port.describe(collection))
    if whole.state == LoadState.NOT_LOAD:
        # Milvus answers NotLoad for a collection only when nothing of it is loaded or loading
        partitions = {name: StateReport(LoadState.NOT_LOAD) for name in names}
        return _observed(whole, partitions, None, info, failed_load)
    partitions = await _partition_states(port, collection, names)
    replicas = None
    if any(report.state == LoadState.LOADED for report in partitions.values()):
        replicas = await port.replicas(collection)
    return _observed(whole, partitions, replicas, info, None)


def _observed(
    whole: StateReport,
    partitions: dict[str, StateReport],
    replicas: Replicas | None,
    info: CollectionInfo,
    failed_load: Failure | None,
) -> Observed:
    return Observed(whole, partitions, replicas, info.id, partition_key=info.partition_key, failed_load=failed_load)


async def _collection_state(port: MilvusPort, collection: str) -> tuple[StateReport, Failure | None]:
    """Before 2.6.16 Milvus raises a failed load's cause instead of NotLoad: nothing is loaded then."""
    try:
        return await port.load_state(collection), None
    except FailureError as exc:
        if exc.failure.reason == Reason.LOAD_FAILED:
            return StateReport(LoadState.NOT_LOAD), exc.failure
        raise


async def recheck(port: MilvusPort, collection: str, before: Observed) -> Observed:
    """While loading, ask only about what was Loading; observe in full once nothing is.

    The collection when it was Loading (one call, however many partitions load with it), otherwise
    the partitions that were. What was not asked keeps its last report, so the result is `partial`.
    """
    if before.collection.state == LoadState.LOADING:
        whole, _ = await _collection_state(port, collection)
        if whole.state == LoadState.LOADING:
            return replace(before, collection=whole, partial=True)
        return await observe(port, collection)
    loading = [name for name, report in before.partitions.items() if report.state == LoadState.LOADING]
    reports = await _partition_states(port, collection, loading)
    if len(reports) < len(loading) or not any(report.state == LoadState.LOADING for report in reports.values()):
        return await observe(port, collection)  # done loading, or a partition was dropped meanwhile
    return replace(before, partitions={**before.partitions, **reports}, partial=True)


async def confirm(port: MilvusPort, collection: str, before: Observed) -> Observed:
    """A steady pass over an in-sync picture: ask only whether it still holds, and observe in full if not.

    One get_load_state for the partitions Loaded in it, together (NotLoad as soon as one is released),
    one for each partition NotLoad in it, and describe_replica; a collection with nothing loaded takes
    one call (Milvus answers NotLoad for it only when nothing of it is loaded or loading). Partitions
    created or dropped and a recreated collection wait for the next full observation.
    """
    loaded = sorted(name for name, report in before.partitions.items() if report.state == LoadState.LOADED)
    released = [name for name, report in before.partitions.items() if report.state == LoadState.NOT_LOAD]
    if len(loaded) + len(released) != len(before.partitions) or before.failed_load is not None:
        return await observe(port, collection)  # not a settled picture: nothing to confirm
    if not loaded:
        whole, failed_load = await _collection_state(port, collection)
        if whole.state == LoadState.NOT_LOAD and failed_load is None:
            return replace(before, collection=whole, confirmed=True)
        return await observe(port, collection)
    try:
        together, reports, replicas = await asyncio.gather(
            port.load_state_together(collection, loaded),
            _partition_states(port, collection, released),
            port.replicas(collection),
        )
    except FailureError as exc:
        if exc.failure.reason in (Reason.PARTITION_NOT_FOUND, Reason.COLLECTION_NOT_FOUND):
            return await observe(port, collection)  # dropped since the full observation
        raise
    unchanged = (
        together == LoadState.LOADED
        and len(reports) == len(released)
        and all(report.state == LoadState.NOT_LOAD for report in reports.values())
        and _same_placement(before.replicas, replicas)
    )
    if not unchanged:
        return await observe(port, collection)
    return replace(before, replicas=replicas, confirmed=True)


def _same_placement(before: Replicas | None, now: Replicas | None) -> bool:
    """The replica count and groups the plan was made with are still those Milvus reports."""
    if now is not None and now.count is None:
        return True  # a replica without its query node: news for status (Degraded), not for the plan
    if before is None or now is None:
        return before is None and now is None
    return (before.count, before.resource_groups) == (now.count, now.resource_groups)


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
