"""Pure: the Kubernetes events one pass posts, derived from what it saw and did; counted where they are sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from milvusops.core.failures import Reason
from milvusops.core.model import ResourceRef
from milvusops.core.observed import Observed
from milvusops.core.plan import Action, LoadPartitions, Plan, ReleasePartitions, destructive_marks, is_load
from milvusops.core.status import Outcome, Verdict
from milvusops.runtime.apply import Applied

DRIFT_CORRECTED = "DriftCorrected"


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    partitions: tuple[str, ...] = ()  # what the calls behind this event touched ("*" = whole collection)


def events(
    ref: ResourceRef, previous: Mapping[str, Any], outcome: Outcome, result: Verdict, done: Applied
) -> tuple[Event, ...]:
    found: list[Event] = []
    if done.refreshed:  # the refresh's own event, apart from the load events
        found.append(Event("Normal", "Refreshed", done.refreshed))
    before = ready_condition(previous)
    recreated = _recreated(previous, outcome.observed)
    if recreated:
        found.append(Event("Normal", "CollectionRecreated", recreated))
    window = window_event(previous, outcome)
    if window is not None:
        found.append(window)
    if done.actions:
        # an unchanged spec that was in sync and now needs calls means someone changed Milvus behind our back
        drift = (
            not recreated
            and window is None  # a window opened or closed: the schedule asked for the calls, not drift
            and before.get("status") == "True"
            and before.get("reason") == Reason.IN_SYNC
            and previous.get("observedGeneration") == ref.generation
        )
        releasing = not all(is_load(action) for action in done.actions)
        reason = DRIFT_CORRECTED if drift else ("Releasing" if releasing else "Loading")
        # what the calls took out of search, in the words `milvusops plan` uses
        marks = destructive_marks(Plan({}, (), done.actions), outcome.observed)
        lines = (*done.lines, *(f"destructive: {mark}" for mark in marks))
        found.append(Event("Normal", reason, "; ".join(lines), _touched(done.actions)))
    if outcome.failure is not None:
        found.append(Event("Warning", outcome.failure.reason.value, outcome.failure.message))
    elif result.ready and before.get("reason") != result.reason.value:
        found.append(Event("Normal", result.reason.value, result.message))
    return tuple(found)


def window_event(previous: Mapping[str, Any], outcome: Outcome) -> Event | None:
    """An event when the open window differs from the one status shows (or status shows none yet): once each."""
    schedule = outcome.schedule
    if schedule is None:
        return None
    before = previous.get("schedule")
    if before is not None and before.get("activeWindow") == schedule.active:
        return None
    if schedule.active is None:
        message = "outside every load window: the partitions the spec declares Loaded are Released"
        return Event("Normal", "WindowClosed", message)
    message = f"load window {schedule.active} opened: the partitions the spec declares Loaded are loaded"
    return Event("Normal", "WindowOpened", message)


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


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}
