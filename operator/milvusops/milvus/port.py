"""The port over pymilvus's MilvusClient: a client per connection, each call in a slot and a thread, with a deadline."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any, Protocol, TypeVar

from pymilvus import DataType, MilvusException
from pymilvus.client.types import LoadState as MilvusLoadState

from milvusops.core.capabilities import capabilities
from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.memory_estimate import Field, NodeMemory, Shape
from milvusops.core.model import LoadOptions, LoadState
from milvusops.core.observed import CollectionInfo, QueryNodes, Replicas, StateReport
from milvusops.milvus.call_slots import Slots, current
from milvusops.milvus.client import MilvusClient, close_quietly
from milvusops.milvus.default_partition import DefaultPartition
from milvusops.milvus.errors import FAILED_LOAD, SERVER_FAILURES, classify, failed_load
from milvusops.milvus.node_memory import read_node_memory
from milvusops.milvus.parsers import (
    fields_of,
    indexes_of,
    tolerant_fields_of,
)
from milvusops.milvus.query_nodes import QueryNodesSeen
from milvusops.milvus.replica_calls import replicas_by_id, replicas_described
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
    async def list_partitions(self, collection: str, count: int | None = None) -> list[str]: ...
    async def describe(self, collection: str) -> CollectionInfo: ...
    async def load_state(self, collection: str, partition: str | None = None) -> StateReport: ...
    async def load_state_together(self, collection: str, partitions: list[str]) -> LoadState: ...
    async def loading(self, collection: str) -> StateReport: ...
    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas | None: ...
    async def unindexed_vector_fields(self, collection: str) -> list[str]: ...
    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape: ...
    async def query_node_memory(self, resource_groups: tuple[str, ...] = ()) -> tuple[tuple[NodeMemory, ...], str]: ...
    async def query_nodes(self) -> QueryNodes | None: ...
    async def load_collection(self, collection: str, options: LoadOptions, refresh: bool = False) -> None: ...
    async def load_partitions(
        self, collection: str, partitions: list[str], options: LoadOptions, refresh: bool = False
    ) -> None: ...
    async def release_collection(self, collection: str) -> None: ...
    async def release_partitions(self, collection: str, partitions: list[str]) -> None: ...


class PortSource(Protocol):
    """Hands out the port of the Milvus server a resource's connection names (the operator's pool, a preview's)."""

    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusPort: ...


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

    def __init__(
        self, endpoint: Endpoint, database: str, executor: Executor, slots: Slots, settle: float = 120.0
    ) -> None:
        self._endpoint = endpoint
        self._database = database
        self._executor = executor
        self._slots = slots
        self._client: MilvusClient | None = None
        self._version: tuple[MilvusClient, str] | None = None  # the server version, as read through that client
        self._default_partition = DefaultPartition()  # its name, learnt once per client
        self._query_nodes = QueryNodesSeen(settle)  # `settle`: Settings.replicas_settle_seconds
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
            self._executor.submit(close_quietly, client)
        except RuntimeError:  # the executor was shut down (the operator stops): a thread of its own
            threading.Thread(target=close_quietly, args=(client,), name="milvus-close", daemon=True).start()

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

    async def list_partitions(self, collection: str, count: int | None = None) -> list[str]:
        """`count`: as describe_collection counted them (see DefaultPartition); 1 may need no call."""
        return await self._default_partition.partitions(collection, count, self._listed)

    async def _listed(self, collection: str) -> list[str]:
        names = await self._call("list_partitions", lambda c: c.list_partitions(collection, timeout=self._timeout))
        return [str(name) for name in names]

    async def describe(self, collection: str) -> CollectionInfo:
        info = await self._call(
            "describe_collection", lambda c: c.describe_collection(collection, timeout=self._timeout)
        )
        keys = [str(field["name"]) for field in info.get("fields", ()) if field.get("is_partition_key")]
        fields = tolerant_fields_of(info.get("fields", ()))
        return CollectionInfo(str(info["collection_id"]), keys[0] if keys else None, fields, info.get("num_partitions"))

    async def load_state(self, collection: str, partition: str | None = None) -> StateReport:
        try:
            report = await self._call(
                "get_load_state", lambda c: c.get_load_state(collection, partition or "", timeout=self._timeout)
            )
        except FailureError as exc:
            cause = exc.__cause__
            if isinstance(cause, MilvusException) and FAILED_LOAD in str(cause.message):
                raise FailureError(failed_load(exc.failure, capabilities(await self.version()))) from cause
            raise
        state = _LOAD_STATES.get(report["state"], LoadState.UNKNOWN)
        progress = report.get("progress")
        return StateReport(state, int(progress) if progress is not None else None)

    async def loading(self, collection: str) -> StateReport:
        """A collection believed Loading: GetLoadingProgress alone, 100 being Loaded; get_load_state if it fails.

        MilvusClient.get_load_state makes two RPCs while a load runs (the state, then the progress); Milvus
        derives the state from the same percentage, so one call per re-check of a burst's loads is enough.
        A collection not loaded (released, or its load failed) is an error here: get_load_state says which;
        an unreachable server is not asked twice.
        """
        try:
            progress = await self._call(
                "get_loading_progress",
                lambda c: c._get_connection().get_loading_progress(collection, None, timeout=self._timeout),
            )
        except FailureError as exc:
            if exc.failure.reason in SERVER_FAILURES:
                raise  # get_load_state would fail the same way, after its own timeout
            return await self.load_state(collection)
        if int(progress) >= 100:
            return StateReport(LoadState.LOADED, 100)
        return StateReport(LoadState.LOADING, int(progress))

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

        timeout = self._timeout
        by_id = partial(replicas_by_id, collection_id=int(collection_id or 0), timeout=timeout)
        describe = partial(replicas_described, collection=collection, timeout=timeout)
        try:
            if collection_id and (known := await self._call("get_replicas", by_id)) is not None:
                return known
            described = await self._call("describe_replica", describe)
        except FailureError as exc:
            if exc.failure.reason == Reason.UNSUPPORTED:
                return None
            raise
        return described

    async def unindexed_vector_fields(self, collection: str) -> list[str]:
        """Vector fields without an index: Milvus refuses to load the collection while there is one (code 700)."""

        def ask(client: MilvusClient) -> list[str]:
            fields = client.describe_collection(collection, timeout=self._timeout)["fields"]
            vectors = [str(field["name"]) for field in fields if DataType(field["type"]).name.endswith("_VECTOR")]
            return [name for name in vectors if not client.list_indexes(collection, name, timeout=self._timeout)]

        return await self._call("list_indexes", ask)

    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape:
        """Schema, indexes and row counts: what the memory estimate needs (docs/design/capacity.md).

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

        return await self._call(
            "get_metrics", partial(read_node_memory, resource_groups=resource_groups, timeout=self._timeout)
        )

    async def query_nodes(self) -> QueryNodes | None:
        """The server's query nodes (GetMetrics), read at most every few seconds for all callers; None if unknown."""
        return await self._query_nodes.current(self._query_node_ids)

    async def _query_node_ids(self) -> frozenset[int]:
        return frozenset(node.node_id for node in (await self.query_node_memory())[0])

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


def _load_kwargs(options: LoadOptions, refresh: bool = False) -> dict[str, Any]:
    """The keyword arguments of MilvusClient.load_collection / load_partitions (pymilvus 3.0.2's Prepare reads them)."""
    kwargs: dict[str, Any] = {"_async": True, "sync": False}  # return once accepted (both flags: partitions too)
    # only send what was asked for, so older servers accept plain loads; no replica number: the server decides
    if options.replicas is not None:
        kwargs["replica_number"] = options.replicas
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
