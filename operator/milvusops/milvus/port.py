"""The only module that imports pymilvus: a small port over MilvusClient plus error classification."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

import grpc
import pymilvus
from pymilvus import DataType, MilvusException
from pymilvus.client.connection_manager import ConnectionConfig, ConnectionManager
from pymilvus.client.types import LoadState as MilvusLoadState
from pymilvus.grpc_gen import milvus_pb2

from milvusops.core.capabilities import Capabilities, capabilities
from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.memory_estimate import Field, Index, NodeMemory, Shape
from milvusops.core.model import LoadOptions, LoadState
from milvusops.core.observed import CollectionInfo, Replicas, StateReport
from milvusops.milvus.call_slots import Slots, current
from milvusops.telemetry import metrics

T = TypeVar("T")
log = logging.getLogger("milvusops")

# pymilvus logs every failed RPC with a traceback; failures are reported once, by the operator.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

_LOAD_STATES = {
    MilvusLoadState.NotExist: LoadState.NOT_EXIST,
    MilvusLoadState.NotLoad: LoadState.NOT_LOAD,
    MilvusLoadState.Loading: LoadState.LOADING,
    MilvusLoadState.Loaded: LoadState.LOADED,
}


class MilvusPort(Protocol):
    """What the operator needs from Milvus, for one connection and database."""

    @property
    def server(self) -> str: ...  # which Milvus server (host:port): state about its memory is kept per server
    async def server_version(self) -> str: ...
    async def version(self) -> str: ...
    async def list_partitions(self, collection: str) -> list[str]: ...
    async def describe(self, collection: str) -> CollectionInfo: ...
    async def load_state(self, collection: str, partition: str | None = None) -> StateReport: ...
    async def load_state_together(self, collection: str, partitions: list[str]) -> LoadState: ...
    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas | None: ...
    async def unindexed_vector_fields(self, collection: str) -> list[str]: ...
    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape: ...
    async def query_node_memory(self, resource_groups: tuple[str, ...] = ()) -> tuple[tuple[NodeMemory, ...], str]: ...
    async def load_collection(self, collection: str, options: LoadOptions, refresh: bool = False) -> None: ...
    async def load_partitions(
        self, collection: str, partitions: list[str], options: LoadOptions, refresh: bool = False
    ) -> None: ...
    async def release_collection(self, collection: str) -> None: ...
    async def release_partitions(self, collection: str, partitions: list[str]) -> None: ...


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
    if "UNIMPLEMENTED" in message.upper() and "unimplemented" in message.lower():
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
PARTITION_KEY_HINT = (
    "the collection has a partition key, so Milvus loads and releases it only as a whole: "
    "set spec.state and list no partition with another state"
)

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


class MilvusClient(pymilvus.MilvusClient):  # type: ignore[misc]
    """pymilvus's MilvusClient with a ConnectionManager of its own.

    pymilvus's process-wide manager holds one lock for a whole connect (up to the connection's timeout)
    and for every close and reconnect: one unreachable server would hold back every other's. This is
    MilvusClient.__init__ of pymilvus 3.0.2 with the manager made here (tests/unit/test_client_pool.py
    checks the source it mirrors).
    """

    def __init__(self, uri: str, token: str = "", db_name: str = "", timeout: float | None = None, **kwargs: Any):
        self._config = ConnectionConfig.from_uri(uri, token=token, db_name=db_name, **kwargs)
        self._manager = ConnectionManager()  # its lock is this client's alone
        self._handler = self._manager.get_or_create(self._config, dedicated=True, client=self, timeout=timeout)
        self._using = f"cm-{id(self._handler)}"
        self.is_self_hosted = bool(self.get_server_type() == "milvus")


def _close_quietly(client: MilvusClient) -> None:
    try:
        client.close()
    except Exception:  # a channel that fails to close is gone all the same
        log.debug("closing a Milvus client failed", exc_info=True)


def call_deadline(timeout: float) -> float:
    """How long a caller waits for a call's thread: pymilvus retries within `timeout`, its last try may take
    `timeout` again; past this the call fails and its caller (a finalizer, a pass) goes on."""
    return 2 * timeout + 1.0


# what Milvus 2.3.5's proxy runs one at a time (its DDL queue), describe_replica too (it asks DescribeCollection
# first); get_load_state, get_replicas (by id) and get_metrics go straight to the coordinators
QUEUED = frozenset(
    {
        "describe_collection",
        "describe_replica",
        "describe_sizes",
        "list_indexes",
        "list_partitions",
        "load_collection",
        "load_partitions",
        "release_collection",
        "release_partitions",
    }
)


class MilvusClientPort:
    """MilvusPort over the thread-safe sync MilvusClient, run on the pool's executor.

    The sync client is used because it can start a load and return at once (`_async=True`), so no
    call blocks for the length of a load. The connection's slots decide which waiting call runs next:
    by the priority of the task that makes it; calls that Milvus queues (`QUEUED`) take at most the
    connection's share for them. A call holds its slot until its thread is done, so a connection never
    has more threads busy than slots, even when a caller stopped waiting at the call's deadline.

    Nothing of pymilvus runs on the event loop: connect, calls and close run on the executor, and the
    bookkeeping below runs on the loop only. One connect is in flight at a time, on one thread: calls
    that need a client meanwhile wait for it on the loop (at most the connection's timeout) and share
    its outcome, so an unreachable Milvus costs one thread and one connect timeout per round of calls.
    `close` closes the client once no call uses it; a closed port with a successor (its connection or
    Secret changed) hands later calls to it.
    """

    def __init__(self, endpoint: Endpoint, database: str, executor: Executor, slots: Slots) -> None:
        self._endpoint = endpoint
        self._database = database
        self._executor = executor
        self._slots = slots
        self._client: MilvusClient | None = None
        self._version: tuple[MilvusClient, str] | None = None  # the server version, as read through that client
        self._connecting: asyncio.Future[MilvusClient] | None = None
        self._in_flight = 0  # calls between their slot and the end of their thread
        self._closing = False
        self._successor: MilvusClientPort | None = None

    async def _call(self, method: str, fn: Callable[[MilvusClient], T]) -> T:
        queued = method in QUEUED
        if (successor := self._replaced()) is not None:
            return await successor._call(method, fn)
        asked = time.perf_counter()
        await self._slots.acquire(current(), queued)
        if (successor := self._replaced()) is not None:  # replaced while this call waited for its slot
            self._slots.release(queued)
            return await successor._call(method, fn)
        started = time.perf_counter()  # the call's duration is Milvus's (and the client's), not the slot's
        metrics.observe_slot_wait(method, started - asked)
        try:
            result = await self._run(fn, queued)
        except Exception as exc:
            metrics.observe_milvus_call(method, "error", time.perf_counter() - started)
            raise FailureError(self._explain(classify(exc, credentials=bool(self._endpoint.token)))) from exc
        metrics.observe_milvus_call(method, "ok", time.perf_counter() - started)
        return result

    def _replaced(self) -> MilvusClientPort | None:
        """The port that serves this connection now, if this one's client is closed (or never made)."""
        return self._successor if self._client is None else None

    async def _run(self, fn: Callable[[MilvusClient], T], queued: bool) -> T:
        """With a slot taken: `fn` on a thread, the slot given back when that thread is done."""
        self._in_flight += 1
        try:
            client = await self._connected()
            job = asyncio.get_running_loop().run_in_executor(self._executor, fn, client)
        except BaseException:
            self._finished(queued)
            raise
        job.add_done_callback(lambda done: self._finished(queued, done))
        deadline = call_deadline(self._endpoint.timeout)
        try:
            # shielded: a caller that stops waiting leaves the thread to end, and the slot held until it does
            return await asyncio.wait_for(asyncio.shield(job), deadline)
        except TimeoutError:
            raise TimeoutError(f"no answer within {deadline:g} s") from None

    def _finished(self, queued: bool, job: asyncio.Future[Any] | None = None) -> None:
        if job is not None and not job.cancelled():
            job.exception()  # the caller may have stopped waiting: seen here, not logged as never retrieved
        self._in_flight -= 1
        self._slots.release(queued)
        self._retire_if_idle()

    def _explain(self, failure: Failure) -> Failure:
        """What only this connection knows: the user Milvus rejected, and what to check with TLS."""
        if failure.reason == Reason.UNAUTHENTICATED and self._endpoint.token:
            user, has_user, _ = self._endpoint.token.partition(":")  # never the password
            who = f"user {user}" if has_user else "an API key"
            return Failure(failure.reason, f"{failure.message}; the connection signs in as {who}")
        tls = self._endpoint.ca_pem_path or self._endpoint.uri.startswith("https://")
        if failure.reason != Reason.MILVUS_UNAVAILABLE or not tls:
            return failure
        hint = "with TLS, check that tls.caSecretRef holds the CA that signed the server's certificate"
        hint += ", that tls.serverName matches the certificate, and that the server speaks TLS"
        return Failure(failure.reason, f"{failure.message}; {hint}")

    async def _connected(self) -> MilvusClient:
        if self._client is not None:
            return self._client
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect_once())
            # its failure reaches the callers still waiting; seen here too, in case all stopped waiting
            self._connecting.add_done_callback(lambda done: done.cancelled() or done.exception())
        timeout = self._endpoint.timeout
        try:
            return await asyncio.wait_for(asyncio.shield(self._connecting), timeout)
        except TimeoutError:
            raise TimeoutError(f"no connection within {timeout:g} s (a connect is still in flight)") from None

    async def _connect_once(self) -> MilvusClient:
        try:
            client = await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        finally:
            self._connecting = None
        self._client = client
        self._retire_if_idle()  # every caller may have stopped waiting, the port closed meanwhile
        return client

    def _connect(self) -> MilvusClient:
        kwargs: dict[str, Any] = {}
        if self._endpoint.ca_pem_path:
            kwargs.update(secure=True, server_pem_path=self._endpoint.ca_pem_path)
        if self._endpoint.server_name:
            kwargs["server_name"] = self._endpoint.server_name
        return MilvusClient(
            uri=self._endpoint.uri,
            token=self._endpoint.token,
            db_name=self._database if self._database != "default" else "",
            timeout=self._endpoint.timeout,
            # a channel of its own: pymilvus shares one per address and token, ignoring this client's TLS settings
            dedicated=True,
            **kwargs,
        )

    def close(self, successor: MilvusClientPort | None = None) -> None:
        """Close the client (on the executor) once no call uses it; `successor` serves the calls made after."""
        self._closing = True
        self._successor = successor
        self._retire_if_idle()

    def _retire_if_idle(self) -> None:
        if not self._closing or self._in_flight or self._client is None:
            return
        client, self._client = self._client, None
        try:
            self._executor.submit(_close_quietly, client)
        except RuntimeError:  # the executor was shut down (the operator stops): a thread of its own
            threading.Thread(target=_close_quietly, args=(client,), name="milvus-close", daemon=True).start()

    @property
    def _timeout(self) -> float:
        return self._endpoint.timeout

    @property
    def server(self) -> str:
        return self._endpoint.server

    async def server_version(self) -> str:
        """Asks the server every time (a reachability check); the answer is kept for `version`."""
        version = await self._call(
            "get_server_version", lambda c: self._remember(c, c.get_server_version(timeout=self._timeout))
        )
        self._slots.follow_server(capabilities(version).ddl_one_at_a_time)
        return version

    async def version(self) -> str:
        """The server version, read once per client: a reconnect (a new client) reads it again."""
        known = self._version
        if known is not None and known[0] is self._client:
            return known[1]
        return await self.server_version()

    def _remember(self, client: MilvusClient, version: object) -> str:
        self._version = (client, str(version))  # one assignment: atomic, though made on a call's thread
        return str(version)

    async def list_partitions(self, collection: str) -> list[str]:
        names = await self._call("list_partitions", lambda c: c.list_partitions(collection, timeout=self._timeout))
        return [str(name) for name in names]

    async def describe(self, collection: str) -> CollectionInfo:
        info = await self._call(
            "describe_collection", lambda c: c.describe_collection(collection, timeout=self._timeout)
        )
        keys = [str(field["name"]) for field in info.get("fields", ()) if field.get("is_partition_key")]
        return CollectionInfo(str(info["collection_id"]), keys[0] if keys else None, _schema(info.get("fields", ())))

    async def load_state(self, collection: str, partition: str | None = None) -> StateReport:
        try:
            report = await self._call(
                "get_load_state", lambda c: c.get_load_state(collection, partition or "", timeout=self._timeout)
            )
        except FailureError as exc:
            cause = exc.__cause__
            if isinstance(cause, MilvusException) and _FAILED_LOAD in str(cause.message):
                raise FailureError(failed_load(exc.failure, capabilities(await self.version()))) from cause
            raise
        state = _LOAD_STATES.get(report["state"], LoadState.UNKNOWN)
        progress = report.get("progress")
        return StateReport(state, int(progress) if progress is not None else None)

    async def load_state_together(self, collection: str, partitions: list[str]) -> LoadState:
        """One get_load_state for several partitions: Loaded only when every one is, NotLoad once any is released."""
        # MilvusClient.get_load_state takes one partition; its connection's takes the list the RPC carries
        state = await self._call(
            "get_load_state",
            lambda c: c._get_connection().get_load_state(collection, partitions, timeout=self._timeout),
        )
        return _LOAD_STATES.get(state, LoadState.UNKNOWN)

    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas | None:
        """None when the server cannot tell (Milvus Lite does not implement describe_replica).

        With the collection's id from an observation, GetReplicas is asked alone: describe_replica asks
        DescribeCollection first, which Milvus before 2.5 queues behind every load. An id Milvus knows no
        replicas of (the collection was recreated), and a bare call that failed in transport, are asked
        again by name.
        """

        def describe(client: MilvusClient) -> list[Any] | str:
            try:
                return list(client.describe_replica(collection, timeout=self._timeout))
            except MilvusException as exc:
                if exc.code in _REPLICA_LOST:
                    return str(exc.message)  # an answer about the replicas, not a failure of the call
                raise

        def by_id(client: MilvusClient) -> Replicas | None:
            request = milvus_pb2.GetReplicasRequest(collectionID=int(collection_id or 0))
            try:
                response = client._get_connection()._stub.GetReplicas(request, timeout=self._timeout)
            except grpc.RpcError:
                return None  # by name: pymilvus's retries, reconnect and errors, as for every other call
            if response.status.code in _REPLICA_LOST:
                return Replicas(None, unavailable=str(response.status.reason))
            if response.status.code or response.status.error_code:
                return None
            return _replicas(
                [(str(r.replicaID), str(r.resource_group_name), bool(r.node_ids)) for r in response.replicas]
            )

        try:
            if collection_id and (known := await self._call("get_replicas", by_id)) is not None:
                return known
            described = await self._call("describe_replica", describe)
        except FailureError as exc:
            if exc.failure.reason == Reason.UNSUPPORTED:
                return None
            raise
        if isinstance(described, str):
            return Replicas(None, unavailable=described)
        return replicas_of(described)

    async def unindexed_vector_fields(self, collection: str) -> list[str]:
        """Vector fields without an index: Milvus refuses to load the collection while there is one (code 700)."""

        def ask(client: MilvusClient) -> list[str]:
            fields = client.describe_collection(collection, timeout=self._timeout)["fields"]
            vectors = [str(field["name"]) for field in fields if DataType(field["type"]).name.endswith("_VECTOR")]
            return [name for name in vectors if not client.list_indexes(collection, name, timeout=self._timeout)]

        return await self._call("list_indexes", ask)

    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape:
        """Schema, indexes and row counts: what the memory estimate needs (docs/capacity.md).

        `fields`: the schema from this pass's observation; Milvus runs each describe_collection one at a
        time with loads (the proxy's DDL queue), so it is not asked twice.
        """

        def ask(client: MilvusClient) -> Shape:
            schema = fields or fields_of(client.describe_collection(collection, timeout=self._timeout)["fields"])
            # one DescribeIndex for every index with its parameters (MilvusClient.describe_index wants a name each)
            indexes = client._get_connection().list_indexes(collection, timeout=self._timeout)
            rows = {
                name: int(client.get_partition_stats(collection, name, timeout=self._timeout).get("row_count", 0))
                for name in partitions
            }
            return Shape(schema, indexes_of(indexes), rows)

        return await self._call("describe_sizes", ask)

    async def query_node_memory(self, resource_groups: tuple[str, ...] = ()) -> tuple[tuple[NodeMemory, ...], str]:
        """Each query node's memory as it reports it to Milvus (GetMetrics system_info), and which nodes these are.

        Limited to `resource_groups` when the server names their nodes (describe_resource_group, 2.4+);
        Milvus 2.3.5 does not, and then every query node counts.
        """

        def ask(client: MilvusClient) -> tuple[tuple[NodeMemory, ...], str]:
            request = milvus_pb2.GetMetricsRequest(request=json.dumps({"metric_type": "system_info"}))
            # pymilvus 3.0.2 has no GetMetrics wrapper: the stub is called directly
            response = client._get_connection()._stub.GetMetrics(request, timeout=self._timeout)
            if response.status.code != 0 or response.status.error_code != 0:
                raise MilvusException(response.status.code, response.status.reason)
            nodes = query_nodes_of(json.loads(response.response or "{}"))
            if not resource_groups:
                return nodes, "all query nodes"
            members: set[int] = set()
            for group in resource_groups:
                listed = getattr(client.describe_resource_group(group, timeout=self._timeout), "nodes", None)
                if not listed:
                    return nodes, "all query nodes (Milvus does not say which are in the resource groups)"
                members |= {int(getattr(node, "node_id", node)) for node in listed}
            return tuple(n for n in nodes if n.node_id in members), f"the query nodes of {', '.join(resource_groups)}"

        return await self._call("get_metrics", ask)

    async def load_collection(self, collection: str, options: LoadOptions, refresh: bool = False) -> None:
        kwargs = _load_kwargs(options, refresh)
        await self._call("load_collection", lambda c: c.load_collection(collection, timeout=self._timeout, **kwargs))

    async def load_partitions(
        self, collection: str, partitions: list[str], options: LoadOptions, refresh: bool = False
    ) -> None:
        kwargs = _load_kwargs(options, refresh)
        await self._call(
            "load_partitions",
            lambda c: c.load_partitions(collection, partitions, timeout=self._timeout, **kwargs),
        )

    async def release_collection(self, collection: str) -> None:
        await self._call("release_collection", lambda c: c.release_collection(collection, timeout=self._timeout))

    async def release_partitions(self, collection: str, partitions: list[str]) -> None:
        await self._call(
            "release_partitions", lambda c: c.release_partitions(collection, partitions, timeout=self._timeout)
        )


def _schema(described: Any) -> tuple[Field, ...]:
    """The estimate's schema; none when a field is not understood (an observation must not fail on advice)."""
    try:
        return fields_of(described)
    except (KeyError, ValueError, TypeError):
        return ()  # the estimate describes the collection itself, and reports its own failure


def fields_of(described: Any) -> tuple[Field, ...]:
    """describe_collection's fields -> the estimate's Field (type names as pymilvus DataType names)."""
    out = []
    for item in described:
        params = item.get("params") or {}
        element = item.get("element_type")
        out.append(
            Field(
                str(item["name"]),
                DataType(item["type"]).name,
                dim=int(params.get("dim", 0) or 0),
                max_length=int(params.get("max_length", 0) or 0),
                max_capacity=int(params.get("max_capacity", 0) or 0),
                element_type=DataType(element).name if element is not None else "",
            )
        )
    return tuple(out)


def indexes_of(descriptions: Any) -> tuple[Index, ...]:
    """DescribeIndex's index_descriptions -> the estimate's Index (index_type and its build parameters)."""
    out = []
    for description in descriptions:
        params = {kv.key: kv.value for kv in description.params}
        build = dict(params)
        if params.get("params"):  # newer servers nest the build parameters as JSON
            build.update({k: str(v) for k, v in json.loads(params["params"]).items()})
        out.append(Index(str(description.field_name), str(params.get("index_type", "")), build))
    return tuple(out)


def query_nodes_of(system_info: dict[str, Any]) -> tuple[NodeMemory, ...]:
    """GetMetrics system_info -> each query node's memory and use, as it reports them (2.3.5: nodes_info)."""
    nodes = []
    for node in system_info.get("nodes_info") or []:
        infos = node.get("infos") or {}
        hardware = infos.get("hardware_infos") or {}
        if infos.get("type") == "querynode" and hardware.get("memory"):
            nodes.append(
                NodeMemory(
                    int(node.get("identifier", infos.get("id", 0))),
                    int(hardware["memory"]),
                    int(hardware.get("memory_usage", 0)),
                )
            )
    return tuple(sorted(nodes, key=lambda n: n.node_id))


# describe_replica while a replica lost its query node (Milvus 2.3.5 cluster, e2e): 401 replica not available once
# Milvus has noticed, 901 node not found for a moment before; 902/905 (node offline / not available) are their kin
_REPLICA_LOST = frozenset({401, 901, 902, 905})


def replicas_of(described: list[Any]) -> Replicas:
    """describe_replica's answer (pymilvus ReplicaInfo) -> count, groups, and any replica left without a node."""
    return _replicas([(str(r.id), str(r.resource_group), bool(r.group_nodes)) for r in described])


def _replicas(listed: list[tuple[str, str, bool]]) -> Replicas:
    """Each replica's id, resource group and whether any query node serves it."""
    groups = tuple(sorted({group for _, group, _ in listed}))
    empty = [replica for replica, _, served in listed if not served]
    # newer servers may list a replica without nodes instead of failing with 401 as 2.3.5 does
    unavailable = f"no query node serves replica(s) {', '.join(empty)}" if empty else ""
    return Replicas(len(listed), groups, unavailable, tuple(empty))


# querycoordv2/services.go ShowLoadCollections wraps the cached cause of a failed load in these words
_FAILED_LOAD = "show collection failed"


def failed_load(cause: Failure, caps: Capabilities) -> Failure:
    """get_load_state answered with the cause of the last, failed load instead of a state."""
    kept = (
        " (Milvus before 2.6.16 repeats this answer for up to 24 h)"
        if caps.failed_load_raised_by_get_load_state
        else ""
    )
    message = f"the last load of this collection failed in Milvus{kept}: {cause.message}"
    return Failure(Reason.LOAD_FAILED, message)


def _load_kwargs(options: LoadOptions, refresh: bool = False) -> dict[str, Any]:
    """The keyword arguments of MilvusClient.load_collection / load_partitions (pymilvus 3.0.2's Prepare reads them)."""
    # return once Milvus accepted the load (pymilvus needs both flags for partitions); progress is observed
    kwargs: dict[str, Any] = {"replica_number": options.replicas, "_async": True, "sync": False}
    # only send what was asked for, so servers without these options still accept plain loads
    if options.resource_groups:
        kwargs["resource_groups"] = list(options.resource_groups)
    if options.load_fields:
        kwargs["load_fields"] = list(options.load_fields)
    if options.skip_load_dynamic_field:
        kwargs["skip_load_dynamic_field"] = True
    if options.priority is not None:  # Prepare puts it in load_params["load_priority"]; the proxy reads "low"/"high"
        kwargs["priority"] = options.priority.value.lower()
    if refresh:  # LoadCollectionRequest.refresh: querycoord re-pulls the loaded collection's target
        kwargs["refresh"] = True
    return kwargs
