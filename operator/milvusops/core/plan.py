"""Pure planner: (spec, observed Milvus state) -> the load/release calls that close the gap."""

from __future__ import annotations

from dataclasses import dataclass, replace

from milvusops.core.capabilities import Capabilities
from milvusops.core.load_options import unsupported_options
from milvusops.core.model import CollectionSpec, Desired, LoadState
from milvusops.core.observed import Observed, StateReport


@dataclass(frozen=True)
class LoadCollection:
    pass


@dataclass(frozen=True)
class LoadPartitions:
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class ReleasePartitions:
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class ReleaseCollection:
    pass


Action = LoadCollection | LoadPartitions | ReleasePartitions | ReleaseCollection


def is_load(action: Action) -> bool:
    """The one place that says which actions load (the guard, the preview and the re-check schedule ask)."""
    return isinstance(action, LoadCollection | LoadPartitions)


def loads(actions: tuple[Action, ...]) -> bool:
    return any(is_load(action) for action in actions)


@dataclass(frozen=True)
class Plan:
    desired: dict[str, Desired]
    missing: tuple[str, ...]
    actions: tuple[Action, ...]
    # (loaded with, asked for) when partitions that stay loaded have another replica number than spec
    replica_mismatch: tuple[int, int] | None = None
    # (loaded with, asked for) while load_collection changes the replica number in place (Milvus 2.4.13+)
    replica_change: tuple[int, int] | None = None
    # the partition-key field, when spec asks its partitions for different states (Milvus cannot do that)
    partition_key: str | None = None
    # loads held back: Milvus still reports the last load as failed, and it was not reported before
    load_held_back: bool = False
    # spec's load options this server lacks (loadFields, priority ...): no load is sent, only releases
    unsupported_options: str | None = None

    @property
    def releasing(self) -> bool:
        return not all(is_load(action) for action in self.actions)

    @property
    def loads(self) -> bool:
        return loads(self.actions)

    def without_loads(self) -> Plan:
        """The releases alone: they still go when a load is held back (they free memory)."""
        return replace(self, actions=_releases(self.actions))


def desired_partitions(spec: CollectionSpec, observed: Observed) -> dict[str, Desired]:
    """Every partition the spec manages (named, or every one with spec.state), with its desired state."""
    names = sorted(set(observed.partitions) | set(spec.named_partitions))
    return {name: want for name in names if (want := spec.desired_for(name)) is not None}


def plan(spec: CollectionSpec, observed: Observed, caps: Capabilities, retry_failed_load: bool = False) -> Plan:
    """`retry_failed_load`: the failed load Milvus reports was already reported, so it may be tried again."""
    desired = desired_partitions(spec, observed)
    missing = tuple(name for name in desired if name not in observed.partitions)
    if not observed.exists:
        return Plan(desired, missing, ())
    existing = {name: want for name, want in desired.items() if name in observed.partitions}
    state = {name: report.state for name, report in observed.partitions.items()}
    unmanaged = any(name not in desired for name in observed.partitions)
    whole = whole_collection(spec, desired, missing, observed.partition_key, unmanaged)
    if observed.partition_key is not None:
        if whole is None:  # Milvus refuses partition-level load and release here: call nothing
            return Plan(desired, missing, (), partition_key=observed.partition_key)
        actions = _whole_actions(whole, state)
    else:
        actions = _actions(spec, existing, state, missing)
    unsupported = unsupported_options(spec.load, caps)
    if unsupported is not None and any(want == Desired.LOADED for want in desired.values()):
        return Plan(desired, missing, _releases(actions), unsupported_options=unsupported)
    held_back = observed.failed_load is not None and not retry_failed_load
    if held_back:  # report the failed load once before trying it again (at most once per resync interval)
        actions = _releases(actions)
    kept = any(want == Desired.LOADED and state[name].held for name, want in existing.items())
    count = observed.replicas.count if observed.replicas is not None else None
    wanted = spec.load.replicas  # None: keep what Milvus has (`load_options.effective` fills it in when loaded)
    if kept and count is not None and wanted is not None and count != wanted:
        replicas = (count, wanted)
        as_whole = whole == Desired.LOADED and all(state[name].held for name in existing)
        if as_whole and caps.replica_change_in_place:
            # load_collection with the new number re-plans replicas in the background (querycoordv2 services.go)
            return Plan(desired, missing, (LoadCollection(),), replica_change=replicas)
        # Milvus cannot change replicas of loaded partitions: do only the releases, report the rest
        return Plan(desired, missing, _releases(actions), replicas)
    return Plan(desired, missing, actions, load_held_back=held_back)


def _releases(actions: tuple[Action, ...]) -> tuple[Action, ...]:
    return tuple(action for action in actions if not is_load(action))


def whole_collection(
    spec: CollectionSpec,
    desired: dict[str, Desired],
    missing: tuple[str, ...],
    partition_key: str | None,
    unmanaged: bool = False,
) -> Desired | None:
    """The one state the whole collection should have, or None when partitions should differ.

    A partition-key collection can only follow one state for all its partitions, however spec says it.
    """
    if partition_key is not None:
        wanted = set(desired.values())
        # partitions the spec leaves alone (no spec.state, not named) would be loaded or released with the rest
        return wanted.pop() if len(wanted) == 1 and not unmanaged else None
    every_loaded = all(want == Desired.LOADED for want in desired.values()) and spec.state == Desired.LOADED
    return Desired.LOADED if every_loaded and not missing_released(spec, missing) else None


def _whole_actions(whole: Desired, state: dict[str, LoadState]) -> tuple[Action, ...]:
    if whole == Desired.LOADED:
        return (LoadCollection(),) if any(s == LoadState.NOT_LOAD for s in state.values()) else ()
    return (ReleaseCollection(),) if any(s.held for s in state.values()) else ()


def _actions(
    spec: CollectionSpec, existing: dict[str, Desired], state: dict[str, LoadState], missing: tuple[str, ...]
) -> tuple[Action, ...]:
    wanted = [name for name, want in existing.items() if want == Desired.LOADED]
    if not wanted:
        held = any(state[name].held for name in existing)
        return (ReleaseCollection(),) if held else ()
    # a missing partition desired Released must not be loaded when it appears, so no collection-level load then
    every_loaded = len(wanted) == len(existing) and spec.state == Desired.LOADED and not missing_released(spec, missing)
    if every_loaded:
        return (LoadCollection(),) if any(state[name] == LoadState.NOT_LOAD for name in wanted) else ()
    to_release = tuple(name for name, want in existing.items() if want == Desired.RELEASED and state[name].held)
    to_load = tuple(name for name in wanted if state[name] == LoadState.NOT_LOAD)
    actions: list[Action] = []
    # release first: frees query-node memory before the new load asks for it
    if to_release:
        actions.append(ReleasePartitions(to_release))
    if to_load:
        actions.append(LoadPartitions(to_load))
    return tuple(actions)


def missing_released(spec: CollectionSpec, missing: tuple[str, ...]) -> bool:
    return any(spec.desired_for(name) == Desired.RELEASED for name in missing)


def started(observed: Observed, actions: tuple[Action, ...]) -> Observed | None:
    """The picture that loads just started from `observed` should leave: what the next pass re-checks.

    A collection load makes the collection and each partition not yet held Loading; a partition load,
    those partitions. None after anything else (a release), so the next pass observes in full. The
    picture is `partial`: nothing is planned from it, only asked about (`observe.recheck`).
    """
    if not actions or not all(is_load(action) for action in actions):
        return None
    loading = StateReport(LoadState.LOADING)  # progress unknown until Milvus is asked
    collection, partitions = observed.collection, dict(observed.partitions)
    for action in actions:
        if isinstance(action, LoadPartitions):
            names: tuple[str, ...] = action.partitions
        else:
            collection = loading
            names = tuple(name for name, report in partitions.items() if not report.state.held)
        partitions.update(dict.fromkeys(names, loading))
    return replace(observed, collection=collection, partitions=partitions, partial=True, confirmed=False)


def deletion_release(
    spec: CollectionSpec, observed: Observed, others: tuple[CollectionSpec, ...] = ()
) -> tuple[Action | None, tuple[str, ...]]:
    """deletionPolicy Release: the one release call deleting this resource makes (None: nothing to release),
    and the partitions handed over to `others` (live resources that declare them Loaded) instead.

    Only what this resource declares Loaded and Milvus holds; a partition-key collection only as a whole,
    and only if this resource wanted all of it.
    """
    if not observed.exists:
        return None, ()
    held = {name for name, r in observed.partitions.items() if r.state.held}
    wanted = {name for name in held if spec.desired_for(name) == Desired.LOADED}
    handed_over = {name for name in wanted if any(other.desired_for(name) == Desired.LOADED for other in others)}
    ours = wanted - handed_over
    if not ours or (observed.partition_key is not None and ours != held):
        return None, tuple(sorted(handed_over))
    action: Action = ReleaseCollection() if ours == held else ReleasePartitions(tuple(sorted(ours)))
    return action, tuple(sorted(handed_over))


def destructive_marks(planned: Plan | None, observed: Observed | None) -> tuple[str, ...]:
    """What the plan's calls would take away from search: a release of what is loaded, fewer replicas."""
    if planned is None:
        return ()
    held = {name for name, report in observed.partitions.items() if report.state.held} if observed else set()
    marks: list[str] = []
    for action in planned.actions:
        match action:
            case ReleasePartitions(partitions) if held & set(partitions):
                marks.append(f"releases loaded partition(s) {', '.join(sorted(held & set(partitions)))}")
            case ReleaseCollection():
                marks.append("releases the whole collection")
    if planned.replica_change is not None and planned.replica_change[1] < planned.replica_change[0]:
        marks.append(f"replicas {planned.replica_change[0]} -> {planned.replica_change[1]}")
    return tuple(marks)
