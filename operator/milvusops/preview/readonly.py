"""The read-only side of `milvusops plan`: a port that refuses to change Milvus, and an act that only predicts."""

from __future__ import annotations

from typing import Any

from milvusops.core.failures import Failure, Reason
from milvusops.core.memory_estimate import Field, NodeMemory, Shape
from milvusops.core.model import CollectionSpec, LoadOptions, LoadState
from milvusops.core.observed import CollectionInfo, QueryNodes, Replicas, StateReport
from milvusops.core.plan import Action, loads
from milvusops.milvus.aliases import AliasPort, MilvusAliases
from milvusops.milvus.port import MilvusPort, PortSource
from milvusops.runtime.apply import Applied


class ReadOnlyViolation(AssertionError):
    """A load or release was asked of a port that must never change Milvus: a bug, never a Milvus failure."""


class ReadOnlyPort:
    """A MilvusPort that passes reads through and raises on every load or release, before anything is sent."""

    def __init__(self, port: MilvusPort) -> None:
        self._port = port

    @property
    def server(self) -> str:
        return self._port.server

    async def server_version(self) -> str:
        return await self._port.server_version()

    async def list_partitions(self, collection: str, count: int | None = None) -> list[str]:
        return await self._port.list_partitions(collection, count)

    async def version(self) -> str:
        return await self._port.version()

    async def describe(self, collection: str) -> CollectionInfo:
        return await self._port.describe(collection)

    async def load_state(self, collection: str, partition: str | None = None) -> StateReport:
        return await self._port.load_state(collection, partition)

    async def load_state_together(self, collection: str, partitions: list[str]) -> LoadState:
        return await self._port.load_state_together(collection, partitions)

    async def loading(self, collection: str) -> StateReport:
        return await self._port.loading(collection)

    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas | None:
        return await self._port.replicas(collection, collection_id)

    async def unindexed_vector_fields(self, collection: str) -> list[str]:
        return await self._port.unindexed_vector_fields(collection)

    async def shape(self, collection: str, partitions: list[str], fields: tuple[Field, ...] = ()) -> Shape:
        return await self._port.shape(collection, partitions, fields)

    async def query_node_memory(self, resource_groups: tuple[str, ...] = ()) -> tuple[tuple[NodeMemory, ...], str]:
        return await self._port.query_node_memory(resource_groups)

    async def query_nodes(self) -> QueryNodes | None:
        return await self._port.query_nodes()

    async def load_collection(self, collection: str, options: LoadOptions, refresh: bool = False) -> None:
        raise ReadOnlyViolation(f"load_collection({collection}) on a read-only port")

    async def load_partitions(
        self, collection: str, partitions: list[str], options: LoadOptions, refresh: bool = False
    ) -> None:
        raise ReadOnlyViolation(f"load_partitions({collection}, {partitions}) on a read-only port")

    async def release_collection(self, collection: str) -> None:
        raise ReadOnlyViolation(f"release_collection({collection}) on a read-only port")

    async def release_partitions(self, collection: str, partitions: list[str]) -> None:
        raise ReadOnlyViolation(f"release_partitions({collection}, {partitions}) on a read-only port")


class ReadOnlyAliases:
    """The alias reads a preview needs, through the one adapter; create, alter and drop raise before any call."""

    def __init__(self, aliases: AliasPort) -> None:
        self._aliases = aliases

    async def target_of(self, alias: str) -> str | None:
        return await self._aliases.target_of(alias)

    async def aliases_of(self, collection: str) -> list[str]:
        return await self._aliases.aliases_of(collection)

    async def create(self, collection: str, alias: str) -> None:
        raise ReadOnlyViolation(f"create_alias({collection}, {alias}) on a read-only port")

    async def alter(self, collection: str, alias: str) -> None:
        raise ReadOnlyViolation(f"alter_alias({collection}, {alias}) on a read-only port")

    async def drop(self, alias: str) -> None:
        raise ReadOnlyViolation(f"drop_alias({alias}) on a read-only port")


class ReadOnlyPorts:
    """Every port handed out is read-only; `ignore_refs`: one Milvus for all (`--milvus-uri`), whatever the ref."""

    def __init__(self, source: PortSource, ignore_refs: bool = False) -> None:
        self._source = source
        self._ignore_refs = ignore_refs

    async def port(self, namespace: str, connection: str | None, database: str) -> MilvusPort:
        return ReadOnlyPort(await self._raw(namespace, connection, database))

    async def aliases(self, namespace: str, connection: str | None, database: str) -> ReadOnlyAliases:
        return ReadOnlyAliases(MilvusAliases(await self._raw(namespace, connection, database)))

    async def _raw(self, namespace: str, connection: str | None, database: str) -> Any:
        return await self._source.port(namespace, None if self._ignore_refs else connection, database)


async def predict(port: MilvusPort, spec: CollectionSpec, actions: tuple[Action, ...]) -> Applied:
    """Stands in for `apply`: calls nothing that changes Milvus, returns the refusal a load would meet.

    Only what can be read beforehand is predicted: a vector field without an index (Milvus: code 700).
    """
    if loads(actions):
        unindexed = await port.unindexed_vector_fields(spec.collection_name)
        if unindexed:
            message = f"vector field(s) {', '.join(unindexed)} of {spec.collection_name} have no index"
            return Applied(failure=Failure(Reason.INDEX_NOT_FOUND, f"{message}: create a vector index before loading"))
    return Applied()  # nothing was done: the calls are read from the plan
