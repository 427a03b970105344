"""One pass for one MilvusAlias, in order: observe -> plan (`core.alias_plan`) -> apply -> status. No Kopf in here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milvusops.core.alias_model import AliasSpec, CollectionView, holders_of
from milvusops.core.alias_plan import (
    AliasAction,
    AliasObservation,
    AliasPlan,
    Readiness,
    due,
    plan_alias,
)
from milvusops.core.alias_status import (
    UNKNOWN,
    AliasOutcome,
    alias_verdict,
    build_alias_status,
    draining_of,
    previous_of,
)
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import LoadState, ResourceRef, connection_key
from milvusops.core.status import Verdict
from milvusops.milvus.aliases import AliasPort, MilvusAliases
from milvusops.milvus.port import MilvusPort, PortSource

Views = Callable[[str, str], CollectionView | None]  # (namespace, name) -> the MilvusCollection as last watched
AllViews = Callable[[], Iterable[CollectionView]]


@dataclass(frozen=True)
class AliasResult:
    status: dict[str, Any]  # without lastSyncTime
    verdict: Verdict
    events: tuple[tuple[str, str, str], ...]  # (type, reason, message)
    recheck_in: float | None = None  # seconds until the drain window ends
    observed: bool = False  # Milvus answered this pass: lastSyncTime may move


@dataclass(frozen=True)
class Target:
    collection: str
    view: CollectionView | None  # None: a bare collectionName


def resolve_target(spec: AliasSpec, namespace: str, views: Views) -> Target:
    """The collection the spec asks for; a collectionRef must exist and reach the same connection and database."""
    if spec.target_name:
        return Target(spec.target_name, None)
    name = str(spec.target_ref)
    view = views(namespace, name)
    if view is None:
        raise FailureError(Failure(Reason.TARGET_NOT_FOUND, f"MilvusCollection {namespace}/{name} not found"))
    mine = (connection_key(namespace, spec.connection_name), spec.database)
    if (view.connection, view.database) != mine:
        message = f"MilvusCollection {namespace}/{name} manages {view.collection} through another connection"
        message += " or database than this alias's: set the same connectionRef and database on both"
        raise FailureError(Failure(Reason.TARGET_NOT_FOUND, message))
    return Target(view.collection, view)


async def readiness(port: MilvusPort, target: Target) -> Readiness:
    """A MilvusCollection's own verdict; for a bare collection, Loaded with every replica on a query node."""
    if target.view is not None:
        view = target.view
        return Readiness(view.ready, view.reason, view.message)
    report = await port.load_state(target.collection)
    if report.state == LoadState.NOT_EXIST:
        return Readiness(False, Reason.COLLECTION_NOT_FOUND.value, f"no collection {target.collection}")
    if report.state != LoadState.LOADED:
        progress = f" ({report.progress}%)" if report.progress is not None else ""
        return Readiness(False, Reason.LOADING.value, f"get_load_state says {report.state.value}{progress}")
    replicas = await port.replicas(target.collection)
    if replicas is not None and replicas.unavailable:
        return Readiness(False, Reason.REPLICA_UNAVAILABLE.value, replicas.unavailable)
    return Readiness(True)


async def reconcile_alias(
    spec: AliasSpec,
    ref: ResourceRef,
    previous: Mapping[str, Any],
    ports: PortSource,
    views: Views,
    all_views: AllViews,
    now: datetime,
    conflict_with: str | None = None,
    alias_port: Callable[[Any], AliasPort] = MilvusAliases,
) -> AliasResult:
    """The pass up to status and events; the caller writes the status and sends the events."""
    events: list[tuple[str, str, str]] = []
    planned: AliasPlan | None = None
    observed = False
    if ref.paused:
        outcome = AliasOutcome(paused=True)
    elif conflict_with is not None:
        message = f"MilvusAlias {conflict_with} (older) already manages alias {spec.alias} on this connection"
        outcome = AliasOutcome(failure=Failure(Reason.CONFLICT, message))
    else:
        target: Target | None = None
        current: object = UNKNOWN
        try:
            target = resolve_target(spec, ref.namespace, views)
            port = await ports.port(ref.namespace, spec.connection_name, spec.database)
            aliases = alias_port(port)
            current = await aliases.target_of(spec.alias)
            observed = True
            seen = await _observe(spec, ref, port, aliases, target, current, previous, all_views, now)
            planned = plan_alias(seen)
            outcome, events = await _apply(spec, port, aliases, seen, planned)
        except FailureError as exc:
            collection = target.collection if target is not None else None
            outcome = AliasOutcome(collection, current, previous_of(previous), failure=exc.failure)  # status kept
    status = build_alias_status(spec, ref, outcome, previous, now)
    verdict = alias_verdict(spec, outcome)
    if outcome.failure is not None and outcome.failure.reason != Reason.TARGET_NOT_READY:  # waiting is no error
        events.append(("Warning", outcome.failure.reason.value, outcome.failure.message))
    recheck = planned.recheck_in if planned is not None else None
    return AliasResult(status, verdict, tuple(events), recheck, observed)


async def _observe(
    spec: AliasSpec,
    ref: ResourceRef,
    port: MilvusPort,
    aliases: AliasPort,
    target: Target,
    current: str | None,
    status: Mapping[str, Any],
    all_views: AllViews,
    now: datetime,
) -> AliasObservation:
    """Only what this pass's decision needs: the target's readiness before a switch, holders once drained."""
    previous, draining = previous_of(status), draining_of(status)
    ready = Readiness(True) if current == target.collection else await readiness(port, target)
    holders: dict[str, tuple[str, ...]] = {}
    loaded: dict[str, bool] = {}
    if current == target.collection:
        connection = connection_key(ref.namespace, spec.connection_name)
        for collection in set(due(previous, draining, spec.release_after_seconds, now)) - {target.collection}:
            others = [f"alias {a}" for a in await aliases.aliases_of(collection) if a != spec.alias]
            wanting = holders_of(collection, spec.database, connection, all_views())
            holders[collection] = (*others, *(f"MilvusCollection {who} (wants it Loaded)" for who in wanting))
            loaded[collection] = (await port.load_state(collection)).state.held
    return AliasObservation(
        current, target.collection, ready, previous, spec.release_after_seconds, now, draining, holders, loaded
    )


async def _apply(
    spec: AliasSpec, port: MilvusPort, aliases: AliasPort, seen: AliasObservation, planned: AliasPlan
) -> tuple[AliasOutcome, list[tuple[str, str, str]]]:
    events: list[tuple[str, str, str]] = []
    current = seen.current
    if planned.action == AliasAction.CREATE:
        await aliases.create(seen.target, spec.alias)
        events.append(("Normal", "AliasCreated", f"alias {spec.alias} created, pointing at {seen.target}"))
        current = seen.target
    elif planned.action == AliasAction.ALTER:
        await aliases.alter(seen.target, spec.alias)
        events.append(("Normal", "AliasSwitched", f"alias {spec.alias} switched from {current} to {seen.target}"))
        current = seen.target
    for collection in planned.releases:
        await port.release_collection(collection)
        message = f"previous target {collection} released after the drain window"
        events.append(("Normal", "PreviousReleased", message))
    outcome = AliasOutcome(seen.target, current, planned.previous, planned.draining, failure=planned.wait)
    return outcome, events
