"""Pure: what one operator pass would do to a MilvusCollection, as rows for `milvusops plan` to print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .apply import describe
from .model import CollectionSpec, Desired, LoadState, ResourceRef
from .plan import Action, LoadCollection, LoadPartitions, ReleaseCollection, ReleasePartitions, desired_partitions
from .status import Outcome, verdict

NOTHING, ERRORS, CHANGES = 0, 1, 2  # exit codes, as `terraform plan -detailed-exitcode`
_HELD = (LoadState.LOADED, LoadState.LOADING)


@dataclass(frozen=True)
class PartitionPreview:
    name: str
    current: str  # what Milvus reports now (NotExist for a partition only named in spec; Unknown if not read)
    desired: str
    change: str  # "load", "release", or "" when no call touches it
    memory_bytes: int | None = None  # estimated change of query-node memory; not estimated yet


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
    memory_bytes: int | None = None  # estimated change of the total kept loaded; not estimated yet

    @property
    def status(self) -> str:
        if self.errors or self.failed:
            return "error"
        return "change" if self.calls else "no change"


def invalid(source: str, namespace: str, name: str, errors: Sequence[str]) -> ResourcePreview:
    return ResourcePreview(source, namespace, name, errors=tuple(errors), reason="Invalid", failed=True)


def preview(source: str, spec: CollectionSpec, ref: ResourceRef, connection: str, outcome: Outcome) -> ResourcePreview:
    """One resource: the partitions (current -> desired, the call touching each), the calls and the reason."""
    result = verdict(spec, outcome)
    acting = outcome.plan is not None and not (outcome.observing or outcome.paused)
    actions = outcome.plan.actions if acting and outcome.plan is not None else ()
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
        partitions=_partitions(spec, outcome, actions),
    )


def _partitions(spec: CollectionSpec, outcome: Outcome, actions: tuple[Action, ...]) -> tuple[PartitionPreview, ...]:
    observed = outcome.observed
    if observed is None or not observed.exists:
        known = LoadState.NOT_EXIST if observed is not None else LoadState.UNKNOWN
        return tuple(PartitionPreview(p.name, known.value, p.state.value, "") for p in spec.partitions)
    desired = outcome.plan.desired if outcome.plan is not None else desired_partitions(spec, observed)
    rows = []
    for name, want in desired.items():
        report = observed.partitions.get(name)
        current = report.state if report is not None else LoadState.NOT_EXIST
        rows.append(PartitionPreview(name, current.value, want.value, _change(name, want, current, actions)))
    return tuple(rows)


def _change(name: str, want: Desired, current: LoadState, actions: tuple[Action, ...]) -> str:
    for action in actions:
        match action:
            case LoadCollection() if want == Desired.LOADED and current == LoadState.NOT_LOAD:
                return "load"
            case LoadPartitions(partitions) if name in partitions:
                return "load"
            case ReleasePartitions(partitions) if name in partitions:
                return "release"
            case ReleaseCollection() if current in _HELD:
                return "release"
    return ""


def exit_code(previews: Sequence[ResourcePreview]) -> int:
    """1 when any resource is invalid or could not be brought to its spec, else 2 when any has calls, else 0."""
    if any(p.status == "error" for p in previews):
        return ERRORS
    return CHANGES if any(p.calls for p in previews) else NOTHING
