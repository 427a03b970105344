"""Pure status builder: (spec, outcome of one reconcile, previous status) -> the new status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milvusops.core.failures import Failure, Reason
from milvusops.core.memory_estimate import Memory
from milvusops.core.messages import clipped, listing
from milvusops.core.model import CollectionSpec, Desired, LoadState, ResourceRef
from milvusops.core.observed import Observed, Replicas
from milvusops.core.plan import Plan
from milvusops.core.schedule import WindowState

TRUE, FALSE = "True", "False"


@dataclass(frozen=True)
class Outcome:
    """Everything one reconcile learned; `failure` wins over what the plan says."""

    observed: Observed | None = None
    plan: Plan | None = None
    failure: Failure | None = None
    observing: bool = False
    paused: bool = False
    version: str | None = None  # the server version, as Milvus reported it
    last_refresh: str | None = None  # the refresh annotation's value handled in this pass
    memory: Memory | None = None  # estimated bytes per partition, and the capacity guard's verdict
    schedule: WindowState | None = None  # spec.schedule at the pass's moment; None without a schedule


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: Reason
    message: str
    reconciling: bool
    stalled: bool


def blocked(paused: bool, failure: Failure | None) -> Verdict | None:
    """The verdict of a pass that made no progress (paused, or failed), for every kind; None otherwise."""
    if paused:
        return Verdict(False, Reason.PAUSED, "paused by annotation: no Milvus calls are made", False, False)
    if failure is not None:
        return Verdict(False, failure.reason, failure.message, not failure.stalled, failure.stalled)
    return None


def verdict(spec: CollectionSpec, outcome: Outcome) -> Verdict:
    stopped = blocked(outcome.paused, outcome.failure)
    if stopped is not None:
        return stopped
    observed, plan = outcome.observed, outcome.plan
    assert observed is not None and plan is not None
    loaded, total = counts(observed)
    if outcome.observing:
        message = f"observing only (desired state not enforced): {loaded}/{total} partitions loaded"
        return Verdict(True, Reason.OBSERVING, message, False, False)
    states = {name: report.state for name, report in observed.partitions.items()}
    mismatched = [
        name for name, want in plan.desired.items() if not _matches(want, states.get(name, LoadState.NOT_EXIST))
    ]
    if not mismatched and plan.replica_change is not None:
        before, after = plan.replica_change
        message = f"changing the replica number from {before} to {after}: Milvus re-plans replicas while serving"
        return Verdict(False, Reason.CHANGING_REPLICAS, message, True, False)
    if not mismatched:
        message = f"{loaded}/{total} partitions loaded, as desired{window_note(outcome.schedule)}"
        return Verdict(True, Reason.IN_SYNC, message, False, False)
    releasing = any(plan.desired.get(name) == Desired.RELEASED for name in mismatched)
    reason = Reason.RELEASING if releasing else Reason.LOADING
    return Verdict(False, reason, f"{reason.value.lower()}: {listing(mismatched)}", True, False)


def window_note(schedule: WindowState | None) -> str:
    """Why the desired states are what they are now, when a schedule decides it."""
    if schedule is None:
        return ""
    return " (outside every load window)" if schedule.active is None else f" (load window {schedule.active} open)"


def schedule_status(schedule: WindowState | None) -> dict[str, Any] | None:
    """status.schedule: the open window (absent outside every window) and the next transition (absent: none)."""
    if schedule is None:
        return None
    found: dict[str, Any] = {}
    if schedule.active is not None:
        found["activeWindow"] = schedule.active
    if schedule.next_transition is not None:
        found["nextTransition"] = _timestamp(schedule.next_transition)
    return found


def _matches(want: Desired, state: LoadState) -> bool:
    return state == LoadState.LOADED if want == Desired.LOADED else state == LoadState.NOT_LOAD


def counts(observed: Observed) -> tuple[int, int]:
    loaded = sum(1 for report in observed.partitions.values() if report.state == LoadState.LOADED)
    return loaded, len(observed.partitions)


def build_status(
    spec: CollectionSpec,
    ref: ResourceRef,
    outcome: Outcome,
    previous: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The whole status except lastSyncTime (see `stamp`)."""
    result = verdict(spec, outcome)
    status: dict[str, Any] = {
        "observedGeneration": ref.generation,
        "collection": {"name": spec.collection_name, "database": spec.database},
    }
    version = outcome.version or previous.get("serverVersion")
    if version:
        status["serverVersion"] = version
    last_refresh = outcome.last_refresh or previous.get("lastRefresh")
    if last_refresh:
        status["lastRefresh"] = last_refresh
    window = schedule_status(outcome.schedule)
    if window is not None:
        status["schedule"] = window
    observed = outcome.observed
    if observed is not None:
        if observed.collection_id is not None:
            status["collection"]["id"] = observed.collection_id
        status["collection"].update(_state(observed.collection.state, observed.collection.progress))
        desired = outcome.plan.desired if outcome.plan else _managed(spec, observed)
        sizes = _sizes(outcome.memory, previous)
        status["partitions"] = [
            {"name": name, "desired": want.value, **_partition_state(observed, name), **_size(sizes, name)}
            for name, want in desired.items()
        ]
        totals = memory_totals(observed, desired, sizes)
        if totals:
            status["memory"] = totals
        replicas = _replicas(observed, previous)
        if replicas:
            status["replicas"] = replicas
        loaded, total = counts(observed)
        wanted = sum(1 for name, want in desired.items() if want == Desired.LOADED and name in observed.partitions)
        status.update(
            loadedPartitions=loaded,
            totalPartitions=total,
            loaded=f"{loaded}/{total}",
            desiredLoaded=f"{wanted}/{total}",
        )
    else:
        # nothing observed this time (Milvus down, paused, ...): keep the last known picture
        kept = ("partitions", "loadedPartitions", "totalPartitions", "loaded", "desiredLoaded", "replicas", "memory")
        for key in kept:
            if key in previous:
                status[key] = previous[key]
        previous_collection = previous.get("collection") or {}
        for key in ("id", "state", "progress"):
            if key in previous_collection:
                status["collection"][key] = previous_collection[key]
    old = previous.get("conditions") or []
    known = (previous.get("replicas") or {}).get("count")
    degraded = _degraded(observed, ref.generation, old, now, int(known) if known else None)
    status["conditions"] = conditions(result, ref.generation, old, now) + degraded
    return status


def _managed(spec: CollectionSpec, observed: Observed) -> dict[str, Desired]:
    """Without a plan (nothing could be planned): the observed partitions the spec manages."""
    return {name: want for name in observed.partitions if (want := spec.desired_for(name)) is not None}


def _sizes(memory: Memory | None, previous: Mapping[str, Any]) -> Mapping[str, int]:
    """This pass's estimates; the last ones in status when this pass made none (a re-check while loading)."""
    if memory is not None:
        return memory.partitions
    return {
        str(p["name"]): int(p["estimatedMemoryBytes"])
        for p in previous.get("partitions") or []
        if p.get("estimatedMemoryBytes") is not None
    }


def _size(sizes: Mapping[str, int], name: str) -> dict[str, int]:
    return {"estimatedMemoryBytes": sizes[name]} if name in sizes else {}


def memory_totals(
    observed: Observed, desired: Mapping[str, Desired], sizes: Mapping[str, int]
) -> dict[str, int] | None:
    """Estimated bytes kept loaded now (Loaded or Loading) and once the spec is met; None without estimates."""
    if not sizes:
        return None
    held = [name for name, report in observed.partitions.items() if report.state.held]
    wanted = [name for name, want in desired.items() if want == Desired.LOADED and name in observed.partitions]
    return {
        "estimatedLoadedBytes": sum(sizes.get(name, 0) for name in held),
        "estimatedDesiredBytes": sum(sizes.get(name, 0) for name in wanted),
    }


def _replicas(observed: Observed, previous: Mapping[str, Any]) -> dict[str, Any] | None:
    """Milvus's replica count and resource groups; the last known ones while Milvus cannot describe them."""
    replicas = observed.replicas
    if replicas is None:
        return None  # nothing loaded
    if replicas.count is None:
        return dict(previous["replicas"]) if previous.get("replicas") else None
    return {"count": replicas.count, "resourceGroups": list(replicas.resource_groups)}


def _degraded(
    observed: Observed | None,
    generation: int,
    previous: list[Mapping[str, Any]],
    now: datetime,
    known_count: int | None = None,
) -> list[dict[str, Any]]:
    """Degraded=True while Milvus reports a replica without a query node; Ready keeps following get_load_state.

    `known_count`: the replica count last described (status), since Milvus 2.3.5 cannot count them meanwhile.
    """
    before = [c for c in previous if c.get("type") == "Degraded"]
    if observed is None:
        return [dict(c) for c in before]  # not observed this pass: keep what was last known
    replicas = observed.replicas
    if replicas is not None and replicas.unavailable:
        message = lost_replica(replicas, replicas.count or known_count)
        return conditions_of([("Degraded", True, Reason.REPLICA_UNAVAILABLE, message)], generation, previous, now)
    served = f"{replicas.count} replica(s), each on a query node" if replicas and replicas.count else "nothing loaded"
    return conditions_of([("Degraded", False, Reason.REPLICAS_AVAILABLE, served)], generation, previous, now)


MILVUS_WORDS_CHARS = 600  # Milvus's text after ours: its 401 is a line; a lost shard leader dumps whole positions


def lost_replica(replicas: Replicas, count: int | None) -> str:
    """What a replica without a query node means for searches first, Milvus's own words after."""
    ids = replicas.lost_ids
    who = f"replica {listing(ids)}" if len(ids) == 1 else f"replicas {listing(ids)}" if ids else "a replica"
    verb = "have" if len(ids) > 1 else "has"
    others = count - max(len(ids), 1) if count is not None else None
    of = " (the only one)" if count == 1 and len(ids) <= 1 else f" (of {count})" if count else ""
    serving = _serving(others)
    return (
        f"{who}{of} {verb} no query node: {serving} until Milvus places it on a query node again (restart the "
        f"lost query node or add one); Milvus: {clipped(replicas.unavailable, MILVUS_WORDS_CHARS)}"
    )


def _serving(others: int | None) -> str:
    """Who answers searches meanwhile: Milvus routes them to the replicas that still have their nodes."""
    if others is None:
        return "searches are served by the other replicas, if any"
    if others <= 0:
        return "searches fail"
    return (
        "searches are served by the other replica"
        if others == 1
        else f"searches are served by the other {others} replicas"
    )


def _partition_state(observed: Observed, name: str) -> dict[str, Any]:
    report = observed.partitions.get(name)
    if report is None:
        return {"state": LoadState.NOT_EXIST.value}
    return _state(report.state, report.progress)


def _state(state: LoadState, progress: int | None) -> dict[str, Any]:
    if state == LoadState.LOADED:
        progress = 100
    return {"state": state.value} if progress is None else {"state": state.value, "progress": progress}


def conditions(
    result: Verdict, generation: int, previous: list[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    reconciling_reason = result.reason if result.reconciling else Reason.IN_SYNC if result.ready else result.reason
    wanted = [
        ("Ready", result.ready, result.reason, result.message),
        ("Reconciling", result.reconciling, reconciling_reason, result.message if result.reconciling else ""),
        (
            "Stalled",
            result.stalled,
            result.reason if result.stalled else reconciling_reason,
            result.message if result.stalled else "",
        ),
    ]
    return conditions_of(wanted, generation, previous, now)


def conditions_of(
    wanted: list[tuple[str, bool, Reason, str]], generation: int, previous: list[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """metav1.Conditions; lastTransitionTime moves only when a condition's status changes."""
    before = {c.get("type"): c for c in previous}
    out = []
    for kind, value, reason, message in wanted:
        status = TRUE if value else FALSE
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append(
            {
                "type": kind,
                "status": status,
                "observedGeneration": generation,
                "lastTransitionTime": since or _timestamp(now),
                "reason": reason.value,
                "message": clipped(message),  # whoever built it: a status that cannot be written is worse
            }
        )
    return out


def needs_patch(previous: Mapping[str, Any], new: Mapping[str, Any], now: datetime, heartbeat_seconds: float) -> bool:
    """Patch when anything but lastSyncTime changed; with a heartbeat, also when lastSyncTime is that old."""
    if {k: v for k, v in previous.items() if k != "lastSyncTime"} != new:
        return True
    last = previous.get("lastSyncTime")
    if not last:
        return True
    if heartbeat_seconds <= 0:
        return False
    return _age_seconds(str(last), now) >= heartbeat_seconds


def progress_waits(previous: Mapping[str, Any], new: Mapping[str, Any], since_write: float, interval: float) -> bool:
    """Only loading percentages moved, sooner than `interval` after the last write: the next re-check writes them.

    In a burst every re-check of every load moves a percentage; states, conditions and all else still go at once.
    """
    if not previous or since_write >= interval:
        return False
    return _without_progress(previous) == _without_progress(new)


def _without_progress(status: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if k not in ("lastSyncTime", "collection", "partitions")}
    out["collection"] = {k: v for k, v in (status.get("collection") or {}).items() if k != "progress"}
    out["partitions"] = [{k: v for k, v in p.items() if k != "progress"} for p in status.get("partitions") or ()]
    return out


def _age_seconds(timestamp: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()


def stamp(
    new: dict[str, Any], previous: Mapping[str, Any], now: datetime, observed_in_full: bool, interval: float
) -> dict[str, Any]:
    """Set lastSyncTime: the time of a full observation of Milvus, moved at most once per `interval`.

    Progress re-checks while loading, and passes that could not ask Milvus, keep the time already there.
    """
    last = previous.get("lastSyncTime")
    if observed_in_full and (not last or _age_seconds(str(last), now) >= interval):
        return {**new, "lastSyncTime": _timestamp(now)}
    return {**new, "lastSyncTime": last} if last else dict(new)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(previous: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning previous into new (nulls delete keys that are gone)."""
    patch: dict[str, Any] = {}
    for key in previous.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        old = previous.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            inner = merge_patch(old, value)
            if inner:
                patch[key] = inner
        elif value != old:
            patch[key] = value
    return patch
