"""Pure: what one operator pass would do to a MilvusCollection, as rows for `milvusops plan` to print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from milvusops.core.failures import Failure
from milvusops.core.model import CollectionSpec, DeletionPolicy, Desired, LoadState, ResourceRef
from milvusops.core.observed import Observed
from milvusops.core.plan import (
    Action,
    LoadCollection,
    LoadPartitions,
    Plan,
    ReleaseCollection,
    ReleasePartitions,
    desired_partitions,
    destructive_marks,
)
from milvusops.core.schedule import WindowState
from milvusops.core.status import Outcome, verdict

NOTHING, ERRORS, CHANGES = 0, 1, 2  # exit codes, as `terraform plan -detailed-exitcode`


@dataclass(frozen=True)
class PartitionPreview:
    name: str
    current: str  # what Milvus reports now (NotExist for a partition only named in spec; Unknown if not read)
    desired: str
    change: str  # "load", "release", or "" when no call touches it
    memory_bytes: int | None = None  # estimated change of query-node memory (all replicas); None: not estimated


@dataclass(frozen=True)
class AliasLine:
    """One MilvusAlias as `plan` shows it; `switch` is now, none (already there) or waits (reason)."""

    alias: str
    current: str | None  # where it points in Milvus now; None: no such alias
    desired: str  # the collection the spec asks for
    switch: str
    release: str = ""  # what releasePrevious would do after the drain window, in words


@dataclass(frozen=True)
class ResourcePreview:
    source: str
    namespace: str
    name: str
    collection: str = ""  # database.collection
    connection: str = ""  # which connection was read, never its token
    errors: tuple[str, ...] = ()  # the manifest is invalid: the API server would refuse it
    calls: tuple[str, ...] = ()  # the load/release calls the operator would make, in order
    reason: str = ""  # the Ready reason the operator would report after this pass
    message: str = ""
    failed: bool = False  # the operator could not bring it to the spec (a failure reason)
    partitions: tuple[PartitionPreview, ...] = ()
    memory_bytes: int | None = None  # estimated change of the total kept loaded; None: not estimated
    destructive: tuple[str, ...] = ()  # what the calls would take away from search: loaded partitions, replicas
    schedule: str | None = None  # spec.schedule at the moment planned for (`plan --at`); None: no schedule
    kind: str = "MilvusCollection"  # or MilvusAlias: then `collection` is database.alias
    alias: AliasLine | None = None  # for a MilvusAlias

    @property
    def status(self) -> str:
        if self.errors or self.failed:
            return "error"
        return "change" if self.calls else "no change"


def invalid(
    source: str, namespace: str, name: str, errors: Sequence[str], kind: str = "MilvusCollection"
) -> ResourcePreview:
    return ResourcePreview(source, namespace, name, errors=tuple(errors), reason="Invalid", failed=True, kind=kind)


def window_line(state: WindowState | None, at: datetime) -> str | None:
    """What the schedule says at `at`: the open window (or none) and when that changes next."""
    if state is None:
        return None
    now = "outside every load window" if state.active is None else f"load window {state.active} open"
    then = f"; next change {_utc(state.next_transition)}" if state.next_transition is not None else "; no change ahead"
    return f"at {_utc(at)}: {now}{then}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preview(
    source: str, spec: CollectionSpec, ref: ResourceRef, connection: str, outcome: Outcome, schedule: str | None = None
) -> ResourcePreview:
    """One resource: the partitions (current -> desired, the call touching each), the calls and the reason.

    `spec` is the one that holds at the moment planned for (`schedule.timed`), `schedule` its `window_line`.
    """
    result = verdict(spec, outcome)
    acting = outcome.plan is not None and not (outcome.observing or outcome.paused)
    actions = outcome.plan.actions if acting and outcome.plan is not None else ()
    partitions = _partitions(spec, outcome, actions)
    return ResourcePreview(
        source=source,
        namespace=ref.namespace,
        name=ref.name,
        collection=f"{spec.database}.{spec.collection_name}",
        connection=connection,
        calls=tuple(describe(action) for action in actions),
        reason=result.reason.value,
        message=result.message,
        failed=outcome.failure is not None,
        partitions=partitions,
        memory_bytes=_total(partitions) if outcome.memory is not None else None,
        destructive=destructive_marks(outcome.plan, outcome.observed) if actions else (),
        schedule=schedule,
    )


def _total(partitions: tuple[PartitionPreview, ...]) -> int:
    return sum(p.memory_bytes or 0 for p in partitions)


def _partitions(spec: CollectionSpec, outcome: Outcome, actions: tuple[Action, ...]) -> tuple[PartitionPreview, ...]:
    observed = outcome.observed
    if observed is None or not observed.exists:
        known = LoadState.NOT_EXIST if observed is not None else LoadState.UNKNOWN
        return tuple(PartitionPreview(p.name, known.value, p.state.value, "") for p in spec.partitions)
    desired = outcome.plan.desired if outcome.plan is not None else desired_partitions(spec, observed)
    sizes = outcome.memory.partitions if outcome.memory is not None else None
    if sizes is not None and outcome.observing:
        sizes = {}  # Observe: the operator never changes what is loaded
    rows = []
    for name, want in desired.items():
        report = observed.partitions.get(name)
        current = report.state if report is not None else LoadState.NOT_EXIST
        change = _change(name, want, current, actions)
        rows.append(PartitionPreview(name, current.value, want.value, change, _delta(sizes, name, want, current)))
    return tuple(rows)


def _delta(sizes: Mapping[str, int] | None, name: str, want: Desired, current: LoadState) -> int | None:
    """What the spec asks of this partition's memory: + its estimate to load, - to release, 0 otherwise.

    From desired and current state, not from the calls, so a load the capacity guard holds back still shows.
    """
    if sizes is None or current == LoadState.NOT_EXIST:
        return None if sizes is None else 0
    size = sizes.get(name, 0)
    if want == Desired.LOADED and current == LoadState.NOT_LOAD:
        return size
    if want == Desired.RELEASED and current.held:
        return -size
    return 0


def _change(name: str, want: Desired, current: LoadState, actions: tuple[Action, ...]) -> str:
    for action in actions:
        match action:
            case LoadCollection() if want == Desired.LOADED and current == LoadState.NOT_LOAD:
                return "load"
            case LoadPartitions(partitions) if name in partitions:
                return "load"
            case ReleasePartitions(partitions) if name in partitions:
                return "release"
            case ReleaseCollection() if current.held:
                return "release"
    return ""


def exit_code(previews: Sequence[ResourcePreview]) -> int:
    """1 when any resource is invalid or could not be brought to its spec, else 2 when any has calls, else 0."""
    if any(p.status == "error" for p in previews):
        return ERRORS
    return CHANGES if any(p.calls for p in previews) else NOTHING


@dataclass(frozen=True)
class Skipped:
    """An input document that is not ours to plan (another kind, a JSON patch): listed, never silently dropped."""

    source: str
    reason: str


@dataclass(frozen=True)
class Report:
    previews: Sequence[ResourcePreview]
    skipped: Sequence[Skipped] = ()
    empty: bool = False  # the input held no MilvusCollection: a gate given the wrong folder must not pass
    fail_on_destructive: bool = False  # --fail-on-destructive: a plan that takes something out of search fails

    @property
    def exit_code(self) -> int:
        if self.empty or (self.fail_on_destructive and any(p.destructive for p in self.previews)):
            return ERRORS
        return exit_code(self.previews)


def describe(action: Action) -> str:
    """The pymilvus call an action makes, as the preview lists it."""
    match action:
        case LoadCollection():
            return "load_collection"
        case LoadPartitions(partitions):
            return f"load_partitions({', '.join(partitions)})"
        case ReleasePartitions(partitions):
            return f"release_partitions({', '.join(partitions)})"
        case ReleaseCollection():
            return "release_collection"


def deletion(
    source: str,
    spec: CollectionSpec,
    ref: ResourceRef,
    connection: str,
    observed: Observed | None,
    actions: tuple[Action, ...],
    failure: Failure | None,
    handed_over: tuple[str, ...] = (),
) -> ResourcePreview:
    """A resource the change deletes: what its finalizer would do in Milvus (`deletion_release`)."""
    if spec.deletion_policy == DeletionPolicy.RETAIN:
        message = "deleted; deletionPolicy Retain: Milvus is left as it is"
    elif failure is not None:
        message = f"deleted; deletionPolicy Release, but Milvus could not be read: {failure.message}"
    elif not actions:
        message = "deleted; deletionPolicy Release: nothing it declares Loaded is loaded"
    else:
        message = f"deleted; deletionPolicy Release: {describe(actions[0])}"
    if handed_over:
        message += f"; {', '.join(handed_over)} left loaded: another MilvusCollection declares them"
    held = {n for n, r in observed.partitions.items() if r.state.held} if observed is not None else set()
    released = set(held) if any(isinstance(a, ReleaseCollection) for a in actions) else set()
    for action in actions:
        if isinstance(action, ReleasePartitions):
            released |= set(action.partitions)
    partitions = (
        tuple(
            PartitionPreview(name, report.state.value, "Deleted", "release" if name in released else "")
            for name, report in sorted(observed.partitions.items())
            if name in held
        )
        if observed is not None
        else ()
    )
    marks = destructive_marks(Plan({}, (), actions), observed) if actions else ()
    return ResourcePreview(
        source=source,
        namespace=ref.namespace,
        name=ref.name,
        collection=f"{spec.database}.{spec.collection_name}",
        connection=connection,
        calls=tuple(describe(action) for action in actions),
        reason=failure.reason.value if failure is not None else "Deleted",
        message=message,
        failed=failure is not None,
        partitions=partitions,
        destructive=marks,
    )
