"""An in-memory Milvus (the MilvusPort protocol) and PortSource, for the pure-logic tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from milvusops.core.capabilities import capabilities
from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.loadtimes import Expected, LoadTimes
from milvusops.core.memory_estimate import Field, Index, NodeMemory, Shape
from milvusops.core.model import LoadOptions, LoadState
from milvusops.core.observed import CollectionInfo, QueryNodes, Replicas, StateReport
from milvusops.milvus.call_slots import Priority, current
from milvusops.milvus.port import MilvusPort

NOT_LOAD, LOADING, LOADED = LoadState.NOT_LOAD, LoadState.LOADING, LoadState.LOADED
MUTATING = {
    "load_collection",
    "load_partitions",
    "release_collection",
    "release_partitions",
    "refresh_collection",
    "refresh_partitions",
}


class FakeMilvus:
    """One collection in one database; loads go to Loading, as with _async=True on a real server."""

    def __init__(self, partitions: Mapping[str, LoadState] | None) -> None:
        """`partitions` None: the collection does not exist."""
        self.partitions = dict(partitions) if partitions is not None else None
        self.replica_count = 1
        self.replica_unavailable = ""  # Milvus's 401 message while a replica has lost its query node
        self.id = "4507"  # changes when the collection is "dropped and recreated"
        self.calls: list[tuple[Any, ...]] = []
        self.replica_ids: list[str | None] = []  # the collection id each replicas call named
        self.priorities: list[tuple[str, Priority]] = []  # (method, the priority its slot would be taken at)
        self.failures: dict[str, Failure] = {}
        self.version_text = "v2.3.5"  # what get_server_version answers; decides the fake's behaviour too
        self.partition_key: str | None = None
        self.failed_load: Failure | None = None  # what get_load_state raises until a load clears it (before 2.6.16)
        self.unindexed: list[str] = []  # vector fields without an index
        self.rows: dict[str, int] = {}  # partition -> rows, for the memory estimate (dim 8 FLAT: 48 B a row)
        self.sized: list[str] = []  # partitions whose row count `shape` read: one get_partition_stats each
        self.nodes: tuple[NodeMemory, ...] = (NodeMemory(1, 8 * 2**30, 2**30),)  # what GetMetrics reports
        self.server = "fake:19530"  # which Milvus server this is: two fakes with the same one share its memory
        self.query_node_set: QueryNodes | None = (
            None  # what `query_nodes` answers: None, unknown (as without GetMetrics)
        )

    @property
    def states(self) -> dict[str, LoadState]:
        """The partitions of an existing collection, to change behind the operator's back."""
        assert self.partitions is not None
        return self.partitions

    def fail(self, method: str, reason: Reason, message: str) -> None:
        self.failures[method] = Failure(reason, message)

    @property
    def mutating_calls(self) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] in MUTATING]

    def _call(self, method: str, *args: Any) -> dict[str, LoadState]:
        self.calls.append((method, *args))
        self.priorities.append((method, current()))
        if method in self.failures:
            raise FailureError(self.failures[method])
        if self.partitions is None:
            raise FailureError(Failure(Reason.COLLECTION_NOT_FOUND, "collection not found"))
        return self.partitions

    async def server_version(self) -> str:
        self._call("server_version")
        return "v2.3.5"

    async def list_partitions(self, collection: str, count: int | None = None) -> list[str]:
        return list(self._call("list_partitions", collection))

    async def version(self) -> str:
        return self.version_text  # the real port reads it once per client: not a call worth recording

    async def describe(self, collection: str) -> CollectionInfo:
        self._call("describe", collection)
        return CollectionInfo(self.id, self.partition_key)

    async def load_state(self, collection: str, partition: str | None = None) -> StateReport:
        if self.partitions is None and "load_state" not in self.failures:
            self.calls.append(("load_state", collection, partition))
            self.priorities.append(("load_state", current()))
            return StateReport(LoadState.NOT_EXIST)
        states = self._call("load_state", collection, partition)
        if partition is None and self.failed_load is not None:
            raise FailureError(self.failed_load)
        if partition is not None:
            if partition not in states:
                raise FailureError(Failure(Reason.PARTITION_NOT_FOUND, "partition not found"))
            state = states[partition]
            return StateReport(state, 50 if state == LOADING else None)
        # like Milvus 2.3.5: Loaded as soon as some partition is
        for whole in (LOADED, LOADING):
            if whole in states.values():
                return StateReport(whole)
        return StateReport(NOT_LOAD)

    async def loading(self, collection: str) -> StateReport:
        return await self.load_state(collection)  # the real port's one-call form answers as get_load_state

    async def load_state_together(self, collection: str, partitions: list[str]) -> LoadState:
        if self.partitions is None:  # as get_load_state: an answer, not an error
            self.calls.append(("load_state_together", collection, tuple(partitions)))
            return LoadState.NOT_EXIST
        states = self._call("load_state_together", collection, tuple(partitions))
        if any(name not in states for name in partitions):
            raise FailureError(Failure(Reason.PARTITION_NOT_FOUND, "partition not found"))
        named = {states[name] for name in partitions}
        # as Milvus: NotLoad as soon as one of them is released, Loading while one loads
        return NOT_LOAD if NOT_LOAD in named else LOADING if LOADING in named else LOADED

    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas:
        self._call("replicas", collection)
        self.replica_ids.append(collection_id)
        if self.replica_unavailable:
            return Replicas(None, unavailable=self.replica_unavailable)
        return Replicas(self.replica_count, ("__default_resource_group",))

    async def unindexed_vector_fields(self, collection: str) -> list[str]:
        self._call("unindexed_vector_fields", collection)
        return list(self.unindexed)

    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape:
        self._call("shape", collection)
        self.sized.extend(partitions)
        schema = fields or (Field("id", "INT64"), Field("vector", "FLOAT_VECTOR", dim=8))
        return Shape(schema, (Index("vector", "FLAT"),), {name: self.rows.get(name, 0) for name in partitions})

    async def query_node_memory(self, resource_groups: tuple[str, ...] = ()) -> tuple[tuple[NodeMemory, ...], str]:
        self._call("query_node_memory")
        return self.nodes, "all query nodes"

    async def query_nodes(self) -> QueryNodes | None:
        return self.query_node_set  # a per-server read made every few seconds: not one of the resource's calls

    def _check_replicas(self, states: dict[str, LoadState], options: LoadOptions, in_place: bool = False) -> None:
        held = any(state in (LOADED, LOADING) for state in states.values())
        wanted = options.replicas or 1  # none sent (0): querycoord 2.3 loads 1 replica
        if wanted != self.replica_count and held and not in_place:
            raise FailureError(Failure(Reason.INVALID_LOAD_OPTIONS, "can't change the replica number"))
        self.replica_count = wanted

    def _check_partition_key(self, method: str) -> None:
        if self.partition_key is not None:  # as the proxy's load/releasePartitionsTask.PreExecute refuses
            message = f"disable {method} partitions if partition key mode is used"
            raise FailureError(Failure(Reason.PARTITION_KEY_COLLECTION, message))

    def _refresh(self, *call: Any) -> None:
        states = self._call(*call)
        if LOADING in states.values() or LOADED not in states.values():  # querycoord refreshCollection
            raise FailureError(
                Failure(Reason.MILVUS_ERROR, "code 101: collection not loaded: collection not fully loaded")
            )

    async def load_collection(self, collection: str, options: LoadOptions, refresh: bool = False) -> None:
        if refresh:  # querycoord LoadCollection returns after refreshCollection: nothing else is checked
            return self._refresh("refresh_collection", collection)
        states = self._call("load_collection", collection, options.replicas)
        self.failed_load = None  # LoadCollectionJob.Execute: GlobalFailedLoadCache.Remove
        self._check_replicas(states, options, capabilities(self.version_text).replica_change_in_place)
        states.update({name: LOADING for name, state in states.items() if state == NOT_LOAD})

    async def load_partitions(
        self, collection: str, partitions: list[str], options: LoadOptions, refresh: bool = False
    ) -> None:
        if refresh:
            return self._refresh("refresh_partitions", collection, tuple(partitions))
        states = self._call("load_partitions", collection, tuple(partitions), options.replicas)
        self._check_partition_key("load")
        self._check_replicas(states, options)
        states.update({name: LOADING for name in partitions if states[name] == NOT_LOAD})

    async def release_collection(self, collection: str) -> None:
        states = self._call("release_collection", collection)
        states.update(dict.fromkeys(states, NOT_LOAD))

    async def release_partitions(self, collection: str, partitions: list[str]) -> None:
        states = self._call("release_partitions", collection, tuple(partitions))
        self._check_partition_key("release")
        states.update(dict.fromkeys(partitions, NOT_LOAD))


class FakePorts:
    """The PortSource: hands out the fake, or fails the way a missing Secret/connection does."""

    def __init__(self, milvus: FakeMilvus, failure: Failure | None = None) -> None:
        self.milvus = milvus
        self.failure = failure
        self.requests: list[tuple[str, str | None, str]] = []
        self.load_times = LoadTimes()

    def for_deletion(self) -> FakePorts:
        return self

    def expected_load(self, namespace: str, connection: str | None) -> Expected | None:
        return self.load_times.expected()

    def record_load(self, namespace: str, connection: str | None, seconds: float) -> None:
        self.load_times = self.load_times.record(seconds)

    async def endpoint(self, namespace: str, connection: str | None, last_known: bool = False) -> Endpoint:
        """Every connection resolves to one server unless a test says otherwise."""
        if self.failure is not None:
            raise FailureError(self.failure)
        return Endpoint(uri="http://fake-milvus:19530")

    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusPort:
        self.requests.append((namespace, connection, database))
        if self.failure is not None:
            raise FailureError(self.failure)
        return self.milvus
