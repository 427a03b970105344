"""Milvus aliases through the adapter: each call in the port's slots and threads, with its deadline.

Kept apart from `port.py` (at the module size limit); `MilvusClientPort._call` stays the one place that runs
pymilvus. Codes as Milvus 2.3.5 answers them (pymilvus 3.0.2): describe_alias of a missing alias 1600,
create_alias of an alias that points elsewhere 1602, an alias named like a collection 1601; create_alias of
an alias that already points at that collection and drop_alias of a missing alias succeed. An alias whose
collection was dropped stays: describe_alias says 1600, create_alias 1602, and alter_alias takes it over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pymilvus import MilvusException

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.milvus.client import MilvusClient
from milvusops.milvus.port import MilvusClientPort

ALIAS_NOT_FOUND = 1600
ALIAS_NAME_TAKEN = 1601  # a collection has that name
ALIAS_EXISTS = 1602  # on create: the alias points at another collection, or at one that was dropped


class AliasPort(Protocol):
    """The alias calls a MilvusAlias needs, for one connection and database."""

    async def target_of(self, alias: str) -> str | None: ...
    async def aliases_of(self, collection: str) -> list[str]: ...
    async def create(self, collection: str, alias: str) -> None: ...
    async def alter(self, collection: str, alias: str) -> None: ...
    async def drop(self, alias: str) -> None: ...


class MilvusAliases:
    """AliasPort over a `MilvusClientPort` (its client, slots, deadline and error classification)."""

    def __init__(self, port: MilvusClientPort) -> None:
        self._port = port

    async def target_of(self, alias: str) -> str | None:
        """The collection the alias points at; None if there is no such alias."""
        timeout = self._port._timeout
        try:
            described = await self._port._call("describe_alias", lambda c: c.describe_alias(alias, timeout=timeout))
        except FailureError as exc:
            if _code(exc) == ALIAS_NOT_FOUND:
                return None
            raise
        return str(described.get("collection_name") or "") or None

    async def aliases_of(self, collection: str) -> list[str]:
        timeout = self._port._timeout
        listed = await self._port._call("list_aliases", lambda c: c.list_aliases(collection, timeout=timeout))
        return [str(alias) for alias in listed.get("aliases", ())]

    async def create(self, collection: str, alias: str) -> None:
        """Create the alias; one that exists unseen (its collection dropped and rebuilt) is altered instead."""
        timeout = self._port._timeout
        try:
            await self._named(alias, "create_alias", lambda c: c.create_alias(collection, alias, timeout=timeout))
        except FailureError as exc:
            if _code(exc) != ALIAS_EXISTS:
                raise
            await self.alter(collection, alias)

    async def alter(self, collection: str, alias: str) -> None:
        timeout = self._port._timeout
        await self._named(alias, "alter_alias", lambda c: c.alter_alias(collection, alias, timeout=timeout))

    async def drop(self, alias: str) -> None:
        timeout = self._port._timeout
        await self._port._call("drop_alias", lambda c: c.drop_alias(alias, timeout=timeout))

    async def _named(self, alias: str, method: str, call: Callable[[MilvusClient], Any]) -> None:
        try:
            await self._port._call(method, call)
        except FailureError as exc:
            if _code(exc) == ALIAS_NAME_TAKEN:
                message = f"a collection is named {alias}: an alias cannot take its name ({exc.failure.message})"
                raise FailureError(Failure(Reason.CONFLICT, message)) from exc
            raise


def _code(exc: FailureError) -> object:
    cause = exc.__cause__
    return cause.code if isinstance(cause, MilvusException) else None
