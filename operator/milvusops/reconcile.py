"""observe -> plan -> apply -> status for one MilvusCollection; no Kopf in here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from . import metrics
from .apply import apply
from .failures import Failure, FailureError, Reason
from .milvus import MilvusPort
from .model import CollectionSpec, Desired, LoadState, ManagementPolicy, ResourceRef
from .observe import Observed, observe, recheck
from .plan import Action, LoadPartitions, Plan, ReleaseCollection, ReleasePartitions, plan
from .slots import Priority, prioritized
from .status import Outcome, Verdict, build_status, verdict


class PortSource(Protocol):
    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusPort: ...


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    partitions: tuple[str, ...] = ()  # what the calls behind this event touched ("*" = whole collection)


@dataclass(frozen=True)
class Timing:
    resync_seconds: float
    loading_recheck_seconds: float
    first_recheck_seconds: float = 0.5


@dataclass(frozen=True)
class Result:
    status: dict[str, Any]  # without lastSyncTime
    verdict: Verdict
    events: tuple[Event, ...]
    delay: float  # seconds until this resource should be reconciled again
    observed: Observed | None = None  # what this pass saw, for a light re-check while loading


async def reconcile(
    spec: CollectionSpec,
    ref: ResourceRef,
    previous: Mapping[str, Any],
    ports: PortSource,
    timing: Timing,
    now: datetime,
    conflict_with: str | None = None,
    streak: int = 0,
    urgent: bool = True,
    before: Observed | None = None,
) -> Result:
    """`urgent`: the first pass, or one after a change; `before`: what the previous pass saw (timer passes)."""
    outcome, done = await _run(spec, ref, ports, conflict_with, urgent, before)
    status = build_status(spec, ref, outcome, previous, now)
    result = verdict(spec, outcome)
    events = _events(ref, previous, outcome, result, done)
    delay = _delay(outcome, result, done, timing, streak)
    return Result(status, result, events, delay, outcome.observed)


async def _run(
    spec: CollectionSpec,
    ref: ResourceRef,
    ports: PortSource,
    conflict_with: str | None,
    urgent: bool,
    before: Observed | None,
) -> tuple[Outcome, list[str]]:
    if ref.paused:
        return Outcome(paused=True), []
    if conflict_with is not None:
        message = (
            f"{conflict_with} already manages collection {spec.database}.{spec.collection_name} on this connection"
        )
        return Outcome(failure=Failure(Reason.CONFLICT, message)), []
    observed, planned, done = None, None, []
    try:
        port = await ports.port(ref.namespace, spec.connection_name, spec.database)
        # timer passes wait behind new resources and spec changes for a call slot
        with prioritized(Priority.CHANGE if urgent else Priority.BACKGROUND):
            if before is not None and before.loading:
                observed = await recheck(port, spec.collection_name, before)
            else:
                observed = await observe(port, spec.collection_name)
        if not observed.exists:
            message = f"collection {spec.collection_name!r} not found in database {spec.database!r}"
            return Outcome(observed, failure=Failure(Reason.COLLECTION_NOT_FOUND, message)), []
        planned = plan(spec, observed)
        observing = spec.management_policy == ManagementPolicy.OBSERVE
        if observing:
            return Outcome(observed, planned, observing=True), []
        with prioritized(Priority.ACT):
            done = await apply(port, spec, planned.actions)
        return Outcome(observed, planned, failure=_replicas(planned) or _missing(planned)), done
    except FailureError as exc:
        return Outcome(observed, planned, failure=exc.failure), done


def _replicas(planned: Plan) -> Failure | None:
    if planned.replica_mismatch is None:
        return None
    loaded_with, wanted = planned.replica_mismatch
    message = (
        f"partitions are loaded with {loaded_with} replica(s) but spec.load.replicas is {wanted}; Milvus cannot "
        "change the replica number of loaded partitions: release them first (set state Released, wait, then Loaded)"
    )
    return Failure(Reason.INVALID_LOAD_OPTIONS, message)


def _missing(planned: Plan) -> Failure | None:
    if not planned.missing:
        return None
    names = ", ".join(planned.missing)
    return Failure(Reason.PARTITION_NOT_FOUND, f"partitions named in spec do not exist in Milvus: {names}")


def _events(
    ref: ResourceRef, previous: Mapping[str, Any], outcome: Outcome, result: Verdict, done: list[str]
) -> tuple[Event, ...]:
    events: list[Event] = []
    before = _ready_condition(previous)
    if done:
        # an unchanged spec that was in sync and now needs calls means someone changed Milvus behind our back
        drift = (
            before.get("status") == "True"
            and before.get("reason") == Reason.IN_SYNC
            and previous.get("observedGeneration") == ref.generation
        )
        if drift:
            metrics.DRIFT_CORRECTIONS.inc()
        reason = "DriftCorrected" if drift else ("Releasing" if outcome.plan and outcome.plan.releasing else "Loading")
        touched = _touched(outcome.plan.actions) if outcome.plan else ()
        events.append(Event("Normal", reason, "; ".join(done), touched))
    if outcome.failure is not None:
        events.append(Event("Warning", outcome.failure.reason.value, outcome.failure.message))
    elif result.ready and before.get("reason") != result.reason.value:
        events.append(Event("Normal", result.reason.value, result.message))
    return tuple(events)


def _touched(actions: tuple[Action, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for action in actions:
        names.extend(action.partitions if isinstance(action, LoadPartitions | ReleasePartitions) else ("*",))
    return tuple(names)


def _ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


def _delay(outcome: Outcome, result: Verdict, done: list[str], timing: Timing, streak: int) -> float:
    """`streak` counts the passes in a row that asked for an early re-check."""
    if outcome.failure is not None and outcome.failure.reason == Reason.MILVUS_UNAVAILABLE:
        # exponential backoff, capped at the resync interval
        return float(min(timing.resync_seconds, timing.loading_recheck_seconds * 2**streak))
    if done or result.reconciling or (outcome.observed is not None and outcome.observed.loading):
        # short loads are seen finished soon (0.5, 0.5, 1, 1, 2 s ...); long ones every loading_recheck
        return float(min(timing.loading_recheck_seconds, timing.first_recheck_seconds * 2 ** (streak // 2)))
    return timing.resync_seconds


async def finalize(spec: CollectionSpec, ref: ResourceRef, ports: PortSource) -> list[str]:
    """Deletion with deletionPolicy Release: release what this resource kept loaded."""
    port = await ports.port(ref.namespace, spec.connection_name, spec.database)
    with prioritized(Priority.ACT):  # someone is waiting for the deletion
        observed = await observe(port, spec.collection_name)
    if not observed.exists:
        return []
    held = {name for name, r in observed.partitions.items() if r.state in (LoadState.LOADED, LoadState.LOADING)}
    ours = {name for name in held if spec.desired_for(name) == Desired.LOADED}
    if not ours:
        return []
    action: ReleaseCollection | ReleasePartitions
    action = ReleaseCollection() if ours == held else ReleasePartitions(tuple(sorted(ours)))
    return await apply(port, spec, (action,))
