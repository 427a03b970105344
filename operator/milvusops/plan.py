"""Pure planner: (spec, observed Milvus state) -> the load/release calls that close the gap."""

from __future__ import annotations

from dataclasses import dataclass

from .model import CollectionSpec, Desired, LoadState
from .observe import Observed


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

_HELD = (LoadState.LOADED, LoadState.LOADING)


@dataclass(frozen=True)
class Plan:
    desired: dict[str, Desired]
    missing: tuple[str, ...]
    actions: tuple[Action, ...]
    # (loaded with, asked for) when partitions that stay loaded have another replica number than spec
    replica_mismatch: tuple[int, int] | None = None

    @property
    def releasing(self) -> bool:
        return any(isinstance(a, ReleasePartitions | ReleaseCollection) for a in self.actions)


def desired_partitions(spec: CollectionSpec, observed: Observed) -> dict[str, Desired]:
    """Every partition that exists in Milvus plus every one named in spec, with its desired state."""
    names = sorted(set(observed.partitions) | set(spec.named_partitions))
    return {name: spec.desired_for(name) for name in names}


def plan(spec: CollectionSpec, observed: Observed) -> Plan:
    desired = desired_partitions(spec, observed)
    missing = tuple(name for name in desired if name not in observed.partitions)
    if not observed.exists:
        return Plan(desired, missing, ())
    existing = {name: want for name, want in desired.items() if name in observed.partitions}
    state = {name: report.state for name, report in observed.partitions.items()}
    actions = _actions(spec, existing, state, missing)
    kept = any(want == Desired.LOADED and state[name] in _HELD for name, want in existing.items())
    count = observed.replicas.count if observed.replicas is not None else None
    if kept and count is not None and count != spec.load.replicas:
        # Milvus cannot change replicas of loaded partitions: do only the releases, report the rest
        releases = tuple(a for a in actions if isinstance(a, ReleasePartitions | ReleaseCollection))
        return Plan(desired, missing, releases, (count, spec.load.replicas))
    return Plan(desired, missing, actions)


def _actions(
    spec: CollectionSpec, existing: dict[str, Desired], state: dict[str, LoadState], missing: tuple[str, ...]
) -> tuple[Action, ...]:
    wanted = [name for name, want in existing.items() if want == Desired.LOADED]
    if not wanted:
        held = any(state[name] in _HELD for name in existing)
        return (ReleaseCollection(),) if held else ()
    # a missing partition desired Released must not be loaded when it appears, so no collection-level load then
    every_loaded = len(wanted) == len(existing) and spec.state == Desired.LOADED and not missing_released(spec, missing)
    if every_loaded:
        return (LoadCollection(),) if any(state[name] == LoadState.NOT_LOAD for name in wanted) else ()
    to_release = tuple(name for name, want in existing.items() if want == Desired.RELEASED and state[name] in _HELD)
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
