"""Read the real state of one collection from Milvus: in full, or only what is still loading."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import LoadState
from milvusops.core.observed import CollectionInfo, Observed, Replicas, StateReport, replicas_stand
from milvusops.milvus.port import MilvusPort


async def observe(port: MilvusPort, collection: str) -> Observed:
    """One get_load_state for the collection, then one per partition, concurrently."""
    whole, failed_load = await _collection_state(port, collection)
    if whole.state == LoadState.NOT_EXIST:
        return Observed(whole)
    # describe first: a collection of one partition then needs no listing (both wait in Milvus 2.3's DDL queue)
    info = await port.describe(collection)
    names = await port.list_partitions(collection, info.partitions if info.partition_key is None else None)
    if whole.state == LoadState.NOT_LOAD:
        # Milvus answers NotLoad for a collection only when nothing of it is loaded or loading
        partitions = {name: StateReport(LoadState.NOT_LOAD) for name in names}
        return _observed(whole, partitions, None, info, failed_load)
    partitions = await _partition_states(port, collection, names)
    replicas, asked = None, time.monotonic()
    if any(report.state == LoadState.LOADED for report in partitions.values()):
        replicas = await port.replicas(collection, info.id)
    return replace(_observed(whole, partitions, replicas, info, None), replicas_at=asked if replicas else None)


def _observed(
    whole: StateReport,
    partitions: dict[str, StateReport],
    replicas: Replicas | None,
    info: CollectionInfo,
    failed_load: Failure | None,
) -> Observed:
    key, fields = info.partition_key, info.fields
    return Observed(whole, partitions, replicas, info.id, partition_key=key, failed_load=failed_load, fields=fields)


async def _collection_state(
    port: MilvusPort, collection: str, loading: bool = False
) -> tuple[StateReport, Failure | None]:
    """Before 2.6.16 Milvus raises a failed load's cause instead of NotLoad: nothing is loaded then.

    `loading`: the collection was Loading, so its progress alone is asked first (one call, not two).
    """
    try:
        return await (port.loading(collection) if loading else port.load_state(collection)), None
    except FailureError as exc:
        if exc.failure.reason == Reason.LOAD_FAILED:
            return StateReport(LoadState.NOT_LOAD), exc.failure
        raise


async def recheck(port: MilvusPort, collection: str, before: Observed) -> Observed:
    """While loading, ask only about what was Loading; once nothing is, confirm what the load left.

    The collection when it was Loading (one call, however many partitions load with it), otherwise
    the partitions that were. What was not asked keeps its last report, so the result is `partial`.
    """
    if before.collection.state == LoadState.LOADING:
        whole, failed_load = await _collection_state(port, collection, loading=True)
        if whole.state == LoadState.LOADING:
            return replace(before, collection=whole, partial=True)
        if whole.state != LoadState.LOADED or failed_load is not None:
            return await observe(port, collection)
        return await _loaded(port, collection, before, whole)
    loading = [name for name, report in before.partitions.items() if report.state == LoadState.LOADING]
    reports = await _partition_states(port, collection, loading)
    if not loading or len(reports) < len(loading):
        return await observe(port, collection)  # nothing to re-check, or a partition was dropped meanwhile
    if any(report.state == LoadState.LOADING for report in reports.values()):
        return replace(before, partitions={**before.partitions, **reports}, partial=True)
    if any(report.state != LoadState.LOADED for report in reports.values()):
        return await observe(port, collection)  # a load failed or was undone: look at everything
    return await _loaded(port, collection, before, None)


async def _loaded(port: MilvusPort, collection: str, before: Observed, whole: StateReport | None) -> Observed:
    """A watched load ended: confirm the picture it should leave, without listing and describing again.

    Milvus runs describe and list_partitions one at a time with loads (the proxy's DDL queue), so a
    load's end costs no such request. Every partition that was Loading or Loaded must be Loaded
    together, every other one as it was, else the collection is observed in full. Partitions created
    or dropped and a recreated collection wait for the next full observation, as with `confirm`.
    """
    held = sorted(name for name, report in before.partitions.items() if report.state.held)
    others = [name for name, report in before.partitions.items() if not report.state.held]
    if before.failed_load is not None or any(before.partitions[name].state != LoadState.NOT_LOAD for name in others):
        return await observe(port, collection)
    asked = time.monotonic()
    try:
        together, reports, replicas, (whole, failed_load) = await asyncio.gather(
            port.load_state_together(collection, held),
            _partition_states(port, collection, others),
            port.replicas(collection, before.collection_id),
            _known(whole) if whole is not None else _collection_state(port, collection),
        )
    except FailureError as exc:
        if exc.failure.reason in (Reason.PARTITION_NOT_FOUND, Reason.COLLECTION_NOT_FOUND):
            return await observe(port, collection)  # dropped since the full observation
        raise
    unchanged = len(reports) == len(others) and all(r.state == LoadState.NOT_LOAD for r in reports.values())
    if together != LoadState.LOADED or not unchanged or failed_load is not None or whole.state != LoadState.LOADED:
        return await observe(port, collection)
    partitions = {**before.partitions, **dict.fromkeys(held, StateReport(LoadState.LOADED)), **reports}
    picture = replace(before, collection=whole, partitions=partitions, replicas=replicas, replicas_at=asked)
    return replace(picture, partial=False, confirmed=True)


async def _known(whole: StateReport) -> tuple[StateReport, Failure | None]:
    return whole, None


async def confirm(port: MilvusPort, collection: str, before: Observed) -> Observed:
    """A steady pass over an in-sync picture: ask only whether it still holds, and observe in full if not.

    One get_load_state for the partitions Loaded in it, together (NotLoad as soon as one is released),
    one for each partition NotLoad in it, and GetReplicas only when the server's query nodes changed
    since the replicas were read (`replicas_stand`; the set is one GetMetrics per server every few
    seconds); a collection with nothing loaded takes one call (Milvus answers NotLoad for it only when
    nothing of it is loaded or loading). Partitions created or dropped and a recreated collection wait
    for the next full observation.
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
    stand = replicas_stand(before, await port.query_nodes())
    asked = time.monotonic()
    try:
        together, reports, replicas = await asyncio.gather(
            port.load_state_together(collection, loaded),
            _partition_states(port, collection, released),
            _kept(before.replicas) if stand else port.replicas(collection, before.collection_id),
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
    return replace(before, replicas=replicas, confirmed=True, replicas_at=before.replicas_at if stand else asked)


async def _kept(replicas: Replicas | None) -> Replicas | None:
    return replicas


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
