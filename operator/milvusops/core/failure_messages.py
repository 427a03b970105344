"""Pure: what the operator reports for a pass it cannot carry out in full, worded for status and events."""

from __future__ import annotations

from milvusops.core.failures import Failure, Reason
from milvusops.core.messages import clipped, listing
from milvusops.core.model import CollectionSpec
from milvusops.core.observed import Observed
from milvusops.core.plan import Plan
from milvusops.core.refresh import RefreshStep

FREE_TEXT_CHARS = 2000  # Milvus's own words in a message: its causes are a line or two, its dumps are not
PARTITION_KEY_HINT = (
    "the collection has a partition key, so Milvus loads and releases it only as a whole: "
    "set spec.state and list no partition with another state"
)


def conflict(spec: CollectionSpec, winner: str) -> Failure:
    message = f"{winner} already manages collection {spec.database}.{spec.collection_name} on this Milvus server"
    return Failure(Reason.CONFLICT, message)


def not_found(spec: CollectionSpec) -> Failure:
    message = f"collection {spec.collection_name!r} not found in database {spec.database!r}"
    return Failure(Reason.COLLECTION_NOT_FOUND, message)


def plan_failure(planned: Plan, observed: Observed, step: RefreshStep | None = None) -> Failure | None:
    """What the operator reports for a plan it cannot carry out in full, after doing the part it can."""
    return (
        unsupported(planned, step)
        or _replicas(planned)
        or _partition_key(planned)
        or _failed_load(observed, planned)
        or _missing(planned)
    )


def unsupported(planned: Plan, step: RefreshStep | None) -> Failure | None:
    message = planned.unsupported_options or (step.unsupported if step is not None else None)
    return Failure(Reason.UNSUPPORTED_BY_SERVER, message) if message else None


def _replicas(planned: Plan) -> Failure | None:
    if planned.replica_mismatch is None:
        return None
    loaded_with, wanted = planned.replica_mismatch
    message = (
        f"partitions are loaded with {loaded_with} replica(s) but spec.load.replicas is {wanted}; Milvus cannot "
        "change the replica number of loaded partitions: release them first (set state Released, wait, then Loaded)"
    )
    return Failure(Reason.INVALID_LOAD_OPTIONS, message)


def _partition_key(planned: Plan) -> Failure | None:
    if planned.partition_key is None:
        return None
    message = f"partition key field {planned.partition_key!r}: {PARTITION_KEY_HINT}; nothing was loaded or released"
    return Failure(Reason.PARTITION_KEY_COLLECTION, message)


def _failed_load(observed: Observed, planned: Plan) -> Failure | None:
    """Milvus (before 2.6.16) answers get_load_state with the cause of the last, failed load."""
    if observed.failed_load is None:
        return None
    then = "the load is tried again at the next resync" if planned.load_held_back else "the load was started again"
    return Failure(Reason.LOAD_FAILED, f"{clipped(observed.failed_load.message, FREE_TEXT_CHARS)}; {then}")


def _missing(planned: Plan) -> Failure | None:
    if not planned.missing:
        return None
    names = listing(planned.missing)
    return Failure(Reason.PARTITION_NOT_FOUND, f"partitions named in spec do not exist in Milvus: {names}")
