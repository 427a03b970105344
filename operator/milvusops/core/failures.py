"""Why a reconcile could not reach the desired state: a reason of SPEC §3 and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    IN_SYNC = "InSync"
    CONNECTED = "Connected"
    LOADING = "Loading"
    RELEASING = "Releasing"
    CHANGING_REPLICAS = "ChangingReplicas"
    COLLECTION_NOT_FOUND = "CollectionNotFound"
    PARTITION_NOT_FOUND = "PartitionNotFound"
    INDEX_NOT_FOUND = "IndexNotFound"
    INSUFFICIENT_RESOURCES = "InsufficientResources"
    INSUFFICIENT_MEMORY = "InsufficientMemory"
    DATABASE_NOT_FOUND = "DatabaseNotFound"
    INVALID_LOAD_OPTIONS = "InvalidLoadOptions"
    INVALID_SCHEDULE = "InvalidSchedule"
    PARTITION_KEY_COLLECTION = "PartitionKeyCollection"
    LOAD_FAILED = "LoadFailed"
    UNSUPPORTED = "Unsupported"
    UNSUPPORTED_BY_SERVER = "UnsupportedByServer"
    MILVUS_UNAVAILABLE = "MilvusUnavailable"
    UNAUTHENTICATED = "Unauthenticated"
    PERMISSION_DENIED = "PermissionDenied"
    RATE_LIMITED = "RateLimited"
    REPLICA_UNAVAILABLE = "ReplicaUnavailable"
    REPLICAS_AVAILABLE = "ReplicasAvailable"
    MILVUS_ERROR = "MilvusError"
    API_SERVER_UNAVAILABLE = "ApiServerUnavailable"
    API_SERVER_ERROR = "ApiServerError"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_INVALID = "SecretInvalid"
    CONNECTION_NOT_FOUND = "ConnectionNotFound"
    FORBIDDEN = "Forbidden"
    CONFLICT = "Conflict"
    TARGET_NOT_READY = "TargetNotReady"  # MilvusAlias: its target cannot serve yet
    TARGET_NOT_FOUND = "TargetNotFound"  # MilvusAlias: no such MilvusCollection, or on another connection
    PAUSED = "Paused"
    OBSERVING = "Observing"


# Reasons that no retry can fix: a human or an infrastructure change is needed (kstatus Stalled).
STALLED_REASONS = frozenset(
    {
        Reason.COLLECTION_NOT_FOUND,
        Reason.PARTITION_NOT_FOUND,
        Reason.INDEX_NOT_FOUND,
        Reason.INSUFFICIENT_RESOURCES,
        Reason.INSUFFICIENT_MEMORY,
        Reason.DATABASE_NOT_FOUND,
        Reason.INVALID_LOAD_OPTIONS,
        Reason.INVALID_SCHEDULE,
        Reason.PARTITION_KEY_COLLECTION,
        Reason.LOAD_FAILED,
        Reason.UNSUPPORTED,
        Reason.UNSUPPORTED_BY_SERVER,
        Reason.UNAUTHENTICATED,
        Reason.PERMISSION_DENIED,
        Reason.SECRET_NOT_FOUND,
        Reason.SECRET_INVALID,
        Reason.CONNECTION_NOT_FOUND,
        Reason.FORBIDDEN,
        Reason.CONFLICT,
        Reason.TARGET_NOT_FOUND,
    }
)


@dataclass(frozen=True)
class Failure:
    reason: Reason
    message: str
    retry_after: float | None = None  # seconds the server asked us to wait (a 429's Retry-After)

    @property
    def stalled(self) -> bool:
        return self.reason in STALLED_REASONS


class FailureError(Exception):
    """Raised by the adapters (Milvus, Kubernetes) with an already classified failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure
