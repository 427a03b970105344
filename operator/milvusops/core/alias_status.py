"""Pure status builder for MilvusAlias: (spec, outcome of one pass, previous status) -> the new status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milvusops.core.alias_model import AliasSpec
from milvusops.core.alias_plan import Previous
from milvusops.core.failures import Failure, Reason
from milvusops.core.model import ResourceRef
from milvusops.core.status import Verdict, blocked, conditions

UNKNOWN = object()  # the alias's target in Milvus was not observed this pass: status keeps the last one


@dataclass(frozen=True)
class AliasOutcome:
    """Everything one pass learned; `failure` (a refusal, or why the alias waits) wins over the rest."""

    target: str | None = None  # the collection the spec asks for, resolved
    current: object = UNKNOWN  # str: what the alias points at after this pass; None: it does not exist
    previous: Previous | None = None
    draining: tuple[Previous, ...] | None = None  # None: not worked out this pass, status keeps the last ones
    failure: Failure | None = None
    paused: bool = False


def alias_verdict(spec: AliasSpec, outcome: AliasOutcome) -> Verdict:
    stopped = blocked(outcome.paused, outcome.failure)
    if stopped is not None:
        return stopped
    return Verdict(True, Reason.IN_SYNC, f"alias {spec.alias} points at {outcome.current}", False, False)


def build_alias_status(
    spec: AliasSpec, ref: ResourceRef, outcome: AliasOutcome, previous: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The whole status except lastSyncTime (`core.status.stamp` sets it, as for MilvusCollection)."""
    status: dict[str, Any] = {"observedGeneration": ref.generation, "alias": spec.alias}
    target = outcome.target or previous.get("desiredTarget")
    if target:
        status["desiredTarget"] = target
    current = previous.get("target") if outcome.current is UNKNOWN else outcome.current
    if current:
        status["target"] = current
    if outcome.previous is not None:
        status["previous"] = previous_status(outcome.previous)
    elif previous.get("previous"):
        status["previous"] = dict(previous["previous"])
    draining = [previous_status(e) for e in outcome.draining] if outcome.draining is not None else None
    if draining is None:
        draining = [dict(e) for e in previous.get("draining") or ()]
    if draining:
        status["draining"] = draining
    old = previous.get("conditions") or []
    status["conditions"] = conditions(alias_verdict(spec, outcome), ref.generation, old, now)
    return status


def previous_status(previous: Previous) -> dict[str, Any]:
    out: dict[str, Any] = {"collection": previous.collection, "switchedAt": timestamp(previous.switched_at)}
    if previous.released_at is not None:
        out["releasedAt"] = timestamp(previous.released_at)
    elif previous.kept:
        out["kept"] = previous.kept
    return out


def previous_of(status: Mapping[str, Any]) -> Previous | None:
    """status.previous as a value; None when absent or unreadable (hand-edited)."""
    return _entry(status.get("previous") or {})


def draining_of(status: Mapping[str, Any]) -> tuple[Previous, ...]:
    """status.draining as values, skipping unreadable (hand-edited) entries."""
    entries = (_entry(raw) for raw in status.get("draining") or () if isinstance(raw, Mapping))
    return tuple(entry for entry in entries if entry is not None)


def _entry(raw: Mapping[str, Any]) -> Previous | None:
    try:
        released = raw.get("releasedAt")
        return Previous(
            str(raw["collection"]),
            parse_time(str(raw["switchedAt"])),
            parse_time(str(released)) if released else None,
            str(raw.get("kept") or ""),
        )
    except (KeyError, ValueError):
        return None


def timestamp(moment: datetime) -> str:
    """With milliseconds: the drain window is counted from it, and may be a few seconds long."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
