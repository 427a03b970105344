"""The server's default partition name, learnt from the first listing of a one-partition collection.

A collection without a partition key that has one partition has only the server's default one (it cannot
be dropped); its name (`common.defaultPartitionName`) is a server setting, so it is learnt, not assumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from milvusops.core.failures import FailureError


class DefaultPartition:
    """One per client: the first one-partition listing teaches the others, also those of the same burst."""

    def __init__(self) -> None:
        self._teaching: asyncio.Future[list[str]] | None = None

    async def partitions(
        self, collection: str, count: int | None, listed: Callable[[str], Awaitable[list[str]]]
    ) -> list[str]:
        """`count`: the partitions describe_collection counted, for a collection without a partition key."""
        if count != 1:
            return await listed(collection)
        teaching = self._teaching
        if teaching is None:
            teaching = self._teaching = asyncio.ensure_future(listed(collection))
            try:
                names = await asyncio.shield(teaching)
            except FailureError:
                self._teaching = None  # e.g. dropped meanwhile: the next one teaches
                raise
            if len(names) != 1:
                self._teaching = None  # a partition created since the describe
            return names
        try:
            learnt = await asyncio.shield(teaching)
        except FailureError:
            learnt = []  # the teacher's failure is about its own collection: list this one
        return list(learnt) if len(learnt) == 1 else await listed(collection)
