"""The server's query nodes as GetMetrics lists them, read once for every resource that asks within a few seconds.

A confirmation asks whether its replicas still stand only when this set changed lately (`core.observed`):
one GetMetrics per server instead of one GetReplicas per collection every resync.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from milvusops.core.failures import FailureError
from milvusops.core.observed import QueryNodes

MAX_AGE_SECONDS = 5.0  # a node lost is seen by the next confirmation at most this much later than GetMetrics shows it


class QueryNodesSeen:
    """One per client: the last set read, since when it stands, and the one read in flight (shared by its askers)."""

    def __init__(self, settle: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._settle = settle
        self._clock = clock
        self._seen: QueryNodes | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Future[QueryNodes | None] | None = None

    async def current(self, read: Callable[[], Awaitable[frozenset[int]]]) -> QueryNodes | None:
        """None when Milvus could not be asked (e.g. GetMetrics not granted): every caller then asks its replicas."""
        if self._clock() - self._read_at < MAX_AGE_SECONDS:
            return self._seen
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._refresh(read))
        return await asyncio.shield(self._reading)

    async def _refresh(self, read: Callable[[], Awaitable[frozenset[int]]]) -> QueryNodes | None:
        try:
            ids = await read()
        except FailureError:
            self._seen, self._read_at = None, self._clock()  # unknown for a while, not asked again by every caller
            return None
        finally:
            self._reading = None
        now = self._clock()
        self._read_at = now
        if self._seen is None or self._seen.ids != ids:
            self._seen = QueryNodes(ids, since=now, settle=self._settle)
        return self._seen
