"""Milvus error code / gRPC status -> the operator's reasons: what pymilvus raised, classified in one place."""

from __future__ import annotations

import re

import grpc
from pymilvus import MilvusException

from milvusops.core.capabilities import Capabilities
from milvusops.core.failure_messages import PARTITION_KEY_HINT
from milvusops.core.failures import Failure, FailureError, Reason

# failures of the server or the credentials, not of what was asked about: asking again another way cannot help
SERVER_FAILURES = frozenset(
    {Reason.MILVUS_UNAVAILABLE, Reason.RATE_LIMITED, Reason.UNAUTHENTICATED, Reason.PERMISSION_DENIED}
)


def classify(exc: BaseException, *, credentials: bool = False) -> Failure:
    """Milvus error code / gRPC status -> reason, in one place (as seen on Milvus 2.3.5 with pymilvus 3.0.2,
    plus the codes of newer servers read from Milvus's source: docs/compatibility.md).

    `credentials`: the connection sends a token, so a failed connect of unknown cause may be a wrong one.
    """
    if isinstance(exc, FailureError):
        return exc.failure
    if isinstance(exc, MilvusException):
        return _milvus_exception(exc, credentials)
    if isinstance(exc, grpc.RpcError):
        return _grpc_status(exc.code(), exc.details())
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return Failure(Reason.MILVUS_UNAVAILABLE, _unavailable(f"{type(exc).__name__}: {exc}"))
    return Failure(Reason.MILVUS_ERROR, f"{type(exc).__name__}: {exc}")


def _milvus_exception(exc: MilvusException, credentials: bool) -> Failure:
    code, message = exc.code, exc.message
    if isinstance(code, grpc.StatusCode):  # pymilvus's retry loop gave up on this gRPC status
        return _grpc_status(code, message)
    if _PARTITION_KEY in message:  # proxy loadPartitionsTask / releasePartitionsTask: 65535, later 1100
        return Failure(Reason.PARTITION_KEY_COLLECTION, f"{message}: {PARTITION_KEY_HINT}")
    if code == 100:
        return Failure(Reason.COLLECTION_NOT_FOUND, message)
    if code == 200:
        return Failure(Reason.PARTITION_NOT_FOUND, message)
    if code == 700:
        return Failure(Reason.INDEX_NOT_FOUND, f"{message}: create a vector index before loading")
    if _LOAD_FIELDS_CHANGED in message:  # querycoord's load job, 2.5+: the field list of a loaded collection is fixed
        return Failure(Reason.INVALID_LOAD_OPTIONS, f"{message}: {LOAD_FIELDS_HINT}")
    if code == 1100:
        return Failure(
            Reason.INVALID_LOAD_OPTIONS,
            f"{message}: to change load options (e.g. replicas) of loaded partitions, release them first",
        )
    by_code = _by_code(code, message)
    if by_code is not None:
        return by_code
    lowered = message.lower()
    if _OUT_OF_MEMORY.search(message):
        return Failure(Reason.INSUFFICIENT_MEMORY, f"{message}: {_MEMORY_HINT}")
    if "resource group" in lowered and ("not found" in lowered or "not exist" in lowered):
        return Failure(Reason.INVALID_LOAD_OPTIONS, f"{message}: check spec.load.resourceGroups")
    if "resource group num can only be" in lowered:  # querycoord's AssignReplica: 0, 1 or one group per replica
        hint = "spec.load.resourceGroups must name no group, one group, or one group per replica"
        return Failure(Reason.INVALID_LOAD_OPTIONS, f"{message}: {hint}")
    if "nodes not enough" in lowered or "resource group" in lowered:
        return Failure(Reason.INSUFFICIENT_RESOURCES, f"{message}: {_REPLICAS_HINT}")
    if "unimplemented" in lowered:
        return Failure(Reason.UNSUPPORTED, f"{message} (partition-level load is not supported by this server)")
    if code == 2 or "Fail connecting" in message:
        return _connect_failure(exc, message, credentials)
    if code == 8:
        return Failure(Reason.RATE_LIMITED, f"Milvus rate-limits this call (code 8: {message}); retried later")
    # pymilvus before 2.5 has no `retriable`; the server sets it where a plain retry can succeed
    if getattr(exc, "retriable", False) is True:
        return Failure(Reason.RATE_LIMITED, f"Milvus says a retry can succeed (code {code}: {message}); retried later")
    return Failure(Reason.MILVUS_ERROR, f"code {code}: {message}")


_LOAD_FIELDS_CHANGED = "can't change the load field list"
LOAD_FIELDS_HINT = (
    "Milvus keeps the field list a collection was loaded with: to load other fields (spec.load.loadFields, "
    "skipLoadDynamicField), release it first (set state Released, wait, then Loaded)"
)
_PARTITION_KEY = "partitions if partition key mode is used"

# Codes of servers newer than 2.3.5 (pkg/util/merr/errors.go; see docs/compatibility.md), not run here.
_REPLICAS_HINT = "spec.load.replicas asks for more replicas than there are query nodes (or resource group capacity)"
_MEMORY_HINT = (
    "if the query nodes lack memory (or disk) for this load, add query nodes or memory, load fewer partitions "
    "or fields (spec.load.loadFields), or release other collections; the query node logs give the cause"
)
_RESOURCE_GROUP_HINT = "check spec.load.resourceGroups against the resource groups that exist in Milvus"
# "OOM if load" (query node segment loader) and plain out-of-memory wordings under a generic code
_OUT_OF_MEMORY = re.compile(r"\bOOM\b|out of memory|memory limit exceeded", re.IGNORECASE)


def _by_code(code: int, message: str) -> Failure | None:
    """Codes added after 2.3 (merr), each as its source defines it; None leaves the message checks to decide."""
    if code == 401:  # replica not available: a replica lost its last query node (describe_replica, search)
        return Failure(Reason.REPLICA_UNAVAILABLE, message)
    if code in (12, 304):  # service resource insufficient (retriable in merr, yet needs nodes); rg node not enough
        return Failure(Reason.INSUFFICIENT_RESOURCES, f"{message}: {_REPLICAS_HINT}")
    if code in (3, 605):  # memory limit exceeded; segment request resource failed (memory, disk or GPU)
        return Failure(Reason.INSUFFICIENT_MEMORY, f"{message}: {_MEMORY_HINT}")
    if code == 604:  # segment load failed: merr gives no cause; a query node short of memory is the usual one
        return Failure(Reason.INSUFFICIENT_MEMORY, f"{message}: a query node could not load a segment; {_MEMORY_HINT}")
    if code == 800:
        match = _DATABASE.search(message)
        database = f"database {match['database']}" if match else "the database of spec.database"
        hint = f"create {database} in Milvus, or fix spec.database (immutable: re-create the MilvusCollection)"
        return Failure(Reason.DATABASE_NOT_FOUND, f"{message}: {hint}")
    if code in (300, 301, 302, 303):  # rg not found, exists with another config, number limit, illegal config
        return Failure(Reason.INVALID_LOAD_OPTIONS, f"{message}: {_RESOURCE_GROUP_HINT}")
    if code == 305:  # resource group has no serving node yet: retriable in merr
        return Failure(Reason.RATE_LIMITED, f"Milvus says a retry can succeed (code {code}: {message}); retried later")
    if code == 104:  # collection already loaded: Milvus refuses a change it allows only on a released collection
        return Failure(
            Reason.INVALID_LOAD_OPTIONS, f"{message}: Milvus accepts this change only while the collection is released"
        )
    return None


# "database not found[database=analytics]", as merr's WrapErrDatabaseNotFound words it
_DATABASE = re.compile(r"database not found\[database=(?P<database>[^\]]+)\]")


def _connect_failure(exc: MilvusException, message: str, credentials: bool) -> Failure:
    """pymilvus reports every failed connect as code 2; the gRPC error that caused it says why."""
    cause = _grpc_cause(exc)
    if cause is not None:
        status, details = cause
        if status in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return _grpc_status(status, details)
        return Failure(Reason.MILVUS_UNAVAILABLE, _unavailable(f"{message}: {status.name}: {details}"))
    hint = "; if Milvus is up, check the credentials: a rejected connect can look like this" if credentials else ""
    return Failure(Reason.MILVUS_UNAVAILABLE, _unavailable(message) + hint)


def _grpc_cause(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The first gRPC error down the chain of causes (pymilvus wraps them, sometimes twice)."""
    cause = exc.__cause__
    for _ in range(8):  # `raise e from e` makes loops: a bounded walk
        if cause is None:
            return None
        if isinstance(cause, grpc.RpcError) and callable(getattr(cause, "code", None)):
            return cause.code(), str(cause.details())
        cause = cause.__cause__
    return None


# "PrivilegeLoad: permission deny to alice", as Milvus 2.3.5's proxy words a missing privilege
_DENIED = re.compile(r"Privilege(?P<privilege>\w+): permission deny to (?P<user>\S+)")


def _grpc_status(status: grpc.StatusCode, details: str) -> Failure:
    if status == grpc.StatusCode.UNIMPLEMENTED:
        return Failure(Reason.UNSUPPORTED, "the server does not implement this call (Milvus Lite?)")
    if status == grpc.StatusCode.PERMISSION_DENIED:
        match = _DENIED.search(details)
        advice = (
            f"grant privilege {match['privilege']} to a role of user {match['user']}"
            if match
            else "grant the missing privilege to a role of the connection's user"
        )
        return Failure(Reason.PERMISSION_DENIED, f"Milvus denied the call ({details}): {advice}")
    if status == grpc.StatusCode.UNAUTHENTICATED:
        advice = "check the token (user:password or API key) in the connection's Secret"
        return Failure(Reason.UNAUTHENTICATED, f"Milvus rejected the credentials ({details}): {advice}")
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Failure(Reason.RATE_LIMITED, f"Milvus is out of a resource or quota ({details}); retried later")
    if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return Failure(Reason.MILVUS_UNAVAILABLE, _unavailable(f"{status.name}: {details}"))
    return Failure(Reason.MILVUS_ERROR, f"{status.name}: {details}")


def _unavailable(message: str) -> str:
    return f"cannot reach Milvus ({message})"


# querycoordv2/services.go ShowLoadCollections wraps the cached cause of a failed load in these words
FAILED_LOAD = "show collection failed"


def failed_load(cause: Failure, caps: Capabilities) -> Failure:
    """get_load_state answered with the cause of the last, failed load instead of a state."""
    kept = (
        " (Milvus before 2.6.16 repeats this answer for up to 24 h)"
        if caps.failed_load_raised_by_get_load_state
        else ""
    )
    message = f"the last load of this collection failed in Milvus{kept}: {cause.message}"
    return Failure(Reason.LOAD_FAILED, message)


# describe_replica while a replica lost its query node (Milvus 2.3.5 cluster, e2e): 401 replica not available once
# Milvus has noticed, 901 node not found for a moment before; 902/905 (node offline / not available) are their kin
REPLICA_LOST = frozenset({401, 901, 902, 905})
