"""`milvusops plan` for MilvusAlias: where each alias points, where its spec wants it, and what a pass would do.

Read-only: the alias is read through the one adapter (`describe_alias`, `list_aliases`), never created,
altered or dropped. A collectionRef target is serviceable when its MilvusCollection in the same input would
be InSync with nothing to do; a bare collectionName when Milvus says it is Loaded (as the operator decides).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from milvusops.core.alias_model import AliasSpec, CollectionView, holders_of
from milvusops.core.alias_plan import AliasAction, AliasObservation, AliasPlan, Readiness, plan_alias
from milvusops.core.alias_status import draining_of, previous_of
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import ResourceRef, connection_key
from milvusops.core.observed import StateReport
from milvusops.core.plan import Plan, ReleaseCollection, destructive_marks
from milvusops.milvus.aliases import AliasPort
from milvusops.milvus.port import MilvusPort
from milvusops.preview.rows import AliasLine, ResourcePreview
from milvusops.runtime.alias_reconcile import Target, readiness, resolve_target

Planned = Mapping[tuple[str, str], tuple[Mapping[str, Any], ResourcePreview]]  # (namespace, name) -> body, preview


def views_of(planned: Planned) -> dict[tuple[str, str], CollectionView]:
    """The input's MilvusCollections as an alias sees them: Ready only when the plan for them has nothing to do."""
    views = {}
    for key, (body, item) in planned.items():
        view = CollectionView.of(body)
        ready = item.status == "no change" and item.reason == Reason.IN_SYNC.value and not item.failed
        if item.calls:
            reason, message = Reason.TARGET_NOT_READY.value, f"its planned {'; '.join(item.calls)} first"
        elif ready and not _loaded(item):
            reason, message = "NotLoaded", "the MilvusCollection would be InSync with nothing loaded: set state Loaded"
        else:
            reason, message = item.reason, item.message
        views[key] = replace(view, ready=ready and _loaded(item), reason=reason, message=message)
    return views


def _loaded(item: ResourcePreview) -> bool:
    return any(p.desired == "Loaded" and p.current == "Loaded" for p in item.partitions)


async def preview_alias(
    source: str,
    body: Mapping[str, Any],
    views: Mapping[tuple[str, str], CollectionView],
    port: MilvusPort,
    aliases: AliasPort,
    connection: str,
    now: datetime,
) -> ResourcePreview:
    """What one pass would do: switch now or wait (and for what), and the release the switch would cause."""
    spec, ref = AliasSpec.from_body(body), ResourceRef.from_body(body)
    where = f"{spec.database}.{spec.alias}"
    try:
        target = resolve_target(spec, ref.namespace, lambda ns, name: views.get((ns, name)))
        current = await aliases.target_of(spec.alias)
        ready = Readiness(True) if current == target.collection else await readiness(port, target)
        status = body.get("status") or {}
        previous, draining = previous_of(status), draining_of(status)
        seen = AliasObservation(current, target.collection, ready, previous, spec.release_after_seconds, now, draining)
        planned = plan_alias(seen)
        release, later, marks = await _release(spec, ref, seen, planned, port, aliases, views.values())
    except FailureError as exc:
        return failed(source, body, connection, exc.failure)
    calls = _calls(planned, target, spec.alias) + later
    switch = "none" if planned.action == AliasAction.NONE and planned.wait is None else "now"
    if planned.wait is not None:
        switch = f"waits ({planned.wait.reason.value})"
    reason = planned.wait.reason.value if planned.wait else Reason.IN_SYNC.value
    message = planned.wait.message if planned.wait else f"alias {spec.alias} points at {target.collection}"
    line = AliasLine(spec.alias, current, target.collection, switch, release)
    return ResourcePreview(
        source,
        ref.namespace,
        ref.name,
        where,
        connection,
        calls=calls,
        reason=reason,
        message=message,
        failed=planned.wait is not None and planned.wait.stalled,
        destructive=marks,
        kind="MilvusAlias",
        alias=line,
    )


def _calls(planned: AliasPlan, target: Target, alias: str) -> tuple[str, ...]:
    if planned.action == AliasAction.CREATE:
        return (f"create_alias({target.collection}, {alias})",)
    if planned.action == AliasAction.ALTER:
        return (f"alter_alias({target.collection}, {alias})",)
    return tuple(f"release_collection({collection})" for collection in planned.releases)


async def _release(
    spec: AliasSpec,
    ref: ResourceRef,
    seen: AliasObservation,
    planned: AliasPlan,
    port: MilvusPort,
    aliases: AliasPort,
    views: Iterable[CollectionView],
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """What releasePrevious would do: (in words, the call due after the drain window, destructive marks)."""
    if planned.releases:  # a drain window already over (a manifest with status): released by this pass
        return "", (), _marks(", ".join(planned.releases), "now")
    if planned.action != AliasAction.ALTER or seen.current is None:
        return "", (), ()
    if spec.release_after_seconds is None:
        return f"{seen.current} stays loaded (no releasePrevious)", (), ()
    others = [f"alias {a}" for a in await aliases.aliases_of(seen.current) if a != spec.alias]
    connection = connection_key(ref.namespace, spec.connection_name)
    wanting = holders_of(seen.current, spec.database, connection, views)
    holders = (*others, *(f"MilvusCollection {who} (wants it Loaded)" for who in wanting))
    if holders:
        return f"{seen.current} kept after the drain window: still wanted by {', '.join(holders)}", (), ()
    state: StateReport = await port.load_state(seen.current)
    if not state.state.held:
        return f"{seen.current} is not loaded: nothing to release", (), ()
    when = f"after the {spec.release_after_seconds} s drain window"
    call = f"release_collection({seen.current}) {when}"
    return call, (call,), _marks(seen.current, when)


def failed(source: str, body: Mapping[str, Any], connection: str, failure: Failure) -> ResourcePreview:
    """An alias that cannot be previewed: its target unknown or Milvus not readable."""
    spec, ref = AliasSpec.from_body(body), ResourceRef.from_body(body)
    where = f"{spec.database}.{spec.alias}"
    return ResourcePreview(
        source,
        ref.namespace,
        ref.name,
        where,
        connection,
        reason=failure.reason.value,
        message=failure.message,
        failed=True,
        kind="MilvusAlias",
    )


def _marks(collections: str, when: str) -> tuple[str, ...]:
    """The shared wording of `core.plan.destructive_marks`, naming the collection and when."""
    words = destructive_marks(Plan({}, (), (ReleaseCollection(),)), None)
    return tuple(f"{mark} {collections} ({when})" for mark in words)
