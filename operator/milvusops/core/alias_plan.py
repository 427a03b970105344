"""The pure decision for one MilvusAlias pass: switch the alias, release the previous target, or wait, and why.

Inputs are what was observed in Milvus this pass and read from the API server's cache; nothing carried over
from the last pass except what status holds (the previous target, the older ones still draining, and when the
alias left each).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from milvusops.core.failures import STALLED_REASONS, Failure, Reason

MAX_DRAINING = 8  # status.draining's bound: older previous targets beyond it are forgotten, never released


class AliasAction(StrEnum):
    NONE = "None"
    CREATE = "Create"  # the alias does not exist in Milvus yet
    ALTER = "Alter"  # the alias points at another collection


@dataclass(frozen=True)
class Readiness:
    """Whether the target can serve searches; else the target's own reason and message."""

    ready: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Previous:
    """status.previous (or an entry of status.draining): a collection the alias left, and when."""

    collection: str
    switched_at: datetime
    released_at: datetime | None = None
    kept: str = ""  # why it is not released although releasePrevious is set


@dataclass(frozen=True)
class AliasObservation:
    current: str | None  # the collection the alias points at in Milvus; None: no such alias
    target: str  # the collection the spec asks for
    readiness: Readiness
    previous: Previous | None
    release_after: int | None  # spec.releasePrevious.afterSeconds
    now: datetime
    draining: tuple[Previous, ...] = ()  # older previous targets left before `previous`, not released yet
    # by collection, for those whose drain window is over: who still wants it (other aliases, MilvusCollections)
    holders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    loaded: Mapping[str, bool] = field(default_factory=dict)  # whether it holds memory; absent: it does


@dataclass(frozen=True)
class AliasPlan:
    action: AliasAction
    releases: tuple[str, ...] = ()  # previous targets to release now
    wait: Failure | None = None  # why the alias is not switched (yet)
    recheck_in: float | None = None  # seconds until the next drain window ends
    previous: Previous | None = None  # status.previous once the calls succeed
    draining: tuple[Previous, ...] = ()  # status.draining once the calls succeed


def plan_alias(seen: AliasObservation) -> AliasPlan:
    """Switch only to a serviceable target; release each previous one once drained and wanted by no one."""
    if seen.current != seen.target:
        if not seen.readiness.ready:
            return AliasPlan(AliasAction.NONE, wait=waiting(seen), previous=seen.previous, draining=seen.draining)
        if seen.current is None:
            return AliasPlan(AliasAction.CREATE, previous=seen.previous, draining=seen.draining)
        # the drain window starts now: the pass that ends it is due then, not at the next resync
        drain = float(seen.release_after) if seen.release_after is not None else None
        previous = Previous(seen.current, seen.now)
        return AliasPlan(AliasAction.ALTER, recheck_in=drain, previous=previous, draining=_still_draining(seen))
    return _release_step(seen)


def _still_draining(seen: AliasObservation) -> tuple[Previous, ...]:
    """At a switch: what the alias left before and is not released yet stays to be released, newest first."""
    if seen.release_after is None:
        return ()  # nothing is ever released: nothing to remember
    older = (seen.previous,) if seen.previous is not None else ()
    left = {seen.target, str(seen.current)}  # the target serves again; the one just left is status.previous
    kept: list[Previous] = []
    for entry in (*older, *seen.draining):
        if entry.released_at is None and entry.collection not in left:
            left.add(entry.collection)
            kept.append(replace(entry, kept=""))
    return tuple(kept[:MAX_DRAINING])


def waiting(seen: AliasObservation) -> Failure:
    """The target's own reason when it needs a human (IndexNotFound, ...), else TargetNotReady."""
    readiness = seen.readiness
    staying = f"the alias stays on {seen.current}" if seen.current else "the alias is not created until then"
    said = f"{readiness.reason}: {readiness.message}" if readiness.reason else readiness.message or "not observed yet"
    message = f"target {seen.target} is not ready ({said}); {staying}"
    reason = next((r for r in STALLED_REASONS if r.value == readiness.reason), None)
    return Failure(reason or Reason.TARGET_NOT_READY, message)


def _release_step(seen: AliasObservation) -> AliasPlan:
    if seen.release_after is None:
        return AliasPlan(AliasAction.NONE, previous=seen.previous, draining=seen.draining)
    releases: list[str] = []
    waits: list[float] = []

    def step(entry: Previous) -> Previous | None:
        """The entry after this pass; None once it is released (or found released) or serves again."""
        if entry.released_at is not None or entry.collection == seen.target:
            return entry if entry is seen.previous else None  # switched back: the old target is the target again
        left = float(seen.release_after or 0) - (seen.now - entry.switched_at).total_seconds()
        if left > 0:
            waits.append(left)
            return entry
        holders = seen.holders.get(entry.collection, ())
        if holders:
            return replace(entry, kept=f"not released: still wanted by {', '.join(holders)}")
        if seen.loaded.get(entry.collection, True):
            releases.append(entry.collection)
        return replace(entry, released_at=seen.now, kept="") if entry is seen.previous else None

    previous = step(seen.previous) if seen.previous is not None else None
    draining = tuple(e for e in (step(entry) for entry in seen.draining) if e is not None)
    recheck = min(waits) if waits else None
    return AliasPlan(AliasAction.NONE, tuple(releases), recheck_in=recheck, previous=previous, draining=draining)


def due(
    seen_previous: Previous | None, draining: tuple[Previous, ...], release_after: int | None, now: datetime
) -> tuple[str, ...]:
    """The previous targets whose drain window is over: a pass must find out who still wants them."""
    entries = (seen_previous,) if seen_previous is not None else ()
    return tuple(e.collection for e in (*entries, *draining) if drain_over(e, release_after, now))


def drain_over(previous: Previous | None, release_after: int | None, now: datetime) -> bool:
    """Whether a pass must find out who still wants the previous target (Milvus calls, index reads)."""
    if previous is None or release_after is None or previous.released_at is not None:
        return False
    return (now - previous.switched_at).total_seconds() >= release_after
