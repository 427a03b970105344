"""The pure decision for one MilvusAlias pass: switch the alias, release the previous target, or wait, and why.

Inputs are what was observed in Milvus this pass and read from the API server's cache; nothing carried over
from the last pass except what status holds (the previous target and when the alias left it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from milvusops.core.failures import STALLED_REASONS, Failure, Reason


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
    """status.previous: the collection the alias pointed at before the operator's last switch."""

    collection: str
    switched_at: datetime
    released_at: datetime | None = None


@dataclass(frozen=True)
class AliasObservation:
    current: str | None  # the collection the alias points at in Milvus; None: no such alias
    target: str  # the collection the spec asks for
    readiness: Readiness
    previous: Previous | None
    release_after: int | None  # spec.releasePrevious.afterSeconds
    now: datetime
    holders: tuple[str, ...] = ()  # who still wants the previous target (other aliases, MilvusCollections)
    previous_loaded: bool = True  # whether the previous target holds memory (Loaded or Loading)


@dataclass(frozen=True)
class AliasPlan:
    action: AliasAction
    release: str | None = None  # the previous target to release now
    wait: Failure | None = None  # why the alias is not switched (yet)
    kept: str = ""  # why the previous target is not released although releasePrevious is set
    recheck_in: float | None = None  # seconds until the drain window ends
    drained: bool = False  # the previous target holds no memory already: nothing left to release


def plan_alias(seen: AliasObservation) -> AliasPlan:
    """Switch only to a serviceable target; release the previous one once drained and wanted by no one."""
    if seen.current != seen.target:
        if not seen.readiness.ready:
            return AliasPlan(AliasAction.NONE, wait=waiting(seen))
        if seen.current is None:
            return AliasPlan(AliasAction.CREATE)
        # the drain window starts now: the pass that ends it is due then, not at the next resync
        drain = float(seen.release_after) if seen.release_after is not None else None
        return AliasPlan(AliasAction.ALTER, recheck_in=drain)
    return _release_step(seen)


def waiting(seen: AliasObservation) -> Failure:
    """The target's own reason when it needs a human (IndexNotFound, ...), else TargetNotReady."""
    readiness = seen.readiness
    staying = f"the alias stays on {seen.current}" if seen.current else "the alias is not created until then"
    said = f"{readiness.reason}: {readiness.message}" if readiness.reason else readiness.message or "not observed yet"
    message = f"target {seen.target} is not ready ({said}); {staying}"
    reason = next((r for r in STALLED_REASONS if r.value == readiness.reason), None)
    return Failure(reason or Reason.TARGET_NOT_READY, message)


def _release_step(seen: AliasObservation) -> AliasPlan:
    previous = seen.previous
    if previous is None or seen.release_after is None or previous.released_at is not None:
        return AliasPlan(AliasAction.NONE)
    if previous.collection == seen.target:
        return AliasPlan(AliasAction.NONE)  # switched back: the old target is the target again
    left = seen.release_after - (seen.now - previous.switched_at).total_seconds()
    if left > 0:
        return AliasPlan(AliasAction.NONE, recheck_in=left)
    if seen.holders:
        kept = f"not released: still wanted by {', '.join(seen.holders)}"
        return AliasPlan(AliasAction.NONE, kept=kept)
    if not seen.previous_loaded:
        return AliasPlan(AliasAction.NONE, drained=True)
    return AliasPlan(AliasAction.NONE, release=previous.collection)


def drain_over(previous: Previous | None, release_after: int | None, now: datetime) -> bool:
    """Whether a pass must find out who still wants the previous target (Milvus calls, index reads)."""
    if previous is None or release_after is None or previous.released_at is not None:
        return False
    return (now - previous.switched_at).total_seconds() >= release_after
