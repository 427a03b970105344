"""observe -> plan -> apply -> status for one MilvusCollection; no Kopf in here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from milvusops import REFRESH_ANNOTATION
from milvusops.core.capabilities import capabilities
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.memory_estimate import GuardSettings, Memory
from milvusops.core.messages import clipped, listing
from milvusops.core.model import CollectionSpec, Desired, LoadState, ManagementPolicy, ResourceRef
from milvusops.core.observed import Observed
from milvusops.core.plan import Action, LoadPartitions, Plan, ReleaseCollection, ReleasePartitions, plan, started
from milvusops.core.refresh import RefreshStep, decide
from milvusops.core.status import Outcome, Verdict, build_status, verdict
from milvusops.milvus.call_slots import Priority, for_pass, prioritized
from milvusops.milvus.errors import PARTITION_KEY_HINT
from milvusops.milvus.port import MilvusPort
from milvusops.runtime.apply import Applied, after, apply, apply_refresh
from milvusops.runtime.capacity_guard import (
    LoadsByServer,
    NodeReading,
    checks,
    estimate,
    guard,
    refused,
    to_size,
    wants_memory,
)
from milvusops.runtime.observe import confirm, observe, recheck
from milvusops.telemetry import metrics


class PortSource(Protocol):
    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusPort: ...


# runs the planned actions; `milvusops plan` passes one that only predicts what Milvus would refuse
Act = Callable[[MilvusPort, CollectionSpec, tuple[Action, ...]], Awaitable[Applied]]


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    partitions: tuple[str, ...] = ()  # what the calls behind this event touched ("*" = whole collection)


@dataclass(frozen=True)
class Result:
    status: dict[str, Any]  # without lastSyncTime
    verdict: Verdict
    events: tuple[Event, ...]
    observed: Observed | None = None  # what this pass saw
    acted: bool = False  # load or release calls were made: what was observed is out of date
    failure: Failure | None = None
    started: Observed | None = None  # only loads were started: the picture they should leave, re-checked next


async def reconcile(
    spec: CollectionSpec,
    ref: ResourceRef,
    previous: Mapping[str, Any],
    ports: PortSource,
    now: datetime,
    conflict_with: str | None = None,
    urgent: bool = True,
    recheck_from: Observed | None = None,
    memory: MemoryGuard | None = None,
    confirm_from: Observed | None = None,
    settled: bool = False,
) -> Result:
    """`urgent`: the first pass, or one after a change; `recheck_from`: ask only what was Loading in it;
    `confirm_from`: an in-sync picture to confirm (observed in full only if it no longer holds);
    `settled`: the previous pass found the resource in sync (its calls wait behind other resources')."""
    retry_failed_load = _ready_condition(previous).get("reason") == Reason.LOAD_FAILED
    estimated = {
        str(p["name"]): int(p["estimatedMemoryBytes"])
        for p in previous.get("partitions") or []
        if p.get("estimatedMemoryBytes") is not None
    }
    passed = _Pass(retry_failed_load, str(previous.get("lastRefresh") or ""), estimated)
    outcome, applied = await assess(
        spec,
        ref,
        ports,
        conflict_with,
        for_pass(urgent, settled),
        recheck_from,
        passed,
        memory=memory,
        confirm_from=confirm_from,
    )
    status = build_status(spec, ref, outcome, previous, now)
    result = verdict(spec, outcome)
    events = _events(ref, previous, outcome, result, applied)
    if passed.refreshed:
        events = (Event("Normal", "Refreshed", passed.refreshed), *events)
    loading = None
    if applied.actions and not passed.called and outcome.failure is None and outcome.observed:
        loading = started(outcome.observed, applied.actions)
    acted = bool(applied.actions) or passed.called
    return Result(status, result, events, outcome.observed, acted, outcome.failure, loading)


@dataclass(frozen=True)
class MemoryGuard:
    """The capacity guard's settings and, per Milvus server, the order of loads waiting for its memory."""

    settings: GuardSettings = field(default_factory=GuardSettings)
    waiting: LoadsByServer = field(default_factory=LoadsByServer)

    def forget(self, uid: str) -> None:
        """The resource is deleted (or no longer served here): its loads stop counting at once."""
        self.waiting.forget(uid)


@dataclass
class _Pass:
    """What this pass takes from the previous status, and what its refresh did (kept apart from load events)."""

    retry_failed_load: bool
    last_refresh: str
    estimated: Mapping[str, int] = field(default_factory=dict)  # the memory estimates status already holds
    refreshed: str = ""  # the Refreshed event's message
    called: bool = False  # a refresh call was made: what was observed is out of date


async def assess(
    spec: CollectionSpec,
    ref: ResourceRef,
    ports: PortSource,
    conflict_with: str | None,
    priority: Priority = Priority.CHANGE,
    recheck_from: Observed | None = None,
    passed: _Pass | None = None,
    act: Act = apply,
    memory: MemoryGuard | None = None,
    confirm_from: Observed | None = None,
) -> tuple[Outcome, Applied]:
    """One pass up to status: observe, plan, `act` on the plan; the outcome and what the calls did."""
    passed = passed or _Pass(retry_failed_load=False, last_refresh="")
    memory = memory or MemoryGuard()
    if ref.paused:
        return Outcome(paused=True), Applied()
    if conflict_with is not None:
        return Outcome(failure=conflict(spec, conflict_with)), Applied()
    observed, planned, done, version = None, None, Applied(), None
    try:
        port = await ports.port(ref.namespace, spec.connection_name, spec.database)
        for attempt in (1, 2):
            # timer passes wait behind new resources and spec changes for a call slot
            with prioritized(priority):
                version = await port.version()  # read once per client: no call after the first pass
                if recheck_from is not None and attempt == 1:
                    observed = await recheck(port, spec.collection_name, recheck_from)
                elif confirm_from is not None and attempt == 1:
                    observed = await confirm(port, spec.collection_name, confirm_from)
                else:
                    observed = await observe(port, spec.collection_name)
            if not observed.exists:
                message = f"collection {spec.collection_name!r} not found in database {spec.database!r}"
                return Outcome(observed, failure=Failure(Reason.COLLECTION_NOT_FOUND, message), version=version), done
            if not observed.loading:
                memory.waiting.ended(_guard_key(ref))
            caps = capabilities(version)
            planned = plan(spec, observed, caps, passed.retry_failed_load)
            sized, refusal = None, None
            if not observed.partial and wants_memory(observed, planned, passed.estimated, act is not apply):
                with prioritized(priority):  # reads, as the observation
                    sized = await _memory(
                        port, spec, ref, observed, planned, memory, passed.estimated, act is not apply
                    )
            if spec.management_policy == ManagementPolicy.OBSERVE:
                return Outcome(observed, planned, observing=True, version=version, memory=sized), done
            if sized is not None and sized.refusal is not None:
                planned, refusal = refused(planned, sized.refusal)  # loads held back; releases still go
            if not observed.partial:
                # in arrival order with first passes' reads: a burst reads everything before Milvus holds its loads
                with prioritized(min(priority, Priority.CHANGE)):
                    this = await act(port, spec, planned.actions)
                done += this
                if this.failure is not None:
                    if this.failure.reason == Reason.PARTITION_NOT_FOUND and attempt == 1:
                        continue  # a partition was dropped since it was observed: look again, once
                    # status shows what the calls that went through changed, with the refusal that stopped the rest
                    picture = after(observed, this.actions)
                    return Outcome(picture, planned, failure=this.failure, version=version), done
            step = (
                None
                if observed.partial
                else decide(ref.refresh_requested, passed.last_refresh, spec, observed, planned, caps)
            )
            # a preview (`milvusops plan`) shows the refresh as pending and never sends it
            handled = await _refresh(port, spec, ref, step, passed) if act is apply else None
            failure = refusal or _unsupported(planned, step) or plan_failure(planned, observed)
            outcome = Outcome(observed, planned, failure=failure, version=version, last_refresh=handled, memory=sized)
            return outcome, done
        raise AssertionError("unreachable: the second attempt returns or raises")
    except FailureError as exc:
        return Outcome(observed, planned, failure=exc.failure, version=version), done


async def _memory(
    port: MilvusPort,
    spec: CollectionSpec,
    ref: ResourceRef,
    observed: Observed,
    planned: Plan,
    memory: MemoryGuard,
    known: Mapping[str, int] | None = None,
    preview: bool = False,
) -> Memory | None:
    """Each partition's estimate and, before a load, the guard's verdict; None when nothing could be estimated.

    `known`: the estimates in status, kept for partitions whose row counts this pass does not read.
    """
    checked = memory.settings if spec.management_policy == ManagementPolicy.MANAGE else GuardSettings(False)
    known = known or {}
    names = to_size(observed, planned, known, preview or _replicas_change(observed, spec))
    read: NodeReading | None = None
    if checks(checked, planned):  # both reads are needed before the load: one round trip, not two
        nodes = port.query_node_memory(spec.load.resource_groups)
        fresh, read = await asyncio.gather(estimate(port, spec, observed, names), nodes)
    else:
        fresh = await estimate(port, spec, observed, names)
    if fresh is None:
        return None
    sizes = {**{name: known[name] for name in observed.partitions if name in known}, **fresh}
    key = _guard_key(ref)
    waiting = memory.waiting.on(port.server, key)  # only loads on the server this one goes to count
    refusal = await guard(port, spec, observed, planned, sizes, checked, waiting, key, ref.created, read)
    return Memory(sizes, refusal)


def _replicas_change(observed: Observed, spec: CollectionSpec) -> bool:
    """Every estimate counts the replicas: a new number makes the ones in status out of date."""
    count = observed.replicas.count if observed.replicas is not None else None
    return count is not None and count != spec.load.replicas


def _guard_key(ref: ResourceRef) -> str:
    return ref.uid or f"{ref.namespace}/{ref.name}"


def conflict(spec: CollectionSpec, winner: str) -> Failure:
    message = f"{winner} already manages collection {spec.database}.{spec.collection_name} on this Milvus server"
    return Failure(Reason.CONFLICT, message)


def plan_failure(planned: Plan, observed: Observed) -> Failure | None:
    """What the operator reports for a plan it cannot carry out in full, after doing the part it can."""
    return _replicas(planned) or _partition_key(planned) or _failed_load(observed, planned) or _missing(planned)


async def _refresh(
    port: MilvusPort, spec: CollectionSpec, ref: ResourceRef, step: RefreshStep | None, passed: _Pass
) -> str | None:
    """Make the refresh call the step asks for; the annotation value to record once handled."""
    if step is None or not step.handled:
        return None
    if step.action is not None:
        with prioritized(Priority.ACT):
            line = await apply_refresh(port, spec, step.action)
        passed.called = True
    else:
        line = f"refresh of collection {spec.collection_name} not needed: {step.note}"
    passed.refreshed = f"{line} ({REFRESH_ANNOTATION}: {ref.refresh_requested})"
    return ref.refresh_requested


def _unsupported(planned: Plan, step: RefreshStep | None) -> Failure | None:
    message = planned.unsupported_options or (step.unsupported if step is not None else None)
    return Failure(Reason.UNSUPPORTED_BY_SERVER, message) if message else None


def _replicas(planned: Plan) -> Failure | None:
    if planned.replica_mismatch is None:
        return None
    loaded_with, wanted = planned.replica_mismatch
    message = (
        f"partitions are loaded with {loaded_with} replica(s) but spec.load.replicas is {wanted}; Milvus cannot "
        "change the replica number of loaded partitions: release them first (set state Released, wait, then Loaded)"
    )
    return Failure(Reason.INVALID_LOAD_OPTIONS, message)


def _partition_key(planned: Plan) -> Failure | None:
    if planned.partition_key is None:
        return None
    message = f"partition key field {planned.partition_key!r}: {PARTITION_KEY_HINT}; nothing was loaded or released"
    return Failure(Reason.PARTITION_KEY_COLLECTION, message)


FREE_TEXT_CHARS = 2000  # Milvus's own words in a message: its causes are a line or two, its dumps are not


def _failed_load(observed: Observed, planned: Plan) -> Failure | None:
    """Milvus (before 2.6.16) answers get_load_state with the cause of the last, failed load."""
    if observed.failed_load is None:
        return None
    then = "the load is tried again at the next resync" if planned.load_held_back else "the load was started again"
    return Failure(Reason.LOAD_FAILED, f"{clipped(observed.failed_load.message, FREE_TEXT_CHARS)}; {then}")


def _missing(planned: Plan) -> Failure | None:
    if not planned.missing:
        return None
    names = listing(planned.missing)
    return Failure(Reason.PARTITION_NOT_FOUND, f"partitions named in spec do not exist in Milvus: {names}")


def _events(
    ref: ResourceRef, previous: Mapping[str, Any], outcome: Outcome, result: Verdict, done: Applied
) -> tuple[Event, ...]:
    events: list[Event] = []
    before = _ready_condition(previous)
    recreated = _recreated(previous, outcome.observed)
    if recreated:
        events.append(Event("Normal", "CollectionRecreated", recreated))
    if done.actions:
        # an unchanged spec that was in sync and now needs calls means someone changed Milvus behind our back
        drift = (
            not recreated
            and before.get("status") == "True"
            and before.get("reason") == Reason.IN_SYNC
            and previous.get("observedGeneration") == ref.generation
        )
        if drift:
            metrics.DRIFT_CORRECTIONS.inc()
        releasing = any(isinstance(action, ReleasePartitions | ReleaseCollection) for action in done.actions)
        reason = "DriftCorrected" if drift else ("Releasing" if releasing else "Loading")
        events.append(Event("Normal", reason, "; ".join(done.lines), _touched(done.actions)))
    if outcome.failure is not None:
        events.append(Event("Warning", outcome.failure.reason.value, outcome.failure.message))
    elif result.ready and before.get("reason") != result.reason.value:
        events.append(Event("Normal", result.reason.value, result.message))
    return tuple(events)


def _recreated(previous: Mapping[str, Any], observed: Observed | None) -> str:
    """A message when the collection now has another id than the one in status: dropped and created again."""
    known = (previous.get("collection") or {}).get("id")
    current = observed.collection_id if observed is not None else None
    if not known or not current or known == current:
        return ""
    return f"collection was dropped and recreated (id {known} is now {current}): bringing the new one to the spec"


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


async def finalize(
    spec: CollectionSpec, ref: ResourceRef, ports: PortSource, others: tuple[CollectionSpec, ...] = ()
) -> list[str]:
    """Deletion with deletionPolicy Release: release what this resource kept loaded.

    `others`: the specs of the live resources that lost a conflict to this one; what they declare Loaded is
    handed over to them, not released.
    """
    port = await ports.port(ref.namespace, spec.connection_name, spec.database)
    with prioritized(Priority.ACT):  # someone is waiting for the deletion
        observed = await observe(port, spec.collection_name)
    if not observed.exists:
        return []
    held = {name for name, r in observed.partitions.items() if r.state in (LoadState.LOADED, LoadState.LOADING)}
    wanted = {name for name in held if spec.desired_for(name) == Desired.LOADED}
    handed_over = {name for name in wanted if any(other.desired_for(name) == Desired.LOADED for other in others)}
    ours = wanted - handed_over
    # a partition-key collection is released only as a whole, and only if this resource wanted all of it
    if not ours or (observed.partition_key is not None and ours != held):
        return []
    action: ReleaseCollection | ReleasePartitions
    action = ReleaseCollection() if ours == held else ReleasePartitions(tuple(sorted(ours)))
    applied = await apply(port, spec, (action,))
    if applied.failure is not None:
        raise FailureError(applied.failure)
    done = list(applied.lines)
    if handed_over:
        kept = ", ".join(sorted(handed_over))
        done.append(f"left {kept} of collection {spec.collection_name} loaded: another MilvusCollection declares them")
    return done
