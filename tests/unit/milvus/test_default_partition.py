"""A collection with one partition has only the server's default one: its name is learnt once per client,
so observing it needs describe_collection alone, not also list_partitions (both wait in Milvus 2.3's
one-at-a-time DDL queue)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymilvus import MilvusException

from milvusops.core.failures import FailureError, Reason
from milvusops.milvus import port as milvus_port
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime.observe import observe


@dataclass
class Server:
    # collection -> (its partitions, its partition-key field or None)
    collections: dict[str, tuple[list[str], str | None]] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)  # described, then dropped before its listing


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    state = Server()

    class FakeMilvusClient:
        def __init__(self, **_: Any) -> None:
            pass

        def get_load_state(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
            from pymilvus.client.types import LoadState as MilvusLoadState

            return {"state": MilvusLoadState.NotLoad}

        def list_partitions(self, collection: str, timeout: float) -> list[str]:
            state.listed.append(collection)
            if collection in state.dropped:
                raise MilvusException(100, f"collection not found[collection={collection}]")
            return list(state.collections[collection][0])

        def describe_collection(self, collection: str, timeout: float) -> dict[str, Any]:
            partitions, key = state.collections[collection]
            fields = [{"name": "id"}, {"name": "vector"}, *([{"name": key, "is_partition_key": True}] if key else [])]
            return {"collection_id": 7, "fields": fields, "num_partitions": len(partitions)}

        def close(self) -> None:
            pass

    monkeypatch.setattr(milvus_port, "MilvusClient", FakeMilvusClient)
    return state


async def test_single_partition_collections_are_listed_once_per_client(server: Server, port: MilvusClientPort) -> None:
    server.collections = {name: (["_default"], None) for name in ("a", "b", "c")}
    for name in ("a", "b", "c"):
        assert set((await observe(port, name)).partitions) == {"_default"}
    assert server.listed == ["a"]


async def test_the_default_partition_name_is_learnt_from_the_server_not_assumed(
    server: Server, port: MilvusClientPort
) -> None:
    # common.defaultPartitionName is a server setting
    server.collections = {"a": (["main"], None), "b": (["main"], None)}
    assert set((await observe(port, "a")).partitions) == {"main"}
    assert set((await observe(port, "b")).partitions) == {"main"}
    assert server.listed == ["a"]


async def test_partition_key_and_multi_partition_collections_are_always_listed(
    server: Server, port: MilvusClientPort
) -> None:
    server.collections = {
        "one": (["_default"], None),
        "keyed": (["_default_0"], "tenant"),  # a partition-key collection with num_partitions 1
        "many": (["_default", "x"], None),
    }
    await observe(port, "one")
    assert set((await observe(port, "keyed")).partitions) == {"_default_0"}
    assert set((await observe(port, "many")).partitions) == {"_default", "x"}
    assert server.listed == ["one", "keyed", "many"]


async def test_a_burst_of_first_observations_lists_one_of_them(server: Server, port: MilvusClientPort) -> None:
    names = [f"c{i}" for i in range(20)]
    server.collections = {name: (["_default"], None) for name in names}
    observed = await asyncio.gather(*(observe(port, name) for name in names))
    assert all(set(o.partitions) == {"_default"} for o in observed)
    assert len(server.listed) == 1


async def test_a_teacher_dropped_meanwhile_fails_only_its_own_observation(
    server: Server, port: MilvusClientPort
) -> None:
    server.collections = {"gone": (["_default"], None), "b": (["_default"], None), "c": (["_default"], None)}
    server.dropped = {"gone"}
    with pytest.raises(FailureError) as raised:
        await observe(port, "gone")
    assert raised.value.failure.reason == Reason.COLLECTION_NOT_FOUND
    assert set((await observe(port, "b")).partitions) == {"_default"}
    assert set((await observe(port, "c")).partitions) == {"_default"}
    assert server.listed == ["gone", "b"]
