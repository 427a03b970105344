"""Run planned actions through the Milvus port; loads are started, not awaited to completion."""

from __future__ import annotations

from dataclasses import dataclass, replace

from milvusops import REFRESH_ANNOTATION
from milvusops.core.failures import Failure, FailureError
from milvusops.core.messages import listing
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.core.observed import Observed, StateReport
from milvusops.core.plan import Action, LoadCollection, LoadPartitions, ReleaseCollection, ReleasePartitions
from milvusops.core.refresh import Refresh, RefreshStep
from milvusops.milvus.call_slots import Priority, prioritized
from milvusops.milvus.port import MilvusPort


@dataclass(frozen=True)
class Applied:
    """What one run of the planned actions did: the actions Milvus took (a line each), and the refusal
    that stopped the rest. A pass reports both: calls that went through changed Milvus either way."""

    actions: tuple[Action, ...] = ()
    lines: tuple[str, ...] = ()
    failure: Failure | None = None
    refreshed: str = ""  # the Refreshed event's message, when the refresh annotation was handled
    refresh_sent: bool = False  # a refresh call was made: what was observed is out of date

    def __add__(self, later: Applied) -> Applied:
        return Applied(
            self.actions + later.actions,
            self.lines + later.lines,
            later.failure,
            later.refreshed or self.refreshed,
            self.refresh_sent or later.refresh_sent,
        )

    @property
    def acted(self) -> bool:
        """Load, release or refresh calls were made: what was observed is out of date."""
        return bool(self.actions) or self.refresh_sent


async def apply(port: MilvusPort, spec: CollectionSpec, actions: tuple[Action, ...]) -> Applied:
    """Runs the actions in order, up to the first that Milvus refuses."""
    done: list[Action] = []
    lines: list[str] = []
    for action in actions:
        try:
            lines.append(await _run(port, spec, action))
        except FailureError as exc:
            return Applied(tuple(done), tuple(lines), exc.failure)
        done.append(action)
    return Applied(tuple(done), tuple(lines))


def _replicas(spec: CollectionSpec) -> str:
    return "replicas as Milvus decides" if spec.load.replicas is None else f"replicas={spec.load.replicas}"


async def _run(port: MilvusPort, spec: CollectionSpec, action: Action) -> str:
    name = spec.collection_name
    match action:
        case LoadCollection():
            await port.load_collection(name, spec.load)
            return f"load of collection {name} started ({_replicas(spec)})"
        case LoadPartitions(partitions):
            await port.load_partitions(name, list(partitions), spec.load)
            return f"load of partitions {listing(partitions)} started ({_replicas(spec)})"
        case ReleasePartitions(partitions):
            await port.release_partitions(name, list(partitions))
            return f"released partitions {listing(partitions)}"
        case ReleaseCollection():
            await port.release_collection(name)
            return f"released collection {name}"
    raise AssertionError(f"unknown action {action!r}")


def after(observed: Observed, actions: tuple[Action, ...]) -> Observed:
    """The picture that calls Milvus accepted leave: released partitions NotLoad, started loads Loading.

    For status only, after a later call failed: nothing is planned from it (the next pass observes in full).
    """
    collection, partitions = observed.collection, dict(observed.partitions)
    loading, released = StateReport(LoadState.LOADING), StateReport(LoadState.NOT_LOAD)
    for action in actions:
        match action:
            case LoadCollection():
                collection = loading
                partitions.update({n: loading for n, r in partitions.items() if not r.state.held})
            case LoadPartitions(names):
                partitions.update({n: loading for n in names if n in partitions and not partitions[n].state.held})
            case ReleasePartitions(names):
                partitions.update({n: released for n in names if n in partitions})
            case ReleaseCollection():
                partitions = dict.fromkeys(partitions, released)
    held = [r.state for r in partitions.values() if r.state.held]
    if not held:
        collection = released  # Milvus answers NotLoad for a collection only when nothing of it is held
    elif LoadState.LOADED not in held and collection.state == LoadState.LOADED:
        collection = loading
    replicas = observed.replicas if held else None
    return replace(observed, collection=collection, partitions=partitions, replicas=replicas, confirmed=False)


async def refresh(port: MilvusPort, spec: CollectionSpec, ref: ResourceRef, step: RefreshStep | None) -> Applied:
    """Make the refresh call the step asks for, or say why none was needed, once the annotation is handled."""
    if step is None or not step.handled:
        return Applied()
    if step.action is not None:
        with prioritized(Priority.ACT):  # someone annotated the resource and waits for exactly this call
            line = await apply_refresh(port, spec, step.action)
    else:
        line = f"refresh of collection {spec.collection_name} not needed: {step.note}"
    message = f"{line} ({REFRESH_ANNOTATION}: {ref.refresh_requested})"
    return Applied(refreshed=message, refresh_sent=step.action is not None)


async def apply_refresh(port: MilvusPort, spec: CollectionSpec, refresh: Refresh) -> str:
    """Start the refresh of what is loaded; Milvus loads the new segments in the background."""
    name = spec.collection_name
    if refresh.partitions is None:
        await port.load_collection(name, spec.load, refresh=True)
        return f"refresh of collection {name} started"
    await port.load_partitions(name, list(refresh.partitions), spec.load, refresh=True)
    return f"refresh of collection {name} started (loaded partitions {listing(refresh.partitions)})"
