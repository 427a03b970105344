"""One pass for one MilvusCollection, in order: observe -> plan (memory guard, refresh) -> apply -> status.

`Pass` (core/pass_state.py) says which kind of pass this is and from which earlier picture; no Kopf in here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from milvusops.core.capabilities import Capabilities, capabilities
from milvusops.core.failure_messages import conflict, not_found, plan_failure
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.load_options import effective
from milvusops.core.memory_estimate import Memory
from milvusops.core.model import CollectionSpec, ManagementPolicy, ResourceRef
from milvusops.core.observed import Observed
from milvusops.core.pass_state import FIRST_PASS, Pass, PassKind
from milvusops.core.plan import Action, Plan, plan, started
from milvusops.core.refresh import RefreshStep, decide
from milvusops.core.schedule import WindowState, timed
from milvusops.core.status import Outcome, Verdict, build_status, verdict
from milvusops.milvus.call_slots import Priority, for_pass, prioritized
from milvusops.milvus.port import MilvusPort, PortSource
from milvusops.runtime.apply import Applied, after, apply, refresh
from milvusops.runtime.capacity_guard import MemoryGuard, guard_key, guarded
from milvusops.runtime.events import Event, events, ready_condition
from milvusops.runtime.observe import confirm, observe, recheck

# runs the planned actions; `milvusops plan` passes one that only predicts what Milvus would refuse
Act = Callable[[MilvusPort, CollectionSpec, tuple[Action, ...]], Awaitable[Applied]]


@dataclass(frozen=True)
class Result:
    status: dict[str, Any]  # without lastSyncTime
    verdict: Verdict
    events: tuple[Event, ...]
    observed: Observed | None = None  # what this pass saw
    acted: bool = False  # load, release or refresh calls were made: what was observed is out of date
    failure: Failure | None = None
    started: Observed | None = None  # only loads were started: the picture they should leave, re-checked next
    schedule: WindowState | None = None  # spec.schedule at this pass's moment: the loop wakes at its next transition


@dataclass(frozen=True)
class FromStatus:
    """What a pass takes from the status the previous one wrote."""

    retry_failed_load: bool = False  # the failed load Milvus reports was already reported: try it again
    last_refresh: str = ""  # the refresh annotation value already handled
    estimated: Mapping[str, int] = field(default_factory=dict)  # the memory estimates status already holds

    @classmethod
    def of(cls, previous: Mapping[str, Any]) -> FromStatus:
        estimated = {
            str(p["name"]): int(p["estimatedMemoryBytes"])
            for p in previous.get("partitions") or []
            if p.get("estimatedMemoryBytes") is not None
        }
        retry = ready_condition(previous).get("reason") == Reason.LOAD_FAILED
        return cls(retry, str(previous.get("lastRefresh") or ""), estimated)


async def reconcile(
    spec: CollectionSpec,
    ref: ResourceRef,
    previous: Mapping[str, Any],
    ports: PortSource,
    now: datetime,
    this: Pass = FIRST_PASS,
    conflict_with: str | None = None,
    memory: MemoryGuard | None = None,
    window: WindowState | None = None,
) -> Result:
    """The pass up to status and events; the caller writes the status and sends the events.

    The schedule is applied first, at `now`: from there on the spec is the one that holds at this moment.
    `window`: the previous pass's schedule state, reused while it holds.
    """
    spec, window, invalid = timed(spec, now, window)
    known = FromStatus.of(previous)
    outcome, applied = await assess(spec, ref, ports, conflict_with, this, known, memory=memory, invalid=invalid)
    outcome = replace(outcome, schedule=window)
    loading = None
    if applied.actions and not applied.refresh_sent and outcome.failure is None and outcome.observed:
        loading = started(outcome.observed, applied.actions)
    # loads Milvus accepted show as Loading at once: the first re-check then moves only a percentage
    shown = replace(outcome, observed=replace(loading, partial=False)) if loading is not None else outcome
    status = build_status(spec, ref, shown, previous, now)
    result = verdict(spec, outcome)
    posted = events(ref, previous, outcome, result, applied)
    return Result(status, result, posted, outcome.observed, applied.acted, outcome.failure, loading, window)


@dataclass(frozen=True)
class _Planned:
    """The plan step's result: the calls to make, and what status reports beside them."""

    plan: Plan  # without the loads the memory guard held back
    memory: Memory | None  # the estimates, and the guard's refusal
    failure: Failure | None  # what the pass reports if the calls all go through
    refresh: RefreshStep | None  # the refresh call (or note) the annotation asks for


async def assess(
    spec: CollectionSpec,
    ref: ResourceRef,
    ports: PortSource,
    conflict_with: str | None,
    this: Pass = FIRST_PASS,
    known: FromStatus | None = None,
    act: Act = apply,
    memory: MemoryGuard | None = None,
    invalid: Failure | None = None,
) -> tuple[Outcome, Applied]:
    """One pass up to status: observe, plan, `act` on the plan; the outcome and what the calls did.

    `spec` is the one that holds at the pass's moment (`schedule.timed`); `invalid`: its schedule cannot be used.
    """
    memory = memory or MemoryGuard()
    known = known or FromStatus()
    preview = act is not apply  # `milvusops plan`: sizes every partition, shows a refresh as pending, sends none
    if ref.paused:
        return Outcome(paused=True), Applied()
    if conflict_with is not None:
        return Outcome(failure=conflict(spec, conflict_with)), Applied()
    if invalid is not None:
        return Outcome(failure=invalid), Applied()
    observed, planned, done, version = None, None, Applied(), None
    priority = for_pass(this)
    try:
        port = await ports.port(ref.namespace, spec.connection_name, spec.database)
        for looking in (this, Pass(PassKind.FULL, settled=this.settled)):  # the second look: in full, once
            with prioritized(priority):  # timer passes wait behind new resources and spec changes for a call slot
                version = await port.version()  # read once per client: no call after the first pass
                observed = await _observe(port, spec, looking)
            if not observed.exists:
                return Outcome(observed, failure=not_found(spec), version=version), done
            if not observed.loading:
                memory.waiting.ended(guard_key(ref))
            acting = effective(spec, observed)  # load.replicas unset: what Milvus has
            with prioritized(priority):  # the memory step reads, as the observation
                step = await _plan(port, acting, ref, observed, capabilities(version), known, memory, preview)
            planned = step.plan
            if spec.management_policy == ManagementPolicy.OBSERVE:
                return Outcome(observed, planned, observing=True, version=version, memory=step.memory), done
            if not observed.partial:
                # in arrival order with first passes' reads: a burst reads everything before Milvus holds its loads
                with prioritized(min(priority, Priority.CHANGE)):
                    this_run = await act(port, acting, planned.actions)
                done += this_run
                if this_run.failure is not None:
                    if this_run.failure.reason == Reason.PARTITION_NOT_FOUND and looking is this:
                        continue  # a partition was dropped since it was observed: look again, once
                    # status shows what the calls that went through changed, with the refusal that stopped the rest
                    picture = after(observed, this_run.actions)
                    return Outcome(picture, planned, failure=this_run.failure, version=version), done
            if not preview:
                done += await refresh(port, spec, ref, step.refresh)
            handled = ref.refresh_requested if done.refreshed else None
            outcome = Outcome(
                observed, planned, failure=step.failure, version=version, last_refresh=handled, memory=step.memory
            )
            return outcome, done
        raise AssertionError("unreachable: the second look returns or raises")
    except FailureError as exc:
        return Outcome(observed, planned, failure=exc.failure, version=version), done


async def _observe(port: MilvusPort, spec: CollectionSpec, this: Pass) -> Observed:
    """In full, or narrowed to the earlier picture the pass is about."""
    if this.kind == PassKind.RECHECK and this.picture is not None:
        return await recheck(port, spec.collection_name, this.picture)
    if this.kind == PassKind.CONFIRM and this.picture is not None:
        return await confirm(port, spec.collection_name, this.picture)
    return await observe(port, spec.collection_name)


async def _plan(
    port: MilvusPort,
    spec: CollectionSpec,
    ref: ResourceRef,
    observed: Observed,
    caps: Capabilities,
    known: FromStatus,
    memory: MemoryGuard,
    preview: bool,
) -> _Planned:
    """The planner, then the memory guard (which may hold loads back), then the refresh the annotation asks for."""
    planned = plan(spec, observed, caps, known.retry_failed_load)
    planned, sized, refusal = await guarded(port, spec, ref, observed, planned, memory, known.estimated, preview)
    step = (
        None if observed.partial else decide(ref.refresh_requested, known.last_refresh, spec, observed, planned, caps)
    )
    return _Planned(planned, sized, refusal or plan_failure(planned, observed, step), step)
