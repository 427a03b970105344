"""The memory step of a pass: estimate each partition, and hold back a load the query nodes cannot take.

Reads go through the port (schema, indexes, row counts; the query nodes' memory via GetMetrics);
the decisions are pure (`memory.admit`, `needed_bytes`, `WaitingLoads.ahead`) and table-tested.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.memory_estimate import (
    Capacity,
    GuardSettings,
    Memory,
    NodeMemory,
    Refusal,
    admit,
    bytes_per_partition,
    human,
)
from milvusops.core.model import CollectionSpec, Desired, LoadState, ManagementPolicy, ResourceRef
from milvusops.core.observed import Observed
from milvusops.core.plan import LoadCollection, LoadPartitions, Plan, ReleaseCollection, ReleasePartitions
from milvusops.milvus.port import MilvusPort

log = logging.getLogger("milvusops")
NodeReading = tuple[tuple[NodeMemory, ...], str]  # each query node's memory, and which nodes these are


@dataclass
class WaitingLoads:
    """One Milvus server's loads refused for memory, so that its freed memory goes to the oldest first (creation
    time, then name), and its loads sent but not yet seen to end, whose memory Milvus does not count in full yet.

    An entry not renewed within `ttl` seconds (its spec no longer loads, or it moved to another server) stops
    counting and is pruned as checks go; a check costs O(log N) of this server's entries, not O(N).
    """

    ttl: float = 120.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> (created, renewed), least recent first
    _order: list[tuple[str, str]] = field(default_factory=list)  # (created, key) of waiting loads, oldest first
    _bytes: list[int] = field(default_factory=list)  # needed bytes, in `_order`'s order
    _sums: list[int] = field(default_factory=lambda: [0])  # _sums[i]: bytes of _order[:i]; valid as far as it goes
    _running: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (bytes, sent), least recent first
    _running_total: int = 0

    def running(self, key: str) -> int:
        """Bytes of other resources' loads that were admitted and have not been seen to end."""
        self._prune(self.clock())
        own = self._running.get(key, (0, 0.0))[0]
        return self._running_total - own

    def sent(self, key: str, needed: int) -> None:
        self.ended(key)
        self._running[key] = (needed, self.clock())
        self._running_total += needed

    def ended(self, key: str) -> None:
        """This resource's pass saw nothing loading: Milvus's memory use now holds what its load took."""
        needed, _ = self._running.pop(key, (0, 0.0))
        self._running_total -= needed

    def ahead(self, key: str, created: str) -> int:
        """Bytes that older waiting loads (other resources) are owed before this one."""
        self._prune(self.clock())
        return self._sum_to(bisect.bisect_left(self._order, (created, key)))

    def wait(self, key: str, created: str, needed: int) -> None:
        entry = self._seen.get(key)
        if entry is not None and entry[0] == created:  # a renewal: the order stands, only the bytes may change
            at = bisect.bisect_left(self._order, (created, key))
            if self._bytes[at] != needed:
                self._bytes[at] = needed
                del self._sums[at + 1 :]
            del self._seen[key]  # entered again below: the least recently renewed stay first
        else:
            self.done(key)
            at = bisect.bisect_left(self._order, (created, key))
            self._order.insert(at, (created, key))
            self._bytes.insert(at, needed)
            del self._sums[at + 1 :]
        self._seen[key] = (created, self.clock())

    def done(self, key: str) -> None:
        entry = self._seen.pop(key, None)
        if entry is None:
            return
        at = bisect.bisect_left(self._order, (entry[0], key))
        del self._order[at], self._bytes[at], self._sums[at + 1 :]

    def forget(self, key: str) -> None:
        """The resource is gone: its entries stop counting now, not when they expire."""
        self.done(key)
        self.ended(key)

    def empty(self) -> bool:
        return not self._seen and not self._running

    def _sum_to(self, end: int) -> int:
        """Bytes of the first `end` waiting loads, extending the prefix sums only as far as asked."""
        if len(self._sums) <= end:
            start = len(self._sums) - 1
            self._sums.extend(itertools.accumulate(self._bytes[start:end], initial=self._sums.pop()))
        return self._sums[end]

    def _prune(self, now: float) -> None:
        """Drop entries not renewed within `ttl`: both maps are kept least recently renewed first."""
        while self._seen:
            key, (_, renewed) = next(iter(self._seen.items()))
            if now - renewed <= self.ttl:
                break
            self.done(key)
        while self._running:
            key, (_, sent) = next(iter(self._running.items()))
            if now - sent <= self.ttl:
                break
            self.ended(key)


@dataclass
class LoadsByServer:
    """Each Milvus server's WaitingLoads (STYLE 15): a load waits only for loads on the server it goes to.

    Keyed by the server's address (`MilvusPort.server`), so connections to the same server share one queue;
    `forget` drops a deleted resource's entries, and a resource that moved to another server leaves the old one.
    """

    ttl: float = 120.0
    clock: Callable[[], float] = time.monotonic
    _servers: dict[str, WaitingLoads] = field(default_factory=dict)
    _home: dict[str, str] = field(default_factory=dict)  # resource key -> the server its entries are on

    def on(self, server: str, key: str) -> WaitingLoads:
        """The loads of `server`, for resource `key` to check against (and be entered in)."""
        if self._home.get(key, server) != server:
            self.forget(key)
        self._home[key] = server
        loads = self._servers.get(server)
        if loads is None:
            loads = self._servers[server] = WaitingLoads(self.ttl, self.clock)
        return loads

    def ended(self, key: str) -> None:
        loads = self._servers.get(self._home.get(key, ""))
        if loads is not None:
            loads.ended(key)

    def forget(self, key: str) -> None:
        home = self._home.pop(key, "")
        loads = self._servers.get(home)
        if loads is not None:
            loads.forget(key)
            if loads.empty():
                del self._servers[home]  # connections come and go: keep only servers with loads in them


def wants_memory(observed: Observed, planned: Plan, estimated: Collection[str], preview: bool) -> bool:
    """Estimate before a load (the guard needs it), for a preview, or where status has no estimate yet.

    Otherwise the estimates in status are kept: a steady pass costs no size reads (issue 17's call budget).
    """
    if preview or planned.loads:
        return True
    relevant = [
        name
        for name, report in observed.partitions.items()
        if report.state.held or planned.desired.get(name) == Desired.LOADED
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
                total -= sum(estimate.get(n, 0) for n, s in state.items() if s.held)
    return total


def checks(settings: GuardSettings, planned: Plan) -> bool:
    """The guard will read the query nodes' memory for this plan (so it can be read beside the sizes)."""
    return settings.enabled and planned.loads


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
        if name in loading or (name not in known and (report.state.held or planned.desired.get(name) == Desired.LOADED))
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
    replicas = spec.load.replicas or 1  # unset and nothing loaded: Milvus's default (a 2.4+ property may say more)
    return {name: size * replicas for name, size in per_replica.items()}


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
    if refusal is not None and log.isEnabledFor(logging.DEBUG):  # the exact figures the message only bounds
        figures = f"needs {needed} B, {refusal.available} B free after {ahead} B ahead and {running} B running"
        log.debug("memory guard on %s refused %s: %s", port.server, key, figures)
    if refusal is None:
        waiting.done(key)
        waiting.sent(key, needed)
    else:
        waiting.wait(key, created, needed)
    return refusal


def refused(planned: Plan, refusal: Refusal) -> tuple[Plan, Failure]:
    """The plan without its loads (its releases still go: they free memory), and the Stalled reason why."""
    return planned.without_loads(), Failure(Reason.INSUFFICIENT_MEMORY, refusal.message)


@dataclass(frozen=True)
class MemoryGuard:
    """The capacity guard's settings and, per Milvus server, the order of loads waiting for its memory."""

    settings: GuardSettings = field(default_factory=GuardSettings)
    waiting: LoadsByServer = field(default_factory=LoadsByServer)

    def forget(self, uid: str) -> None:
        """The resource is deleted (or no longer served here): its loads stop counting at once."""
        self.waiting.forget(uid)


def guard_key(ref: ResourceRef) -> str:
    return ref.uid or f"{ref.namespace}/{ref.name}"


async def guarded(
    port: MilvusPort,
    spec: CollectionSpec,
    ref: ResourceRef,
    observed: Observed,
    planned: Plan,
    memory: MemoryGuard,
    known: Mapping[str, int],
    preview: bool,
) -> tuple[Plan, Memory | None, Failure | None]:
    """The plan's memory step: the plan without the loads the query nodes cannot take, the estimates, the refusal.

    `known`: the estimates in status; a steady pass that needs no new ones reads nothing.
    """
    if observed.partial or not wants_memory(observed, planned, known, preview):
        return planned, None, None
    checked = memory.settings if spec.management_policy == ManagementPolicy.MANAGE else GuardSettings(False)
    names = to_size(observed, planned, known, preview or _replicas_change(observed, spec))
    read: NodeReading | None = None
    if checks(checked, planned):  # both reads are needed before the load: one round trip, not two
        nodes = port.query_node_memory(spec.load.resource_groups)
        fresh, read = await asyncio.gather(estimate(port, spec, observed, names), nodes)
    else:
        fresh = await estimate(port, spec, observed, names)
    if fresh is None:
        return planned, None, None  # nothing could be estimated: an estimate is advice, the plan stands
    sizes = {**{name: known[name] for name in observed.partitions if name in known}, **fresh}
    key = guard_key(ref)
    waiting = memory.waiting.on(port.server, key)  # only loads on the server this one goes to count
    refusal = await guard(port, spec, observed, planned, sizes, checked, waiting, key, ref.created, read)
    if refusal is None:
        return planned, Memory(sizes, None), None
    kept, failure = refused(planned, refusal)  # loads held back; releases still go
    return kept, Memory(sizes, refusal), failure


def _replicas_change(observed: Observed, spec: CollectionSpec) -> bool:
    """Every estimate counts the replicas: a new number makes the ones in status out of date."""
    count = observed.replicas.count if observed.replicas is not None else None
    return count is not None and spec.load.replicas is not None and count != spec.load.replicas
