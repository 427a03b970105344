"""The memory step of a pass: estimate each partition, and hold back a load the query nodes cannot take.

Reads go through the port (schema, indexes, row counts; the query nodes' memory via GetMetrics);
the decisions are pure (`memory.admit`, `needed_bytes`, `WaitingLoads.ahead`) and table-tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

from .failures import Failure, FailureError, Reason
from .memory import Capacity, NodeMemory, Refusal, admit, bytes_per_partition, human
from .milvus import MilvusPort
from .model import CollectionSpec, Desired, LoadState
from .observe import Observed
from .plan import LoadCollection, LoadPartitions, Plan, ReleaseCollection, ReleasePartitions

_HELD = (LoadState.LOADED, LoadState.LOADING)
NodeReading = tuple[tuple[NodeMemory, ...], str]  # each query node's memory, and which nodes these are


@dataclass(frozen=True)
class GuardSettings:
    enabled: bool = True
    headroom_percent: float = 10.0


@dataclass(frozen=True)
class Memory:
    """What this pass learned about memory: per partition (all replicas), and the guard's verdict."""

    partitions: Mapping[str, int]
    refusal: Refusal | None = None


@dataclass
class WaitingLoads:
    """Loads refused for memory, so that freed memory goes to the oldest first (creation time, then name),
    and loads sent but not yet seen to end, whose memory Milvus does not count in full until they do.

    Shared by every resource of one operator; an entry not renewed within `ttl` seconds (its resource
    was deleted, or its spec no longer loads) stops counting.
    """

    ttl: float = 120.0
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[str, int, float]] = field(default_factory=dict)  # key -> (created, bytes, seen)
    _running: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (bytes, sent)

    def running(self, key: str) -> int:
        """Bytes of other resources' loads that were admitted and have not been seen to end."""
        now = self.clock()
        return sum(needed for other, (needed, sent) in self._running.items() if other != key and now - sent <= self.ttl)

    def sent(self, key: str, needed: int) -> None:
        self._running[key] = (needed, self.clock())

    def ended(self, key: str) -> None:
        """This resource's pass saw nothing loading: Milvus's memory use now holds what its load took."""
        self._running.pop(key, None)

    def ahead(self, key: str, created: str) -> int:
        """Bytes that older waiting loads (other resources) are owed before this one."""
        now = self.clock()
        return sum(
            needed
            for other, (since, needed, seen) in self._entries.items()
            if other != key and now - seen <= self.ttl and (since, other) < (created, key)
        )

    def wait(self, key: str, created: str, needed: int) -> None:
        self._entries[key] = (created, needed, self.clock())

    def done(self, key: str) -> None:
        self._entries.pop(key, None)


def wants_memory(observed: Observed, planned: Plan, estimated: Collection[str], preview: bool) -> bool:
    """Estimate before a load (the guard needs it), for a preview, or where status has no estimate yet.

    Otherwise the estimates in status are kept: a steady pass costs no size reads (issue 17's call budget).
    """
    if preview or any(isinstance(action, LoadCollection | LoadPartitions) for action in planned.actions):
        return True
    relevant = [
        name
        for name, report in observed.partitions.items()
        if report.state in _HELD or planned.desired.get(name) == Desired.LOADED
    ]
    return any(name not in estimated for name in relevant)


def needed_bytes(planned: Plan, observed: Observed, estimate: Mapping[str, int]) -> int:
    """Net bytes the planned calls would add: partitions they load minus partitions they release."""
    state = {name: report.state for name, report in observed.partitions.items()}
    total = 0
    for action in planned.actions:
        match action:
            case LoadCollection():
                total += sum(estimate.get(n, 0) for n, s in state.items() if s == LoadState.NOT_LOAD)
            case LoadPartitions(partitions):
                total += sum(estimate.get(n, 0) for n in partitions)
            case ReleasePartitions(partitions):
                total -= sum(estimate.get(n, 0) for n in partitions)
            case ReleaseCollection():
                total -= sum(estimate.get(n, 0) for n, s in state.items() if s in _HELD)
    return total


def loads(planned: Plan) -> bool:
    return any(isinstance(action, LoadCollection | LoadPartitions) for action in planned.actions)


def checks(settings: GuardSettings, planned: Plan) -> bool:
    """The guard will read the query nodes' memory for this plan (so it can be read beside the sizes)."""
    return settings.enabled and loads(planned)


def to_size(observed: Observed, planned: Plan, known: Collection[str], every: bool) -> list[str]:
    """The partitions whose row counts the estimate reads (one queued request each on Milvus 2.3.5).

    Those about to load, and those that are or should be loaded without an estimate in `known`
    (status); `every` partition for a preview, or when the estimates in status are out of date.
    """
    if every:
        return sorted(observed.partitions)
    loading = {name for action in planned.actions for name in _loaded_by(action, observed)}
    return sorted(
        name
        for name, report in observed.partitions.items()
        if name in loading
        or (name not in known and (report.state in _HELD or planned.desired.get(name) == Desired.LOADED))
    )


def _loaded_by(
    action: LoadCollection | LoadPartitions | ReleasePartitions | ReleaseCollection, observed: Observed
) -> tuple[str, ...]:
    if isinstance(action, LoadPartitions):
        return action.partitions
    if isinstance(action, LoadCollection):
        return tuple(name for name, report in observed.partitions.items() if report.state == LoadState.NOT_LOAD)
    return ()


async def estimate(
    port: MilvusPort, spec: CollectionSpec, observed: Observed, partitions: Collection[str] | None = None
) -> dict[str, int] | None:
    """Estimated bytes of each partition (`partitions`, else all) with all its replicas; None when Milvus
    could not be asked."""
    names = sorted(observed.partitions if partitions is None else partitions)
    try:
        shape = await port.shape(spec.collection_name, names, observed.fields)
    except FailureError:
        return None  # an estimate is advice: its absence must not fail the pass
    per_replica = bytes_per_partition(shape, spec.load.load_fields)
    return {name: size * spec.load.replicas for name, size in per_replica.items()}


async def guard(
    port: MilvusPort,
    spec: CollectionSpec,
    observed: Observed,
    planned: Plan,
    sizes: Mapping[str, int],
    settings: GuardSettings,
    waiting: WaitingLoads,
    key: str,
    created: str,
    read: NodeReading | None = None,
) -> Refusal | None:
    """Whether the planned loads fit in the query nodes' free memory; a refusal when they do not.

    `read`: the query nodes' memory, when it was read beside the sizes (`checks`) rather than after them.
    """
    if not checks(settings, planned):
        return None
    needed = needed_bytes(planned, observed, sizes)
    if needed <= 0:
        waiting.done(key)
        return None
    nodes, scope = read or await port.query_node_memory(spec.load.resource_groups)
    capacity = Capacity(nodes, scope)
    kept = [
        f"{name} ({human(sizes[name])})"
        for name, report in sorted(observed.partitions.items())
        if report.state == LoadState.LOADED and name in sizes
    ]
    ahead, running = waiting.ahead(key, created), waiting.running(key)
    refusal = admit(needed, capacity, settings.headroom_percent, ahead, tuple(kept), running)
    if refusal is None:
        waiting.done(key)
        waiting.sent(key, needed)
    else:
        waiting.wait(key, created, needed)
    return refusal


def refused(planned: Plan, refusal: Refusal) -> tuple[Plan, Failure]:
    """The plan without its loads (its releases still go: they free memory), and the Stalled reason why."""
    releases = tuple(a for a in planned.actions if isinstance(a, ReleasePartitions | ReleaseCollection))
    return replace(planned, actions=releases), Failure(Reason.INSUFFICIENT_MEMORY, refusal.message)
