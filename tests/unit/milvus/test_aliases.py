"""Alias calls through the port, with the codes Milvus 2.3.5 answers (seen against a real 2.3.5, pymilvus 3.0.2)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymilvus import MilvusException

from milvusops.core.failures import FailureError, Reason
from milvusops.milvus import port as milvus_port
from milvusops.milvus.aliases import MilvusAliases
from milvusops.milvus.port import MilvusClientPort


class FakeClient:
    """describe_alias / list_aliases / create_alias / alter_alias / drop_alias as Milvus 2.3.5 answers them."""

    collections = {"blue", "green"}
    aliases: dict[str, str] = {}
    dangling: set[str] = set()  # aliases of a dropped collection: Milvus hides them from describe only

    def __init__(self, **_: Any) -> None:
        pass

    def describe_alias(self, alias: str, timeout: float | None = None) -> dict[str, str]:
        if alias not in self.aliases or alias in self.dangling:
            raise MilvusException(1600, f"alias not found[database=default][alias={alias}]")
        return {"alias": alias, "collection_name": self.aliases[alias]}

    def list_aliases(self, collection: str = "", timeout: float | None = None) -> dict[str, Any]:
        return {"aliases": [a for a, c in self.aliases.items() if c == collection]}

    def create_alias(self, collection: str, alias: str, timeout: float | None = None) -> None:
        if alias in self.collections:
            raise MilvusException(1601, f"alias and collection name conflict[database=default][alias={alias}]")
        if self.aliases.get(alias, collection) != collection or alias in self.dangling:
            raise MilvusException(1602, f"{alias} is alias to another collection: {self.aliases[alias]}")
        self.aliases[alias] = collection

    def alter_alias(self, collection: str, alias: str, timeout: float | None = None) -> None:
        if collection not in self.collections:
            raise MilvusException(100, f"collection not found[collection={collection}]")
        self.aliases[alias] = collection
        self.dangling.discard(alias)

    def drop_alias(self, alias: str, timeout: float | None = None) -> None:
        self.aliases.pop(alias, None)  # a missing alias is no error

    def close(self) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    FakeClient.aliases = {}
    FakeClient.dangling = set()
    monkeypatch.setattr(milvus_port, "MilvusClient", FakeClient)
    return FakeClient


def test_a_missing_alias_reads_as_none_then_the_calls_move_it(server: type[FakeClient], port: MilvusClientPort) -> None:
    aliases = MilvusAliases(port)

    async def scenario() -> list[Any]:
        missing = await aliases.target_of("live")
        await aliases.create("blue", "live")
        await aliases.create("blue", "live")  # again, to the same collection: Milvus accepts it
        created = await aliases.target_of("live")
        await aliases.alter("green", "live")
        listed = await aliases.aliases_of("green"), await aliases.aliases_of("blue")
        await aliases.drop("live")
        await aliases.drop("live")
        return [missing, created, await aliases.target_of("live"), listed]

    assert asyncio.run(scenario()) == [None, "blue", None, (["live"], [])]


def test_refusals_are_classified(server: type[FakeClient], port: MilvusClientPort) -> None:
    aliases = MilvusAliases(port)
    with pytest.raises(FailureError) as taken:
        asyncio.run(aliases.create("blue", "green"))
    assert taken.value.failure.reason == Reason.CONFLICT
    assert taken.value.failure.message.startswith("a collection is named green: an alias cannot take its name")
    with pytest.raises(FailureError) as gone:
        asyncio.run(aliases.alter("nope", "live"))
    assert gone.value.failure.reason == Reason.COLLECTION_NOT_FOUND


def test_an_alias_of_a_dropped_collection_is_taken_over_by_create(
    server: type[FakeClient], port: MilvusClientPort
) -> None:
    server.aliases, server.dangling = {"live": "blue"}, {"live"}  # blue dropped and created again
    aliases = MilvusAliases(port)

    async def scenario() -> tuple[str | None, str | None]:
        unseen = await aliases.target_of("live")
        await aliases.create("blue", "live")
        return unseen, await aliases.target_of("live")

    assert asyncio.run(scenario()) == (None, "blue")
